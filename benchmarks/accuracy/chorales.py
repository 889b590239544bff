"""Bach chorales from the music21 corpus, transposed and re-timed, with exact labels.

Key label: the key signature names a major key and its relative minor; the final bass
note decides which (Bach also writes minor keys with one flat fewer, the "Dorian"
signature: a final bass a whole tone above the major tonic is read as that minor key).
Chorales whose last bass note fits none of these (modal endings on a half cadence),
that change key signature, or that have other than four voices are left out. The
label is transposed with the notes. Tempo label: the quarter-note BPM the MIDI file is
written at (fermatas are not held, so the tempo is constant).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .grooves import PITCH_NAMES
from .midi import Note

PROGRAMS = {"church organ": 19, "reed organ": 20, "strings": 48, "choir": 52}
BPM_RANGE = (60.0, 104.0)


@dataclass(frozen=True)
class ChoraleSpec:
    """What a chorale track is: its labels and the notes to render."""

    name: str
    source: str
    bpm: float
    key: str
    notes: tuple[Note, ...]
    programs: dict[int, int]
    instrument: str


def chorale_paths() -> list[str]:
    """Corpus paths of the Bach works music21 ships, sorted for a stable order."""
    from music21 import corpus

    return sorted(str(path) for path in corpus.getComposer("bach"))


def read_chorale(path: str) -> tuple[list[tuple[int, float, float, int]], int, str] | None:
    """Parse one chorale: ([(voice, start, duration, pitch)], tonic pitch class, mode) or None.

    ``start`` and ``duration`` are in quarter notes. None when the piece does not fit
    the labelling rule above.
    """
    from music21 import converter

    score = converter.parse(path)
    parts = list(score.parts)
    if len(parts) != 4:
        return None
    signatures = {ks.sharps for ks in score.recurse().getElementsByClass("KeySignature")}
    if len(signatures) != 1:
        return None
    sharps = signatures.pop()
    major_tonic = (7 * sharps) % 12
    events: list[tuple[int, float, float, int]] = []
    for voice, part in enumerate(parts):
        for element in part.stripTies().flatten().notes:
            start = float(element.offset)
            duration = float(element.quarterLength)
            if duration <= 0:
                continue
            for pitch in element.pitches:
                events.append((voice, start, duration, int(pitch.midi)))
    bass = [e for e in events if e[0] == 3]
    if not bass:
        return None
    last_start = max(e[1] for e in bass)
    final_bass = min(e[3] for e in bass if e[1] == last_start) % 12
    if final_bass == major_tonic:
        return events, major_tonic, "major"
    if final_bass == (major_tonic + 9) % 12:
        return events, final_bass, "minor"
    if final_bass == (major_tonic + 2) % 12:
        return events, final_bass, "minor"
    return None


def make_chorale(path: str, parsed: tuple[list[tuple[int, float, float, int]], int, str], rng: random.Random, name: str) -> ChoraleSpec:
    """Transpose ``parsed`` by a random interval and give it a random tempo and instrument."""
    from .midi import exact_bpm

    events, tonic, mode = parsed
    shift = rng.randint(-5, 6)
    bpm = exact_bpm(round(rng.uniform(*BPM_RANGE), 2))
    instrument = rng.choice(sorted(PROGRAMS))
    lead_in = rng.uniform(0.0, 0.5)
    notes = tuple(
        Note(voice, lead_in + start, duration * 0.97, pitch + shift, 84 if voice == 3 else 76)
        for voice, start, duration, pitch in events
    )
    key = f"{PITCH_NAMES[(tonic + shift) % 12]} {mode}"
    programs = {voice: PROGRAMS[instrument] for voice in range(4)}
    source = path.replace("\\", "/").split("/")[-1]
    return ChoraleSpec(name, source, bpm, key, notes, programs, instrument)
