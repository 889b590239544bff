"""MIDI -> 32 kHz stereo WAV through the FluidSynth command line, cached by content hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 32_000
GAIN = 0.6


def check_tools() -> None:
    """Raise ``RuntimeError`` naming what to install when FluidSynth or the soundfont is missing."""
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("the fluidsynth command is missing: apt-get install fluidsynth")
    if not SOUNDFONT.is_file():
        raise RuntimeError(f"{SOUNDFONT} is missing: apt-get install fluid-soundfont-gm")


def render(midi: bytes, cache_dir: Path, max_seconds: float | None) -> Path:
    """Render ``midi`` and return the cached WAV, trimmed to ``max_seconds`` (None keeps all).

    The cache key covers the MIDI bytes and every render setting, so a changed track is
    rendered again and an unchanged one never is.
    """
    import soundfile as sf

    digest = hashlib.sha1(midi + f"{SOUNDFONT}|{SAMPLE_RATE}|{GAIN}|{max_seconds}".encode()).hexdigest()[:20]
    target = cache_dir / f"{digest}.wav"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "track.mid"
        raw = Path(tmp) / "raw.wav"
        mid.write_bytes(midi)
        subprocess.run(
            ["fluidsynth", "-ni", "-q", "-g", str(GAIN), "-r", str(SAMPLE_RATE), "-T", "wav",
             "-F", str(raw), str(SOUNDFONT), str(mid)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        audio, rate = sf.read(raw, dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"fluidsynth wrote {rate} Hz, expected {SAMPLE_RATE}")
        if max_seconds is not None:
            audio = audio[: int(round(max_seconds * SAMPLE_RATE))]
        partial = cache_dir / f".{digest}.part.wav"
        sf.write(partial, audio, SAMPLE_RATE, subtype="PCM_16")
        os.replace(partial, target)  # the cache holds whole renders only
    return target
