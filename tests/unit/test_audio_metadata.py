"""AudioMetadataExtractor: the spec's API and fields, formats, bad input, edge signals.

Every expected value is known by construction: a sine of amplitude A has peak A, RMS
A/sqrt(2) and a peak-to-RMS ratio of 20 log10(sqrt(2)) = 3.0103 dB; a 997 Hz stereo sine at
-23 dBFS reads -23 LUFS (EBU Tech 3341 case 1); a click train at a known BPM, a cadence in a
known key. Files are written into pytest's tmp_path only.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from services.audio import AudioMetadataExtractor, measure_loudness
from services.errors import AudioDecodeError, AudioValidationError

SR = 32000
SINE_DR_DB = 20 * math.log10(math.sqrt(2))  # 3.0103 dB
SPEC_FIELDS = {
    "duration_seconds", "sample_rate", "channels", "file_size_bytes", "bit_depth",
    "bpm", "key", "peak_amplitude", "rms_energy", "dynamic_range_db",
}
ANALYSIS_FIELDS = {
    "frames", "bpm_confidence", "key_confidence",
    "loudness_lufs", "true_peak_dbtp", "loudness_range_lu",
}
FILE_ONLY_FIELDS = {"file_size_bytes", "bit_depth", "format"}
FILE_FIELDS = SPEC_FIELDS | ANALYSIS_FIELDS | FILE_ONLY_FIELDS
TENSOR_FIELDS = FILE_FIELDS - FILE_ONLY_FIELDS
STATS_FIELDS = (
    "peak_amplitude", "rms_energy", "dynamic_range_db",
    "loudness_lufs", "true_peak_dbtp", "loudness_range_lu",
)
NOTES = {"C": 0, "C#": 1, "D": 2, "D#": 3, "E": 4, "F": 5, "F#": 6, "G": 7, "G#": 8,
         "A": 9, "A#": 10, "B": 11}


# --- signals with known answers -------------------------------------------------------------


def sine(seconds=2.0, freq=440.0, amplitude=0.5, channels=1, sr=SR):
    """(channels, samples) float32 sine; a whole number of periods at the default settings."""
    t = np.arange(int(round(seconds * sr))) / sr
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.tile(wave, (channels, 1))


def click_track(bpm, seconds=12.0, sr=SR, channels=2):
    """Decaying 1.5 kHz clicks (30 ms) on every beat at ``bpm``."""
    n = int(seconds * sr)
    out = np.zeros(n)
    length = int(0.03 * sr)
    t = np.arange(length) / sr
    click = np.sin(2 * np.pi * 1500 * t) * np.exp(-t / 0.006)
    beat = 60.0 / bpm
    for start in np.arange(0.1, seconds - 0.05, beat):
        i = int(round(start * sr))
        out[i : i + length] += click[: n - i]
    return np.tile((0.6 * out).astype(np.float32), (channels, 1))


def tone(midi_note, seconds, sr=SR):
    """Harmonic tone (6 partials at 1/k) with a soft attack and release."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((midi_note - 69) / 12)
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 7) if k * f0 < sr / 2)
    envelope = np.minimum(1.0, np.minimum(t / 0.02, (seconds - t) / 0.05))
    return wave * envelope


def cadence(key, seconds_per_chord=1.5, sr=SR):
    """I-IV-V-I (major) or i-iv-V-i (minor) in ``key`` ("D major"): bass + close triads."""
    tonic, mode = key.split()
    root = 48 + NOTES[tonic]  # the tonic in octave 3
    third = 4 if mode == "major" else 3
    chords = [
        (0, [0, third, 7]),
        (5, [5, 5 + third, 12]),
        (7, [7, 11, 14]),  # the dominant is major in both modes (harmonic minor)
        (0, [0, third, 7]),
    ]
    parts = []
    for bass, triad in chords:
        chunk = 0.5 * tone(root - 12 + bass, seconds_per_chord, sr)
        for interval in triad:
            chunk = chunk + 0.3 * tone(root + 12 + interval, seconds_per_chord, sr)
        parts.append(chunk)
    audio = np.concatenate(parts * 2)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)[np.newaxis, :]


def write(tmp_path, audio, name="clip.wav", sr=SR, **kwargs):
    """Write (channels, samples) audio with soundfile; return the path."""
    path = tmp_path / name
    sf.write(path, np.asarray(audio).T, sr, **kwargs)
    return path


@pytest.fixture
def stats_only():
    return AudioMetadataExtractor(extract_bpm=False, extract_key=False)


@pytest.fixture
def everything():
    return AudioMetadataExtractor(extract_bpm=True, extract_key=True)


# --- the spec's API --------------------------------------------------------------------------


def test_signatures_match_the_spec():
    init = inspect.signature(AudioMetadataExtractor.__init__).parameters
    assert [(p.name, p.default) for p in list(init.values())[1:3]] == [
        ("extract_bpm", True), ("extract_key", False),
    ]
    from_file = inspect.signature(AudioMetadataExtractor.extract_metadata).parameters
    assert list(from_file)[1:3] == ["audio_path", "compute_stats"]
    assert from_file["compute_stats"].default is True
    from_tensor = inspect.signature(AudioMetadataExtractor.extract_metadata_from_tensor).parameters
    assert list(from_tensor)[1:4] == ["audio_tensor", "sample_rate", "compute_stats"]
    assert from_tensor["compute_stats"].default is True
    for params in (init, from_file, from_tensor):  # our additions never shift the spec's
        extras = [p for p in params.values() if p.name not in
                  {"self", "extract_bpm", "extract_key", "audio_path", "audio_tensor",
                   "sample_rate", "compute_stats"}]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras)


@pytest.mark.parametrize("extract_bpm", [True, False])
@pytest.mark.parametrize("extract_key", [True, False])
def test_get_info(extract_bpm, extract_key):
    import importlib.util

    info = AudioMetadataExtractor(extract_bpm=extract_bpm, extract_key=extract_key).get_info()
    assert info["extract_bpm"] is extract_bpm and info["extract_key"] is extract_key
    assert info["librosa_available"] is (importlib.util.find_spec("librosa") is not None)
    assert {"WAV", "FLAC", "OGG"} <= set(info["supported_formats"])
    assert "RAW" not in info["supported_formats"]  # headerless data cannot be opened
    json.dumps(info)


def test_spec_usage_from_file_and_tensor(tmp_path, everything):
    audio = sine(seconds=2.0, channels=2)
    path = write(tmp_path, audio, subtype="PCM_16")

    from_file = everything.extract_metadata(str(path))  # str or Path both work
    assert set(from_file) == FILE_FIELDS
    assert from_file["duration_seconds"] == 2.0
    assert from_file["sample_rate"] == SR and from_file["channels"] == 2
    assert from_file["frames"] == 2 * SR
    assert from_file["file_size_bytes"] == os.path.getsize(path)
    assert from_file["bit_depth"] == "PCM_16" and from_file["format"] == "WAV"

    from_tensor = everything.extract_metadata_from_tensor(audio, sample_rate=SR)
    assert set(from_tensor) == TENSOR_FIELDS  # no file_size_bytes, bit_depth or format
    assert from_tensor["duration_seconds"] == 2.0 and from_tensor["channels"] == 2
    for result in (from_file, from_tensor):
        json.dumps(result, allow_nan=False)  # stored as JSON in the generation history
        assert all(type(v) in (int, float, str, type(None)) for v in result.values())


# --- statistics with known values ------------------------------------------------------------


@pytest.mark.parametrize("amplitude", [0.05, 0.5, 0.99])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("source", ["tensor", "FLOAT", "PCM_24", "PCM_16"])
def test_sine_peak_rms_and_ratio(tmp_path, stats_only, amplitude, channels, source):
    audio = sine(seconds=1.5, amplitude=amplitude, channels=channels)
    if source == "tensor":
        result = stats_only.extract_metadata_from_tensor(audio, SR)
        tolerance = 1e-6
    else:
        path = write(tmp_path, audio, subtype=source)
        result = stats_only.extract_metadata(path)
        tolerance = 1.0 / 2**15 if source == "PCM_16" else 1e-6  # quantization step
    assert result["peak_amplitude"] == pytest.approx(amplitude, abs=tolerance)
    assert result["rms_energy"] == pytest.approx(amplitude / math.sqrt(2), abs=tolerance)
    assert result["dynamic_range_db"] == pytest.approx(SINE_DR_DB, abs=20 * tolerance / amplitude)
    assert result["duration_seconds"] == 1.5 and result["channels"] == channels


@pytest.mark.parametrize(
    "left, right, peak, rms, ratio_db",
    [
        (0.25, 0.25, 0.25, 0.25, 0.0),  # DC: peak equals RMS
        (0.5, -0.5, 0.5, 0.5, 0.0),
        (0.8, 0.0, 0.8, 0.8 / math.sqrt(2), SINE_DR_DB),  # RMS over both channels
        (-0.6, 0.3, 0.6, math.sqrt((0.36 + 0.09) / 2), 20 * math.log10(0.6 / math.sqrt(0.225))),
    ],
)
def test_constant_channels(stats_only, left, right, peak, rms, ratio_db):
    audio = np.stack([np.full(SR, left), np.full(SR, right)]).astype(np.float64)
    result = stats_only.extract_metadata_from_tensor(audio, SR)
    assert result["peak_amplitude"] == pytest.approx(peak, abs=1e-12)
    assert result["rms_energy"] == pytest.approx(rms, abs=1e-12)
    assert result["dynamic_range_db"] == pytest.approx(ratio_db, abs=1e-9)


@pytest.mark.parametrize("level_dbfs", [-23.0, -10.0])
@pytest.mark.parametrize("source", ["tensor", "file"])
def test_loudness_figures_of_a_stereo_sine(tmp_path, stats_only, level_dbfs, source):
    """EBU Tech 3341 case 1: a 997 Hz stereo sine at -23 dBFS reads -23.0 LUFS."""
    audio = sine(seconds=10.0, freq=997.0, amplitude=10 ** (level_dbfs / 20), channels=2, sr=48000)
    if source == "file":
        result = stats_only.extract_metadata(write(tmp_path, audio, sr=48000, subtype="FLOAT"))
    else:
        result = stats_only.extract_metadata_from_tensor(audio, 48000)
    assert result["loudness_lufs"] == pytest.approx(level_dbfs, abs=0.1)
    assert result["true_peak_dbtp"] == pytest.approx(level_dbfs, abs=0.1)
    assert result["loudness_range_lu"] == pytest.approx(0.0, abs=0.1)  # a steady tone


def test_loudness_is_the_project_meter(tmp_path, stats_only):
    rng = np.random.default_rng(7)
    fade_in = np.linspace(0.1, 1, 7 * SR)
    audio = (0.2 * rng.standard_normal((2, 7 * SR)) * fade_in).astype(np.float32)
    report = measure_loudness(audio, SR)
    result = stats_only.extract_metadata_from_tensor(audio, SR)
    assert result["loudness_lufs"] == pytest.approx(report.integrated_lufs, abs=1e-9)
    assert result["true_peak_dbtp"] == pytest.approx(report.true_peak_dbtp, abs=1e-9)
    assert result["loudness_range_lu"] == pytest.approx(report.loudness_range_lu, abs=1e-9)
    peak_dbfs = 20 * math.log10(result["peak_amplitude"])
    assert peak_dbfs == pytest.approx(report.sample_peak_dbfs, abs=1e-6)


# --- formats: every one soundfile writes here ------------------------------------------------

_FORMATS = [  # format, subtype, extension, lossy
    ("WAV", "PCM_16", ".wav", False),
    ("WAV", "PCM_24", ".wav", False),
    ("WAV", "PCM_32", ".wav", False),
    ("WAV", "FLOAT", ".wav", False),
    ("FLAC", "PCM_16", ".flac", False),
    ("FLAC", "PCM_24", ".flac", False),
    ("AIFF", "PCM_16", ".aiff", False),
    ("OGG", "VORBIS", ".ogg", True),
    ("MP3", "MPEG_LAYER_III", ".mp3", True),
]


@pytest.mark.parametrize("fmt, subtype, ext, lossy", _FORMATS)
def test_formats(tmp_path, stats_only, fmt, subtype, ext, lossy):
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"the installed libsndfile has no {fmt}/{subtype}")
    audio = sine(seconds=3.0, freq=500.0, amplitude=0.5, channels=2)
    path = write(tmp_path, audio, name="clip" + ext, format=fmt, subtype=subtype)
    header = stats_only.extract_metadata(path, compute_stats=False)
    assert (header["format"], header["bit_depth"]) == (fmt, subtype)
    assert header["sample_rate"] == SR and header["channels"] == 2
    assert header["file_size_bytes"] == os.path.getsize(path)
    assert header["duration_seconds"] == pytest.approx(3.0, abs=0.06 if lossy else 0.0)
    assert all(header[key] is None for key in STATS_FIELDS)

    result = stats_only.extract_metadata(path)
    assert result["frames"] == header["frames"]
    level = 0.03 if lossy else 1.0 / 2**15  # codec error, or 16-bit quantization
    assert result["rms_energy"] == pytest.approx(0.5 / math.sqrt(2), abs=level)
    assert result["peak_amplitude"] == pytest.approx(0.5, abs=level)
    assert result["loudness_lufs"] == pytest.approx(
        measure_loudness(audio, SR).integrated_lufs, abs=0.5 if lossy else 0.001
    )


# --- one code path: files, tensors, any block length -------------------------------------------


def test_file_and_tensor_agree_exactly(tmp_path, everything):
    audio = click_track(120.0, seconds=8.0) + 0.3 * cadence("G major", 1.0)[:, : 8 * SR]
    path = write(tmp_path, audio, subtype="FLOAT")  # float32 round-trips bit for bit
    from_file = everything.extract_metadata(path)
    from_tensor = everything.extract_metadata_from_tensor(audio, SR)
    for key, value in from_tensor.items():
        assert from_file[key] == value, key


@pytest.mark.parametrize("block_seconds", [0.05, 0.37, 1.0, 3600.0])
def test_block_length_does_not_change_the_result(block_seconds):
    from services.audio.key import estimate_key
    from services.audio.tempo import estimate_tempo

    audio = click_track(100.0, seconds=9.0) + 0.3 * cadence("E minor", 1.125)
    whole = np.asarray(audio, dtype=np.float64)
    result = AudioMetadataExtractor(
        extract_bpm=True, extract_key=True, block_seconds=block_seconds
    ).extract_metadata_from_tensor(audio, SR)

    assert result["peak_amplitude"] == float(np.abs(audio).max())
    assert result["rms_energy"] == pytest.approx(math.sqrt(np.mean(whole**2)), rel=1e-12)
    report = measure_loudness(audio, SR)
    assert result["loudness_lufs"] == pytest.approx(report.integrated_lufs, abs=1e-6)
    assert result["true_peak_dbtp"] == pytest.approx(report.true_peak_dbtp, abs=1e-5)
    mono = audio.mean(axis=0)
    tempo, key = estimate_tempo(mono, SR), estimate_key(mono, SR)
    assert result["bpm"] == pytest.approx(tempo.bpm, abs=1e-6)
    assert result["bpm_confidence"] == pytest.approx(tempo.confidence, abs=1e-6)
    assert result["key"] == key.key
    assert result["key_confidence"] == pytest.approx(key.confidence, abs=1e-6)


def test_torch_tensors_are_accepted(everything):
    torch = pytest.importorskip("torch")
    audio = click_track(128.0, seconds=6.0)
    expected = everything.extract_metadata_from_tensor(audio, SR)
    batch = torch.from_numpy(audio).unsqueeze(0)  # (1, channels, samples) as MusicGen returns
    assert everything.extract_metadata_from_tensor(batch, SR) == expected


# --- header only: nothing is decoded ----------------------------------------------------------


@pytest.mark.parametrize(
    "extract_bpm, extract_key, compute_stats",
    [(True, False, False), (False, True, False), (False, False, True)],
)
def test_header_only_does_not_decode(tmp_path, extract_bpm, extract_key, compute_stats):
    """A FLAC whose frames are cut off has an intact header: it reads without decoding and
    fails (AudioDecodeError) as soon as any enabled measurement needs the samples."""
    audio = sine(seconds=4.0, channels=2)
    data = write(tmp_path, audio, name="full.flac", subtype="PCM_16").read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: len(data) // 2])

    header = AudioMetadataExtractor(extract_bpm=False).extract_metadata(path, compute_stats=False)
    assert header["frames"] == 4 * SR and header["duration_seconds"] == 4.0
    assert all(header[key] is None for key in STATS_FIELDS + ("bpm", "key"))

    extractor = AudioMetadataExtractor(extract_bpm=extract_bpm, extract_key=extract_key)
    with pytest.raises(AudioDecodeError, match="cut.flac"):
        extractor.extract_metadata(path, compute_stats=compute_stats)


# --- bad input ---------------------------------------------------------------------------------


def _wav_bytes(format_tag, bits=16, data=bytes(3200)):
    fmt = struct.pack("<HHIIHH", format_tag, 1, 8000, 8000 * bits // 8, bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _valid_wav(tmp_path):
    return write(tmp_path, sine(seconds=1.0, channels=2), name="valid.wav").read_bytes()


_BAD_FILES = {
    "empty": lambda tmp: b"",
    "text": lambda tmp: b"this is not audio at all\n" * 200,
    "random bytes": lambda tmp: np.random.default_rng(3).integers(0, 256, 8192, np.uint8).tobytes(),
    "png": lambda tmp: b"\x89PNG\r\n\x1a\n" + bytes(4000),
    "midi (unsupported format)": lambda tmp: bytes.fromhex(
        "4d546864000000060000000100604d54726b0000000400ff2f00"
    ),
    "mp4/aac (unsupported format)": lambda tmp: struct.pack(">I", 24) + b"ftypM4A " + bytes(4000),
    "wav with an unknown codec": lambda tmp: _wav_bytes(0x1234),
    "wav cut inside its header": lambda tmp: _valid_wav(tmp)[:30],
    "wav cut after its header": lambda tmp: _valid_wav(tmp)[:44],
    "wav cut in its data": lambda tmp: _valid_wav(tmp)[:-1001],
    "wav with no frames": lambda tmp: _wav_bytes(1, data=b""),
}


@pytest.mark.parametrize("case", list(_BAD_FILES))
@pytest.mark.parametrize("compute_stats", [True, False])
def test_bad_files_raise_a_decode_error_naming_the_file(tmp_path, stats_only, case, compute_stats):
    path = tmp_path / "bad input.wav"
    path.write_bytes(_BAD_FILES[case](tmp_path))
    with pytest.raises(AudioDecodeError, match="bad input.wav") as caught:
        stats_only.extract_metadata(path, compute_stats=compute_stats)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_in_a_float_file(tmp_path, stats_only, bad):
    audio = sine(seconds=3.0)
    audio[0, 2 * SR + 1234] = bad  # in the second block
    path = write(tmp_path, audio, name="non finite.wav", subtype="FLOAT")
    assert stats_only.extract_metadata(path, compute_stats=False)["frames"] == 3 * SR
    with pytest.raises(AudioDecodeError, match=f"'.*non finite.wav'.*frame {2 * SR + 1234}"):
        stats_only.extract_metadata(path)


@pytest.mark.parametrize("fmt, subtype, ext", [f[:3] for f in _FORMATS])
def test_truncated_files_of_every_format(tmp_path, stats_only, fmt, subtype, ext):
    """The second half of the file is gone: the header may still read, decoding must fail."""
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"the installed libsndfile has no {fmt}/{subtype}")
    audio = sine(seconds=4.0, freq=500.0, channels=2)
    data = write(tmp_path, audio, name="whole" + ext, format=fmt, subtype=subtype).read_bytes()
    path = tmp_path / ("cut" + ext)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError, match="cut" + ext):
        stats_only.extract_metadata(path)


@pytest.mark.parametrize(
    "channels, sr, reason",
    [(40, 8000, "40 channels"), (1, 800, "800"), (2, 1_000_000, "1000000")],
)
def test_layouts_the_analysis_refuses(tmp_path, stats_only, channels, sr, reason):
    """Header facts are still reported; any analysis is an AudioDecodeError naming the file."""
    path = write(tmp_path, np.full((channels, 400), 0.1, np.float32), name="odd.wav", sr=sr)
    header = stats_only.extract_metadata(path, compute_stats=False)
    assert (header["channels"], header["sample_rate"]) == (channels, sr)
    with pytest.raises(AudioDecodeError, match=f"odd.wav.*{reason}"):
        stats_only.extract_metadata(path)


def test_a_directory_is_a_decode_error(tmp_path, stats_only):
    with pytest.raises(AudioDecodeError, match="directory"):
        stats_only.extract_metadata(tmp_path)


def test_a_missing_file_is_file_not_found(tmp_path, stats_only):
    with pytest.raises(FileNotFoundError):
        stats_only.extract_metadata(tmp_path / "missing.wav")


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda x: x.extract_metadata(3), TypeError),  # an int would be a file descriptor
        (lambda x: x.extract_metadata(None), TypeError),
        (lambda x: x.extract_metadata("a.wav", compute_stats="yes"), TypeError),
        (lambda x: x.extract_metadata("a.wav", bpm_hint="140"), TypeError),
        (lambda x: x.extract_metadata("a.wav", bpm_hint=True), TypeError),
        (lambda x: x.extract_metadata("a.wav", bpm_hint=0), AudioValidationError),
        (lambda x: x.extract_metadata("a.wav", bpm_hint=float("nan")), AudioValidationError),
        (lambda x: x.extract_metadata("a.wav", bpm_hint=1000.0), AudioValidationError),
        (lambda x: x.extract_metadata_from_tensor([0.0] * 100, SR), TypeError),
        (lambda x: x.extract_metadata_from_tensor(np.zeros(100, np.int16), SR), TypeError),
        (lambda x: x.extract_metadata_from_tensor(np.array([0.1, np.nan]), SR),
         AudioValidationError),
        (lambda x: x.extract_metadata_from_tensor(np.array([0.1, np.inf]), SR),
         AudioValidationError),
        (lambda x: x.extract_metadata_from_tensor(np.zeros((2, 0)), SR), AudioValidationError),
        (lambda x: x.extract_metadata_from_tensor(np.zeros((2, 3, 9)), SR), AudioValidationError),
        (lambda x: x.extract_metadata_from_tensor(np.zeros(100), 0), AudioValidationError),
        (lambda x: x.extract_metadata_from_tensor(np.zeros(100), "32000"), TypeError),
        (lambda x: x.extract_metadata_from_tensor(np.zeros(100), SR, compute_stats=None),
         TypeError),
    ],
)
def test_argument_errors(stats_only, call, error):
    with pytest.raises(error):
        call(stats_only)


@pytest.mark.parametrize(
    "kwargs, error, shown",
    [
        ({"extract_bpm": "yes"}, TypeError, "'yes'"),
        ({"extract_key": 1}, TypeError, "int"),
        ({"block_seconds": 0.0}, AudioValidationError, "0.0"),
        ({"block_seconds": float("inf")}, AudioValidationError, "inf"),
        ({"block_seconds": "2"}, TypeError, "str"),
    ],
)
def test_constructor_errors(kwargs, error, shown):
    with pytest.raises(error, match=shown):
        AudioMetadataExtractor(**kwargs)


# --- edge signals: unknowable fields are None, confidence 0 -------------------------------------


def _noise(seconds=8.0):
    noise = np.random.default_rng(11).standard_normal((2, int(seconds * SR)))
    return (0.3 * noise).astype(np.float32)


@pytest.mark.parametrize(
    "name, audio, peak, rms",
    [
        ("silence", np.zeros((2, 4 * SR), np.float32), 0.0, 0.0),
        ("dc", np.full((1, 4 * SR), 0.5, np.float32), 0.5, 0.5),
        ("0.1 s clip", sine(seconds=0.1, channels=2), 0.5, 0.5 / math.sqrt(2)),
        ("one sample", np.array([[0.25]], np.float32), 0.25, 0.25),
    ],
)
@pytest.mark.parametrize("source", ["tensor", "file"])
def test_signals_without_tempo_or_key(tmp_path, everything, name, audio, peak, rms, source):
    if source == "file":
        result = everything.extract_metadata(write(tmp_path, audio, subtype="FLOAT"))
    else:
        result = everything.extract_metadata_from_tensor(audio, SR)
    json.dumps(result, allow_nan=False)
    assert result["duration_seconds"] == audio.shape[1] / SR
    assert result["peak_amplitude"] == pytest.approx(peak, abs=1e-6)
    assert result["rms_energy"] == pytest.approx(rms, abs=1e-3 if name == "0.1 s clip" else 1e-6)
    assert (result["bpm"], result["bpm_confidence"]) == (None, 0.0)
    assert (result["key"], result["key_confidence"]) == (None, 0.0)
    if name == "silence":
        assert result["dynamic_range_db"] is None  # 0 / 0: undefined, not -inf or NaN
        assert result["loudness_lufs"] is None and result["true_peak_dbtp"] is None
        assert result["loudness_range_lu"] is None
    if name == "dc":  # peak equals RMS (the loudness is that of the step at the start)
        assert result["dynamic_range_db"] == pytest.approx(0.0, abs=1e-9)


def test_noise_has_no_tempo(everything):
    result = everything.extract_metadata_from_tensor(_noise(), SR)
    assert (result["bpm"], result["bpm_confidence"]) == (None, 0.0)
    assert result["loudness_lufs"] == pytest.approx(measure_loudness(_noise(), SR).integrated_lufs)


@pytest.mark.parametrize("extract_bpm", [True, False])
@pytest.mark.parametrize("extract_key", [True, False])
@pytest.mark.parametrize("compute_stats", [True, False])
def test_disabled_fields_are_none(tmp_path, extract_bpm, extract_key, compute_stats):
    audio = click_track(120.0, seconds=6.0) + 0.3 * cadence("C major", 0.75)[:, : 6 * SR]
    path = write(tmp_path, audio, subtype="FLOAT")
    extractor = AudioMetadataExtractor(extract_bpm=extract_bpm, extract_key=extract_key)
    for result in (
        extractor.extract_metadata(path, compute_stats=compute_stats),
        extractor.extract_metadata_from_tensor(audio, SR, compute_stats=compute_stats),
    ):
        assert (result["bpm"] is not None) is extract_bpm
        assert (result["bpm_confidence"] is not None) is extract_bpm
        assert (result["key"] is not None) is extract_key
        assert (result["key_confidence"] is not None) is extract_key
        assert all((result[key] is not None) is compute_stats for key in STATS_FIELDS)


# --- tempo and key through the extractor (accuracy itself: benchmarks/) -------------------------


@pytest.mark.parametrize("bpm", [84.5, 120.0, 143.7])
def test_bpm_of_a_click_track(tmp_path, everything, bpm):
    result = everything.extract_metadata(write(tmp_path, click_track(bpm), subtype="PCM_16"))
    assert result["bpm"] == pytest.approx(bpm, abs=0.5)
    assert 0.0 < result["bpm_confidence"] <= 1.0


@pytest.mark.parametrize("key", ["C major", "A minor", "F# major", "D minor"])
def test_key_of_a_cadence(everything, key):
    result = everything.extract_metadata_from_tensor(cadence(key), SR)
    assert result["key"] == key
    assert 0.0 < result["key_confidence"] <= 1.0


@pytest.mark.parametrize(
    "hint, expected",
    [
        (None, 140.0),
        (140.0, 140.0),
        (70.0, 70.0),  # the octave below is a reading of the same pulse: the hint picks it
        (72.0, 70.0),  # a hint only selects among the audio's own readings...
        (123.0, 140.0),  # ...it never replaces them with itself
    ],
)
def test_bpm_hint_resolves_octaves_but_never_overrides(everything, hint, expected):
    result = everything.extract_metadata_from_tensor(click_track(140.0), SR, bpm_hint=hint)
    assert result["bpm"] == pytest.approx(expected, abs=0.5)


def test_bpm_hint_is_ignored_when_tempo_is_off(stats_only):
    result = stats_only.extract_metadata_from_tensor(click_track(100.0), SR, bpm_hint=100.0)
    assert (result["bpm"], result["bpm_confidence"]) == (None, None)


# --- import cost -------------------------------------------------------------------------------

_IMPORT_PROBE = """
import sys
import services.audio
after_import = sorted(m for m in {heavy} if m in sys.modules)
from services.audio import AudioMetadataExtractor
extractor = AudioMetadataExtractor(extract_bpm=False)
info = extractor.get_info()
extractor.extract_metadata(sys.argv[1], compute_stats=False)
after_header = sorted(m for m in {heavy} if m in sys.modules)
print(after_import, after_header)
"""


def test_import_and_header_path_stay_light(tmp_path):
    """``import services.audio`` loads none of torch, scipy, librosa, soundfile, numpy; the
    header-only path and get_info() add soundfile and numpy, still no analysis library."""
    path = write(tmp_path, sine(seconds=0.5))
    heavy = ("torch", "scipy", "librosa", "essentia", "numba", "soundfile", "numpy")
    probe = _IMPORT_PROBE.format(heavy=heavy)
    root = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, cwd=root,
        check=True,
    )
    assert completed.stdout.strip() == "[] ['numpy', 'soundfile']"
