"""ID3v2.4 tags (id3.org, "ID3 tag version 2.4.0 - Main Structure" and "- Native Frames").

Every frame is UTF-8 text (encoding byte 3). Frames written: TIT2 (title), TSSE (software),
TDRC (date), COMM (comment), TBPM (whole BPM), TKEY ("Am", "F#m"), and TXXX user frames for
the full key name, its Camelot code, the time signature, where the tempo came from, and
ReplayGain 2.0 track gain and peak (the names foobar2000 and mutagen use).
"""

from __future__ import annotations

from typing import List, Optional

from .record import TrackTags

__all__ = ["id3_tag"]

_UTF8 = b"\x03"


def _syncsafe(value: int) -> bytes:
    """A 28-bit number in four bytes of seven bits each (ID3v2.4 section 6.2)."""
    if not 0 <= value < 1 << 28:
        raise ValueError(f"ID3 size out of range: {value}")
    return bytes(((value >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def _frame(frame_id: str, body: bytes) -> bytes:
    return frame_id.encode("ascii") + _syncsafe(len(body)) + b"\x00\x00" + body


def _text(frame_id: str, value: Optional[str]) -> bytes:
    return b"" if value is None else _frame(frame_id, _UTF8 + value.encode("utf-8"))


def _user_text(description: str, value: Optional[str]) -> bytes:
    if value is None:
        return b""
    return _frame("TXXX", _UTF8 + description.encode("utf-8") + b"\x00" + value.encode("utf-8"))


def _comment(value: Optional[str]) -> bytes:
    return b"" if value is None else _frame("COMM", _UTF8 + b"eng" + b"\x00" + value.encode("utf-8"))


def id3_tag(tags: TrackTags) -> bytes:
    """The complete ID3v2.4 tag (header and frames, no padding) for ``tags``."""
    frames: List[bytes] = [
        _text("TIT2", tags.title),
        _text("TSSE", tags.software),
        _text("TDRC", tags.date),
        _comment(tags.comment),
        _text("TBPM", None if tags.bpm is None else str(int(round(tags.bpm)))),
        _text("TKEY", tags.key_short),
        _user_text("KEY", tags.key),
        _user_text("CAMELOT_KEY", tags.camelot),
        _user_text("BPM", tags.bpm_text),
    ]
    for name, value in tags.vorbis_comments():
        if name in ("TIME_SIGNATURE", "TEMPO_SOURCE"):
            frames.append(_user_text(name, value))
    for name, value in tags.replaygain_pairs():
        frames.append(_user_text(name, value))
    body = b"".join(frames)
    return b"ID3\x04\x00\x00" + _syncsafe(len(body)) + body
