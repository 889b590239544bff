"""`dgx-music generate --format/--preset/--loop-bars/--name-template` and `normalize` to any
format, end to end in a subprocess, read back by ffprobe, mutagen, wavinfo and libebur128."""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile

from tests.integration.test_cli import run  # noqa: F401  (fixture)

mutagen = pytest.importorskip("mutagen")
wavinfo = pytest.importorskip("wavinfo")
pyebur128 = pytest.importorskip("pyebur128")
pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffmpeg/ffprobe not installed")

PROMPT = "deep house in A minor at 124 BPM"


def decoded_loudness(path) -> tuple:
    """(integrated LUFS, true peak dBTP) of the file decoded by ffmpeg, by libebur128."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f64le", "-ac", "2", "-ar", "48000", "-"],
                         check=True, capture_output=True).stdout
    audio = np.frombuffer(raw, "<f8")
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(2, 48000, mode.MODE_I | mode.MODE_TRUE_PEAK)
    state.add_frames(audio, audio.size // 2)
    return pyebur128.get_loudness_global(state), 20 * math.log10(max(pyebur128.get_true_peak(state, c) for c in (0, 1)))


def probe(path) -> dict:
    return json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
                                      str(path)], check=True, capture_output=True, text=True).stdout)


def test_generate_an_mp3_for_spotify(run):  # noqa: F811
    result = json.loads(run("generate", PROMPT, "--format", "mp3", "--preset", "spotify", "--duration", "8",
                            "--seed", "3", "--json").stdout)
    path = result["file_path"]
    assert path.endswith(".mp3")
    info = probe(path)
    assert info["streams"][0]["codec_name"] == "mp3" and info["streams"][0]["bit_rate"] == "320000"
    assert info["format"]["tags"]["TBPM"] == "124" and info["format"]["tags"]["TKEY"] == "Am"
    tags = mutagen.File(path).tags
    assert str(tags["TIT2"]) == PROMPT and str(tags["TXXX:CAMELOT_KEY"]) == "8A"
    assert str(tags["TXXX:TEMPO_SOURCE"]) == "procedural"
    integrated, true_peak = decoded_loudness(path)
    assert true_peak <= -1.0 + 0.1
    metadata = result["metadata"]
    assert integrated <= -14.0 + 0.5
    if metadata["normalization"] == "loudness":
        assert integrated == pytest.approx(-14.0, abs=0.5)
    assert metadata["format"] == "MP3" and metadata["bit_depth"] == "CBR_320" and metadata["preset"] == "spotify"
    assert metadata["rendered"] == {"bpm": 124.0, "key": "A minor", "beats_per_bar": 4,
                                    "first_downbeat_seconds": 0.0, "source": "procedural"}
    assert metadata["loudness_lufs"] == pytest.approx(integrated, abs=0.2)


def test_generate_a_named_four_bar_loop_with_peaks(run, tmp_path):  # noqa: F811
    result = json.loads(run("generate", PROMPT, "--loop-bars", "4", "--name-template", "{job_id}_{bpm}_{key}",
                            "--peaks", "256", "--duration", "10", "--seed", "3", "--json").stdout)
    path = result["file_path"]
    assert path.endswith(f"{result['job_id']}_124bpm_Am.wav")
    assert soundfile.info(path).frames == 247742  # 16 beats at exactly 124 BPM, 32 kHz
    info = wavinfo.WavInfoReader(path)
    (loop,) = info.smpl.sample_loops
    assert (loop.start, loop.end) == (0, 247741)
    assert info.bext.version == 2 and info.bext.loudness_value == pytest.approx(decoded_loudness(path)[0], abs=0.05)
    data = open(path, "rb").read()
    acid = data[data.index(b"acid") + 8: data.index(b"acid") + 32]
    flags, root, _, _, beats, denominator, numerator, tempo = struct.unpack("<IHHfIHHf", acid)
    assert not flags & 0x01 and root == 0x30 + 9 and beats == 16 and (numerator, denominator) == (4, 4)
    assert tempo == pytest.approx(124.0)
    assert result["metadata"]["loop"] == {"bars": 4, "beats": 16, "start_frame": 0, "end_frame": 247741}
    peaks_json, peaks_dat = result["metadata"]["peaks_files"]
    assert json.loads(open(peaks_json).read())["samples_per_pixel"] == 256
    shown = json.loads(run("show", result["job_id"], "--json").stdout)
    assert shown["file_path"] == path


def test_normalize_to_any_format_carries_the_inputs_title(run, tmp_path):  # noqa: F811
    t = np.arange(4 * 44100) / 44100
    source = tmp_path / "take.flac"
    with soundfile.SoundFile(source, "w", 44100, 2, format="FLAC") as sound:
        sound.title = "Take 7"
        sound.write(np.stack([0.05 * np.sin(2 * np.pi * 440 * t)] * 2).T)
    out = tmp_path / "take.mp3"
    report = json.loads(run("normalize", str(source), str(out), "--preset", "ebu-r128", "--mp3-mode", "V0",
                            "--json").stdout)
    integrated, true_peak = decoded_loudness(out)
    assert integrated == pytest.approx(-23.0, abs=0.5) and true_peak <= -0.9
    assert report["output_lufs"] == pytest.approx(integrated, abs=0.2)
    tags = mutagen.File(out).tags
    assert str(tags["TIT2"]) == "Take 7" and str(tags["COMM::eng"]) == "normalized from take.flac by dgx-music"
    assert mutagen.File(out).info.bitrate_mode == mutagen.mp3.BitrateMode.VBR


@pytest.mark.parametrize("args, message", [
    (["--preset", "radio"], "--preset must be one of"),
    (["--format", "aac"], "--format must be one of wav, flac, mp3, opus, ogg"),
    (["--loop-bars", "4"], "--loop-bars is 4: 4 bars need 8.00 s at 120 BPM (4 beats a bar); --duration is 2 s"),
    (["--format", "mp3", "--bit-depth", "PCM_24"], "--bit-depth is 'PCM_24', which applies to WAV and FLAC only"),
])
def test_bad_publishing_flags_are_one_line_naming_the_flag(run, tmp_path, args, message):  # noqa: F811
    done = run("generate", "house at 120 BPM", "--duration", "2", *args, expect=1)
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert json.loads(run("history", "--json").stdout) == []  # nothing recorded


def test_normalize_names_out_when_its_extension_is_unknown(run, tmp_path):  # noqa: F811
    source = tmp_path / "in.wav"
    soundfile.write(source, np.zeros((4410, 2)), 44100)
    done = run("normalize", str(source), str(tmp_path / "out.aac"), expect=1)
    assert "OUT must end in one of .flac, .mp3, .oga, .ogg, .opus, .wav" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]
