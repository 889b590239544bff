"""K-weighted power of a stream (BS.1770-5 eq. (2)), summed the ways the meter needs it.

The weighted power of every sample is summed per *tick* (at most 1 ms, dividing a 100 ms
step), per 100 ms *step* (what gating and the loudness range are built from), and over the
loudest 400 ms and 3 s windows starting on any tick (the momentary and short-term maxima).
Two implementations with the same results: :class:`CompiledPower` (``services.audio._kernels``:
one pass over the audio, GIL released) and :class:`NumpyPower` (SciPy's ``sosfilt`` and
NumPy, where the extension was not built).
"""

from __future__ import annotations

from typing import List

import numpy as np

__all__ = ["CompiledPower", "NumpyPower", "MOMENTARY_STEPS", "SHORT_TERM_STEPS"]

MOMENTARY_STEPS = 4  # 400 ms
SHORT_TERM_STEPS = 30  # 3 s


class _Power:
    """What both implementations share. Each has ``update(audio, start, length)``, which
    returns the energies of the 100 ms steps it completes, and the properties
    ``total_energy`` (weighted energy of every sample fed), ``sample_peak`` (largest
    |sample|, linear) and ``window_maxima`` ((loudest 400 ms, loudest 3 s) summed weighted
    energy over complete windows starting on any tick; 0.0 until a window is complete).

    ``sos`` (2, 6) is the K-weighting, ``weights`` (channels,) float64 the channel weights,
    ``tick`` the samples per tick and ``ticks_per_step`` the ticks per 100 ms step.
    """

    def __init__(self, sos: np.ndarray, weights: np.ndarray, tick: int, ticks_per_step: int) -> None:
        self._sos = sos
        self._weights = weights
        self._zi = np.zeros((sos.shape[0], weights.size, 2))  # filter state, scipy's layout
        self._tick = tick
        self._ticks_per_step = ticks_per_step


class CompiledPower(_Power):
    """The compiled implementation: two GIL-free calls per block, whatever its length."""

    def __init__(self, sos, weights, tick, ticks_per_step, kernels) -> None:
        super().__init__(sos, weights, tick, ticks_per_step)
        self._kernels = kernels
        # [energy after the last tick, its samples, energy of all ticks, largest |sample|]
        self._carry = np.zeros(4)
        self._state = np.zeros(8)  # see _kernels.tick_windows
        self._ring = np.zeros(SHORT_TERM_STEPS * ticks_per_step)

    def update(self, audio: np.ndarray, start: int, length: int) -> List[float]:
        """Feed samples [start, start + length) of contiguous (channels, samples) ``audio``;
        return the energies of the 100 ms steps this completes."""
        ticks = np.empty((int(self._carry[1]) + length) // self._tick)
        count = self._kernels.weighted_ticks(
            audio, audio.dtype == np.float64, audio.shape[0], audio.shape[1], start, length,
            self._sos, self._weights, self._zi, self._carry, ticks, self._tick,
        )
        steps = np.empty((int(self._state[1]) + count) // self._ticks_per_step)
        written = self._kernels.tick_windows(
            ticks, count, self._state, self._ring, steps, self._ticks_per_step,
            MOMENTARY_STEPS * self._ticks_per_step, SHORT_TERM_STEPS * self._ticks_per_step,
        )
        return steps[:written].tolist()

    @property
    def total_energy(self) -> float:
        return float(self._carry[2] + self._carry[0])

    @property
    def sample_peak(self) -> float:
        return float(self._carry[3])  # found in the same pass

    @property
    def window_maxima(self) -> tuple:
        return float(self._state[3]), float(self._state[4])


class NumpyPower(_Power):
    """The NumPy implementation, for audio fed in pieces of a few seconds (it holds a few
    float64 copies of a piece)."""

    def __init__(self, sos, weights, tick, ticks_per_step) -> None:
        super().__init__(sos, weights, tick, ticks_per_step)
        self._tick_ones = np.ones(tick)
        self._partial = np.zeros(0)  # weighted power of the samples after the last tick
        self._ticks_pending = np.zeros(0)  # tick energies of the step not yet complete
        self._tick_tail = np.zeros(0)  # tick energies of the last 3 s, for the window maxima
        self._energy = 0.0
        self._sample_peak = 0.0
        self._maxima = [0.0, 0.0]

    def update(self, audio: np.ndarray, start: int, length: int) -> List[float]:
        """Feed samples [start, start + length) of (channels, samples) ``audio``; return the
        energies of the 100 ms steps this completes."""
        from scipy.signal import sosfilt  # deferred: scipy.signal is a heavy import

        piece = audio[:, start : start + length]
        if length:
            self._sample_peak = max(self._sample_peak, float(piece.max()), -float(piece.min()))
        # sosfilt computes in float64 (the coefficients' type) on its own copy of the audio.
        y, self._zi[...] = sosfilt(self._sos, piece, axis=1, zi=self._zi)
        np.multiply(y, y, out=y)
        power = self._weights @ y
        self._energy += float(power.sum())
        joined = np.concatenate([self._partial, power]) if self._partial.size else power
        complete = joined.size // self._tick * self._tick
        self._partial = joined[complete:]
        if not complete:
            return []
        # A product with ones sums each tick (BLAS; NumPy's sum over short rows is slow).
        ticks = joined[:complete].reshape(-1, self._tick) @ self._tick_ones
        self._update_window_maxima(ticks)
        joined = np.concatenate([self._ticks_pending, ticks])
        complete = joined.size // self._ticks_per_step * self._ticks_per_step
        self._ticks_pending = joined[complete:]
        return joined[:complete].reshape(-1, self._ticks_per_step).sum(axis=1).tolist()

    def _update_window_maxima(self, ticks: np.ndarray) -> None:
        joined = np.concatenate([self._tick_tail, ticks])
        cumulative = np.concatenate([[0.0], np.cumsum(joined)])
        for index, steps in enumerate((MOMENTARY_STEPS, SHORT_TERM_STEPS)):
            length = steps * self._ticks_per_step
            if cumulative.size > length:
                best = float((cumulative[length:] - cumulative[:-length]).max())
                self._maxima[index] = max(self._maxima[index], best)
        self._tick_tail = joined[-(SHORT_TERM_STEPS * self._ticks_per_step - 1) :]

    @property
    def total_energy(self) -> float:
        return self._energy

    @property
    def sample_peak(self) -> float:
        return self._sample_peak

    @property
    def window_maxima(self) -> tuple:
        return tuple(self._maxima)
