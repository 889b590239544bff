"""Output formats, destination presets, the decoded ceiling of lossy files, and dither.

Every file is read back by software that is not ours: ffprobe for the container and codec,
ffmpeg to decode, libebur128 (pyebur128) to measure the decoded audio, mutagen for the MP3
bitrate mode.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from services.audio import AudioExporter
from services.audio.formats import delivery_rate, FORMATS, resample
from services.audio.presets import PRESETS, resolve_preset
from services.errors import AudioValidationError
from tests.signals import music_like, sine

pyebur128 = pytest.importorskip("pyebur128")
mutagen = pytest.importorskip("mutagen")
pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffmpeg/ffprobe not installed")

SR = 32000


def ffprobe(path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def ffmpeg_decode(path, channels: int = 2) -> tuple:
    """(channels, samples) float64 and the rate, decoded by ffmpeg (not libsndfile)."""
    rate = int(ffprobe(path)["streams"][0]["sample_rate"])
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f64le", "-ac", str(channels), "-"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, "<f8").reshape(-1, channels).T, rate


def ebur128(audio: np.ndarray, rate: int) -> tuple:
    """(integrated LUFS, true peak dBTP) by libebur128."""
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(audio.shape[0], rate, mode.MODE_I | mode.MODE_TRUE_PEAK)
    state.add_frames(np.ascontiguousarray(audio.T).ravel(), audio.shape[1])
    peak = max(pyebur128.get_true_peak(state, c) for c in range(audio.shape[0]))
    return pyebur128.get_loudness_global(state), 20 * math.log10(peak)


@pytest.fixture(scope="module")
def groove():
    return music_like(6.0, SR, seed=4)


# --- formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, options, codec, sample_rate, extra", [
    ("a.wav", {"bit_depth": "PCM_24"}, "pcm_s24le", SR, {}),
    ("a.wav", {"bit_depth": "FLOAT"}, "pcm_f32le", SR, {}),
    ("a.flac", {"bit_depth": "PCM_16"}, "flac", SR, {"bits_per_raw_sample": "16"}),
    ("a.flac", {"bit_depth": "PCM_24"}, "flac", SR, {"bits_per_raw_sample": "24"}),
    ("a.mp3", {"mp3_mode": "CBR_320"}, "mp3", SR, {"bit_rate": "320000"}),
    ("a.mp3", {"mp3_mode": "V0"}, "mp3", SR, {}),
    ("a.opus", {}, "opus", 48000, {}),
    ("a.ogg", {}, "vorbis", SR, {}),
])
def test_the_extension_picks_the_format(tmp_path, groove, name, options, codec, sample_rate, extra):
    result = AudioExporter().export(groove, tmp_path / name, sample_rate=SR, **options)
    probe = ffprobe(result.path)
    (stream,) = probe["streams"]
    assert stream["codec_name"] == codec
    assert int(stream["sample_rate"]) == sample_rate == result.sample_rate
    assert stream["channels"] == 2
    assert float(probe["format"]["duration"]) == pytest.approx(6.0, abs=0.08)  # MP3 frames round up
    for key, value in extra.items():
        assert stream[key] == value
    assert result.size_bytes == (tmp_path / name).stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left
    if options.get("mp3_mode"):
        mode = mutagen.File(result.path).info.bitrate_mode
        assert mode == (mutagen.mp3.BitrateMode.CBR if options["mp3_mode"] == "CBR_320" else mutagen.mp3.BitrateMode.VBR)


@pytest.mark.parametrize("name, options", [
    ("a.mp3", {"mp3_mode": "CBR_320"}), ("a.mp3", {"mp3_mode": "V0"}), ("a.opus", {}), ("a.ogg", {}),
])
@pytest.mark.parametrize("target", [-18.0, -7.0])
def test_decoded_lossy_files_meet_the_ceiling_and_the_target(tmp_path, groove, name, options, target):
    """At -18 LUFS the groove stays under the -1 dBTP ceiling: the file must read within 0.5 LU
    of the target. At -7 LUFS the ceiling binds: the codec's own overshoot must have been
    taken back, so the decoded file reads at or below -1 dBTP (+0.1 dB), by libebur128."""
    exporter = AudioExporter(target_lufs=target, true_peak_ceiling=-1.0)
    result = exporter.export(groove, tmp_path / name, sample_rate=SR, **options)
    integrated, true_peak = ebur128(*ffmpeg_decode(result.path))
    assert true_peak <= -1.0 + 0.1
    if target == -18.0:
        assert result.gain.reason == "loudness"
        assert integrated == pytest.approx(target, abs=0.5)
    else:
        assert result.gain.reason == "true_peak_cap"
        assert integrated < target
    assert result.loudness.integrated_lufs == pytest.approx(integrated, abs=0.2)  # what we report is the file


def test_opus_is_resampled_to_48_khz_by_a_real_resampler():
    """A 1 kHz tone resampled 32 -> 48 kHz keeps its frequency and level, and its image (at
    31 kHz, which aliases to 17 kHz at 48 kHz) stays 85 dB down; linear interpolation leaves
    it at about -57 dB."""
    tone = sine(1000.0, -6.0, 1.0, SR, channels=1).astype(np.float32)
    out = resample(tone, SR, 48000)
    assert out.shape == (1, 48000) and delivery_rate(FORMATS[".opus"], SR) == 48000
    spectrum = np.abs(np.fft.rfft(out[0, 4800:-4800] * np.blackman(38400)))
    freqs = np.fft.rfftfreq(38400, 1 / 48000)
    assert freqs[spectrum.argmax()] == pytest.approx(1000.0, abs=2.0)
    spurious = spectrum[(freqs > 1100)].max() / spectrum.max()
    assert 20 * math.log10(spurious) < -85
    assert np.abs(out[0, 4800:-4800]).max() == pytest.approx(10 ** (-6 / 20), abs=0.01)


@pytest.mark.parametrize("channels, libopus", [(2, False), (3, True)])
def test_opus_falls_back_to_libsndfile(tmp_path, monkeypatch, channels, libopus):
    """Without a system libopus, or for more than two channels (our muxer writes mapping
    family 0 only), libsndfile's own Opus encoder writes the file."""
    from services.audio import _opus

    if not libopus:
        monkeypatch.setattr(_opus, "library", lambda: None)
    audio = np.tile(music_like(2.0, SR)[:1], (channels, 1))
    result = AudioExporter().export(audio, tmp_path / "f.opus", sample_rate=SR)
    (stream,) = ffprobe(result.path)["streams"]
    assert (stream["codec_name"], stream["channels"]) == ("opus", channels)
    assert result.frames == 96000 and soundfile.info(result.path).frames == 96000


def test_opus_through_libopus_keeps_length_and_alignment(tmp_path):
    """Our Ogg muxer's pre-skip and final granule: the decoded file (by ffmpeg) has exactly
    the input's length and lines up with it (a 1 kHz tone, compared sample by sample)."""
    from services.audio import _opus

    if _opus.library() is None:
        pytest.skip("no system libopus")
    tone = sine(1000.0, -12.0, 2.0, 48000).astype(np.float32)
    result = AudioExporter().export(tone, tmp_path / "t.opus", sample_rate=48000, normalize=False)
    decoded, rate = ffmpeg_decode(result.path)
    assert rate == 48000 and decoded.shape == tone.shape
    # A codec's error stays under 8 % of the tone's 0.25 peak; a shift by the pre-skip (312
    # samples, half a period off) would reach twice the peak.
    assert np.abs(decoded[:, 960:-960] - tone[:, 960:-960]).max() < 0.02


def test_mp3_at_a_rate_mpeg_cannot_hold_is_written_at_48_khz(tmp_path):
    audio = music_like(2.0, 37000, seed=1)
    result = AudioExporter().export(audio, tmp_path / "odd.mp3", sample_rate=37000)
    assert int(ffprobe(result.path)["streams"][0]["sample_rate"]) == 48000 == result.sample_rate


# --- presets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, channels, target, ceiling", [
    ("spotify", 2, -14.0, -1.0), ("apple-music", 2, -16.0, -1.0), ("youtube", 2, -14.0, -1.0),
    ("amazon-music", 2, -14.0, -2.0), ("tidal", 2, -14.0, -1.0), ("deezer", 2, -15.0, -1.0),
    ("podcast", 1, -19.0, -1.0), ("podcast", 2, -16.0, -1.0), ("ebu-r128", 2, -23.0, -1.0),
    ("atsc-a85", 2, -24.0, -2.0), ("default", 2, -16.0, -1.0), ("Apple_Music", 2, -16.0, -1.0),
])
def test_presets_hold_their_published_figures(name, channels, target, ceiling):
    preset = resolve_preset(name, channels)
    assert (preset.target_lufs, preset.ceiling_dbtp) == (target, ceiling)
    assert preset.source


def test_every_preset_is_listed_and_unknown_names_are_refused():
    assert len(PRESETS) == 10
    with pytest.raises(AudioValidationError, match="preset must be one of .*spotify.*'radio'"):
        resolve_preset("radio")
    with pytest.raises(TypeError, match="preset"):
        resolve_preset(14)


@pytest.mark.parametrize("preset, channels", [("ebu-r128", 2), ("podcast", 1), ("atsc-a85", 2)])
def test_a_preset_sets_the_files_loudness(tmp_path, preset, channels):
    audio = sine(997.0, -30.0, 4.0, SR, channels)  # crest 3 dB: the ceiling never binds
    result = AudioExporter().export(audio, tmp_path / "p.flac", sample_rate=SR, preset=preset)
    assert result.gain.reason == "loudness"
    chosen = resolve_preset(preset, channels)
    integrated, true_peak = ebur128(*ffmpeg_decode(result.path, channels))
    assert true_peak <= chosen.ceiling_dbtp + 0.1
    assert integrated == pytest.approx(chosen.target_lufs, abs=0.1)


# --- dither ----------------------------------------------------------------------------------

def test_pcm_16_is_dithered_reproducibly(tmp_path):
    audio = music_like(3.0, SR, seed=5)
    first = AudioExporter().export(audio, tmp_path / "a.wav", sample_rate=SR)
    second = AudioExporter().export(audio, tmp_path / "b.flac", sample_rate=SR)
    again = AudioExporter().export(audio, tmp_path / "c.wav", sample_rate=SR)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "c.wav").read_bytes()
    wav = soundfile.read(first.path, dtype="int16")[0]
    flac = soundfile.read(second.path, dtype="int16")[0]
    assert np.array_equal(wav, flac)  # the same samples, in either container
    plain = AudioExporter().export(audio, tmp_path / "d.wav", sample_rate=SR, dither=False)
    assert not np.array_equal(wav, soundfile.read(plain.path, dtype="int16")[0])
    assert again.size_bytes == first.size_bytes


def test_dither_keeps_a_level_below_one_step_that_rounding_loses(tmp_path):
    """A constant 0.3 LSB rounds to 0 without dither; with TPDF dither the samples average 0.3
    LSB (the dither's mean is 0 and it linearizes the quantizer), and their spread is that of
    triangular noise of +-1 LSB (sd sqrt(1/6) ~ 0.41, plus rounding)."""
    level = 0.3 / 32767
    audio = np.full((1, SR * 4), level, np.float32)
    dithered = AudioExporter().export(audio, tmp_path / "d.wav", sample_rate=SR, normalize=False)
    plain = AudioExporter().export(audio, tmp_path / "p.wav", sample_rate=SR, normalize=False, dither=False)
    with_dither = soundfile.read(dithered.path, dtype="int16")[0].astype(float)
    assert not soundfile.read(plain.path, dtype="int16")[0].any()
    assert with_dither.mean() == pytest.approx(0.3, abs=0.02)
    assert with_dither.std() == pytest.approx(math.sqrt(1 / 6 + 1 / 12), abs=0.05)
    assert set(np.unique(with_dither)) <= {-1.0, 0.0, 1.0}


# --- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, options, error, message", [
    ("x.mp3", {"bit_depth": "PCM_24"}, ValueError, "bit_depth is 'PCM_24', which applies to WAV and FLAC only"),
    ("x.flac", {"bit_depth": "FLOAT"}, ValueError, "cannot be written as FLAC"),
    ("x.aac", {}, ValueError, "output_path must end in one of"),
    ("x.mp3", {"mp3_mode": "128k"}, ValueError, "mp3_mode must be one of CBR_320, V0"),
    ("x.wav", {"preset": "radio"}, ValueError, "preset must be one of"),
    ("x.wav", {"tags": {"title": "x"}}, TypeError, "tags must be a TrackTags"),
    ("x.wav", {"dither": "yes"}, TypeError, "dither must be a bool"),
    ("x.wav", {"peaks_samples_per_pixel": 0}, ValueError, "peaks_samples_per_pixel"),
    ("x.mp3", {"channels": 3}, ValueError, "MP3 holds at most 2 channels; the audio has 3"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, name, options, error, message):
    options = dict(options)
    audio = np.tile(music_like(0.5, SR)[:1], (options.pop("channels", 2), 1))
    with pytest.raises(error, match=message):
        AudioExporter().export(audio, tmp_path / "out" / name, sample_rate=SR, **options)
    assert not (tmp_path / "out").exists()


def test_export_wav_still_writes_wav_only(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.wav"):
        AudioExporter().export_wav(music_like(0.5, SR), tmp_path / "x.mp3")
    assert AudioExporter().get_info()["supported_formats"] == ["wav", "flac", "mp3", "opus", "ogg"]


# --- the decoded-ceiling loop, with codecs whose behaviour is known by construction -------------

class _FakeCodec:
    """Stands in for a lossy codec: "encodes" to the raw float32 bytes and "decodes" them
    times ``factor`` (a codec that adds ``20 log10(factor)`` dB), or to full scale whatever
    the gain (a codec no gain can tame)."""

    def __init__(self, factor: float, stuck: bool = False):
        self.factor, self.stuck, self.encodes = factor, stuck, 0

    def encode(self, audio, rate, fmt, encoding):
        self.encodes += 1
        return np.ascontiguousarray(audio, np.float32).tobytes() + bytes([audio.shape[0]])

    def decode(self, data):
        channels = data[-1]
        audio = np.frombuffer(data[:-1], np.float32).reshape(channels, -1) * np.float32(self.factor)
        return (np.sign(audio) + (audio == 0) if self.stuck else audio), SR


@pytest.fixture
def fake_codec(monkeypatch):
    import services.audio.formats as formats

    def install(factor: float, stuck: bool = False) -> _FakeCodec:
        codec = _FakeCodec(factor, stuck)
        monkeypatch.setattr(formats, "encode_lossy", codec.encode)
        monkeypatch.setattr(formats, "decode_bytes", codec.decode)
        return codec

    return install


def test_an_overshooting_codec_is_re_encoded_under_the_ceiling(tmp_path, fake_codec):
    codec = fake_codec(10 ** (2.0 / 20))  # +2 dB on every peak
    result = AudioExporter(target_lufs=-8.0).export(music_like(2.0, SR), tmp_path / "x.mp3", sample_rate=SR)
    assert codec.encodes == 2 and result.gain.reason == "true_peak_cap"
    assert -1.2 <= result.loudness.true_peak_dbtp <= -1.0


def test_a_quiet_codec_is_re_encoded_to_the_target(tmp_path, fake_codec):
    codec = fake_codec(10 ** (-1.5 / 20))  # everything 1.5 dB lower
    audio = sine(997.0, -30.0, 3.0, SR).astype(np.float32)
    result = AudioExporter().export(audio, tmp_path / "x.ogg", sample_rate=SR)
    assert codec.encodes == 2 and result.gain.reason == "loudness"
    assert result.loudness.integrated_lufs == pytest.approx(-16.0, abs=0.05)


def test_a_codec_that_never_meets_the_ceiling_is_an_error_and_nothing_is_written(tmp_path, fake_codec):
    codec = fake_codec(1.0, stuck=True)
    with pytest.raises(AudioValidationError, match=r"above the -1.0 dBTP ceiling, after 6 encodes"):
        AudioExporter().export(music_like(1.0, SR), tmp_path / "x.opus", sample_rate=SR)
    assert codec.encodes == 6 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, broken", [
    ("x.wav", "services.audio.tags.riff.metadata_chunks"),
    ("x.flac", "services.audio.peaks.write_peaks_beside"),
    ("x.mp3", "services.audio.tags.tag_encoded"),
])
def test_a_failure_after_encoding_leaves_no_file(tmp_path, monkeypatch, name, broken):
    from services.audio.tags import TrackTags

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(broken, fail)
    with pytest.raises(OSError, match="disk full"):
        AudioExporter().export(music_like(1.0, SR), tmp_path / name, sample_rate=SR, tags=TrackTags(title="t"),
                               peaks_samples_per_pixel=100)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("found", [None, "libopus-that-is-not-there.so.9"])
def test_without_a_loadable_libopus_the_muxer_steps_aside(monkeypatch, found):
    from services.audio import _opus

    _opus.library.cache_clear()
    monkeypatch.setattr(_opus.ctypes.util, "find_library", lambda name: found)
    try:
        assert _opus.library() is None
        assert _opus.encode(np.zeros((2, 960), np.float32), SR) is None
    finally:
        _opus.library.cache_clear()
