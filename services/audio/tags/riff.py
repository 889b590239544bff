"""Metadata chunks of a WAV file, appended after the audio of a finished RIFF/RF64 file.

- ``LIST``/``INFO``: INAM title, ICMT comment, ICRD date, ISFT software (RIFF 1991 spec),
  IBPM tempo and IKEY keywords holding the key;
- ``id3 ``: the same ID3v2.4 tag an MP3 carries;
- ``bext`` version 2 (EBU Tech 3285 v2): description, originator, date and time, and the
  five loudness fields from our meter (integrated LUFS, range LU, max true peak dBTP, max
  momentary and max short-term LUFS, each x100 as int16; 0x7FFF when unknown);
- ``acid`` (Sonic Foundry ACID, 24 bytes): flags, root note (0x30 + pitch class), beats,
  meter, tempo;
- ``smpl`` (RIFF 1994 sampler chunk): the loop points of a loop;
- ``iXML`` (iXML 2.10): the whole analysis record under ``<DGX_MUSIC>``.

Chunks sit after ``data`` (readers scan every chunk), so the audio is written as it is
encoded and the tags cost one append and a 4-byte size update, never a rewrite.
"""

from __future__ import annotations

import math
import struct
from typing import Any, BinaryIO, Dict, List, Optional
from xml.sax.saxutils import escape

from ...errors import AudioValidationError
from .id3 import id3_tag
from .record import TrackTags

__all__ = ["acid_chunk", "append_chunks", "bext_chunk", "metadata_chunks", "smpl_chunk"]

_UNKNOWN_LOUDNESS = 0x7FFF
ACID_ONE_SHOT, ACID_ROOT_SET, ACID_STRETCH, ACID_DISK_BASED = 0x01, 0x02, 0x04, 0x08
_ACID_ROOT_C = 0x30
_ACID = struct.Struct("<IHHfIHHf")
_SMPL = struct.Struct("<9I")
_SMPL_LOOP = struct.Struct("<6I")


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def _fixed(text: Optional[str], size: int) -> bytes:
    return (text or "").encode("ascii", "replace")[:size].ljust(size, b"\x00")


def _centi(value: Any) -> int:
    if value is None or not math.isfinite(value):
        return _UNKNOWN_LOUDNESS
    return max(-32768, min(32766, int(round(value * 100))))


def info_chunk(tags: TrackTags) -> bytes:
    """LIST/INFO. Besides the standard fields, ``IBPM`` holds the tempo and the keywords
    (``IKEY``, "; "-separated) the key in its three spellings ("Am; 8A; A minor"), since
    ffmpeg shows INFO (not the ``id3 `` chunk) when a WAV has both."""
    keywords = "; ".join(value for value in (tags.key_short, tags.camelot, tags.key) if value) or None
    fields = [(b"INAM", tags.title), (b"ICMT", tags.comment), (b"ICRD", tags.date), (b"ISFT", tags.software),
              (b"IBPM", tags.bpm_text), (b"IKEY", keywords)]
    body = b"INFO" + b"".join(_chunk(key, value.encode("utf-8") + b"\x00") for key, value in fields if value)
    return _chunk(b"LIST", body)


def bext_chunk(tags: TrackTags, sample_rate: int, channels: int, bits: Optional[int]) -> bytes:
    """BWF ``bext`` version 2 with the loudness of ``tags.loudness``."""
    date, _, time = (tags.date or "").partition("T")
    loudness = tags.loudness
    coding = f"A=PCM,F={sample_rate},{'W=' + str(bits) + ',' if bits else ''}M={'mono' if channels == 1 else 'stereo' if channels == 2 else 'multi'},T={tags.software}\r\n"
    body = b"".join([
        _fixed(tags.title, 256), _fixed("dgx-music", 32), _fixed(tags.reference, 32),
        _fixed(date[:10], 10), _fixed(time[:8], 8),
        struct.pack("<QH", 0, 2), b"\x00" * 64,
        struct.pack(
            "<5h",
            _centi(getattr(loudness, "integrated_lufs", None)),
            _centi(getattr(loudness, "loudness_range_lu", None)),
            _centi(getattr(loudness, "true_peak_dbtp", None)),
            _centi(getattr(loudness, "momentary_max_lufs", None)),
            _centi(getattr(loudness, "short_term_max_lufs", None)),
        ),
        b"\x00" * 180, coding.encode("ascii", "replace"),
    ])
    return _chunk(b"bext", body)


def acid_chunk(tags: TrackTags, duration_seconds: float) -> bytes:
    """ACID tempo chunk: a loop of ``loop.bars x beats_per_bar`` beats, or a one-shot track."""
    root = tags.key_root_pitch_class
    flags = ACID_STRETCH | (ACID_ROOT_SET if root is not None else 0)
    if tags.loop is not None:
        beats = tags.loop.bars * tags.beats_per_bar
    else:
        flags |= ACID_ONE_SHOT | ACID_DISK_BASED
        beats = int(round(duration_seconds * tags.bpm / 60.0))
    note = _ACID_ROOT_C + (root or 0)
    return _chunk(b"acid", _ACID.pack(flags, note, 0x8000, 0.0, beats, 4, tags.beats_per_bar, float(tags.bpm)))


def smpl_chunk(tags: TrackTags, sample_rate: int) -> bytes:
    """Sampler chunk with one forward loop from ``tags.loop`` (frames, end inclusive)."""
    root = tags.key_root_pitch_class
    header = _SMPL.pack(0, 0, int(round(1e9 / sample_rate)), 60 + (root or 0), 0, 0, 0, 1, 0)
    loop = _SMPL_LOOP.pack(0, 0, tags.loop.start_frame, tags.loop.end_frame, 0, 0)
    return _chunk(b"smpl", header + loop)


def ixml_chunk(tags: TrackTags) -> bytes:
    """iXML document: PROJECT, NOTE (the prompt) and ``<DGX_MUSIC>`` with one element per
    record field (``known="true"`` on values the renderer set exactly)."""
    record: Dict[str, Any] = dict(tags.record)
    known = set(record.get("known_fields", ())) if tags.known else set()
    items: List[str] = []
    for name, value in record.items():
        if name == "known_fields" or not name.replace("_", "").isalnum() or name[0].isdigit():
            continue
        text = "" if value is None else escape(str(value))
        attribute = ' known="true"' if name in known else ""
        items.append(f"<{name.upper()}{attribute}>{text}</{name.upper()}>")
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<BWFXML><IXML_VERSION>2.10</IXML_VERSION>'
        f"<PROJECT>dgx-music</PROJECT><NOTE>{escape(tags.title or '')}</NOTE>"
        f'<DGX_MUSIC source="{tags.tempo_source}">{"".join(items)}</DGX_MUSIC></BWFXML>'
    )
    return _chunk(b"iXML", document.encode("utf-8"))


def metadata_chunks(tags: TrackTags, sample_rate: int, channels: int, frames: int, bits: Optional[int]) -> bytes:
    """Every metadata chunk for a WAV of ``frames`` frames at ``sample_rate`` Hz."""
    chunks = [info_chunk(tags), _chunk(b"id3 ", id3_tag(tags)), bext_chunk(tags, sample_rate, channels, bits)]
    if tags.bpm is not None:
        chunks.append(acid_chunk(tags, frames / sample_rate))
    if tags.loop is not None:
        chunks.append(smpl_chunk(tags, sample_rate))
    chunks.append(ixml_chunk(tags))
    return b"".join(chunks)


def append_chunks(handle: BinaryIO, chunks: bytes) -> None:
    """Append ``chunks`` to the RIFF/RF64 WAV file open in ``handle`` (read/write) and update
    the file's size fields (RIFF header, or RF64's ``ds64``)."""
    handle.seek(0)
    head = handle.read(28)
    if head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64"):
        raise AudioValidationError("not a RIFF WAVE file: cannot add metadata chunks")
    end = handle.seek(0, 2)
    if end % 2:  # an odd-sized data chunk needs its pad byte before the next chunk
        handle.write(b"\x00")
        end += 1
    handle.write(chunks)
    total = end + len(chunks)
    if head[:4] == b"RIFF":
        if total - 8 > 0xFFFFFFFF:
            raise AudioValidationError("the WAV file would exceed 4 GiB with its metadata")
        handle.seek(4)
        handle.write(struct.pack("<I", total - 8))
    else:
        if head[12:16] != b"ds64":
            raise AudioValidationError("RF64 file without a ds64 chunk")
        handle.seek(20)
        handle.write(struct.pack("<Q", total - 8))
    handle.seek(0, 2)
