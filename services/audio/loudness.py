"""ITU-R BS.1770-5 / EBU R128 loudness meter: integrated loudness, loudness range, true peak.

Figures (units):

- integrated loudness, LUFS: BS.1770-5 eq. (2)-(7): K-weighting, 400 ms blocks with 75 %
  overlap (a new block every 100 ms), absolute gate -70 LUFS, relative gate -10 LU;
- loudness range, LU: EBU Tech 3342: short-term (3 s) loudness every 100 ms, absolute gate
  -70 LUFS, relative gate -20 LU, range between the 10th and the 95th percentile;
- true peak, dBTP: BS.1770-5 Annex 2, 4x oversampling with a 49-tap interpolation filter;
- sample peak, dBFS; maximum momentary (400 ms) and short-term (3 s) loudness, LUFS, over
  windows starting every millisecond (so the maxima do not depend on where a 100 ms block
  boundary falls: at most 0.006 dB below the maximum over every sample position).

Edges, defined: silence (or audio that stays below the absolute gate) reads ``-inf`` for the
loudness figures and ``0.0`` LU of range; digital silence reads ``-inf`` peaks. A clip
shorter than one 400 ms block is measured as a single block spanning the whole clip, and
likewise a clip shorter than 3 s for the short-term maximum; the gates still apply. Trailing
samples that do not fill a block are otherwise discarded, as the standard says.

Measuring is separate from applying gain (see :mod:`services.audio.export`). Long audio is
processed in chunks of :data:`CHUNK_SECONDS`, so extra memory stays a few MB whatever the
length; :class:`LoudnessMeter` also accepts audio block by block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence

import numpy as np

from ._arrays import as_audio_array, validate_sample_rate
from ._blas import single_threaded_blas

__all__ = [
    "LoudnessReport",
    "LoudnessMeter",
    "measure_loudness",
    "k_weighting_sos",
    "default_channel_weights",
    "ABSOLUTE_GATE_LUFS",
    "RELATIVE_GATE_LU",
    "LRA_RELATIVE_GATE_LU",
    "TRUE_PEAK_OVERSAMPLING",
    "MIN_SAMPLE_RATE",
]

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0
LRA_PERCENTILES = (10.0, 95.0)
TRUE_PEAK_OVERSAMPLING = 4
TRUE_PEAK_TAPS = 49
CHUNK_SECONDS = 5.0
MIN_SAMPLE_RATE = 8000
SURROUND_WEIGHT = 1.41  # BS.1770-5 Table 3: +1.5 dB for the surround channels
_LOUDNESS_OFFSET = -0.691  # BS.1770-5 eq. (2)
_SEGMENT = 32  # true peak is interpolated (or skipped) per row of this many samples


@dataclass(frozen=True)
class LoudnessReport:
    """What :func:`measure_loudness` measured (``-inf`` where there is nothing to measure)."""

    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    sample_peak_dbfs: float
    momentary_max_lufs: float
    short_term_max_lufs: float


# --- K-weighting ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """K-weighting filter (BS.1770-5 Annex 1) for ``sample_rate``, as second-order sections.

    Both stages are derived from their analog prototypes (a high shelf and the RLB high-pass,
    with the centre frequencies, gains and quality factors that reproduce the standard's
    48 kHz coefficients exactly) by a bilinear transform pre-warped at each centre
    frequency, so every sample rate gets the same response, not the 48 kHz coefficients.
    """
    # Stage 1: high shelf, +4 dB above ~1.7 kHz (the acoustic effect of the head).
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / q + k * k) / a0,
    ]
    # Stage 2: RLB high-pass at ~38 Hz.
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass], dtype=np.float64)


def default_channel_weights(channels: int) -> tuple:
    """BS.1770-5 channel weights G_i by layout.

    1-4 channels: 1.0 each. 5 channels (5.0: L, R, C, Ls, Rs): surround at 1.41.
    6 channels (5.1 in WAV/SMPTE order L, R, C, LFE, Ls, Rs): LFE excluded (0.0),
    surround at 1.41. Other counts: 1.0 each.
    """
    if channels == 5:
        return (1.0, 1.0, 1.0, SURROUND_WEIGHT, SURROUND_WEIGHT)
    if channels == 6:
        return (1.0, 1.0, 1.0, 0.0, SURROUND_WEIGHT, SURROUND_WEIGHT)
    return (1.0,) * channels


# --- true peak -----------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _interpolation_filter() -> tuple:
    """The 4x interpolation filter as a block matrix, and its gain bound.

    A 49-tap Hann-windowed sinc with its zeros on the original sample grid, so phase 0 is
    the identity (every input sample is an output sample: true peak >= sample peak);
    phases 1..3 have 12 taps each. The matrix maps a row of ``_SEGMENT + 11`` consecutive
    inputs to the ``3 * _SEGMENT`` interpolated samples that they determine, so a whole
    signal is interpolated by one matrix product (BLAS) over overlapping rows.
    ``bound`` is max over phases of sum |h|: no interpolated sample can exceed ``bound``
    times the largest input magnitude that its taps see.
    """
    factor, taps = TRUE_PEAK_OVERSAMPLING, TRUE_PEAK_TAPS
    m = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(m / factor) * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(taps) / (taps - 1)))
    per_phase = taps // factor
    # Correlation order (oldest input first): y[4n + p] = sum_k h[p + 4k] x[n - k].
    phases = np.stack([h[p::factor][:per_phase][::-1] for p in range(1, factor)], axis=1)
    bound = float(np.abs(phases).sum(axis=0).max())
    matrix = np.zeros((_SEGMENT + per_phase - 1, (factor - 1) * _SEGMENT), np.float32)
    for i in range(_SEGMENT):
        matrix[i : i + per_phase, i * (factor - 1) : (i + 1) * (factor - 1)] = phases
    return matrix, bound * (1 + 1e-5)  # margin for float32 rounding


def _interpolated_peak(padded: np.ndarray, history: int, threshold: float) -> float:
    """Largest |interpolated sample| of ``padded`` (channels, history + n) above ``threshold``.

    ``n`` is a multiple of ``_SEGMENT``; ``history`` (11) samples precede the body. Rows
    whose inputs are too small to exceed ``threshold`` (see :func:`_interpolation_filter`)
    are skipped: they cannot raise the peak, so skipping them changes nothing. Returns
    ``threshold`` when no row exceeds it.
    """
    matrix, bound = _interpolation_filter()
    peak = threshold
    for row in padded:  # one channel at a time; each row is contiguous float32
        segments = row[history:].reshape(-1, _SEGMENT)
        body = np.maximum(segments.max(axis=1), -segments.min(axis=1))  # no |x| temporary
        head = float(np.abs(row[:history]).max(initial=0.0))
        previous = np.concatenate([[head], body[:-1]])
        candidates = np.nonzero(np.maximum(body, previous) * bound > peak)[0]
        if candidates.size == 0:
            continue
        rows = np.lib.stride_tricks.as_strided(
            row, shape=(body.size, matrix.shape[0]), strides=(_SEGMENT * row.itemsize, row.itemsize)
        )
        for start in range(0, candidates.size, 4096):
            out = rows[candidates[start : start + 4096]] @ matrix
            peak = max(peak, float(out.max()), -float(out.min()))
    return peak


# --- the meter -----------------------------------------------------------------------------


class LoudnessMeter:
    """Streaming BS.1770-5 meter: feed (channels, samples) blocks, then ask for a report.

    ``channel_weights`` defaults to :func:`default_channel_weights`. Blocks may have any
    length; the result does not depend on how the audio was split.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        channel_weights: Optional[Sequence[float]] = None,
    ) -> None:
        self.sample_rate = validate_sample_rate(sample_rate)
        if self.sample_rate < MIN_SAMPLE_RATE:
            raise ValueError(
                f"sample_rate must be at least {MIN_SAMPLE_RATE} Hz for K-weighting (its shelf sits at "
                f"1.7 kHz, which needs a Nyquist frequency above it); got {sample_rate!r}"
            )
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)):
            raise TypeError(f"channels must be an int; got {type(channels).__name__}")
        if channels < 1:
            raise ValueError(f"channels must be at least 1; got {channels!r}")
        self.channels = int(channels)
        weights = default_channel_weights(self.channels) if channel_weights is None else channel_weights
        self._weights = np.asarray(weights, dtype=np.float64)
        if self._weights.shape != (self.channels,) or not np.all(np.isfinite(self._weights)):
            raise ValueError(
                f"channel_weights must be {self.channels} finite numbers; got {weights!r}"
            )
        if np.any(self._weights < 0):
            raise ValueError(f"channel_weights must not be negative; got {weights!r}")

        self._sos = k_weighting_sos(self.sample_rate)
        self._zi = np.zeros((self._sos.shape[0], self.channels, 2))
        self._step = (self.sample_rate + 5) // 10  # 100 ms, rounded as libebur128 does
        self._tick = _tick_length(self._step, self.sample_rate)  # <= 1 ms, divides a step
        self._ticks_per_step = self._step // self._tick
        self._momentary_len = 4 * self._step
        self._short_term_len = 30 * self._step
        self._step_energy: list = []  # summed weighted power of each complete 100 ms step
        self._partial = np.zeros(0)  # weighted power of the samples after the last tick
        self._tick_tail = np.zeros(0)  # tick energies of the last 3 s, for the window maxima
        self._ticks_pending = np.zeros(0)  # tick energies of the step not yet complete
        self._total = 0
        self._total_energy = 0.0
        self._momentary_max = 0.0
        self._short_term_max = 0.0
        self._sample_peak = 0.0
        self._true_peak = 0.0
        # True-peak interpolation runs in float32 (errors ~1e-6 dB, half the memory traffic).
        self._history = np.zeros((self.channels, TRUE_PEAK_TAPS // TRUE_PEAK_OVERSAMPLING - 1), np.float32)
        self._tp_leftover = np.zeros((self.channels, 0), np.float32)

    # -- feeding -------------------------------------------------------------------------

    def update(self, block: Any) -> None:
        """Add audio: (channels, samples) or, for a mono meter, (samples,); float, finite."""
        audio = as_audio_array(block, name="block")
        if audio.shape[0] != self.channels:
            raise ValueError(
                f"block has {audio.shape[0]} channels; this meter measures {self.channels}"
            )
        chunk = int(CHUNK_SECONDS * self.sample_rate)
        with single_threaded_blas():
            for start in range(0, audio.shape[1], chunk):
                self._process(audio[:, start : start + chunk])

    def _process(self, x: np.ndarray) -> None:
        from scipy.signal import sosfilt  # deferred: scipy.signal is a heavy import

        self._update_peaks(x)
        # sosfilt computes in float64 (the dtype of the coefficients) on its own copy of x.
        y, self._zi = sosfilt(self._sos, x, axis=1, zi=self._zi)
        np.multiply(y, y, out=y)
        power = self._weights @ y  # BS.1770-5 eq. (2): weighted sum over channels, per sample
        self._total += power.size
        self._total_energy += float(power.sum())
        joined = np.concatenate([self._partial, power]) if self._partial.size else power
        complete = joined.size // self._tick * self._tick
        self._partial = joined[complete:]
        if complete:
            ticks = joined[:complete].reshape(-1, self._tick).sum(axis=1)
            self._update_steps(ticks)
            self._update_window_maxima(ticks)

    def _update_steps(self, ticks: np.ndarray) -> None:
        joined = np.concatenate([self._ticks_pending, ticks])
        complete = joined.size // self._ticks_per_step * self._ticks_per_step
        if complete:
            steps = joined[:complete].reshape(-1, self._ticks_per_step).sum(axis=1)
            self._step_energy.extend(steps.tolist())
        self._ticks_pending = joined[complete:]

    def _update_window_maxima(self, ticks: np.ndarray) -> None:
        """Running maxima of 400 ms and 3 s window energy, windows starting on every tick."""
        joined = np.concatenate([self._tick_tail, ticks])
        cumulative = np.concatenate([[0.0], np.cumsum(joined)])
        for steps, attr in ((4, "_momentary_max"), (30, "_short_term_max")):
            length = steps * self._ticks_per_step
            if cumulative.size > length:
                best = float((cumulative[length:] - cumulative[:-length]).max())
                setattr(self, attr, max(getattr(self, attr), best / (steps * self._step)))
        self._tick_tail = joined[-(30 * self._ticks_per_step - 1) :]

    def _update_peaks(self, x: np.ndarray) -> None:
        chunk_peak = float(max(x.max(), -x.min()))
        self._sample_peak = max(self._sample_peak, chunk_peak)
        self._true_peak = max(self._true_peak, chunk_peak)  # phase 0 is the identity
        # Interpolate whole segments only, behind the filter history, in one contiguous
        # copy; carry the remainder to the next call.
        history = self._history.shape[1]
        padded = np.concatenate([self._history, self._tp_leftover, x.astype(np.float32, copy=False)], axis=1)
        usable = (padded.shape[1] - history) // _SEGMENT * _SEGMENT
        if usable:
            self._true_peak = _interpolated_peak(padded[:, : history + usable], history, self._true_peak)
            self._history = padded[:, usable : history + usable]
        self._tp_leftover = padded[:, history + usable :]

    # -- reading -------------------------------------------------------------------------

    def _flush_true_peak_single_threaded(self) -> float:
        with single_threaded_blas():
            return self._flush_true_peak()

    def _flush_true_peak(self) -> float:
        """True peak including the end of the audio.

        The samples not yet interpolated, followed by zeros long enough to let the filter
        ring out, so the interpolation around the last samples is measured too.
        """
        leftover = self._tp_leftover
        peak = self._true_peak
        if self._total == 0:
            return peak
        history = self._history.shape[1]
        pad = (-(leftover.shape[1] + history)) % _SEGMENT + history
        body = np.concatenate([leftover, np.zeros((self.channels, pad), np.float32)], axis=1)
        padded = np.concatenate([self._history, body], axis=1)
        return _interpolated_peak(padded, history, peak)

    def report(self) -> LoudnessReport:
        """The six figures for everything fed so far (the meter can keep being fed)."""
        steps = np.asarray(self._step_energy, dtype=np.float64)
        if self._total < self._momentary_len:
            # Shorter than one gating block: one block spanning the whole clip.
            blocks = np.array([self._total_energy / self._total]) if self._total else np.zeros(0)
        else:
            blocks = _window_means(steps, 4, self._momentary_len)
        momentary = self._momentary_max if self._total >= self._momentary_len else (
            blocks[0] if blocks.size else 0.0
        )
        short_term = self._short_term_max if self._total >= self._short_term_len else (
            self._total_energy / self._total if self._total else 0.0
        )
        return LoudnessReport(
            integrated_lufs=_gated_loudness(blocks),
            loudness_range_lu=_loudness_range(_window_means(steps, 30, self._short_term_len)),
            true_peak_dbtp=_db(self._flush_true_peak_single_threaded()),
            sample_peak_dbfs=_db(self._sample_peak),
            momentary_max_lufs=float(_lufs(momentary)),
            short_term_max_lufs=float(_lufs(short_term)),
        )


def _tick_length(step: int, sample_rate: int) -> int:
    """Samples per tick: the largest divisor of the 100 ms ``step`` that is at most 1 ms."""
    limit = max(1, sample_rate // 1000)
    return max(d for d in range(1, limit + 1) if step % d == 0)


def _window_means(step_energy: np.ndarray, steps_per_window: int, window_len: int) -> np.ndarray:
    """Mean weighted power of every complete window of ``steps_per_window`` 100 ms steps."""
    if step_energy.size < steps_per_window:
        return np.zeros(0)
    cumulative = np.concatenate([[0.0], np.cumsum(step_energy)])
    return (cumulative[steps_per_window:] - cumulative[:-steps_per_window]) / window_len


def _lufs(mean_power):
    with np.errstate(divide="ignore"):
        return _LOUDNESS_OFFSET + 10.0 * np.log10(mean_power)


def _db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else -math.inf


def _gated_loudness(block_power: np.ndarray) -> float:
    """BS.1770-5 eq. (5)-(7): two-stage gated mean of block powers, LUFS."""
    loudness = _lufs(block_power)
    above_absolute = block_power[loudness > ABSOLUTE_GATE_LUFS]
    if above_absolute.size == 0:
        return -math.inf
    relative_gate = float(_lufs(above_absolute.mean())) + RELATIVE_GATE_LU
    gated = above_absolute[_lufs(above_absolute) > relative_gate]
    return float(_lufs(gated.mean()))


def _loudness_range(short_term_power: np.ndarray) -> float:
    """EBU Tech 3342 loudness range of short-term powers, LU (0.0 when undefined)."""
    loudness = _lufs(short_term_power)
    above_absolute = short_term_power[loudness > ABSOLUTE_GATE_LUFS]
    if above_absolute.size < 2:
        return 0.0
    relative_gate = float(_lufs(above_absolute.mean())) + LRA_RELATIVE_GATE_LU
    gated = _lufs(above_absolute)
    gated = gated[gated > relative_gate]
    low, high = np.percentile(gated, LRA_PERCENTILES)
    return float(high - low)


def measure_loudness(
    audio: Any,
    sample_rate: int,
    channel_weights: Optional[Sequence[float]] = None,
) -> LoudnessReport:
    """Measure ``audio`` ((channels, samples) or (samples,), numpy or torch) at ``sample_rate`` Hz.

    Returns a :class:`LoudnessReport`: integrated loudness (LUFS), loudness range (LU),
    true peak (dBTP), sample peak (dBFS), maximum momentary and short-term loudness (LUFS).
    """
    array = as_audio_array(audio)
    meter = LoudnessMeter(sample_rate, array.shape[0], channel_weights)
    with single_threaded_blas():  # one limit for the whole measurement
        meter.update(array)
        return meter.report()
