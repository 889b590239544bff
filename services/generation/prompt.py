"""Read what a text prompt states about the music: tempo (BPM), key, time signature, genre, mood.

:func:`parse_prompt` only reports what the words say; it invents nothing and validates no
ranges (the engine does). The pipeline passes ``PromptSpec.bpm`` to the metadata extractor
as a tempo hint.

Recognised forms (case-insensitive unless noted):

- tempo: "140 BPM", "140bpm", "at 92.5 bpm", "120 beats per minute", "tempo 96", "bpm: 128"
- key: "in D minor", "F# major", "Bb minor", "E flat major", "C sharp minor", "in Am",
  "key of G", "in A" (a bare tonic after "in" must be an upper-case letter and means major);
  "a minor key" (lower-case article) and "in minor" state only the mode
- time signature: "3/4", "4/4"
- genres and moods: the word lists in :data:`GENRE_WORDS` and :data:`MOOD_WORDS`
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from .theory import parse_key

__all__ = ["PromptSpec", "parse_prompt", "GENRE_WORDS", "MOOD_WORDS", "GENRES", "MOODS"]

GENRE_WORDS = (
    # (canonical genre, regular expression of its words); earlier entries are more
    # specific and win when a prompt names several ("lofi hip hop" is lofi).
    ("lofi", r"lo[\s-]?fi|chill[\s-]?hop"),
    ("trap", r"trap"),
    ("drum and bass", r"drum[\s-]*(?:and|&|n|'n'|n')[\s-]*bass|dnb|d&b|d'n'b|jungle"),
    ("dubstep", r"dubstep|brostep"),
    ("techno", r"techno"),
    ("trance", r"trance|psy[\s-]?trance"),
    ("house", r"(?:deep\s+|tech\s+)?house"),
    ("disco", r"disco|nu[\s-]?disco"),
    ("synthwave", r"synthwave|synth[\s-]wave|retrowave|outrun"),
    ("reggae", r"reggae|dub|one[\s-]drop"),
    ("waltz", r"waltz"),
    ("jazz", r"jazz|jazzy|bebop|swing\s+jazz"),
    ("funk", r"funk|funky"),
    ("ambient", r"ambient|drone|soundscape|atmospheric"),
    ("rock", r"rock|punk|grunge|metal"),
    ("hip hop", r"hip[\s-]?hop|rap|boom[\s-]?bap"),
    ("pop", r"pop|synth[\s-]?pop"),
    ("edm", r"edm|dance|electronic|electronica|electro|club|rave"),
)
MOOD_WORDS = (
    ("dark", r"dark|darker|ominous|sinister|gloomy|moody|menacing|eerie|haunting|brooding"),
    ("sad", r"sad|melancholic|melancholy|somber|sombre|mournful|heartbroken|tragic"),
    ("happy", r"happy|joyful|joyous|cheerful|bright|sunny|uplifting|playful|fun|feel[\s-]good"),
    ("upbeat", r"upbeat|bouncy|groovy|lively|party"),
    ("chill", r"chill|chilled|relaxed|relaxing|calm|mellow|laid[\s-]back|peaceful|soothing|dreamy|gentle|soft|slow"),
    ("energetic", r"energetic|aggressive|intense|powerful|driving|hard|heavy|epic|hype|pumping|fast"),
)
GENRES = tuple(name for name, _ in GENRE_WORDS)
MOODS = tuple(name for name, _ in MOOD_WORDS)

_NUMBER = r"(?<![\d.])(\d+(?:\.\d+)?)"  # any size: "at 100000 BPM" is stated (and refused), not ignored
_TEMPO_PATTERNS = (
    re.compile(_NUMBER + r"\s*-?\s*(?:bpm|b\.p\.m\.?|beats\s+per\s+minute)(?![a-z])", re.I),
    re.compile(r"\b(?:bpm|tempo)\s*(?:of|[:=]|at)?\s*" + _NUMBER + r"(?![\d.])", re.I),
)
_ACCIDENTAL = r"(?:#|♯|b|♭|[\s-]?sharp|[\s-]?flat)"
_MODE_WORD = r"(?:major|minor|maj|min)"
_KEY_WITH_MODE = re.compile(
    r"(?<![\w#])([A-Ga-g]" + _ACCIDENTAL + r"?)[\s-]*(" + _MODE_WORD + r")(?![\w])(\s*[\s-]key)?",
    re.I,
)
_KEY_SHORT = re.compile(r"\b(?:in|key\s+of|key\s*[:=])\s+([A-G](?:#|♯|b|♭)?m)(?![\w#])")
_KEY_BARE_IN = re.compile(r"\bin\s+([A-G](?:#|♯|b|♭|[\s-]sharp|[\s-]flat)?)(?![\w#♯♭])")
_KEY_BARE_OF = re.compile(
    r"\b(?:key\s+of|key\s*[:=])\s+([A-Ga-g](?:#|♯|b|♭|[\s-]sharp|[\s-]flat)?)(?![\w#♯♭])", re.I
)
_MODE_ONLY = re.compile(
    r"\b(major|minor)[\s-](?:key|mode|scale|tonality)\b|\bin\s+(major|minor)\b", re.I
)
_METER = re.compile(r"(?<![\d/])([34])\s*/\s*4(?![\d/])")


@dataclass(frozen=True)
class PromptSpec:
    """What a prompt states. Every field is None (or empty) when the prompt does not say.

    ``bpm`` in beats (quarter notes) per minute; ``key`` spelled conventionally, e.g.
    "D minor", "Bb major"; ``mode`` "major"/"minor" (from the key, or stated alone);
    ``beats_per_bar`` from a time signature such as "3/4"; ``genre`` one of :data:`GENRES`;
    ``moods`` every mood of :data:`MOODS` named, in prompt order, ``mood`` the first.
    """

    text: str
    bpm: Optional[float] = None
    key: Optional[str] = None
    mode: Optional[str] = None
    beats_per_bar: Optional[int] = None
    genre: Optional[str] = None
    moods: tuple = field(default_factory=tuple)

    @property
    def mood(self) -> Optional[str]:
        return self.moods[0] if self.moods else None

    @property
    def tonic(self) -> Optional[int]:
        """Pitch class (0 = C) of the stated key's tonic, or None."""
        return None if self.key is None else parse_key(self.key).tonic

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "bpm": self.bpm,
            "key": self.key,
            "mode": self.mode,
            "beats_per_bar": self.beats_per_bar,
            "genre": self.genre,
            "mood": self.mood,
            "moods": list(self.moods),
        }


def parse_prompt(prompt: str) -> PromptSpec:
    """Parse ``prompt`` into a :class:`PromptSpec` (see the module docstring for the forms)."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str; got {type(prompt).__name__}")
    key, mode = _find_key(prompt)
    return PromptSpec(
        text=prompt,
        bpm=_find_bpm(prompt),
        key=None if key is None else key.name,
        mode=mode,
        beats_per_bar=_find_meter(prompt),
        genre=_find_genre(prompt),
        moods=_find_moods(prompt),
    )


def _find_bpm(text: str) -> Optional[float]:
    found = []
    for pattern in _TEMPO_PATTERNS:
        found.extend((match.start(), float(match.group(1))) for match in pattern.finditer(text))
    return min(found)[1] if found else None


def _find_key(text: str):
    """Return (Key or None, mode or None), the first stated key winning."""
    candidates = []
    for match in _KEY_WITH_MODE.finditer(text):
        note, mode_word, key_suffix = match.groups()
        if note == "a" and key_suffix:  # "a minor key": an article, only the mode is stated
            continue
        candidates.append((match.start(), 0, note + " " + mode_word))
    for rank, pattern in enumerate((_KEY_SHORT, _KEY_BARE_IN, _KEY_BARE_OF), start=1):
        candidates.extend((match.start(1), rank, match.group(1)) for match in pattern.finditer(text))
    for _, _, spelled in sorted(candidates):
        try:
            key = parse_key(re.sub(r"\s+", " ", spelled))
        except ValueError:
            continue
        return key, key.mode
    match = _MODE_ONLY.search(text)
    if match:
        return None, (match.group(1) or match.group(2)).lower()
    return None, None


def _find_meter(text: str) -> Optional[int]:
    match = _METER.search(text)
    return int(match.group(1)) if match else None


def _first_words(text: str, table) -> list:
    hits = []
    for rank, (name, words) in enumerate(table):
        match = re.search(r"(?<![\w-])(?:" + words + r")(?![\w])", text, re.I)
        if match:
            hits.append((rank, match.start(), name))
    return hits


def _find_genre(text: str) -> Optional[str]:
    hits = _first_words(text, GENRE_WORDS)
    return min(hits)[2] if hits else None


def _find_moods(text: str) -> tuple:
    hits = _first_words(text, MOOD_WORDS)
    return tuple(name for _, _, name in sorted(hits, key=lambda hit: hit[1]))
