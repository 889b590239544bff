"""Real FFTs for the tempo and key analysis: NumPy for short audio, SciPy for long.

``scipy.fft`` costs about 0.2 s to import on a cold start (it pulls in ``scipy.special``
and, through its array-API layer, ``numpy.f2py``): most of what ``dgx-music analyze`` of
one track takes. NumPy's pocketfft (>= 2.0 keeps float32 in float32) has no such cost but
transforms batches of frames 2-5x slower, which outweighs the import from about a minute
of audio on. So an analysis of :data:`SCIPY_FROM_SECONDS` or more (see :func:`sized_for`)
runs on SciPy, a shorter one on NumPy. The choice depends on the audio alone (a file and
the same samples as a tensor give identical results); both agree to float rounding.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Optional

import numpy as np

__all__ = ["SCIPY_FROM_SECONDS", "irfft", "next_fast_len", "rfft", "sized_for"]

SCIPY_FROM_SECONDS = 60.0

_chosen = threading.local()  # the module of the analysis running in this thread


@contextlib.contextmanager
def sized_for(seconds: float) -> Iterator[None]:
    """Within the block, this thread transforms with the module suited to ``seconds`` of audio."""
    previous = getattr(_chosen, "module", None)
    if seconds >= SCIPY_FROM_SECONDS:
        import scipy.fft

        _chosen.module = scipy.fft
    else:
        _chosen.module = np.fft
    try:
        yield
    finally:
        _chosen.module = previous


def _module() -> Any:
    return getattr(_chosen, "module", None) or np.fft


def rfft(x: np.ndarray, n: Optional[int] = None, axis: int = -1) -> np.ndarray:
    """FFT of real input along ``axis``, zero-padded or cut to ``n``; complex (n // 2 + 1 bins)."""
    return _module().rfft(x, n, axis=axis)


def irfft(x: np.ndarray, n: Optional[int] = None, axis: int = -1) -> np.ndarray:
    """Inverse of :func:`rfft`: ``n`` real samples along ``axis``."""
    return _module().irfft(x, n, axis=axis)


def next_fast_len(target: int) -> int:
    """The smallest length >= ``target`` whose only prime factors are 2, 3 and 5 (a length
    pocketfft transforms fastest); ``target`` >= 1."""
    if target < 1:
        raise ValueError(f"target must be >= 1; got {target!r}")
    best = 1 << (target - 1).bit_length()  # the next power of two always qualifies
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            # the smallest power of two that lifts power35 to >= target
            quotient = -(-target // power35)
            best = min(best, power35 * (1 << (quotient - 1).bit_length()))
            power35 *= 3
        power5 *= 5
    return best
