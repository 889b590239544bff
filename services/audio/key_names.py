"""Musical key names: the canonical spelling of :mod:`services.audio.key`, and Camelot codes.

``canonical_key("a min")`` -> "A minor"; ``canonical_key("8A")`` -> "A minor";
``camelot_code("A minor")`` -> "8A" (the wheel DJ software files keys by: numbers 1-12
around the circle of fifths, A minor and B major; neighbours mix harmonically);
``short_key_name("F# minor")`` -> "F#m" (ID3 TKEY, INITIALKEY); ``tonic_pitch_class("A minor")`` -> 9.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

from .key import MAJOR_NAMES, MINOR_NAMES

__all__ = ["camelot_code", "canonical_key", "short_key_name", "tonic_pitch_class"]

_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAME = re.compile(
    r"^\s*([A-Ga-g])\s*(#|♯|b|♭|sharp|flat)?\s*(major|minor|maj|min|m|M)?\s*$"
)
_CAMELOT = re.compile(r"^\s*(1[0-2]|[1-9])\s*([ABab])\s*$")


def _name(pitch_class: int, minor: bool) -> str:
    return f"{MINOR_NAMES[pitch_class]} minor" if minor else f"{MAJOR_NAMES[pitch_class]} major"


def canonical_key(text: str) -> Optional[str]:
    """The canonical name ("F# minor", "Bb major") of a key written as a name ("f# min",
    "Gb major", "Am", "C") or a Camelot code ("11A"); None when ``text`` is neither.
    A bare letter means major."""
    if not isinstance(text, str):
        return None
    camelot = _CAMELOT.match(text)
    if camelot:
        number, letter = int(camelot.group(1)), camelot.group(2).upper()
        major_pitch_class = ((number - 8) * 7) % 12  # 8B is C major; each step is a fifth
        if letter == "B":
            return _name(major_pitch_class, minor=False)
        return _name((major_pitch_class - 3) % 12, minor=True)  # the relative minor
    match = _NAME.match(text)
    if not match:
        return None
    letter, accidental, mode = match.groups()
    pitch_class = _LETTERS[letter.upper()]
    if accidental in ("#", "♯", "sharp"):
        pitch_class += 1
    elif accidental in ("b", "♭", "flat"):
        pitch_class -= 1
    minor = mode is not None and mode.lower() in ("minor", "min") or mode == "m"
    return _name(pitch_class % 12, minor)


def _parts(key: Optional[str]) -> Optional[tuple]:
    """(tonic pitch class 0-11, minor?, tonic spelling) of a key name; None if unknown."""
    name = canonical_key(key) if isinstance(key, str) else None
    if name is None:
        return None
    tonic, mode = name.split(" ")
    minor = mode == "minor"
    return (MINOR_NAMES if minor else MAJOR_NAMES).index(tonic), minor, tonic


@lru_cache(maxsize=64)
def camelot_code(key: Optional[str]) -> Optional[str]:
    """The Camelot code ("8A" for A minor, "8B" for C major) of a key name; None if unknown."""
    parts = _parts(key)
    if parts is None:
        return None
    pitch_class, minor, _ = parts
    major_pitch_class = (pitch_class + 3) % 12 if minor else pitch_class
    number = (7 * major_pitch_class + 8) % 12 or 12
    return f"{number}{'A' if minor else 'B'}"


def tonic_pitch_class(key: Optional[str]) -> Optional[int]:
    """The tonic's pitch class (0 = C ... 11 = B) of a key name; None if unknown."""
    parts = _parts(key)
    return None if parts is None else parts[0]


def short_key_name(key: Optional[str]) -> Optional[str]:
    """The short form DJ software and ID3 TKEY use: "Am", "F#m", "Bb" (major: the tonic
    alone); None if unknown."""
    parts = _parts(key)
    return None if parts is None else parts[2] + ("m" if parts[1] else "")
