"""TrackTags: what every format's tags say about a track, from one analysis record.

The loudness fields come from the exporter's own measurement of what it writes (LUFS,
LU, dBTP); tempo (BPM), key and meter come from the analysis, or from the renderer when it
made the audio (``known=True``: exact values, not estimates). Writers per format read the
derived forms below: the short key ("Am", "F#m", "C"), its Camelot code ("8A"),
ReplayGain 2.0 (reference -18 LUFS) and Opus's R128 gain (Q7.8 dB relative to -23 LUFS).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..key_names import camelot_code, canonical_key, short_key_name, tonic_pitch_class

__all__ = ["LoopPoints", "TrackTags"]

REPLAYGAIN_REFERENCE_LUFS = -18.0
R128_REFERENCE_LUFS = -23.0


@dataclass(frozen=True)
class LoopPoints:
    """A loop of ``bars`` bars: first and last frame (inclusive) played, in sample frames."""

    bars: int
    start_frame: int
    end_frame: int


@dataclass(frozen=True)
class TrackTags:
    """Tag values for one file (None = unknown: the writers leave the field out).

    ``loudness`` is a :class:`~services.audio.loudness.LoudnessReport` of the file as
    delivered (the exporter fills it in); ``record`` is the analysis record written whole
    into a WAV's iXML chunk.
    """

    title: Optional[str] = None
    comment: Optional[str] = None
    software: Optional[str] = None
    date: Optional[str] = None  # ISO 8601: "2026-11-30" or "2026-11-30T01:02:03"
    bpm: Optional[float] = None
    key: Optional[str] = None
    beats_per_bar: int = 4
    first_downbeat_seconds: Optional[float] = None
    known: bool = False
    reference: Optional[str] = None  # e.g. the job id
    loudness: Any = None
    loop: Optional[LoopPoints] = None
    record: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.software is None:
            from ... import __version__

            object.__setattr__(self, "software", f"dgx-music {__version__}")
        if self.key is not None:
            object.__setattr__(self, "key", canonical_key(self.key))
        if self.bpm is not None and not (math.isfinite(self.bpm) and self.bpm > 0):
            object.__setattr__(self, "bpm", None)

    def replace(self, **changes: Any) -> "TrackTags":
        return dataclasses.replace(self, **changes)

    # -- derived forms ----------------------------------------------------------------------

    @property
    def key_short(self) -> Optional[str]:
        """ID3 TKEY / INITIALKEY form: "Am", "F#m", "Bb" (at most three characters)."""
        return short_key_name(self.key)

    @property
    def camelot(self) -> Optional[str]:
        return camelot_code(self.key)

    @property
    def key_root_pitch_class(self) -> Optional[int]:
        """0 = C ... 11 = B, or None."""
        return tonic_pitch_class(self.key)

    @property
    def bpm_text(self) -> Optional[str]:
        """"124" for a whole tempo, else two decimals ("123.45")."""
        if self.bpm is None:
            return None
        return str(int(round(self.bpm))) if abs(self.bpm - round(self.bpm)) < 0.005 else f"{self.bpm:.2f}"

    def _integrated(self) -> Optional[float]:
        value = getattr(self.loudness, "integrated_lufs", None)
        return value if value is not None and math.isfinite(value) else None

    @property
    def replaygain_gain_db(self) -> Optional[float]:
        """ReplayGain 2.0 track gain, dB (to -18 LUFS)."""
        integrated = self._integrated()
        return None if integrated is None else REPLAYGAIN_REFERENCE_LUFS - integrated

    @property
    def replaygain_peak(self) -> Optional[float]:
        """ReplayGain track peak: the true peak as a linear amplitude (1.0 = full scale)."""
        peak = getattr(self.loudness, "true_peak_dbtp", None)
        if peak is None or not math.isfinite(peak):
            return None
        return 10.0 ** (peak / 20.0)

    @property
    def r128_track_gain(self) -> Optional[int]:
        """Opus R128_TRACK_GAIN: Q7.8 fixed point dB to -23 LUFS (RFC 7845 section 5.2.1)."""
        integrated = self._integrated()
        if integrated is None:
            return None
        return max(-32768, min(32767, int(round((R128_REFERENCE_LUFS - integrated) * 256))))

    @property
    def tempo_source(self) -> str:
        return "procedural" if self.known else "estimated"

    def vorbis_comments(self, *, opus: bool = False) -> List[Tuple[str, str]]:
        """(NAME, value) pairs for Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus)."""
        pairs = [
            ("TITLE", self.title), ("DATE", self.date), ("COMMENT", self.comment), ("ENCODER", self.software),
            ("BPM", self.bpm_text), ("INITIALKEY", self.key_short), ("KEY", self.key),
            ("CAMELOT_KEY", self.camelot),
            ("TIME_SIGNATURE", f"{self.beats_per_bar}/4" if self.bpm is not None else None),
            ("TEMPO_SOURCE", self.tempo_source if self.bpm is not None or self.key is not None else None),
        ]
        if opus:
            gain = self.r128_track_gain
            pairs.append(("R128_TRACK_GAIN", None if gain is None else str(gain)))
        else:
            pairs += self.replaygain_pairs()
        return [(name, str(value)) for name, value in pairs if value is not None]

    def replaygain_pairs(self) -> List[Tuple[str, Optional[str]]]:
        gain, peak = self.replaygain_gain_db, self.replaygain_peak
        return [
            ("REPLAYGAIN_TRACK_GAIN", None if gain is None else f"{gain:+.2f} dB"),
            ("REPLAYGAIN_TRACK_PEAK", None if peak is None else f"{peak:.6f}"),
        ]
