"""Ogg pages (RFC 3533): read the header packets of a stream and write them anew.

The codec headers end on a page of their own (Vorbis I spec 4.2; RFC 7845 section 3), so the
audio pages that follow are kept; only their sequence numbers (and so their CRCs) change
when the headers take a different number of pages. The page CRC is CRC-32 with polynomial
0x04C11DB7, initial value 0, no reflection: computed with zlib's (reflected) CRC-32 over
bit-reversed bytes.
"""

from __future__ import annotations

import struct
import zlib
from typing import List, Tuple

from ...errors import AudioValidationError

__all__ = ["crc", "header_packets", "replace_headers"]

_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, type, granule, serial, sequence, crc, segments
_REVERSED_BITS = bytes(int(f"{value:08b}"[::-1], 2) for value in range(256))
_MAX_SEGMENTS = 255


def _reverse32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def crc(page: bytes) -> int:
    """The Ogg CRC of ``page`` (with its CRC field set to zero)."""
    return _reverse32(zlib.crc32(page.translate(_REVERSED_BITS), 0xFFFFFFFF) ^ 0xFFFFFFFF)


def _pages(data: bytes):
    """(offset, header fields, lacing values, body offset, end offset) for every page."""
    offset = 0
    while offset < len(data):
        if data[offset: offset + 4] != b"OggS":
            raise AudioValidationError(f"not an Ogg page at byte {offset}")
        fields = _HEADER.unpack_from(data, offset)
        lacing = data[offset + 27: offset + 27 + fields[7]]
        body = offset + 27 + fields[7]
        end = body + sum(lacing)
        yield offset, fields, lacing, body, end
        offset = end


def header_packets(data: bytes, count: int) -> Tuple[List[bytes], int, int]:
    """The first ``count`` packets, the offset of the first page after them, and the
    sequence number that page had."""
    packets: List[bytes] = []
    partial = b""
    for _offset, fields, lacing, body, end in _pages(data):
        position = body
        for value in lacing:
            partial += data[position: position + value]
            position += value
            if value < 255:
                packets.append(partial)
                partial = b""
        if len(packets) >= count:
            if len(packets) > count or partial:
                raise AudioValidationError("the Ogg codec headers do not end their page")
            return packets, end, fields[5] + 1
    raise AudioValidationError(f"the Ogg stream ends before its {count} header packets")


def _page(header_type: int, granule: int, serial: int, sequence: int, lacing: bytes, body: bytes) -> bytes:
    page = bytearray(_HEADER.pack(b"OggS", 0, header_type, granule, serial, sequence, 0, len(lacing)) + lacing + body)
    struct.pack_into("<I", page, 22, crc(bytes(page)))
    return bytes(page)


def _paginate(packets: List[bytes], serial: int, sequence: int) -> List[bytes]:
    """Header packets laid out on pages of at most 255 segments (granule 0)."""
    pages: List[bytes] = []
    lacing, body, starts_continued = bytearray(), bytearray(), False

    def emit(next_continued: bool) -> None:
        nonlocal lacing, body, starts_continued
        pages.append(_page(0x01 if starts_continued else 0, 0, serial, sequence + len(pages), bytes(lacing), bytes(body)))
        lacing, body, starts_continued = bytearray(), bytearray(), next_continued

    for packet in packets:
        remaining = packet
        while True:
            pieces = min(len(remaining) // 255, _MAX_SEGMENTS - len(lacing))
            lacing += b"\xff" * pieces
            body += remaining[: pieces * 255]
            remaining = remaining[pieces * 255:]
            if len(lacing) < _MAX_SEGMENTS:  # room for the packet's last (short) segment
                lacing.append(len(remaining))
                body += remaining
                break
            emit(next_continued=True)
        if len(lacing) == _MAX_SEGMENTS:
            emit(next_continued=False)
    if lacing:
        emit(next_continued=False)
    return pages


def replace_headers(data: bytes, packets: List[bytes], body_start: int, first_sequence: int) -> bytes:
    """The stream with its header pages rebuilt from ``packets`` (the first stays alone on
    page 0, with its flags) and the audio pages renumbered to follow them."""
    first = next(_pages(data))
    serial = first[1][4]
    head = data[: first[4]]  # the identification page, unchanged
    rebuilt = _paginate(packets[1:], serial, first[1][5] + 1)
    shift = first[1][5] + 1 + len(rebuilt) - first_sequence
    out = [head, *rebuilt]
    if shift == 0:
        out.append(data[body_start:])
        return b"".join(out)
    for offset, fields, _lacing, _body, end in _pages(data[body_start:]):
        page = bytearray(data[body_start + offset: body_start + end])
        struct.pack_into("<II", page, 18, fields[5] + shift, 0)
        struct.pack_into("<I", page, 22, crc(bytes(page)))
        out.append(bytes(page))
    return b"".join(out)
