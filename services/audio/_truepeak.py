"""True peak (BS.1770-5 Annex 2): 4x oversampling with a 49-tap interpolation filter.

One streaming meter in two implementations with the same results: :class:`CompiledTruePeak`
(``services.audio._kernels``, one pass in C) and :class:`NumpyTruePeak` (block matrix
products, where the extension was not built). Both interpolate only the stretches whose
samples could exceed the peak found so far; skipping the others provably changes nothing.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np

__all__ = ["TRUE_PEAK_OVERSAMPLING", "TRUE_PEAK_TAPS", "CompiledTruePeak", "NumpyTruePeak", "interpolation_phases"]

TRUE_PEAK_OVERSAMPLING = 4
TRUE_PEAK_TAPS = 49
_PHASE_TAPS = TRUE_PEAK_TAPS // TRUE_PEAK_OVERSAMPLING  # 12 taps per interpolating phase
_HISTORY = _PHASE_TAPS - 1  # earlier samples an interpolated sample depends on
_SEGMENT = 32  # the NumPy path interpolates (or skips) rows of this many samples


@lru_cache(maxsize=None)
def interpolation_phases() -> Tuple[np.ndarray, float]:
    """Phases 1-3 of the 4x interpolation filter, (12 taps, 3) float64, oldest input first,
    and their gain bound.

    A 49-tap Hann-windowed sinc with its zeros on the original sample grid, so phase 0 is
    the identity (every input sample is an output sample: true peak >= sample peak).
    ``y[4n + p] = sum_j phases[j, p - 1] * x[n - 11 + j]``. The bound is the largest
    sum of |taps| of a phase: no interpolated sample exceeds it times the largest
    magnitude among its 12 inputs.
    """
    factor, taps = TRUE_PEAK_OVERSAMPLING, TRUE_PEAK_TAPS
    m = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(m / factor) * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(taps) / (taps - 1)))
    phases = np.stack([h[p::factor][:_PHASE_TAPS][::-1] for p in range(1, factor)], axis=1)
    phases = np.ascontiguousarray(phases)
    phases.flags.writeable = False
    return phases, float(np.abs(phases).sum(axis=0).max())


class CompiledTruePeak:
    """True peak of (channels, samples) audio fed in pieces, in C."""

    def __init__(self, channels: int, kernels) -> None:
        self._kernels = kernels
        self._phases, bound = interpolation_phases()
        self._bound = bound * (1 + 1e-9)  # margin for float64 rounding
        self._history = np.zeros((channels, _HISTORY))
        self._peaks = np.zeros(2)  # the kernel's [sample peak, true peak], linear

    def update(self, audio: np.ndarray, start: int, length: int, sample_peak: float) -> None:
        """Feed samples [start, start + length) of contiguous (channels, samples) ``audio``;
        ``sample_peak`` is the largest |sample| up to its end (``CompiledPower`` finds it)."""
        self._peaks[0] = sample_peak  # the interpolation starts from it
        self._feed(audio, start, length, self._history, self._peaks)

    def true_peak(self) -> float:
        """True peak (linear), including the filter's ring-out after the last sample (the
        meter's state is left as it is, so feeding can go on)."""
        history, peaks = self._history.copy(), self._peaks.copy()
        self._feed(np.zeros((history.shape[0], _HISTORY)), 0, _HISTORY, history, peaks)
        return float(peaks[1])

    def _feed(self, audio, start, length, history, peaks) -> None:
        self._kernels.true_peak(
            audio, audio.dtype == np.float64, audio.shape[0], audio.shape[1], start, length,
            self._phases, self._bound, history, peaks,
        )


@lru_cache(maxsize=None)
def _interpolation_matrix() -> Tuple[np.ndarray, float]:
    """The phases as a block matrix (float32) mapping a row of ``_SEGMENT + 11`` consecutive
    inputs to the ``3 * _SEGMENT`` interpolated samples they determine, so a signal is
    interpolated by one matrix product (BLAS) over overlapping rows; and the bound."""
    phases, bound = interpolation_phases()
    matrix = np.zeros((_SEGMENT + _HISTORY, phases.shape[1] * _SEGMENT), np.float32)
    for i in range(_SEGMENT):
        matrix[i : i + _PHASE_TAPS, i * phases.shape[1] : (i + 1) * phases.shape[1]] = phases
    return matrix, bound * (1 + 1e-5)  # margin for float32 rounding


class NumpyTruePeak:
    """True peak of (channels, samples) audio fed in pieces, with NumPy.

    Interpolation runs in float32 (errors ~1e-6 dB, half the memory traffic), on whole
    rows of ``_SEGMENT`` samples behind the filter history; the remainder waits for the
    next piece.
    """

    def __init__(self, channels: int) -> None:
        self._history = np.zeros((channels, _HISTORY), np.float32)
        self._leftover = np.zeros((channels, 0), np.float32)
        self._true_peak = 0.0

    def update(self, audio: np.ndarray, start: int, length: int, sample_peak: float) -> None:
        """Feed samples [start, start + length) of (channels, samples) ``audio``;
        ``sample_peak`` is the largest |sample| up to its end."""
        x = audio[:, start : start + length]
        self._true_peak = max(self._true_peak, sample_peak)  # phase 0 is the identity
        padded = np.concatenate([self._history, self._leftover, x.astype(np.float32, copy=False)], axis=1)
        usable = (padded.shape[1] - _HISTORY) // _SEGMENT * _SEGMENT
        if usable:
            self._true_peak = _interpolated_peak(padded[:, : _HISTORY + usable], self._true_peak)
            self._history = padded[:, usable : _HISTORY + usable]
        self._leftover = padded[:, _HISTORY + usable :]

    def true_peak(self) -> float:
        """True peak (linear), including the samples not yet interpolated, followed by
        zeros long enough to let the filter ring out."""
        channels, waiting = self._leftover.shape
        pad = (-(waiting + _HISTORY)) % _SEGMENT + _HISTORY
        padded = np.concatenate([self._history, self._leftover, np.zeros((channels, pad), np.float32)], axis=1)
        return _interpolated_peak(padded, self._true_peak)


def _interpolated_peak(padded: np.ndarray, threshold: float) -> float:
    """Largest |interpolated sample| of ``padded`` (channels, 11 + n) above ``threshold``.

    ``n`` is a multiple of ``_SEGMENT``. Row ``r`` interpolates body segment ``r`` from the
    inputs ``padded[32 r : 32 r + 43]``. Only rows with an input louder than
    ``threshold / bound`` can exceed ``threshold``; the others are skipped. Returns
    ``threshold`` when no row exceeds it.
    """
    matrix, bound = _interpolation_matrix()
    span = matrix.shape[0]
    peak = threshold
    for row in padded:  # one channel at a time; each row is contiguous float32
        rows_total = (row.size - _HISTORY) // _SEGMENT
        candidates = _rows_above(row, rows_total, span, np.float32(peak / bound))
        if candidates.size == 0:
            continue
        rows = np.lib.stride_tricks.as_strided(
            row, shape=(rows_total, span), strides=(_SEGMENT * row.itemsize, row.itemsize)
        )
        for start in range(0, candidates.size, 4096):
            out = rows[candidates[start : start + 4096]] @ matrix
            peak = max(peak, float(out.max()), -float(out.min()))
    return peak


def _rows_above(row: np.ndarray, rows_total: int, span: int, limit: np.float32) -> np.ndarray:
    """Indices of the rows (windows ``row[32 r : 32 r + span]``) holding a sample with
    |x| > ``limit``, in increasing order."""
    # The inputs above the limit, and the (one or two) rows that read each of them.
    hot = np.flatnonzero(np.abs(row) > limit)
    first, last = (hot - (span - _SEGMENT)) // _SEGMENT, hot // _SEGMENT
    wanted = np.zeros(rows_total + 1, bool)  # one spare slot for reads past the last row
    wanted[first[first >= 0]] = True
    wanted[last] = True
    return np.flatnonzero(wanted[:rows_total])
