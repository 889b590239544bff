"""Property-based tests of the exporter (Hypothesis): random shapes, dtypes, scales, sample
rates, channel counts and bit depths.

Each input gives exactly one of: a file that meets the contract (at the target within
0.1 LU and under the ceiling, or bounded by the ceiling, or unchanged because it is below the
-70 LUFS gate), or a clear error with nothing written. Files are read back by libsndfile and
measured by libebur128 (pyebur128), not by our own meter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile
from hypothesis import given
from hypothesis import strategies as st

from services.audio import AudioExporter, measure_loudness
from services.audio.loudness import default_channel_weights
from services.errors import AudioValidationError

pyebur128 = pytest.importorskip("pyebur128")

TARGET, CEILING = -16.0, -1.0
RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 192000]
SUBTYPES = ["PCM_16", "PCM_24", "PCM_32", "FLOAT"]


def reference(path) -> tuple:
    """(integrated LUFS, true peak dBTP) of a file, by libebur128, with the channel weights of
    BS.1770-5 that ours uses (5.0 and 5.1 layouts; 1.0 each otherwise)."""
    data, rate = soundfile.read(path, always_2d=True, dtype="float64")
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(data.shape[1], rate, mode.MODE_I | mode.MODE_TRUE_PEAK)
    kinds = {1.0: pyebur128.ChannelType.LEFT, 1.41: pyebur128.ChannelType.LEFT_SURROUND,
             0.0: pyebur128.ChannelType.UNUSED}
    for channel, weight in enumerate(default_channel_weights(data.shape[1])):
        state.set_channel(channel, kinds[weight])
    state.add_frames(np.ascontiguousarray(data).ravel(), data.shape[0])
    peak = max(pyebur128.get_true_peak(state, c) for c in range(data.shape[1]))
    return pyebur128.get_loudness_global(state), 20 * math.log10(peak) if peak > 0 else -math.inf


def assert_under_ceiling(path, true_peak: float) -> None:
    """libebur128 oversamples 4x only up to 48 kHz (2x below 192 kHz, none above), and its
    interpolation overshoots on full-band noise there; above 48 kHz the file's sample peak
    (read by libsndfile) and our 4x meter on the read-back samples are checked instead."""
    data, rate = soundfile.read(path, always_2d=True, dtype="float64")
    if rate <= 48000:
        assert true_peak <= CEILING + 0.1
    else:
        assert 20 * math.log10(np.max(np.abs(data))) <= CEILING + 0.1
        assert measure_loudness(data.T, rate).true_peak_dbtp <= CEILING + 0.1


@st.composite
def clips(draw):
    """(audio (channels, samples), sample rate): a tone or noise at a random scale."""
    rate = draw(st.sampled_from(RATES))
    channels = draw(st.integers(1, 8))
    samples = int(rate * draw(st.floats(0.5, 0.8)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    exponent = draw(st.floats(-300, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        frequency = draw(st.floats(50.0, min(8000.0, rate * 0.4)))
        unit = np.sin(2 * np.pi * frequency * np.arange(samples) / rate)[np.newaxis, :].repeat(channels, 0)
    else:
        unit = rng.uniform(-1.0, 1.0, (channels, samples))
    with np.errstate(over="ignore", under="ignore"):
        audio = (unit * 10.0**exponent).astype(dtype)  # float32 overflows to inf above ~3.4e38
    return audio, rate


@given(clip=clips(), subtype=st.sampled_from(SUBTYPES))
def test_every_input_is_a_valid_file_or_a_clear_error(tmp_path_factory, clip, subtype):
    audio, rate = clip
    path = tmp_path_factory.mktemp("export") / "clip.wav"
    try:
        result = AudioExporter(TARGET, true_peak_ceiling=CEILING).export(audio, path, rate, bit_depth=subtype)
    except AudioValidationError as exc:
        assert not np.isfinite(audio).all() and "non-finite" in str(exc)  # float32 overflowed
        assert not path.exists() and list(path.parent.iterdir()) == []
        return
    assert np.isfinite(audio).all() and path.is_file()
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (rate, *audio.shape, subtype)
    decision = result.gain
    if decision.reason == "silent":
        assert decision.gain_db == 0.0 and not decision.input_lufs > -70.0
        written = soundfile.read(path, always_2d=True, dtype="float64")[0]
        peak_in = float(np.max(np.abs(audio.astype(np.float64))))
        assert np.max(np.abs(written)) <= max(peak_in, 2.0**-15) * 1.0001  # unchanged, never amplified
        return
    integrated, true_peak = reference(path)
    assert_under_ceiling(path, true_peak)
    assert math.isfinite(decision.gain_db) and decision.output_true_peak_dbtp <= CEILING + 1e-9
    if decision.reason == "loudness":
        assert integrated == pytest.approx(TARGET, abs=0.1)
    else:
        assert decision.reason == "true_peak_cap" and integrated <= TARGET + 0.1
        assert integrated == pytest.approx(decision.output_lufs, abs=0.2)


@given(clip=clips())
def test_without_normalization_pcm_never_clips_and_float_refuses_what_it_cannot_hold(tmp_path_factory, clip):
    audio, rate = clip
    if not np.isfinite(audio).all():
        return
    folder = tmp_path_factory.mktemp("plain")
    peak = float(np.max(np.abs(audio.astype(np.float64))))
    result = AudioExporter(TARGET, true_peak_ceiling=CEILING).export(audio, folder / "a.wav", rate,
                                                                       normalize=False, bit_depth="PCM_24")
    written = soundfile.read(result.path, always_2d=True, dtype="float64")[0]
    if peak <= 1.0:
        assert result.gain.reason == "disabled"
    else:
        assert result.gain.reason == "clip_guard"
        assert_under_ceiling(result.path, reference(result.path)[1])
        assert np.max(np.abs(written)) > 0.5  # lowered to the ceiling, not to zeros
    if peak > float(np.finfo(np.float32).max):
        with pytest.raises(AudioValidationError, match="beyond what FLOAT"):
            AudioExporter().export(audio, folder / "f.wav", rate, normalize=False, bit_depth="FLOAT")
        assert not (folder / "f.wav").exists()


@pytest.mark.parametrize("scale", [1e150, 1e160, 1e300])
def test_the_reported_extremes_reach_the_target(tmp_path, scale):
    """The issue's cases: float64 noise at 1e150 was written as zeros, at 1e160 clipped at +5.4 dBTP."""
    noise = np.random.default_rng(3).standard_normal((2, 48000)) * scale
    result = AudioExporter().export(noise, tmp_path / "n.wav", 48000)
    integrated, true_peak = reference(result.path)
    assert integrated == pytest.approx(-16.0, abs=0.1) and true_peak <= -1.0 + 0.1
    assert result.gain.input_lufs == pytest.approx(-16.0 - result.gain.gain_db, abs=1e-6)
