"""The labelled evaluation corpus: which tracks, their labels, their rendered files."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from . import chorales, grooves, midi, render

GROOVE_SECONDS = 16.0


@dataclass(frozen=True)
class Track:
    """One rendered track and its exact labels (``bpm`` in quarter notes per minute)."""

    name: str
    kind: str          # "groove" or "chorale"
    style: str         # the genre, or the chorale's instrument
    bpm: float
    key: str
    path: Path
    source: str = ""   # the chorale's corpus file


def build(n_tracks: int, seed: int, cache_dir: Path, progress=None) -> list[Track]:
    """Render (or reuse) ``n_tracks`` tracks: two thirds grooves over all genres, one third chorales."""
    render.check_tools()
    n_chorales = n_tracks // 3
    n_grooves = n_tracks - n_chorales
    tracks: list[Track] = []
    wav_dir = cache_dir / "renders"
    for index in range(n_grooves):
        genre = grooves.GENRES[index % len(grooves.GENRES)]
        rng = random.Random(f"{seed}/groove/{index}")
        spec = grooves.make_groove(genre, rng, f"groove-{index:03d}", GROOVE_SECONDS)
        data = midi.midi_bytes(list(spec.notes), spec.bpm, spec.programs)
        path = render.render(data, wav_dir, GROOVE_SECONDS)
        tracks.append(Track(spec.name, "groove", spec.genre, spec.bpm, spec.key, path))
        if progress:
            progress(len(tracks), n_tracks)
    paths = chorales.chorale_paths()
    random.Random(f"{seed}/chorale-order").shuffle(paths)
    index = 0
    for path in paths:
        if index >= n_chorales:
            break
        parsed = chorales.read_chorale(path)
        if parsed is None:
            continue
        rng = random.Random(f"{seed}/chorale/{index}")
        spec = chorales.make_chorale(path, parsed, rng, f"chorale-{index:03d}")
        data = midi.midi_bytes(list(spec.notes), spec.bpm, spec.programs)
        wav = render.render(data, wav_dir, None)
        tracks.append(Track(spec.name, "chorale", spec.instrument, spec.bpm, spec.key, wav, spec.source))
        index += 1
        if progress:
            progress(len(tracks), n_tracks)
    return tracks
