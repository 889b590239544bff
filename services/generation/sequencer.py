"""The score of a procedural song: which drum hits and notes fall where, in beats.

Positions are in beats (quarter notes) from the start; step ``s`` of the 16th-note grid
is at ``s / 4`` beats, then moved by swing (off-beats only: beats never move). Bars are
grouped in 8-bar sections; a song of up to 16 bars plays everything from the first bar,
a longer one runs intro, A, B and break sections. Melodies are built from 2-bar motifs
(A, its sequence A', a contrasting B, and A again ending on the tonic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .styles import Style
from .theory import Chord, Key, diatonic_chord, voice_chord

__all__ = ["DrumHit", "NoteEvent", "Score", "arrange", "swing_position", "fit_pattern"]

_DRUM_VELOCITY = {"X": 1.0, "x": 0.78, "o": 0.45, "r": 0.7, "t": 0.6}
_CHORD_VELOCITY = {"X": 1.0, "x": 0.75}
_BASS_REGISTER = {"808": 28, "sub_bass": 28, "reese": 31, "wobble": 31, "upright": 31}
_CHORD_REGISTER = {"guitar": (45, 69), "piano": (50, 74), "epiano": (50, 74), "stab": (55, 79), "organ": (55, 79)}
_MELODY_CENTRE = {"flute": 74, "strings": 72, "lead": 71, "bell": 76, "pluck": 74}
_MELODY_RANGE = (-5, 7)  # scale degrees around the tonic (0): a fourth below to an octave above


@dataclass(frozen=True)
class DrumHit:
    """A drum ``voice`` hit at ``start`` beats with ``velocity`` in (0, 1.2]."""

    voice: str
    start: float
    velocity: float


@dataclass(frozen=True)
class NoteEvent:
    """A pitched note of ``part`` ("bass", "chords", "melody"); times in beats, pitch in MIDI."""

    part: str
    start: float
    length: float
    midi: int
    velocity: float
    pan: float = 0.0
    glide_from: Optional[int] = None


@dataclass(frozen=True)
class Score:
    """Everything to render: drum hits, notes, the chord and section of each bar."""

    hits: tuple
    notes: tuple
    bar_chords: tuple
    sections: tuple
    bars: int


def swing_position(step: float, swing: float, unit: int) -> float:
    """Beat position of 16th-note ``step`` with ``swing`` on pairs of ``unit`` notes (16 or 8)."""
    beat = step / 4.0
    if swing <= 0.0:
        return beat
    window = 0.5 if unit == 16 else 1.0
    pairs, within = divmod(beat / window, 1.0)
    middle = 0.5 + 0.5 * swing
    if within < 0.5:
        warped = within * middle / 0.5
    else:
        warped = middle + (within - 0.5) * (1.0 - middle) / 0.5
    return (pairs + warped) * window


def fit_pattern(pattern: str, steps: int) -> str:
    """``pattern`` cut or extended (repeating its last beat) to ``steps`` 16th-note steps."""
    last_beat = pattern[-4:]
    while len(pattern) < steps:
        pattern += last_beat
    return pattern[:steps]


def _section_plan(bars: int) -> list:
    if bars <= 16:
        return ["A"] * bars
    cycle = ["A", "B", "break", "A", "B", "A", "break"]
    plan = []
    for bar in range(bars):
        section = bar // 8
        plan.append("intro" if section == 0 else cycle[(section - 1) % len(cycle)])
    return plan


class _Timing:
    def __init__(self, style: Style, beats_per_bar: int):
        self.swing = style.swing
        self.unit = style.swing_unit
        self.steps = 4 * beats_per_bar
        self.beats_per_bar = beats_per_bar

    def beat(self, bar: int, step: float) -> float:
        return bar * self.beats_per_bar + swing_position(step, self.swing, self.unit)


def arrange(song, style: Style, rng: np.random.Generator, melody_rng: np.random.Generator) -> Score:
    """Build the :class:`Score` of ``song`` (a resolved ``SongSpec``) in ``style``."""
    key = Key(song.tonic, song.mode)
    timing = _Timing(style, song.beats_per_bar)
    bars = int(math.ceil(song.duration * song.bpm / 60.0 / song.beats_per_bar)) + 1
    plan = _section_plan(bars)
    main = [diatonic_chord(key, numeral, style.sevenths) for numeral in song.progression.split()]
    other = [diatonic_chord(key, numeral, style.sevenths) for numeral in song.alternate.split()]
    bar_chords = []
    for bar in range(bars):
        progression = other if plan[bar] == "B" else main
        bar_chords.append(progression[(bar // style.chord_bars) % len(progression)])

    hits = _drums(style, timing, plan, rng)
    notes = _bass(style, timing, plan, bar_chords, key)
    notes += _chords(style, timing, bar_chords)
    notes += _melody(style, timing, plan, bar_chords, key, melody_rng)
    return Score(tuple(hits), tuple(notes), tuple(bar_chords), tuple(plan), bars)


def _drums(style: Style, timing: _Timing, plan: list, rng) -> list:
    hits = []
    for bar, section in enumerate(plan):
        for voice, patterns in style.drums.items():
            if section == "break" and voice in ("kick", "snare", "clap"):
                continue
            pattern = fit_pattern(patterns[bar % len(patterns)], timing.steps)
            if style.fills and voice in ("snare", "clap") and bar % 4 == 3 and section != "break":
                fill = "xxXX" if bar % 8 == 7 else "..oo"
                pattern = pattern[:-4] + "".join(f if f != "." else p for f, p in zip(fill, pattern[-4:]))
            for step, char in enumerate(pattern):
                if char == ".":
                    continue
                count = {"r": 2, "t": 3}.get(char, 1)
                for sub in range(count):
                    velocity = float(np.clip(_DRUM_VELOCITY[char] * (1.0 + 0.07 * rng.standard_normal()), 0.2, 1.2))
                    hits.append(DrumHit(voice, timing.beat(bar, step + sub / count), velocity))
        if style.crash and bar % 8 == 0 and section != "break":
            hits.append(DrumHit("crash", timing.beat(bar, 0), 0.8))
    return hits


def _runs(pattern: str, symbols: str):
    """Yield (step, symbol, length in steps) for each note of a note/hold/rest pattern."""
    for step, char in enumerate(pattern):
        if char in symbols:
            length = 1
            while step + length < len(pattern) and pattern[step + length] == "-":
                length += 1
            yield step, char, length


def _bass(style: Style, timing: _Timing, plan: list, bar_chords: list, key: Key) -> list:
    low = _BASS_REGISTER.get(style.bass_voice, 36)
    notes = []
    previous = None
    for bar, section in enumerate(plan):
        if section == "break":
            previous = None
            continue
        chord = bar_chords[bar]
        following = bar_chords[bar + 1] if bar + 1 < len(bar_chords) else bar_chords[0]
        root = low + (chord.root - low) % 12
        next_root = low + (following.root - low) % 12
        pattern = fit_pattern(style.bass[bar % len(style.bass)], timing.steps)
        for step, char, length in _runs(pattern, "R53O7LA"):
            midi = _bass_pitch(char, root, chord, next_root, key)
            start = timing.beat(bar, step)
            end = timing.beat(bar, step + length)
            glide = previous if previous is not None and previous != midi else None
            notes.append(NoteEvent("bass", start, end - start, midi, 0.9 if step % 4 == 0 else 0.78, 0.0, glide))
            previous = midi
    return notes


def _bass_pitch(char: str, root: int, chord: Chord, next_root: int, key: Key) -> int:
    if char == "R":
        return root
    if char == "5":
        return root + chord.fifth
    if char == "O":
        return root + 12
    if char == "3":
        return root + chord.third
    if char == "7":
        return root + ((chord.tones[3] - chord.root) % 12 if len(chord.tones) > 3 else 12)
    if char == "L":
        return root + chord.fifth - 12
    # "A": approach the next root from the scale step below it (a semitone if none is near)
    for distance in (1, 2):
        if (next_root - distance) % 12 in key.scale:
            return next_root - distance
    return next_root - 1


def _chords(style: Style, timing: _Timing, bar_chords: list) -> list:
    low, high = _CHORD_REGISTER.get(style.chord_voice, (52, 76))
    notes = []
    previous = None
    for bar, chord in enumerate(bar_chords):
        voicing = voice_chord(chord, low, high, previous)
        previous = voicing
        pattern = fit_pattern(style.chords[bar % len(style.chords)], timing.steps)
        for step, char, length in _runs(pattern, "Xx"):
            start = timing.beat(bar, step)
            end = timing.beat(bar, step + length)
            for index, midi in enumerate(voicing):
                pan = -0.35 + 0.7 * index / max(1, len(voicing) - 1)
                notes.append(NoteEvent("chords", start, end - start, midi, _CHORD_VELOCITY[char], pan))
    return notes


@dataclass
class _Motif:
    onsets: list  # (slot, length in slots)
    steps: list  # scale-degree moves between successive notes


def _make_motif(slots: int, density: float, per_beat: float, rng) -> _Motif:
    onsets = []
    for slot in range(slots):
        on_beat = slot % max(1, int(round(per_beat))) == 0
        weight = 1.7 if slot == 0 else (1.2 if on_beat else 0.75)
        if rng.random() < min(0.95, density * weight):
            onsets.append(slot)
    if len(onsets) < 2:
        onsets = sorted({0, slots // 2} | set(onsets))
    lengths = [b - a for a, b in zip(onsets, onsets[1:])] + [slots - onsets[-1]]
    moves = rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3], size=len(onsets)).tolist()
    return _Motif(list(zip(onsets, lengths)), moves)


def _degree_midi(degree: int, key: Key, base: int, raised_seventh: bool) -> int:
    octave, index = divmod(degree, 7)
    scale = list(key.scale)
    if raised_seventh:
        scale[6] = (scale[6] + 1) % 12
    return base + 12 * octave + (scale[index] - key.tonic) % 12


_TRIAD_PULL = {0: 1.0, 2: 0.6, 4: 0.6}


def _nearest(degrees: list, target: int) -> int:
    """The degree of ``degrees`` nearest ``target``, pulled toward the tonic triad (the
    tonic most): it is what makes a melody sound "in" its key."""
    return min(degrees, key=lambda d: (abs(d - target) - _TRIAD_PULL.get(d % 7, 0.0), d))


def _reflect(degree: int, low: int, high: int) -> int:
    """Fold ``degree`` back into [low, high] (a melody turns around at the edge of its range)."""
    while not low <= degree <= high:
        degree = 2 * low - degree if degree < low else 2 * high - degree
    return degree


def _melody(style: Style, timing: _Timing, plan: list, bar_chords: list, key: Key, rng) -> list:
    grid = style.melody_grid
    slots = 2 * timing.steps // grid  # slots per 2-bar phrase
    per_beat = 4 / grid
    centre = _MELODY_CENTRE.get(style.melody_voice, 74)
    base = centre + (key.tonic - centre + 6) % 12 - 6  # the tonic (degree 0) near the centre
    motifs = {}
    notes = []
    current = 2
    bars = len(plan)
    for phrase_start in range(0, bars, 2):
        section = plan[phrase_start]
        if section == "intro":
            continue
        kind = "B" if section == "B" else "A"
        if kind not in motifs:
            motifs[kind] = (_make_motif(slots, style.melody_density, per_beat, rng),
                            _make_motif(slots, style.melody_density, per_beat, rng))
        first, contrast = motifs[kind]
        role = (phrase_start // 2) % 4
        motif = contrast if role == 2 else first
        for number, ((slot, length), move) in enumerate(zip(motif.onsets, motif.steps)):
            step = slot * grid
            bar = phrase_start + step // timing.steps
            if bar >= bars:
                break
            chord = bar_chords[bar]
            raised = key.mode == "minor" and (key.scale[6] + 1) % 12 in chord.tones
            chord_degrees = [d for d in range(_MELODY_RANGE[0], _MELODY_RANGE[1] + 1)
                             if _degree_midi(d, key, base, raised) % 12 in chord.tones]
            if number == 0:
                target = current + 1 if role == 1 else current  # A' starts a step higher
                current = _nearest(chord_degrees, target)
            else:
                current += move
            strong = step % timing.steps == 0 or (step % 4 == 0 and length * grid >= 4)
            if strong:
                current = _nearest(chord_degrees, current)
            last = number == len(motif.onsets) - 1
            if last and role == 3:
                current = min((0, 7), key=lambda d: abs(d - current))
            current = _reflect(current, *_MELODY_RANGE)
            midi = _degree_midi(current, key, base, raised)
            start = timing.beat(phrase_start, step)
            end = timing.beat(phrase_start, step + min(length * grid, 8))
            velocity = (0.95 if step % 4 == 0 else 0.78) * (1.0 + 0.05 * rng.standard_normal())
            notes.append(NoteEvent("melody", start, 0.92 * (end - start), midi, float(velocity), 0.15))
    return notes
