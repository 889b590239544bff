"""AudioExporter: the spec's API, loudness normalization with a true-peak ceiling, atomic writes.

Written files are measured with libebur128 (pyebur128), an implementation independent of ours.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

import numpy as np
import pytest
import soundfile

from services.audio import AudioExporter
from services.audio.export import plan_gain
from services.errors import BatchExportError
from tests.conftest import BUILT_KERNELS
from tests.signals import db_to_amplitude, music_like, sine

pyebur128 = pytest.importorskip("pyebur128")

SR = 32000


def reference_measure(path) -> tuple:
    """(integrated LUFS, true peak dBTP) of a file, by libebur128."""
    data, rate = soundfile.read(path, always_2d=True, dtype="float64")
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(data.shape[1], rate, mode.MODE_I | mode.MODE_TRUE_PEAK)
    state.add_frames(np.ascontiguousarray(data).ravel(), data.shape[0])
    peak = max(pyebur128.get_true_peak(state, c) for c in range(data.shape[1]))
    return pyebur128.get_loudness_global(state), 20 * math.log10(peak)


def tone_at(lufs: float, seconds: float = 6.0, channels: int = 2) -> np.ndarray:
    """A 997 Hz sine whose stereo loudness is ``lufs`` (a mono one reads 3 dB lower)."""
    return sine(997.0, lufs, seconds, SR, channels).astype(np.float32)


# --- the spec's API -----------------------------------------------------------------------

def test_defaults_and_info():
    exporter = AudioExporter()
    info = exporter.get_info()
    assert info["target_lufs"] == -16.0
    assert info["normalization_available"] is True
    assert info["supported_bit_depths"] == ["PCM_16", "PCM_24", "PCM_32", "FLOAT"]
    assert info["true_peak_ceiling"] == -1.0


@pytest.mark.parametrize("bit_depth", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
@pytest.mark.parametrize("channels", [1, 2])
def test_writes_the_requested_format(tmp_path, bit_depth, channels):
    path, size = AudioExporter().export_wav(
        tone_at(-30, 2.0, channels), tmp_path / "out.wav", sample_rate=SR, bit_depth=bit_depth
    )
    assert isinstance(path, str) and isinstance(size, int)
    assert size == os.path.getsize(path)
    info = soundfile.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == (
        "WAV", bit_depth, SR, channels, 2 * SR,
    )


def test_creates_parent_directories(tmp_path):
    target = tmp_path / "2025" / "11" / "07" / "gen_abc123.wav"
    path, _ = AudioExporter().export_wav(tone_at(-20, 1.0), target)
    assert path == str(target) and target.is_file()


# --- normalization --------------------------------------------------------------------------

@pytest.mark.parametrize("target", [-23.0, -16.0, -14.0])
@pytest.mark.parametrize("bit_depth", ["PCM_16", "PCM_24", "FLOAT"])
@pytest.mark.parametrize("source_lufs", [-40.0, -8.0])
def test_reaches_the_target_when_the_ceiling_does_not_bind(tmp_path, target, bit_depth, source_lufs):
    """A sine has a crest factor of 3 dB, so at these targets its true peak stays below -1 dBTP."""
    path, _ = AudioExporter(target_lufs=target).export_wav(tone_at(source_lufs), tmp_path / "x.wav", bit_depth=bit_depth)
    integrated, true_peak = reference_measure(path)
    assert integrated == pytest.approx(target, abs=0.1)
    assert true_peak <= -1.0 + 0.1


@pytest.mark.parametrize("ceiling", [-1.0, -2.0, -0.1])
@pytest.mark.parametrize("bit_depth", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_true_peak_ceiling_caps_the_gain(tmp_path, caplog, ceiling, bit_depth):
    """A groove with peaks 7 dB above its loudness cannot reach -8 LUFS under the ceiling."""
    audio = music_like(8.0, SR, seed=4) * np.float32(0.1)
    exporter = AudioExporter(target_lufs=-8.0, true_peak_ceiling=ceiling)
    with caplog.at_level(logging.INFO, logger="services.audio.export"):
        result = exporter.export(audio, tmp_path / "loud.wav", bit_depth=bit_depth)
    integrated, true_peak = reference_measure(result.path)
    assert result.gain.reason == "true_peak_cap"
    assert true_peak <= ceiling + 0.1
    assert true_peak == pytest.approx(ceiling, abs=0.1)  # the cap binds: no more gain than needed
    assert integrated < -8.0 and integrated == pytest.approx(result.gain.output_lufs, abs=0.1)
    assert "reached" in caplog.text and f"{result.gain.output_lufs:.2f} LUFS" in caplog.text


@pytest.mark.parametrize("level_dbfs", [None, -95.0])
def test_silence_and_audio_below_the_gate_are_written_unchanged(tmp_path, level_dbfs):
    audio = np.zeros((2, SR), np.float32) if level_dbfs is None else tone_at(level_dbfs, 1.0)
    result = AudioExporter().export(audio, tmp_path / "quiet.wav", bit_depth="FLOAT")
    written, _ = soundfile.read(result.path, always_2d=True, dtype="float32")
    assert result.gain.reason == "silent" and result.gain.gain_db == 0.0
    np.testing.assert_array_equal(written.T, audio)


def test_normalize_false_keeps_samples(tmp_path):
    audio = tone_at(-30, 1.0)
    path, _ = AudioExporter().export_wav(audio, tmp_path / "raw.wav", normalize=False, bit_depth="FLOAT")
    np.testing.assert_array_equal(soundfile.read(path, always_2d=True, dtype="float32")[0].T, audio)


@pytest.mark.parametrize("bit_depth", ["PCM_16", "PCM_24", "PCM_32"])
def test_pcm_never_clips_even_without_normalization(tmp_path, bit_depth):
    audio = music_like(4.0, SR, seed=2) * np.float32(2.0)  # sample peak 1.8: PCM cannot hold it
    result = AudioExporter().export(audio, tmp_path / "hot.wav", normalize=False, bit_depth=bit_depth)
    _, true_peak = reference_measure(result.path)
    assert result.gain.reason == "clip_guard"
    assert true_peak <= -1.0 + 0.1


def test_float_output_keeps_samples_above_full_scale_without_normalization(tmp_path):
    audio = tone_at(3.0, 1.0)  # peak +3 dBFS is representable in FLOAT
    path, _ = AudioExporter().export_wav(audio, tmp_path / "f.wav", normalize=False, bit_depth="FLOAT")
    assert np.abs(soundfile.read(path, dtype="float32")[0]).max() == pytest.approx(db_to_amplitude(3.0), rel=1e-6)


def test_environment_sets_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_TARGET_LUFS", "-20")
    monkeypatch.setenv("AUDIO_NORMALIZE", "false")
    exporter = AudioExporter()
    assert exporter.get_info()["target_lufs"] == -20.0
    audio = tone_at(-30, 2.0)
    path, _ = exporter.export_wav(audio, tmp_path / "env.wav", normalize=True, bit_depth="FLOAT")
    np.testing.assert_array_equal(soundfile.read(path, always_2d=True, dtype="float32")[0].T, audio)
    monkeypatch.setenv("AUDIO_NORMALIZE", "true")
    path, _ = AudioExporter().export_wav(audio, tmp_path / "env2.wav")
    assert reference_measure(path)[0] == pytest.approx(-20.0, abs=0.1)


def test_an_explicit_target_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("AUDIO_TARGET_LUFS", "-20")
    assert AudioExporter(target_lufs=-14.0).target_lufs == -14.0


@pytest.mark.parametrize(
    "integrated, true_peak, reason, gain_db",
    [
        (-26.0, -20.0, "loudness", 10.0),  # room to spare
        (-26.0, -6.0, "true_peak_cap", 5.0),  # +10 dB would reach +4 dBTP
        (-10.0, -1.0, "loudness", -6.0),  # turning down never binds
        (-75.0, -40.0, "silent", 0.0),
        (-math.inf, -math.inf, "silent", 0.0),
    ],
)
def test_gain_plan(integrated, true_peak, reason, gain_db):
    decision = plan_gain(integrated, true_peak, -16.0, -1.0)
    assert decision.reason == reason
    assert decision.gain_db == pytest.approx(gain_db)
    if reason != "silent":
        assert decision.output_true_peak_dbtp <= -1.0 + 1e-9


# --- input types ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape", ["samples", "channels_samples", "batch_of_one"])
def test_accepts_torch_tensors_in_every_float_dtype_and_shape(tmp_path, dtype, shape):
    torch = pytest.importorskip("torch")
    audio = torch.from_numpy(tone_at(-30, 2.0)).to(getattr(torch, dtype)).requires_grad_(dtype != "bfloat16")
    audio = {"samples": audio[0], "channels_samples": audio, "batch_of_one": audio[None]}[shape]
    path, _ = AudioExporter().export_wav(audio, tmp_path / "t.wav")
    info = soundfile.info(path)
    assert info.channels == (1 if shape == "samples" else 2) and info.frames == 2 * SR
    assert reference_measure(path)[0] == pytest.approx(-16.0, abs=0.1)


BAD_INPUTS = {
    "nan": (lambda: np.array([[0.0, np.nan, 0.1]] * 2, np.float32), {}, ValueError, "non-finite"),
    "inf": (lambda: np.array([[0.0, np.inf, 0.1]], np.float32), {}, ValueError, "non-finite"),
    "empty": (lambda: np.zeros((2, 0), np.float32), {}, ValueError, "empty"),
    "batch_of_two": (lambda: np.zeros((2, 2, 100), np.float32), {}, ValueError, "batch"),
    "four_axes": (lambda: np.zeros((1, 1, 2, 100), np.float32), {}, ValueError, "shape"),
    "samples_channels": (lambda: np.zeros((32000, 2), np.float32), {}, ValueError, "transpose"),
    "int_samples": (lambda: np.zeros((2, 100), np.int16), {}, TypeError, "floating"),
    "list": (lambda: [0.0, 0.1], {}, TypeError, "ndarray"),
    "zero_rate": (lambda: np.zeros((2, 100), np.float32), {"sample_rate": 0}, ValueError, "sample_rate"),
    "negative_rate": (lambda: np.zeros((2, 100), np.float32), {"sample_rate": -32000}, ValueError, "sample_rate"),
    "absurd_rate": (lambda: np.zeros((2, 100), np.float32), {"sample_rate": 10**9}, ValueError, "sample_rate"),
    "fractional_rate": (lambda: np.zeros((2, 100), np.float32), {"sample_rate": 44100.5}, ValueError, "sample_rate"),
    "text_rate": (lambda: np.zeros((2, 100), np.float32), {"sample_rate": "32000"}, TypeError, "sample_rate"),
    "bit_depth": (lambda: np.zeros((2, 100), np.float32), {"bit_depth": "PCM_8"}, ValueError, "PCM_8"),
    "bit_depth_type": (lambda: np.zeros((2, 100), np.float32), {"bit_depth": 16}, TypeError, "bit_depth"),
    "normalize_type": (lambda: np.zeros((2, 100), np.float32), {"normalize": "yes"}, TypeError, "normalize"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_the_problem_and_writes_nothing(tmp_path, case):
    make, kwargs, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message):
        AudioExporter().export_wav(make(), tmp_path / "out" / "bad.wav", **kwargs)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("name", ["clip.mp3", "clip", ""])
def test_output_path_must_be_a_wav_file(tmp_path, name):
    with pytest.raises(ValueError):
        AudioExporter().export_wav(tone_at(-20, 0.5), str(tmp_path / name) if name else "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target, error", [(-80.0, ValueError), (5.0, ValueError), (math.nan, ValueError), ("-16", TypeError)])
def test_target_is_validated(target, error):
    with pytest.raises(error, match="target_lufs"):
        AudioExporter(target_lufs=target)


# --- atomic writes --------------------------------------------------------------------------

def test_a_failure_while_writing_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "track.wav"
    AudioExporter().export_wav(tone_at(-20, 1.0), target)
    before = target.read_bytes()

    def explode(self, data):
        raise OSError("disk full")

    monkeypatch.setattr(soundfile.SoundFile, "write", explode)
    with pytest.raises(OSError, match="disk full"):
        AudioExporter().export_wav(tone_at(-30, 2.0), target)
    with pytest.raises(OSError, match="disk full"):
        AudioExporter().export_wav(tone_at(-30, 2.0), tmp_path / "new.wav")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["track.wav"]  # no temporary files


# --- batch ----------------------------------------------------------------------------------

def test_batch_results_come_back_in_input_order(tmp_path):
    levels = [-40.0, -30.0, -20.0, -10.0, -35.0]
    audios = [tone_at(level, 1.0 + i * 0.25) for i, level in enumerate(levels)]
    paths = [tmp_path / f"clip_{i}.wav" for i in range(len(audios))]
    results = AudioExporter(max_workers=2).export_wav_batch(audios, paths)
    assert [path for path, _ in results] == [str(p) for p in paths]
    for (path, size), audio in zip(results, audios):
        assert size == os.path.getsize(path)
        assert soundfile.info(path).frames == audio.shape[1]
        assert reference_measure(path)[0] == pytest.approx(-16.0, abs=0.1)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in paths)  # no temporary files left


def test_a_batch_item_that_cannot_be_committed_is_reported_and_leaves_nothing(tmp_path, monkeypatch):
    """Files are synced and renamed on separate threads: a failure there (here the rename)
    is that item's failure; its old file and the other items are unharmed."""
    paths = [tmp_path / f"{i}.wav" for i in range(4)]
    paths[2].write_bytes(b"the old take")
    real_replace = os.replace

    def replace(source, destination):
        if os.path.basename(destination) == "2.wav":
            raise OSError("read-only file system")
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(BatchExportError) as caught:
        AudioExporter(max_workers=2).export_wav_batch([tone_at(-25, 1.0)] * 4, paths)
    assert list(caught.value.failures) == [2]
    assert "read-only" in str(caught.value.failures[2])
    assert paths[2].read_bytes() == b"the old take"
    assert [r is None for r in caught.value.results] == [False, False, True, False]
    assert sorted(os.listdir(tmp_path)) == ["0.wav", "1.wav", "2.wav", "3.wav"]


def test_one_bad_item_does_not_stop_the_others(tmp_path):
    audios = [tone_at(-30, 1.0), np.full((2, 100), np.nan, np.float32), tone_at(-20, 1.0), "not audio"]
    paths = [tmp_path / f"{i}.wav" for i in range(4)]
    with pytest.raises(BatchExportError) as caught:
        AudioExporter().export_wav_batch(audios, paths)
    error = caught.value
    assert sorted(error.failures) == [1, 3]
    assert isinstance(error.failures[1], ValueError) and isinstance(error.failures[3], TypeError)
    assert error.results[1] is None and error.results[3] is None
    assert [r[0] for r in (error.results[0], error.results[2])] == [str(paths[0]), str(paths[2])]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.wav", "2.wav"]
    assert "item 1" in str(error) and "item 3" in str(error)


def test_a_slow_disk_holds_the_batch_back_instead_of_piling_up_open_files(tmp_path, monkeypatch):
    """Written files wait for their fsync with a descriptor open; their number is bounded
    (4 per worker), so a batch larger than the descriptor limit still completes."""
    from services.audio import _atomic

    state, lock = {"open": 0, "most": 0}, threading.Lock()
    real_init, real_commit, real_fsync = _atomic.PendingOutput.__init__, _atomic.PendingOutput.commit, os.fsync

    def counted_init(self, path):
        real_init(self, path)
        with lock:
            state["open"] += 1
            state["most"] = max(state["most"], state["open"])

    def counted_commit(self, sync_directory=True):
        try:
            return real_commit(self, sync_directory)
        finally:
            with lock:
                state["open"] -= 1

    def slow_fsync(fd):
        time.sleep(0.01)
        real_fsync(fd)

    monkeypatch.setattr(_atomic.PendingOutput, "__init__", counted_init)
    monkeypatch.setattr(_atomic.PendingOutput, "commit", counted_commit)
    monkeypatch.setattr(os, "fsync", slow_fsync)
    paths = [tmp_path / f"{i}.wav" for i in range(40)]
    results = AudioExporter(max_workers=2).export_wav_batch([tone_at(-30, 0.2)] * 40, paths)
    assert [path for path, _ in results] == [str(p) for p in paths]
    assert 2 <= state["most"] <= 8


@pytest.mark.parametrize(
    "audios, paths, error",
    [
        ([np.zeros((2, 10), np.float32)], [], ValueError),
        ([np.zeros((2, 10), np.float32)] * 2, ["a.wav", "a.wav"], ValueError),
        ("not a list", ["a.wav"], TypeError),
    ],
)
def test_batch_arguments_are_validated(tmp_path, audios, paths, error):
    with pytest.raises(error):
        AudioExporter().export_wav_batch(audios, [str(tmp_path / p) for p in paths])


def test_empty_batch():
    assert AudioExporter().export_wav_batch([], []) == []


@pytest.mark.parametrize("bit_depth, full_scale", [("PCM_16", 32767), ("PCM_24", 8388607), ("PCM_32", 2147483647)])
def test_pcm_samples_are_the_rounded_scaled_floats(tmp_path, bit_depth, full_scale):
    """Quantization rounds to the nearest step of the format (within one step of the float)."""
    audio = music_like(2.0, SR, seed=9) * np.float32(0.5)
    path, _ = AudioExporter().export_wav(audio, tmp_path / "q.wav", normalize=False, bit_depth=bit_depth)
    dtype = "int16" if bit_depth == "PCM_16" else "int32"
    written = soundfile.read(path, always_2d=True, dtype=dtype)[0].T.astype(np.float64)
    if bit_depth == "PCM_24":
        written /= 256  # libsndfile returns 24-bit samples in the top bits of an int32
    expected = np.rint(audio.astype(np.float64) * full_scale)
    assert np.abs(written - expected).max() <= (1 if bit_depth != "PCM_32" else 128)


@pytest.mark.skipif(BUILT_KERNELS is None, reason="the C extension was not built")
@pytest.mark.parametrize("bit_depth", ["PCM_16", "PCM_24", "PCM_32"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_pcm_frames_are_identical_on_both_implementations(monkeypatch, bit_depth, dtype, channels):
    """The compiled interleaving does NumPy's arithmetic (same precision, rounding half to
    even, clipping): the frames are equal bit for bit, ties and overloads included."""
    from services.audio import _native
    from services.audio.export import _interleaved_samples

    rng = np.random.default_rng(channels)
    audio = (rng.standard_normal((channels, 5001)) * 0.7).astype(dtype)
    audio[0, :6] = [0.5 / 32767, 1.5 / 32767, 2.5 / 32767, -0.5 / 32767, 1.7, -4e9]
    for gain in (1.0, 0.7371, 3.0, 1e6):
        frames = {}
        for name, kernels in (("compiled", BUILT_KERNELS), ("numpy", None)):
            monkeypatch.setattr(_native, "kernels", kernels)
            frames[name] = _interleaved_samples(audio, gain, bit_depth)
        assert frames["compiled"].dtype == frames["numpy"].dtype
        assert np.array_equal(frames["compiled"], frames["numpy"]), gain
