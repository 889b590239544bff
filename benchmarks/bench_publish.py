"""Publishing a clip to each format at the spotify preset, beside ffmpeg-normalize.

    python benchmarks/bench_publish.py [--quick]

A 16 s stereo 32 kHz clip (a float WAV on disk) to -14 LUFS with a -1 dBTP ceiling, in WAV
PCM_16, FLAC 16-bit, MP3 CBR 320 kbit/s, Ogg Opus (about 160 kbit/s) and Ogg Vorbis.

- ours: read the WAV, ``AudioExporter.export(..., preset="spotify", tags=...)``: one
  measurement, one gain, encode; lossy files decoded and measured, re-encoded if the
  ceiling is not met; tags (ID3v2.4 / Vorbis comments / bext v2, acid, iXML) written.
- peer: ``ffmpeg-normalize`` (ffmpeg's two-pass ``loudnorm``: a measuring pass, then a
  linear-gain pass that encodes with ffmpeg's libmp3lame / libopus / libvorbis / flac), no
  tags, no check of the decoded file.

Each call runs once per round, alternating, and the table shows medians. Both outputs are
then decoded by ffmpeg and measured by libebur128: the columns say whether each meets the
ceiling (true peak <= -1 dBTP + 0.1 dB) and how far it lands from -14 LUFS.
Goal: at least 3x faster per format while meeting the ceiling and writing the tags.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from _common import interleaved_medians, machine, ms, ratio, table

from services.audio import AudioExporter  # noqa: E402
from services.audio.tags import TrackTags  # noqa: E402
from tests.signals import music_like  # noqa: E402

SR = 32000
TARGET, CEILING = -14.0, -1.0
# name, our file name, ffmpeg-normalize's codec options, rate of the peer's output
FORMATS = [
    ("WAV PCM_16", "out.wav", ["-c:a", "pcm_s16le"], SR),
    ("FLAC 16-bit", "out.flac", ["-c:a", "flac", "-e", "-sample_fmt s16"], SR),
    ("MP3 CBR 320", "out.mp3", ["-c:a", "libmp3lame", "-b:a", "320k"], SR),
    ("Ogg Opus", "out.opus", ["-c:a", "libopus", "-b:a", "160k"], 48000),
    ("Ogg Vorbis", "out.ogg", ["-c:a", "libvorbis", "-b:a", "256k"], SR),
]


def ours(source: Path, folder: Path, name: str) -> None:
    import soundfile

    audio, rate = soundfile.read(source, dtype="float32", always_2d=True)
    tags = TrackTags(title="bench clip", bpm=124.0, key="A minor", known=True, record={"bpm": 124.0})
    AudioExporter().export(audio.T, folder / name, sample_rate=rate, preset="spotify", tags=tags)


def peer(source: Path, folder: Path, name: str, codec: list, rate: int) -> None:
    subprocess.run(
        ["ffmpeg-normalize", str(source), "-f", "-q", "-nt", "ebu", "-t", str(TARGET), "-tp", str(CEILING),
         "--keep-lra-above-loudness-range-target", "-ar", str(rate), *codec, "-o", str(folder / ("peer-" + name))],
        check=True,
    )


def decoded_figures(path: Path) -> tuple:
    """(integrated LUFS, true peak dBTP) of ``path`` decoded by ffmpeg, by libebur128."""
    import json

    import pyebur128

    info = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
                          check=True, capture_output=True, text=True).stdout
    rate = int(json.loads(info)["streams"][0]["sample_rate"])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f64le", "-ac", "2", "-"],
                         check=True, capture_output=True).stdout
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(2, rate, mode.MODE_I | mode.MODE_TRUE_PEAK)
    audio = np.frombuffer(raw, "<f8")
    state.add_frames(audio, audio.size // 2)
    peak = max(pyebur128.get_true_peak(state, c) for c in range(2))
    return pyebur128.get_loudness_global(state), 20 * math.log10(peak)


def verdict(figures: tuple) -> str:
    integrated, true_peak = figures
    meets = "meets" if true_peak <= CEILING + 0.1 else "OVER"
    return f"{integrated:.2f} LUFS, {true_peak:.2f} dBTP ({meets})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 5")
    args = parser.parse_args()
    if shutil.which("ffmpeg-normalize") is None:
        raise SystemExit("ffmpeg-normalize is not installed: pip install -e '.[bench]'")
    import soundfile

    rounds = 3 if args.quick else 5
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "clip.wav"
        soundfile.write(source, music_like(16.0, SR, seed=3).T, SR, subtype="FLOAT")
        for label, name, codec, rate in FORMATS:
            times = interleaved_medians({
                "ours": lambda: ours(source, folder, name),
                "peer": lambda: peer(source, folder, name, codec, rate),
            }, rounds)
            rows.append([
                label, ms(times["ours"]), ms(times["peer"]), ratio(times["peer"], times["ours"]),
                verdict(decoded_figures(folder / name)), verdict(decoded_figures(folder / ("peer-" + name))),
            ])
    print(table(["format", "ours", "ffmpeg-normalize", "speed-up", "ours, decoded", "peer, decoded"], rows))
    print(f"\n16 s stereo 32 kHz clip to {TARGET} LUFS / {CEILING} dBTP; medians of {rounds} alternating rounds; "
          f"decoded by ffmpeg, measured by libebur128. Machine: {machine()}")


if __name__ == "__main__":
    main()
