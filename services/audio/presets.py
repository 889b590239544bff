"""Named delivery destinations: the loudness (LUFS) and true-peak ceiling (dBTP) each expects.

``resolve_preset("spotify", channels=2)`` -> ``Preset(name="spotify", target_lufs=-14.0,
ceiling_dbtp=-1.0, ...)``. Each entry names the public document its figures come from (the
README lists them in a table). ``podcast`` depends on the channel count: -19 LUFS mono,
-16 LUFS stereo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from ..errors import AudioValidationError

__all__ = ["DEFAULT_PRESET", "PRESETS", "Preset", "resolve_preset"]


@dataclass(frozen=True)
class Preset:
    """A destination: integrated loudness target (LUFS), true-peak ceiling (dBTP), its source."""

    name: str
    target_lufs: float
    ceiling_dbtp: float
    source: str


DEFAULT_PRESET = "default"

# name -> (stereo target LUFS, mono target LUFS, ceiling dBTP, source)
_TABLE: Dict[str, Tuple[float, float, float, str]] = {
    "spotify": (-14.0, -14.0, -1.0, "Spotify for Artists, 'Loudness normalization' (-14 LUFS, -1 dBTP)"),
    "apple-music": (-16.0, -16.0, -1.0, "Apple, 'Apple Digital Masters' / Sound Check (-16 LUFS, -1 dBTP)"),
    "youtube": (-14.0, -14.0, -1.0, "YouTube playback normalization (-14 LUFS), -1 dBTP headroom"),
    "amazon-music": (-14.0, -14.0, -2.0, "Amazon Music loudness guidance (-14 LUFS, -2 dBTP)"),
    "tidal": (-14.0, -14.0, -1.0, "TIDAL loudness normalization (-14 LUFS), -1 dBTP"),
    "deezer": (-15.0, -15.0, -1.0, "Deezer loudness normalization (-15 LUFS), -1 dBTP"),
    "podcast": (-16.0, -19.0, -1.0, "Apple Podcasts / AES TD1004 (-16 LUFS stereo, -19 LUFS mono, -1 dBTP)"),
    "ebu-r128": (-23.0, -23.0, -1.0, "EBU R 128 (-23 LUFS, max true peak -1 dBTP)"),
    "atsc-a85": (-24.0, -24.0, -2.0, "ATSC A/85 (-24 LKFS, -2 dBTP)"),
    DEFAULT_PRESET: (-16.0, -16.0, -1.0, "dgx-music default (AUDIO_TARGET_LUFS -16 LUFS, -1 dBTP)"),
}

PRESETS: Tuple[str, ...] = tuple(_TABLE)
"""Every preset name, in the README's order."""


def resolve_preset(name: Any, channels: int = 2, *, field: str = "preset") -> Preset:
    """The :class:`Preset` called ``name`` for audio with ``channels`` channels.

    Raises ``TypeError`` for a non-string and :class:`~services.errors.AudioValidationError`
    naming ``field`` and the known names for an unknown one.
    """
    if not isinstance(name, str):
        raise TypeError(f"{field} must be a preset name (a string); got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    if key not in _TABLE:
        raise AudioValidationError(f"{field} must be one of {', '.join(PRESETS)}; got {name!r}")
    stereo, mono, ceiling, source = _TABLE[key]
    return Preset(key, mono if channels == 1 else stereo, ceiling, source)

