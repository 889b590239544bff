"""Shared helpers for the benchmark scripts: timing, tables, the machine line."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))


def median_seconds(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``repeats`` calls after ``warmup`` untimed ones, seconds."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:.2f}x"


def interleaved_medians(calls: Dict[str, Callable[[], object]], rounds: int) -> Dict[str, float]:
    """Median seconds of each call, measured in alternation: every round times each call
    once, so a change in the machine's load (a shared VM) affects all of them alike."""
    for call in calls.values():
        call()  # warm-up
    times: Dict[str, List[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def add_inner_loops_option(parser) -> None:
    """``--inner-loops numpy`` times the NumPy fallback (what installs without a C compiler run)."""
    parser.add_argument(
        "--inner-loops", choices=["built", "numpy"], default="built",
        help="numpy: disable the compiled extension for this run",
    )


def use_inner_loops(choice: str) -> str:
    """Apply ``--inner-loops``; return the implementation now in use ("compiled" or "numpy")."""
    from services.audio import _native
    from services.audio.loudness import implementation

    if choice == "numpy":
        _native.kernels = None
    return implementation()
