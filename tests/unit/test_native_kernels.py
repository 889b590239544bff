"""The compiled inner loops (services.audio._kernels) against the NumPy paths and known truth.

Both implementations must give the same figures: the NumPy one is what installs without a
C compiler run. Tolerances: loudness figures within 1e-9 LU (the two sum in different
orders), true peak within 1e-5 dB (the NumPy path interpolates in float32), and exact
equality wherever the arithmetic is the same (block splits, PCM frames).
"""

from __future__ import annotations

import math
import os
import shutil
import sysconfig

import numpy as np
import pytest

from services.audio import _native
from services.audio.loudness import LoudnessMeter, implementation, measure_loudness
from services.errors import AudioValidationError
from tests.conftest import BUILT_KERNELS
from tests.signals import full_oversampling_peak_db, music_like, sine

needs_kernels = pytest.mark.skipif(BUILT_KERNELS is None, reason="the C extension was not built")


def test_extension_is_built_where_a_compiler_exists():
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler here: the NumPy paths are what runs")
    if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        pytest.skip("no Python headers here: the NumPy paths are what runs")
    assert BUILT_KERNELS is not None, "pip install should have compiled services/audio/_kernels.c"
    assert implementation() == "compiled"


def _report(audio, rate, kernels, blocks=None):
    previous = _native.kernels
    _native.kernels = kernels
    try:
        meter = LoudnessMeter(rate, audio.shape[0])
        for start, stop in blocks or [(0, audio.shape[1])]:
            meter.update(audio[:, start:stop])
        return meter.report()
    finally:
        _native.kernels = previous


def _random_blocks(length, rng, pieces=8):
    """Consecutive (start, stop) blocks covering ``length`` samples, cut at random."""
    edges = [0, *np.unique(rng.integers(1, length, size=pieces - 1)).tolist(), length]
    return list(zip(edges, edges[1:]))


def _assert_reports_agree(compiled, numpy_report):
    for field in ("integrated_lufs", "loudness_range_lu", "momentary_max_lufs", "short_term_max_lufs"):
        ours, theirs = getattr(compiled, field), getattr(numpy_report, field)
        assert ours == pytest.approx(theirs, abs=1e-9) or ours == theirs, field
    assert compiled.sample_peak_dbfs == pytest.approx(numpy_report.sample_peak_dbfs, abs=1e-6)
    assert compiled.true_peak_dbtp == pytest.approx(numpy_report.true_peak_dbtp, abs=1e-5)


@needs_kernels
@pytest.mark.parametrize("rate", [8000, 32000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_implementations_agree(rate, channels, dtype):
    rng = np.random.default_rng(rate + channels)
    stereo = music_like(7.0, rate, seed=channels, bpm=100.0 + channels)
    audio = np.vstack([stereo[i % 2] * (0.4 + 0.1 * i) for i in range(channels)]).astype(dtype)
    blocks = _random_blocks(audio.shape[1], rng)
    _assert_reports_agree(_report(audio, rate, BUILT_KERNELS, blocks), _report(audio, rate, None, blocks))


@needs_kernels
@pytest.mark.parametrize("seed", range(6))
def test_how_audio_is_split_changes_nothing(seed):
    """The compiled meter carries every state (filter, tick, step, windows, interpolation
    history) across calls: any split gives exactly the figures of one call."""
    rng = np.random.default_rng(seed)
    audio = music_like(6.5, 44100, seed=seed) * 0.9
    whole = _report(audio, 44100, BUILT_KERNELS)
    split = _report(audio, 44100, BUILT_KERNELS, _random_blocks(audio.shape[1], rng, pieces=20))
    for field in whole.__dataclass_fields__:
        assert getattr(split, field) == pytest.approx(getattr(whole, field), abs=1e-12), field


def _fade_in(rate):
    """A crescendo: every stretch is louder than all before it (the worst case for skipping)."""
    t = np.arange(3 * rate) / rate
    return np.vstack([np.sin(2 * np.pi * 997 * t) * t / 3, np.sin(2 * np.pi * 1499 * t) * t / 3.2])


def _late_intersample_peak(rate):
    """Quiet noise, then an intersample peak in the very last samples (found only by letting
    the filter ring out after the end)."""
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((2, rate)) * 0.01
    audio[:, -3:] = [[0.0, 0.9, 0.9], [0.0, -0.9, 0.9]]
    return audio


@pytest.mark.usefixtures("implementation")
@pytest.mark.parametrize("make", [_fade_in, _late_intersample_peak], ids=["fade-in", "late-peak"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_true_peak_skipping_changes_nothing(make, dtype):
    audio = make(32000).astype(dtype)
    rng = np.random.default_rng(1)
    meter = LoudnessMeter(32000, 2)
    for start, stop in _random_blocks(audio.shape[1], rng, pieces=12):
        meter.update(audio[:, start:stop])
    assert meter.report().true_peak_dbtp == pytest.approx(full_oversampling_peak_db(audio), abs=1e-5)


@needs_kernels
def test_window_maxima_across_loud_and_quiet_passages():
    """The compiled meter keeps running window sums, refreshed from its ring of ticks; the
    loudest windows match the NumPy path and the levels the signals were made with."""
    quiet = sine(1000.0, -60.0, 20.0, 48000, 2)  # a 1 kHz sine on two channels reads its dBFS
    loud = sine(1000.0, -3.0, 4.0, 48000, 2)
    audio = np.hstack([quiet, loud, quiet])
    compiled = _report(audio, 48000, BUILT_KERNELS)
    _assert_reports_agree(compiled, _report(audio, 48000, None))
    assert compiled.momentary_max_lufs == pytest.approx(-3.0, abs=0.1)
    assert compiled.short_term_max_lufs == pytest.approx(-3.0, abs=0.1)
    without_loud = _report(np.hstack([quiet, loud * 0, quiet]), 48000, BUILT_KERNELS)
    assert without_loud.short_term_max_lufs == pytest.approx(-60.0, abs=0.1)


@pytest.mark.usefixtures("implementation")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (1, 4097), (1, 9999)])
def test_non_finite_samples_are_found_wherever_they_are(dtype, bad, where):
    audio = np.zeros((2, 10000), dtype)
    audio[where] = bad
    with pytest.raises(AudioValidationError, match=f"channel {where[0]}, sample {where[1]}"):
        measure_loudness(audio, 32000)


@pytest.mark.usefixtures("implementation")
def test_huge_finite_samples_are_not_mistaken_for_infinity():
    audio = np.full((2, 5000), 1e37, np.float32)
    assert measure_loudness(audio, 32000).sample_peak_dbfs == pytest.approx(20 * math.log10(1e37), abs=1e-3)


@needs_kernels
@pytest.mark.parametrize(
    "call",
    [
        lambda k: k.weighted_ticks(np.zeros((2, 10), np.float32), False, 2, 11, 0, 10, np.zeros((2, 6)),
                                   np.ones(2), np.zeros((2, 2, 2)), np.zeros(4), np.zeros(1), 3),
        lambda k: k.true_peak(np.zeros((2, 10)), True, 2, 10, 5, 6, np.zeros((12, 3)), 1.9,
                              np.zeros((2, 11)), np.zeros(2)),
        lambda k: k.tick_windows(np.zeros(5), 6, np.zeros(8), np.zeros(30), np.zeros(1), 10, 4, 30),
        lambda k: k.interleave_pcm(np.zeros((2, 10), np.float32), False, 2, 10, 1.0, -1.0, 1.0, 1,
                                   np.zeros((10, 2), np.int8)),
    ],
    ids=["weighted_ticks", "true_peak", "tick_windows", "interleave_pcm"],
)
def test_kernels_refuse_buffers_of_the_wrong_size(call):
    with pytest.raises(ValueError):
        call(BUILT_KERNELS)
