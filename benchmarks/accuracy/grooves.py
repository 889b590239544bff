"""Generated grooves with exact tempo and key labels: drums, bass, chords and a lead per genre.

Labelling conventions (those of DJ/producer tempo tags, e.g. the Beatport-derived
GiantSteps tempo set, and of MIREX key evaluation):

- ``bpm`` is the notated quarter-note tempo, the one a producer types into a DAW:
  trap is written at 130-160 with the snare on beat 3 (half-time feel), drum and bass
  at 164-178 with the snare on beats 2 and 4; a 3/4 waltz counts quarter notes.
- ``key`` is the tonic and mode the chords are written in: every progression starts on
  the tonic chord and the bass rests on the tonic; minor keys use the natural minor
  scale, with a major dominant in some progressions (harmonic minor).

Each track is drawn from its own ``random.Random`` seeded by (corpus seed, index), so a
track does not change when the corpus grows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .midi import DRUM_CHANNEL, Note

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)

KICK, RIM, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 36, 37, 38, 39, 42, 44, 46
CRASH, RIDE, TAMBOURINE, COWBELL, SHAKER, LOW_TOM = 49, 51, 54, 56, 70, 45

BASS, CHORDS, LEAD = 0, 1, 2

# Progressions as (scale degree 0-6, quality override or None); a bar (or two) per chord.
MAJOR_PROGRESSIONS = (
    ((0, None), (4, None), (5, None), (3, None)),
    ((0, None), (3, None), (4, None), (0, None)),
    ((0, None), (5, None), (3, None), (4, None)),
    ((0, None), (3, None), (0, None), (4, None)),
    ((0, None), (5, None), (1, None), (4, None)),
    ((0, None), (2, None), (3, None), (4, None)),
)
MINOR_PROGRESSIONS = (
    ((0, None), (5, None), (2, None), (6, None)),
    ((0, None), (3, None), (4, "major"), (0, None)),
    ((0, None), (6, None), (5, None), (6, None)),
    ((0, None), (3, None), (6, None), (2, None)),
    ((0, None), (5, None), (3, None), (4, "major")),
    ((0, None), (0, None), (3, None), (4, "major")),
)


@dataclass(frozen=True)
class Genre:
    """A style: tempo range (BPM), meter, drum pattern, instruments, feel."""

    name: str
    bpm_range: tuple[float, float]
    beats_per_bar: int
    # drum steps per bar on a 16th grid (12 steps for 3/4): {drum note: [(step, velocity), ...]}
    drums: dict[int, tuple[tuple[int, int], ...]]
    bass_program: int
    chord_program: int
    lead_program: int
    bass_steps: tuple[int, ...]       # 16th steps where the bass plays the chord root
    chord_steps: tuple[int, ...]      # 16th steps where the chord is struck
    chord_length: float               # beats each chord stroke lasts
    lead_step: int                    # lead rhythm grid in 16th steps (2 = eighths, 4 = quarters)
    swing: float = 0.5                # position of the off 16th/8th within its pair (0.5 straight)
    human_ms: float = 0.0             # timing jitter (standard deviation, milliseconds)
    sevenths: bool = False            # chords with sevenths (jazz/lofi voicing)
    bars_per_chord: int = 1


def _steps(*pairs: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    return tuple(pairs)


def _every(start: int, step: int, count: int, velocity: int) -> tuple[tuple[int, int], ...]:
    return tuple((s, velocity) for s in range(start, count, step))


GENRES: tuple[Genre, ...] = (
    Genre(
        "house", (118.0, 130.0), 4,
        {KICK: _every(0, 4, 16, 112), CLAP: _steps((4, 96), (12, 96)),
         OPEN_HAT: _every(2, 4, 16, 78), SHAKER: _every(0, 1, 16, 40)},
        bass_program=38, chord_program=4, lead_program=80,
        bass_steps=(2, 6, 10, 14), chord_steps=(3, 6, 11, 14), chord_length=0.4, lead_step=4,
    ),
    Genre(
        "techno", (124.0, 140.0), 4,
        {KICK: _every(0, 4, 16, 118), CLOSED_HAT: _every(0, 1, 16, 52), OPEN_HAT: _every(2, 4, 16, 70),
         CLAP: _steps((4, 80), (12, 80))},
        bass_program=39, chord_program=90, lead_program=81,
        bass_steps=(2, 3, 6, 7, 10, 11, 14, 15), chord_steps=(0,), chord_length=3.5, lead_step=2,
    ),
    Genre(
        "trap", (130.0, 160.0), 4,
        {KICK: _steps((0, 118), (7, 100), (10, 110)), CLAP: _steps((8, 112),), SNARE: _steps((8, 90),),
         CLOSED_HAT: _every(0, 2, 16, 74) + _steps((13, 52), (15, 58))},
        bass_program=38, chord_program=88, lead_program=11,
        bass_steps=(0, 7, 10), chord_steps=(0,), chord_length=3.8, lead_step=4,
    ),
    Genre(
        "hiphop", (82.0, 98.0), 4,
        {KICK: _steps((0, 115), (7, 95), (10, 105)), SNARE: _steps((4, 110), (12, 110)),
         CLOSED_HAT: _every(0, 2, 16, 70) + _steps((15, 40),)},
        bass_program=33, chord_program=0, lead_program=56,
        bass_steps=(0, 7, 10), chord_steps=(0, 10), chord_length=1.2, lead_step=4,
        swing=0.56, human_ms=5.0,
    ),
    Genre(
        "drum and bass", (164.0, 178.0), 4,
        {KICK: _steps((0, 118), (10, 108)), SNARE: _steps((4, 115), (12, 115), (7, 45), (15, 40)),
         CLOSED_HAT: _every(0, 2, 16, 72), RIDE: _every(2, 4, 16, 55)},
        bass_program=38, chord_program=89, lead_program=81,
        bass_steps=(0, 10), chord_steps=(0,), chord_length=3.8, lead_step=4,
    ),
    Genre(
        "rock", (96.0, 160.0), 4,
        {KICK: _steps((0, 115), (8, 110), (10, 90)), SNARE: _steps((4, 112), (12, 112)),
         CLOSED_HAT: _every(0, 2, 16, 78)},
        bass_program=34, chord_program=29, lead_program=30,
        bass_steps=(0, 2, 4, 6, 8, 10, 12, 14), chord_steps=(0, 6, 8, 14), chord_length=0.45, lead_step=4,
        human_ms=6.0,
    ),
    Genre(
        "reggae", (68.0, 92.0), 4,
        {KICK: _steps((8, 110),), RIM: _steps((8, 100),), CLOSED_HAT: _every(0, 2, 16, 66)},
        bass_program=33, chord_program=16, lead_program=22,
        bass_steps=(0, 3, 6, 8, 11), chord_steps=(4, 12), chord_length=0.3, lead_step=4,
        swing=0.54, human_ms=6.0,
    ),
    Genre(
        "lofi", (70.0, 90.0), 4,
        {KICK: _steps((0, 108), (7, 80), (10, 96)), SNARE: _steps((4, 96), (12, 96)),
         CLOSED_HAT: _every(0, 2, 16, 60) + _steps((5, 30), (13, 30))},
        bass_program=32, chord_program=4, lead_program=73,
        bass_steps=(0, 7, 10), chord_steps=(0,), chord_length=3.6, lead_step=4,
        swing=0.6, human_ms=7.0, sevenths=True,
    ),
    Genre(
        "ambient", (60.0, 90.0), 4,
        {},
        bass_program=89, chord_program=91, lead_program=46,
        bass_steps=(0,), chord_steps=(0,), chord_length=7.8, lead_step=4,
        human_ms=4.0, bars_per_chord=2,
    ),
    Genre(
        "waltz", (90.0, 160.0), 3,
        {KICK: _steps((0, 96),), SNARE: _steps((4, 50), (8, 50)), RIDE: _every(0, 4, 12, 60)},
        bass_program=32, chord_program=0, lead_program=40,
        bass_steps=(0,), chord_steps=(4, 8), chord_length=0.8, lead_step=4,
        human_ms=6.0,
    ),
)


@dataclass(frozen=True)
class GrooveSpec:
    """What a groove track is: its labels and the notes to render."""

    name: str
    genre: str
    bpm: float
    key: str
    notes: tuple[Note, ...]
    programs: dict[int, int]


def _chord_pitches(scale: tuple[int, ...], degree: int, quality: str | None, sevenths: bool) -> list[int]:
    """Semitones above the tonic (not reduced to an octave) of the triad or seventh chord on ``degree``."""
    def scale_pc(index: int) -> int:
        return scale[index % 7] + 12 * (index // 7)

    root = scale_pc(degree)
    third = scale_pc(degree + 2)
    fifth = scale_pc(degree + 4)
    if quality == "major":
        third = root + 4
        fifth = root + 7
    pitches = [root, third, fifth]
    if sevenths:
        seventh = scale_pc(degree + 6)
        if quality == "major":
            seventh = root + 10
        pitches.append(seventh)
    return pitches


def make_groove(genre: Genre, rng: random.Random, name: str, duration_s: float = 16.0) -> GrooveSpec:
    """Draw one groove of ``genre``: BPM, key, progression, humanisation, all from ``rng``."""
    from .midi import exact_bpm

    bpm = exact_bpm(round(rng.uniform(*genre.bpm_range), 2))
    tonic = rng.randrange(12)
    minor = rng.random() < 0.5
    scale = MINOR_SCALE if minor else MAJOR_SCALE
    progression = rng.choice(MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS)
    key = f"{PITCH_NAMES[tonic]} {'minor' if minor else 'major'}"

    beat_s = 60.0 / bpm
    bar_beats = genre.beats_per_bar
    steps_per_bar = 4 * bar_beats
    n_bars = int(duration_s / (bar_beats * beat_s)) + 2
    human = genre.human_ms / 1000.0 / beat_s  # jitter in beats
    start_offset = rng.uniform(0.0, 0.3)  # a little silence before the first beat, in beats

    def at(bar: int, step: int) -> float:
        pair, odd = divmod(step, 2)
        position = pair * 0.5 + (genre.swing * 0.5 if odd else 0.0)
        return start_offset + bar * bar_beats + position + (rng.gauss(0.0, human) if human else 0.0)

    notes: list[Note] = []
    # the genre's drum pattern every bar, a crash on phrase starts (4-bar phrases)
    for bar in range(n_bars):
        for drum, hits in genre.drums.items():
            for step, velocity in hits:
                notes.append(Note(DRUM_CHANNEL, at(bar, step), 0.25, drum, velocity + rng.randint(-8, 8)))
        if genre.drums and bar % 4 == 0 and genre.name not in ("techno", "house", "trap"):
            notes.append(Note(DRUM_CHANNEL, at(bar, 0), 1.0, CRASH, 80 + rng.randint(-8, 8)))
        if genre.name == "trap" and rng.random() < 0.5:  # a hi-hat roll in 32nds on beat 4
            for k in range(4):
                notes.append(Note(DRUM_CHANNEL, start_offset + bar * 4 + 3 + k * 0.125, 0.1, CLOSED_HAT, 55 + 5 * k))

    tonic_octave = 48 + tonic  # C3..B3 region for chords
    bass_base = 36 + tonic if tonic < 7 else 24 + tonic
    melody_scale = [60 + tonic + s for s in scale] + [72 + tonic + s for s in scale] + [84 + tonic]
    melody_index = rng.randrange(3, 8)
    for bar in range(n_bars):
        degree, quality = progression[(bar // genre.bars_per_chord) % len(progression)]
        chord = _chord_pitches(scale, degree, quality, genre.sevenths)
        # voice the chord in the octave above C3 + tonic, lowest note first
        voiced = sorted(tonic_octave + (pc % 12) - (12 if tonic_octave + pc % 12 > 64 else 0) for pc in chord)
        root = bass_base + (chord[0] % 12)
        if root > 50:
            root -= 12
        if bar % genre.bars_per_chord == 0:
            for step in genre.chord_steps:
                start = at(bar, step)
                for pitch in voiced:
                    notes.append(Note(CHORDS, start, genre.chord_length, pitch, 70 + rng.randint(-6, 6)))
            for i, step in enumerate(genre.bass_steps):
                following = genre.bass_steps[i + 1] if i + 1 < len(genre.bass_steps) else steps_per_bar * genre.bars_per_chord
                length = max(0.2, 0.9 * (following - step) / 4.0)
                pitch = root + (7 if genre.name == "reggae" and i == 2 else 0)
                notes.append(Note(BASS, at(bar, step), length, pitch, 96 + rng.randint(-8, 8)))
        # lead: chord tones on strong steps, scale steps between, some rests
        chord_pcs = {pc % 12 for pc in chord}
        for step in range(0, steps_per_bar, genre.lead_step):
            if rng.random() < 0.25:
                continue
            strong = step % (2 * genre.lead_step) == 0
            move = rng.choice((-2, -1, -1, 0, 1, 1, 2))
            melody_index = min(len(melody_scale) - 1, max(0, melody_index + move))
            if strong:
                candidates = [i for i, p in enumerate(melody_scale) if (p - tonic) % 12 in chord_pcs]
                if candidates:
                    melody_index = min(candidates, key=lambda i: abs(i - melody_index))
            notes.append(Note(LEAD, at(bar, step), genre.lead_step / 4.0 * 0.9, melody_scale[melody_index], 84 + rng.randint(-8, 8)))

    end = duration_s / beat_s + 1.0
    notes = [n for n in notes if 0.0 <= n.start < end]
    programs = {BASS: genre.bass_program, CHORDS: genre.chord_program, LEAD: genre.lead_program}
    return GrooveSpec(name, genre.name, bpm, key, tuple(notes), programs)
