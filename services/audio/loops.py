"""Loop-ready audio: exactly N bars at the track's tempo, seamless when repeated.

The loop's length in samples comes from the exact tempo: ``round(bars * beats_per_bar *
60 / bpm * sample_rate)`` from the first downbeat. What would have played right after the
last bar (about 10 ms) is crossfaded into the loop's head with equal-power curves
(``sin``/``cos``, so a fade between uncorrelated signals keeps its power), so the jump from
the loop's end back to its start continues the waveform instead of clicking.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Tuple

import numpy as np

from ..errors import AudioValidationError
from .tags.record import LoopPoints

__all__ = ["CROSSFADE_SECONDS", "loop_frames", "loop_seconds", "make_loop", "validate_loop_bars"]

CROSSFADE_SECONDS = 0.010
MAX_LOOP_BARS = 64


def validate_loop_bars(value: Any, field: str = "loop_bars") -> int:
    """A bar count in 1..64; a clear error naming ``field`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{field} must be a whole number of bars; got {type(value).__name__}")
    if not 1 <= int(value) <= MAX_LOOP_BARS:
        raise AudioValidationError(f"{field} must be between 1 and {MAX_LOOP_BARS} bars; got {value!r}")
    return int(value)


def loop_seconds(bars: int, bpm: float, beats_per_bar: int = 4) -> float:
    """Seconds in ``bars`` bars of ``beats_per_bar`` beats at ``bpm`` BPM."""
    return bars * beats_per_bar * 60.0 / bpm


def loop_frames(bars: int, bpm: float, sample_rate: int, beats_per_bar: int = 4) -> int:
    """Samples per channel in ``bars`` bars of ``beats_per_bar`` beats at ``bpm`` BPM."""
    return int(round(loop_seconds(bars, bpm, beats_per_bar) * sample_rate))


def make_loop(
    audio: np.ndarray,
    sample_rate: int,
    bpm: float,
    bars: int,
    *,
    beats_per_bar: int = 4,
    start_seconds: float = 0.0,
    crossfade_seconds: float = CROSSFADE_SECONDS,
    field: str = "loop_bars",
) -> Tuple[np.ndarray, LoopPoints]:
    """(channels, samples) ``audio`` -> (the loop, its :class:`LoopPoints` in the loop's frames).

    Starts at ``start_seconds`` (the first downbeat). Raises
    :class:`~services.errors.AudioValidationError` naming ``field`` when the audio is shorter
    than the bars asked for, or when the tempo is unknown.
    """
    bars = validate_loop_bars(bars, field)
    if bpm is None or not (isinstance(bpm, numbers.Real) and math.isfinite(bpm) and bpm > 0):
        raise AudioValidationError(f"{field} needs the track's tempo, which is unknown")
    length = loop_frames(bars, float(bpm), sample_rate, beats_per_bar)
    start = int(round(max(0.0, start_seconds) * sample_rate))
    available = audio.shape[1] - start
    if available < length:
        raise AudioValidationError(
            f"{field}={bars} needs {length / sample_rate:.2f} s of audio at {bpm:g} BPM "
            f"({beats_per_bar} beats a bar); the track has {available / sample_rate:.2f} s from its first downbeat"
        )
    loop = np.array(audio[:, start: start + length], dtype=np.float32)
    fade = min(int(round(crossfade_seconds * sample_rate)), available - length, length // 2)
    if fade > 0:
        tail = audio[:, start + length: start + length + fade]
        phase = (np.arange(fade, dtype=np.float64) + 0.5) / fade * (math.pi / 2)
        fade_in, fade_out = np.sin(phase).astype(np.float32), np.cos(phase).astype(np.float32)
        loop[:, :fade] = loop[:, :fade] * fade_in + tail * fade_out
    return loop, LoopPoints(bars, 0, length - 1)
