"""Music theory for the procedural backend: keys, scales, diatonic chords, voicings.

Pitches are MIDI note numbers (60 = middle C, 69 = A4 = 440 Hz); pitch classes are
0..11 with 0 = C. Keys are major or minor (natural minor; a "V" in a minor key borrows
the raised leading tone of harmonic minor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

__all__ = [
    "MODES",
    "MAJOR_NAMES",
    "MINOR_NAMES",
    "Key",
    "Chord",
    "parse_key",
    "pitch_class",
    "midi_to_hz",
    "diatonic_chord",
    "voice_chord",
]

MODES = ("major", "minor")
MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
"""Conventional key spellings (fewest accidentals; six sharps for pitch class 6)."""

_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_STEPS = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_ROMAN = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}
_NOTE_RE = re.compile(r"^\s*([A-Ga-g])\s*(#|♯|b|♭|-?\s*sharp|-?\s*flat)?\s*$", re.IGNORECASE)
_KEY_RE = re.compile(
    r"^\s*([A-Ga-g])\s*(#|♯|b|♭|-?\s*sharp|-?\s*flat)?\s*(major|minor|maj|min|m)?\s*$"
)


def pitch_class(note: str) -> int:
    """Pitch class (0 = C) of a note name such as "C", "F#", "Bb", "E flat"."""
    if not isinstance(note, str):
        raise TypeError(f"note must be a str; got {type(note).__name__}")
    match = _NOTE_RE.match(note)
    if match is None:
        raise ValueError(f"not a note name: {note!r}")
    return (_LETTERS[match.group(1).upper()] + _accidental(match.group(2))) % 12


def _accidental(text: Optional[str]) -> int:
    if not text:
        return 0
    text = text.lower()
    return 1 if ("#" in text or "♯" in text or "sharp" in text) else -1


def midi_to_hz(midi):
    """Equal-tempered frequency in Hz of a MIDI pitch (scalar or array), A4 = 440 Hz."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


@dataclass(frozen=True)
class Key:
    """A major or minor key: ``tonic`` pitch class (0 = C) and ``mode``."""

    tonic: int
    mode: str

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'major' or 'minor'; got {self.mode!r}")
        if not 0 <= self.tonic < 12:
            raise ValueError(f"tonic must be a pitch class 0..11; got {self.tonic!r}")

    @property
    def name(self) -> str:
        """Conventional spelling, e.g. "D minor", "Bb major", "F# minor"."""
        names = MAJOR_NAMES if self.mode == "major" else MINOR_NAMES
        return f"{names[self.tonic]} {self.mode}"

    @property
    def scale(self) -> tuple:
        """The seven pitch classes of the scale, tonic first."""
        return tuple((self.tonic + step) % 12 for step in _STEPS[self.mode])

    @property
    def uses_flats(self) -> bool:
        """Whether chord names in this key are spelled with flats."""
        relative_major = self.tonic if self.mode == "major" else (self.tonic + 3) % 12
        return relative_major in (1, 3, 5, 8, 10)

    def note_name(self, pc: int) -> str:
        """Spelling of pitch class ``pc`` in this key."""
        return (_FLAT_NAMES if self.uses_flats else _SHARP_NAMES)[pc % 12]


def parse_key(text: str) -> Key:
    """Parse "D minor", "F# major", "Bb min", "Am", "E flat major" or a bare "A" (major)."""
    if not isinstance(text, str):
        raise TypeError(f"key must be a str; got {type(text).__name__}")
    match = _KEY_RE.match(text) or _KEY_RE.match(text.lower())
    if match is None:
        raise ValueError(f"not a key name: {text!r}")
    letter, accidental, mode = match.groups()
    if mode == "m" and letter.islower():
        raise ValueError(f"not a key name: {text!r}")
    tonic = (_LETTERS[letter.upper()] + _accidental(accidental)) % 12
    minor = mode is not None and mode.lower() in ("minor", "min", "m")
    return Key(tonic, "minor" if minor else "major")


@dataclass(frozen=True)
class Chord:
    """A chord: ``root`` pitch class, ``tones`` pitch classes from the root up in thirds."""

    numeral: str
    root: int
    tones: tuple
    name: str

    @property
    def third(self) -> int:
        """Semitones from the root to the third (3 minor, 4 major)."""
        return (self.tones[1] - self.root) % 12

    @property
    def fifth(self) -> int:
        """Semitones from the root to the fifth (6 diminished, 7 perfect)."""
        return (self.tones[2] - self.root) % 12


_QUALITY = {
    (4, 7, None): "",
    (3, 7, None): "m",
    (3, 6, None): "dim",
    (4, 7, 11): "maj7",
    (4, 7, 10): "7",
    (3, 7, 10): "m7",
    (3, 6, 10): "m7b5",
    (3, 7, 11): "m(maj7)",
    (3, 6, 9): "dim7",
    (4, 7, 2): "add9",
    (3, 7, 2): "m(add9)",
}


def diatonic_chord(key: Key, numeral: str, sevenths: bool = False) -> Chord:
    """The chord on roman ``numeral`` ("I", "vi", "V", ...) built in thirds from the key's scale.

    Upper case means a major third, lower case a minor (or diminished) one; the case must
    agree with the scale, except "V" in a minor key, which takes harmonic minor's raised
    leading tone (a major dominant). ``sevenths`` stacks a fourth tone: the seventh, or on
    the tonic the ninth ("Cadd9", "Am(add9)"), which keeps the key unambiguous.
    """
    if numeral.lower() not in _ROMAN:
        raise ValueError(f"not a roman numeral I..VII: {numeral!r}")
    degree = _ROMAN[numeral.lower()]
    scale = list(key.scale)
    if key.mode == "minor" and numeral == "V":
        scale[6] = (scale[6] + 1) % 12
    tones = tuple(scale[(degree + 2 * i) % 7] for i in range(4 if sevenths else 3))
    if sevenths and degree == 0:
        # tonic add9: a major seventh leans to the dominant key, a sixth (or a minor
        # seventh) spells the relative key's chord; the ninth keeps the key unambiguous
        tones = tones[:3] + (scale[1],)
    root = tones[0]
    third = (tones[1] - root) % 12
    if (third == 4) != numeral.isupper():
        kind = "major" if third == 4 else "minor"
        raise ValueError(f"{numeral!r} is a {kind} chord in {key.name}; write it in the other case")
    intervals = tuple((tone - root) % 12 for tone in tones[1:])
    suffix = _QUALITY[intervals if sevenths else intervals + (None,)]
    return Chord(numeral, root, tones, key.note_name(root) + suffix)


def voice_chord(
    chord: Chord, low: int, high: int, previous: Optional[Sequence[int]] = None
) -> tuple:
    """Close voicing of ``chord`` with every note in [low, high] (MIDI), with smooth voice leading.

    Among the inversions that fit, the one nearest ``previous`` (sum of note distances) is
    chosen, or, without a previous chord, the one centred nearest the middle of the range.
    """
    candidates = []
    size = len(chord.tones)
    for inversion in range(size):
        order = chord.tones[inversion:] + chord.tones[:inversion]
        for octave in range(low // 12 - 1, high // 12 + 1):
            notes = [octave * 12 + order[0]]
            for pc in order[1:]:
                notes.append(notes[-1] + (pc - notes[-1]) % 12)
            if notes[0] >= low and notes[-1] <= high:
                candidates.append(tuple(notes))
    if not candidates:
        raise ValueError(f"{chord.name} cannot be voiced within MIDI {low}..{high}")
    if previous is None:
        centre = (low + high) / 2.0
        return min(candidates, key=lambda notes: (abs(sum(notes) / size - centre), notes))
    prev = sorted(previous)
    if len(prev) != size:
        prev_mean = sum(prev) / len(prev)
        return min(candidates, key=lambda notes: (abs(sum(notes) / size - prev_mean), notes))
    return min(candidates, key=lambda notes: (sum(abs(a - b) for a, b in zip(notes, prev)), notes))
