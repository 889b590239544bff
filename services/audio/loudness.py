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

Scale: float audio at any finite scale (peaks from 1e-300 to 1e300) is measured exactly;
audio whose peak lies outside [2**-20, 2**20] is measured as a copy scaled by a power of
two (which changes no mantissa) and the figures shifted back by the same number of dB.

Measuring is separate from applying gain (see :mod:`services.audio.export`). Long audio is
processed in chunks of :data:`CHUNK_SECONDS`, so extra memory stays a few MB whatever the
length; :class:`LoudnessMeter` also accepts audio block by block.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence

import numpy as np

from ._arrays import as_audio_array, validate_sample_rate
from ._blas import single_threaded_blas

from . import _native
from ._power import MOMENTARY_STEPS, SHORT_TERM_STEPS, CompiledPower, NumpyPower
from ._truepeak import TRUE_PEAK_OVERSAMPLING, TRUE_PEAK_TAPS, CompiledTruePeak, NumpyTruePeak

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
    "TRUE_PEAK_TAPS",
    "MIN_SAMPLE_RATE",
    "implementation",
    "rescale_exponent",
    "DB_PER_DOUBLING",
]

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0
LRA_PERCENTILES = (10.0, 95.0)
CHUNK_SECONDS = 5.0
MIN_SAMPLE_RATE = 8000
SURROUND_WEIGHT = 1.41  # BS.1770-5 Table 3: +1.5 dB for the surround channels
_LOUDNESS_OFFSET = -0.691  # BS.1770-5 eq. (2)
_COMPILED_MAX_CHANNELS = 32  # the extension's MAX_CHANNELS
_SAFE_PEAK = (2.0**-20, 2.0**20)  # peaks the meter's sums (float32 on NumPy paths) take exactly
DB_PER_DOUBLING = 20.0 * math.log10(2.0)  # dB of a factor of 2 in amplitude (6.02 dB)


def implementation() -> str:
    """Which inner loops new meters use: ``"compiled"`` (the C extension built at install
    time, for up to 32 channels) or ``"numpy"`` (SciPy's ``sosfilt`` and NumPy, the same
    figures more slowly, where it was not built)."""
    return "numpy" if _native.kernels is None else "compiled"


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
        self._weights = np.array(weights, dtype=np.float64)  # a contiguous copy
        if self._weights.shape != (self.channels,) or not np.all(np.isfinite(self._weights)):
            raise ValueError(
                f"channel_weights must be {self.channels} finite numbers; got {weights!r}"
            )
        if np.any(self._weights < 0):
            raise ValueError(f"channel_weights must not be negative; got {weights!r}")

        step = (self.sample_rate + 5) // 10  # 100 ms, rounded as libebur128 does
        tick = _tick_length(step, self.sample_rate)  # <= 1 ms, divides a step
        self._momentary_len = MOMENTARY_STEPS * step
        self._short_term_len = SHORT_TERM_STEPS * step
        self._step_energy: list = []  # summed weighted power of each complete 100 ms step
        self._total = 0  # samples fed
        kernels = _native.kernels if self.channels <= _COMPILED_MAX_CHANNELS else None
        sos = k_weighting_sos(self.sample_rate)
        if kernels is None:
            self._power = NumpyPower(sos, self._weights, tick, step // tick)
            self._peaks = NumpyTruePeak(self.channels)
        else:
            self._power = CompiledPower(sos, self._weights, tick, step // tick, kernels)
            self._peaks = CompiledTruePeak(self.channels, kernels)
        # The NumPy paths hold a few copies of what they are fed, so they get chunks of
        # this; their many small matrix products want BLAS on one thread.
        self._chunk = None if kernels else int(CHUNK_SECONDS * self.sample_rate)
        self._blas_limit = contextlib.nullcontext if kernels else single_threaded_blas

    # -- feeding -------------------------------------------------------------------------

    def update(self, block: Any) -> None:
        """Add audio: (channels, samples) or, for a mono meter, (samples,); float, finite."""
        audio = as_audio_array(block, name="block")
        if audio.shape[0] != self.channels:
            raise ValueError(
                f"block has {audio.shape[0]} channels; this meter measures {self.channels}"
            )
        self._update_validated(audio)

    def _update_validated(self, audio: np.ndarray) -> None:
        """:meth:`update` for audio that :func:`as_audio_array` already returned.

        The compiled loops need no temporary arrays, so they take the whole block in one
        call each: few, long stretches without the GIL, so threads measure in parallel.
        """
        audio = np.ascontiguousarray(audio)
        length = audio.shape[1]
        chunk = self._chunk or max(1, length)
        with self._blas_limit():
            for start in range(0, length, chunk):
                piece = min(chunk, length - start)
                self._step_energy.extend(self._power.update(audio, start, piece))
                self._peaks.update(audio, start, piece, self._power.sample_peak)
                self._total += piece

    def report(self) -> LoudnessReport:
        """The six figures for everything fed so far (the meter can keep being fed)."""
        steps = np.asarray(self._step_energy, dtype=np.float64)
        mean_power = self._power.total_energy / self._total if self._total else 0.0
        if self._total < self._momentary_len:
            # Shorter than one gating block: one block spanning the whole clip.
            blocks = np.array([mean_power]) if self._total else np.zeros(0)
        else:
            blocks = _window_means(steps, MOMENTARY_STEPS, self._momentary_len)
        loudest_momentary, loudest_short_term = self._power.window_maxima
        momentary = loudest_momentary / self._momentary_len if self._total >= self._momentary_len else mean_power
        short_term = loudest_short_term / self._short_term_len if self._total >= self._short_term_len else mean_power
        with self._blas_limit():
            true_peak = self._peaks.true_peak() if self._total else 0.0
        return LoudnessReport(
            integrated_lufs=_gated_loudness(blocks),
            loudness_range_lu=_loudness_range(_window_means(steps, SHORT_TERM_STEPS, self._short_term_len)),
            true_peak_dbtp=_db(true_peak),
            sample_peak_dbfs=_db(self._power.sample_peak),
            momentary_max_lufs=_lufs(momentary),
            short_term_max_lufs=_lufs(short_term),
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


def _lufs(mean_power: float) -> float:
    """BS.1770-5 eq. (2): loudness (LUFS) of a mean weighted power; -inf for none."""
    return _LOUDNESS_OFFSET + 10.0 * math.log10(mean_power) if mean_power > 0 else -math.inf


def _power_at(lufs: float) -> float:
    """The mean weighted power whose loudness is ``lufs``."""
    return 10.0 ** ((lufs - _LOUDNESS_OFFSET) / 10.0)


_ABSOLUTE_GATE_POWER = _power_at(ABSOLUTE_GATE_LUFS)


def _db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else -math.inf


def _above_absolute_gate(power: np.ndarray) -> np.ndarray:
    """The powers louder than the absolute gate (-70 LUFS); powers order as loudness does."""
    return power[power > _ABSOLUTE_GATE_POWER]


def _relative_gated(above_absolute: np.ndarray, relative_gate_lu: float) -> np.ndarray:
    """The powers louder than their mean plus ``relative_gate_lu`` (never empty for a
    non-empty input: the loudest passes)."""
    return above_absolute[above_absolute > above_absolute.mean() * 10.0 ** (relative_gate_lu / 10.0)]


def _gated_loudness(block_power: np.ndarray) -> float:
    """BS.1770-5 eq. (5)-(7): two-stage gated mean of block powers, LUFS."""
    above_absolute = _above_absolute_gate(block_power)
    if above_absolute.size == 0:
        return -math.inf
    return _lufs(float(_relative_gated(above_absolute, RELATIVE_GATE_LU).mean()))


def _loudness_range(short_term_power: np.ndarray) -> float:
    """EBU Tech 3342 loudness range of short-term powers, LU (0.0 when undefined)."""
    above_absolute = _above_absolute_gate(short_term_power)
    if above_absolute.size < 2:
        return 0.0
    gated = _relative_gated(above_absolute, LRA_RELATIVE_GATE_LU)
    loudness = np.sort(_LOUDNESS_OFFSET + 10.0 * np.log10(gated))
    low, high = (_percentile(loudness, q) for q in LRA_PERCENTILES)
    return high - low


def _percentile(ascending: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of sorted values, interpolated linearly (NumPy's default)."""
    position = (ascending.size - 1) * q / 100.0
    below = int(position)
    above = min(below + 1, ascending.size - 1)
    return float(ascending[below] + (ascending[above] - ascending[below]) * (position - below))


def measure_loudness(
    audio: Any,
    sample_rate: int,
    channel_weights: Optional[Sequence[float]] = None,
) -> LoudnessReport:
    """Measure ``audio`` ((channels, samples) or (samples,), numpy or torch) at ``sample_rate`` Hz.

    Returns a :class:`LoudnessReport`: integrated loudness (LUFS), loudness range (LU),
    true peak (dBTP), sample peak (dBFS), maximum momentary and short-term loudness (LUFS).
    """
    return _measure_validated(as_audio_array(audio), sample_rate, channel_weights)


def rescale_exponent(array: np.ndarray) -> int:
    """The power of two ``k`` that brings the peak of ``array`` into [0.5, 1) when it lies outside
    [2**-20, 2**20] (where squares and sums of float samples would overflow or lose digits);
    0 for audio inside that range and for digital silence."""
    peak = float(max(array.max(), -array.min()))
    if peak == 0.0 or _SAFE_PEAK[0] <= peak <= _SAFE_PEAK[1]:
        return 0
    return -math.frexp(peak)[1]


def _measure_validated(
    array: np.ndarray,
    sample_rate: int,
    channel_weights: Optional[Sequence[float]] = None,
    exponent: Optional[int] = None,
) -> LoudnessReport:
    """:func:`measure_loudness` of audio that :func:`as_audio_array` already returned, at any
    scale (``exponent``: its :func:`rescale_exponent`, where the caller has it already)."""
    exponent = rescale_exponent(array) if exponent is None else exponent
    if exponent:
        return _shifted(_measure_in_range(np.ldexp(array, exponent), sample_rate, channel_weights),
                        -exponent * DB_PER_DOUBLING)
    return _measure_in_range(array, sample_rate, channel_weights)


def _measure_in_range(array: np.ndarray, sample_rate: int, channel_weights) -> LoudnessReport:
    meter = LoudnessMeter(sample_rate, array.shape[0], channel_weights)
    with meter._blas_limit():  # one limit for the whole measurement
        meter._update_validated(array)
        return meter.report()


def _shifted(report: LoudnessReport, db: float) -> LoudnessReport:
    """``report`` of audio scaled by ``db`` decibels (the loudness range does not change)."""
    return LoudnessReport(
        integrated_lufs=report.integrated_lufs + db,
        loudness_range_lu=report.loudness_range_lu,
        true_peak_dbtp=report.true_peak_dbtp + db,
        sample_peak_dbfs=report.sample_peak_dbfs + db,
        momentary_max_lufs=report.momentary_max_lufs + db,
        short_term_max_lufs=report.short_term_max_lufs + db,
    )
