"""Produced music with exact tempos: Debian's LMMS demo projects and Hydrogen demo songs.

Each project is rendered headless by its own program (``lmms render``, ``h2cli``), so
the sound is the producers' own: synthesizers, samples, effects and mixing for LMMS,
sampled drum kits for Hydrogen. The tempo label is the project file's (LMMS: ``bpm`` on
the ``head`` element; Hydrogen: ``<bpm>``); a project whose tempo is automated or
changes along a timeline is left out. Neither program stores a key, so these tracks
carry none. A 30 s excerpt (like the AI songs the goals are set on) starts a quarter of
the way into the render, past the intros.

Licences (from ``/usr/share/doc/lmms/copyright`` and ``/usr/share/doc/hydrogen-data/copyright``)
are kept per track in :data:`LMMS_LICENCES`; Hydrogen's demo songs and kits are GPL-2+.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

LMMS_PROJECTS = Path("/usr/share/lmms/projects")
HYDROGEN_DATA = Path("/usr/share/hydrogen/data")
EXCERPT_SECONDS = 30.0
RENDER_TIMEOUT = 400
HYDROGEN_JOBS = 8  # h2cli exports in real time but mostly waits: run several at once

# project file name prefix -> licence, per the Debian copyright file (the rest: GPL-2+)
LMMS_LICENCES = {
    "CapDan-ReggaeTry": "Artistic-2", "CapDan-ReggaetonTry": "Artistic-2",
    "CapDan-ZeroSumGame": "Artistic-2", "EsoXLB": "Artistic-2", "Impulslogik": "Artistic-2",
    "Momo64": "Artistic-2", "Oglsdl": "Artistic-2", "Settel": "Artistic-2",
    "Socceroos": "Artistic-2", "TameAnderson": "Artistic-2", "Thomasso": "Artistic-2",
    "Crunk": "Artistic-2", "Greshz": "Artistic-2", "Surrender": "Artistic-2",
    "Saber": "BSD-2-clause", "Alf42red": "CC-BY-SA-3", "CapDan-TwilightArea": "CC-BY-SA-3",
    "Jousboxx": "CC-BY-SA-4", "Skiessi": "CC-BY-SA-4",
}
# Each Hydrogen song is rendered with its own kit and with these (real sampled kits)
HYDROGEN_KITS = ("GMRockKit", "TR808EmulationKit", "HardElectro1")


@dataclass(frozen=True)
class ProducedTrack:
    """A produced excerpt: ``bpm`` from the project file, no key label."""

    name: str
    style: str          # "lmms" or "hydrogen/<kit>"
    bpm: float
    path: Path
    source: str         # the project file, relative to its package's data folder
    licence: str


def check_tools() -> list[str]:
    """The programs that are missing (``lmms``, ``h2cli``), to say what to install."""
    return [tool for tool in ("lmms", "h2cli") if shutil.which(tool) is None]


def lmms_tempo(project: Path) -> float | None:
    """The project's tempo (BPM), or None when it is automated (then stored as an element)."""
    data = project.read_bytes()
    if project.suffix == ".mmpz":
        data = zlib.decompress(data[4:])  # a 4-byte length, then zlib
    text = data.decode("utf-8", "replace")
    head = re.search(r"<head\b[^>]*>", text)
    match = re.search(r'\bbpm="([0-9.]+)"', head.group(0)) if head else None
    return float(match.group(1)) if match else None


def hydrogen_tempo(song: Path) -> float | None:
    """The song's ``<bpm>``, or None when its timeline changes tempo."""
    text = song.read_text("utf-8", "replace")
    match = re.search(r"<bpm>([0-9.]+)</bpm>", text)
    timeline = re.search(r"<timeline>(.*?)</timeline>", text, re.S)
    if timeline and "<bpm>" in timeline.group(1):
        return None
    return float(match.group(1)) if match else None


def _licence(name: str) -> str:
    for prefix, licence in LMMS_LICENCES.items():
        if name.startswith(prefix):
            return licence
    return "GPL-2+"


def _cached_render(key: str, cache_dir: Path, command) -> Path | None:
    """Run ``command(out_path)`` once per ``key``; the cache keeps whole 30 s excerpts only.

    None when the program fails or renders silence."""
    import soundfile as sf

    digest = hashlib.sha1(key.encode()).hexdigest()[:20]
    target = cache_dir / f"{digest}.wav"
    silent = cache_dir / f"{digest}.silent"  # a project that renders silence here (a missing kit)
    if target.is_file():
        return target
    if silent.is_file():
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "render.wav"
        try:
            command(raw)
        except (subprocess.SubprocessError, OSError):
            return None
        if not raw.is_file() or raw.stat().st_size < 1000:
            return None
        audio, rate = sf.read(raw, dtype="float32", always_2d=True)
        start = int(len(audio) * 0.25) if len(audio) > 2 * EXCERPT_SECONDS * rate else 0
        excerpt = audio[start:start + int(EXCERPT_SECONDS * rate)]
        if not len(excerpt) or float(abs(excerpt).max()) < 1e-4:
            silent.touch()
            return None
        partial = cache_dir / f".{digest}.part.wav"
        sf.write(partial, excerpt, rate, subtype="PCM_16")
        os.replace(partial, target)
    return target


def _run(args: list[str]) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=RENDER_TIMEOUT, env=env, stdin=subprocess.DEVNULL)


def lmms_tracks(cache_dir: Path, progress=None) -> list[ProducedTrack]:
    """Every LMMS demo and shorty project with a fixed tempo, rendered and cut."""
    tracks = []
    for project in sorted(LMMS_PROJECTS.glob("demos/**/*.mmp*")) + sorted(LMMS_PROJECTS.glob("shorties/*.mmp*")):
        bpm = lmms_tempo(project)
        if bpm is None:
            continue
        source = str(project.relative_to(LMMS_PROJECTS))
        path = _cached_render(f"lmms|{source}|{project.stat().st_size}|{EXCERPT_SECONDS}", cache_dir,
                              lambda out: _run(["lmms", "--allowroot", "render", str(project),
                                                "-f", "wav", "-o", str(out)]))
        if path is not None:
            tracks.append(ProducedTrack(f"lmms-{project.stem}", "lmms", bpm, path,
                                        f"lmms {source}", _licence(project.stem)))
        if progress:
            progress(len(tracks))
    return tracks


def hydrogen_tracks(cache_dir: Path, progress=None) -> list[ProducedTrack]:
    """Every Hydrogen demo song with a fixed tempo, on its own kit and on :data:`HYDROGEN_KITS`."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    songs = sorted(HYDROGEN_DATA.glob("demo_songs/*.h2song")) + sorted(HYDROGEN_DATA.glob("drumkits/*/*.h2song"))
    for song in songs:
        bpm = hydrogen_tempo(song)
        if bpm is None:
            continue
        source = str(song.relative_to(HYDROGEN_DATA))
        for kit in (None,) + HYDROGEN_KITS:
            args = ["h2cli", "-s", str(song)] + (["-k", kit] if kit else [])
            key = f"hydrogen|{source}|{kit}|{song.stat().st_size}|{EXCERPT_SECONDS}"
            jobs.append((song, source, bpm, kit or "own kit", key, args))

    def render(job):
        *_, key, args = job
        return _cached_render(key, cache_dir, lambda out: _run(args + ["-o", str(out)]))

    tracks = []
    with ThreadPoolExecutor(HYDROGEN_JOBS) as pool:
        for (song, source, bpm, label, _, _), path in zip(jobs, pool.map(render, jobs)):
            if path is not None:
                tracks.append(ProducedTrack(f"h2-{song.stem}-{label.replace(' ', '')}", f"hydrogen ({label})",
                                            bpm, path, f"hydrogen {source}", "GPL-2+"))
            if progress:
                progress(len(tracks))
    return tracks
