"""Keep BLAS on one thread while the meter's many small matrix products run."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

__all__ = ["single_threaded_blas"]

_lock = threading.Lock()
_state = {"users": 0, "limiter": None, "controller": None}


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the enclosed code with BLAS limited to one thread.

    The true-peak interpolation is many small products: a multi-threaded OpenBLAS spends
    more time waking and synchronising its threads than computing (5x slower on a busy
    2-core machine), and parallel work (batch export) already uses every core. The limit
    is process-wide, so it is reference-counted: nested and concurrent users share it and
    it is lifted when the last one leaves. Wrap a whole batch in one context, so the limit
    is not set and lifted around every item.
    """
    with _lock:
        if _state["users"] == 0:
            if _state["controller"] is None:
                from threadpoolctl import ThreadpoolController

                _state["controller"] = ThreadpoolController()
            _state["limiter"] = _state["controller"].limit(limits=1, user_api="blas")
        _state["users"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["users"] -= 1
            if _state["users"] == 0:
                _state["limiter"].restore_original_limits()
                _state["limiter"] = None
