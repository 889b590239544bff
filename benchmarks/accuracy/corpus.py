"""The labelled evaluation corpus: which tracks, their labels, their rendered files.

Groups (``Track.group``): "rendered" (grooves and Bach chorales rendered note by note,
the original corpus), "music21" (quartets, piano, dance tunes, folk songs, Lieder: see
:mod:`.styles`), "produced" (LMMS and Hydrogen projects rendered by their own programs:
:mod:`.produced`) and "generator" (this product's procedural engine). ``holdout`` marks
the tracks kept out of the development of the tempo and key analysis: the benchmark
seed's rendered tracks, the produced projects whose source hashes odd, the generator
tracks of odd index; the music21 styles were added after it and are all held out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from . import chorales, grooves, midi, produced, render, styles

GROOVE_SECONDS = 16.0
GENERATOR_SECONDS = 16.0


@dataclass(frozen=True)
class Track:
    """One track and its exact labels (``bpm`` in quarter notes per minute; ``key`` None
    where the source states none)."""

    name: str
    kind: str          # "groove" or "chorale"
    style: str         # the genre, or the chorale's instrument
    bpm: float
    key: str | None
    path: Path
    source: str = ""   # where it comes from (corpus file, project file, prompt)
    group: str = "rendered"
    licence: str = ""
    holdout: bool = True


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
        tracks.append(Track(spec.name, "groove", spec.genre, spec.bpm, spec.key, path,
                            f"generated groove, seed {seed}", licence="this repository"))
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
        tracks.append(Track(spec.name, "chorale", spec.instrument, spec.bpm, spec.key, wav, spec.source,
                            licence="public domain (music21 corpus)"))
        index += 1
        if progress:
            progress(len(tracks), n_tracks)
    return tracks


def build_extended(seed: int, cache_dir: Path, progress=None) -> tuple[list[Track], list[str]]:
    """The music21 styles, the produced projects and the generator's tracks.

    Returns the tracks and the groups left out, each with what to install."""
    import hashlib

    missing = []
    tracks: list[Track] = []
    for spec in styles.build_specs(seed):
        data = midi.midi_bytes(list(spec.notes), spec.bpm, spec.programs)
        path = render.render(data, cache_dir / "renders", styles.EXCERPT_SECONDS)
        tracks.append(Track(spec.name, "music21", spec.style, spec.bpm, spec.key, path, spec.source,
                            "music21", "public domain (music21 corpus)", True))
    if progress:
        progress(len(tracks))
    absent = produced.check_tools()
    if absent:
        missing.append(f"produced ({', '.join(absent)}: apt-get install lmms hydrogen)")
    else:
        for item in produced.hydrogen_tracks(cache_dir / "produced") + produced.lmms_tracks(cache_dir / "produced"):
            odd = int(hashlib.sha1(item.source.encode()).hexdigest(), 16) % 2 == 1
            tracks.append(Track(item.name, "produced", item.style, item.bpm, None, item.path, item.source,
                                "produced", item.licence, odd))
    if progress:
        progress(len(tracks))
    tracks += generator_tracks(cache_dir / "generator")
    return tracks, missing


def generator_tracks(cache_dir: Path, count: int = 48) -> list[Track]:
    """``count`` procedural tracks (16 s) over all genres, at random keys; labels from the engine."""
    import numpy as np
    import soundfile as sf

    from services.generation import MusicGenerationEngine
    from services.generation.prompt import GENRES

    engine = MusicGenerationEngine()
    rng = random.Random(5)
    tracks = []
    cache_dir.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        genre = GENRES[index % len(GENRES)]
        key = f"{grooves.PITCH_NAMES[rng.randrange(12)]} {rng.choice(['major', 'minor'])}"
        prompt = f"{genre} in {key}"
        path = cache_dir / f"gen-{index:02d}.wav"
        audio, _ = engine.generate_audio(prompt, duration=GENERATOR_SECONDS, seed=100 + index)
        spec = engine.last_spec
        if not path.is_file():
            partial = path.with_name(f".{path.name}.part.wav")
            sf.write(partial, np.asarray(audio, dtype=np.float32).T, engine.sample_rate, subtype="PCM_16")
            partial.replace(path)
        tracks.append(Track(f"gen-{index:02d}", "generator", genre, spec.bpm, spec.key, path,
                            f"dgx-music procedural: {prompt!r}, seed {100 + index}", "generator",
                            "this repository", index % 2 == 1))
    return tracks
