"""music21 corpus pieces beyond the chorales: string quartets, piano, Irish dance tunes,
German folk songs and Lieder, with exact labels.

Each piece is parsed with music21, its notes (all parts) written to MIDI at a tempo drawn
from the style's range, and the first 30 s rendered with FluidSynth (:mod:`.render`).
Tempo label: the quarter-note BPM the MIDI file is written at. Pieces in compound or
changing meters (a jig's 6/8 has no quarter-note beat) are left out. Key label, as for
the chorales: the key signature names a major key and its relative minor, and the final
lowest note decides; pieces whose key signature changes, or whose final note is neither
tonic, are left out. The music21 corpus is BSD-3-clause (music21) with the works in the
public domain; the source file is kept per track.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .grooves import PITCH_NAMES
from .midi import Note

EXCERPT_SECONDS = 30.0


@dataclass(frozen=True)
class Style:
    name: str
    sources: tuple[str, ...]     # corpus paths (an ABC opus gives several tunes)
    programs: tuple[int, ...]    # General MIDI program per part (the last one repeats)
    bpm_range: tuple[float, float]
    pieces: int                  # at most this many tracks


STYLES = (
    Style("string quartet", ("mozart/k155/movement1.mxl", "mozart/k156/movement1.mxl", "mozart/k155/movement3.mxl",
                             "haydn/opus1no1/movement1.mxl", "haydn/opus1no1/movement4.mxl",
                             "beethoven/opus18no1/movement1.mxl", "mozart/k458/movement1.mxl",
                             "schumann_robert/opus41no1/movement2.mxl"),
          (40, 40, 41, 42), (84.0, 144.0), 6),
    Style("piano", ("joplin/maple_leaf_rag.mxl", "schumann_clara/polonaise_op1n1.mxl",
                    "schumann_clara/polonaise_op1n2.mxl", "cpebach/h186.mxl", "chopin/mazurka06-2.krn"),
          (0,), (76.0, 132.0), 5),
    Style("Irish dance tune", ("oneills1850/0001-0050.abc", "oneills1850/0051-0100.abc"), (110,), (90.0, 124.0), 6),
    Style("German folk song", ("essenFolksong/altdeu10.abc", "essenFolksong/ballad10.abc"), (73,), (70.0, 120.0), 6),
    Style("Lied", ("schubert/Lindenbaum.xml", "schumann_robert/dichterliebe_no2.xml",
                   "beach/prayer_of_a_tired_child.musicxml", "handel/rinaldo/Lascia_chio_pianga.mxl",
                   "verdi/laDonnaEMobile.mxl"), (52, 0), (56.0, 100.0), 5),
)


@dataclass(frozen=True)
class StyleSpec:
    name: str
    style: str
    source: str
    bpm: float
    key: str
    notes: tuple[Note, ...]
    programs: dict[int, int]


def _scores(source: str):
    """The scores in one corpus file (an ABC opus holds many tunes)."""
    from music21 import corpus, stream

    parsed = corpus.parse(source)
    if isinstance(parsed, stream.Opus):
        return [(f"{source}#{score.metadata.number if score.metadata else i}", score)
                for i, score in enumerate(parsed.scores)]
    return [(source, parsed)]


def read_piece(score) -> tuple[list[tuple[int, float, float, int]], int, str] | None:
    """([(part, start, duration, pitch)], tonic, mode) in quarter notes, or None when the
    piece does not fit the labelling rules of the module docstring."""
    meters = {(ts.numerator, ts.denominator) for ts in score.recurse().getElementsByClass("TimeSignature")}
    if len(meters) != 1 or next(iter(meters))[1] not in (2, 4) or next(iter(meters))[0] not in (2, 3, 4):
        return None
    signatures = {ks.sharps for ks in score.recurse().getElementsByClass("KeySignature")}
    if len(signatures) != 1:
        return None
    major_tonic = (7 * signatures.pop()) % 12
    parts = (list(score.parts) or [score])[:8]  # MIDI channels 0-7 (9 is drums)
    events = []
    for index, part in enumerate(parts):
        for element in part.stripTies().flatten().notes:
            duration = float(element.quarterLength)
            if duration > 0:
                for pitch in element.pitches:
                    events.append((index, float(element.offset), duration, int(pitch.midi)))
    if len(events) < 16:
        return None
    last = max(start for _, start, _, _ in events)
    final = min(pitch for _, start, _, pitch in events if start == last) % 12
    if final == major_tonic:
        return events, major_tonic, "major"
    if final == (major_tonic + 9) % 12:
        return events, final, "minor"
    return None


def build_specs(seed: int) -> list[StyleSpec]:
    """Up to ``Style.pieces`` labelled pieces per style, transposed and timed at random."""
    from .midi import exact_bpm

    specs = []
    for style in STYLES:
        count = 0
        for source in style.sources:
            for name, score in _scores(source):
                if count >= style.pieces:
                    break
                parsed = read_piece(score)
                if parsed is None:
                    continue
                events, tonic, mode = parsed
                rng = random.Random(f"{seed}/{name}")
                shift = rng.randint(-5, 6)
                bpm = exact_bpm(round(rng.uniform(*style.bpm_range), 2))
                limit = EXCERPT_SECONDS * bpm / 60.0 + 1.0  # quarter notes in the excerpt
                notes = tuple(Note(part, start, duration * 0.95, pitch + shift, 80)
                              for part, start, duration, pitch in events if start < limit)
                programs = {part: style.programs[min(part, len(style.programs) - 1)]
                            for part in {n.channel for n in notes}}
                specs.append(StyleSpec(f"{style.name.replace(' ', '-')}-{count:02d}", style.name, name, bpm,
                                       f"{PITCH_NAMES[(tonic + shift) % 12]} {mode}", notes, programs))
                count += 1
            if count >= style.pieces:
                break
    return specs
