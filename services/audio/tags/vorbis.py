"""Vorbis comments (xiph.org Vorbis I spec, section 5) in FLAC metadata and Ogg headers.

FLAC: the VORBIS_COMMENT metadata block (type 4) replaces any the encoder wrote, after
STREAMINFO; audio frames are kept byte for byte. Ogg Vorbis / Ogg Opus: the comment
header packet is replaced and the header pages re-paginated (see :mod:`.ogg`).
"""

from __future__ import annotations

import struct
from typing import List, Sequence, Tuple

from ...errors import AudioValidationError
from . import ogg

__all__ = ["comment_body", "tag_flac", "tag_ogg"]

_FLAC_VORBIS_COMMENT = 4


def comment_body(vendor: str, pairs: Sequence[Tuple[str, str]]) -> bytes:
    """vendor length + vendor + count + ("NAME=value" length + text)... (little-endian)."""
    parts = [struct.pack("<I", len(vendor.encode())), vendor.encode(), struct.pack("<I", len(pairs))]
    for name, value in pairs:
        entry = f"{name}={value}".encode("utf-8")
        parts += [struct.pack("<I", len(entry)), entry]
    return b"".join(parts)


def tag_flac(data: bytes, vendor: str, pairs: Sequence[Tuple[str, str]]) -> bytes:
    """``data`` (a FLAC file) with its Vorbis comment block replaced by ``pairs``."""
    if data[:4] != b"fLaC":
        raise AudioValidationError("not a FLAC stream: no 'fLaC' marker")
    blocks: List[Tuple[int, bytes]] = []
    offset, last = 4, False
    while not last:
        header = data[offset]
        last, kind = bool(header & 0x80), header & 0x7F
        length = int.from_bytes(data[offset + 1: offset + 4], "big")
        if kind != _FLAC_VORBIS_COMMENT:
            blocks.append((kind, data[offset + 4: offset + 4 + length]))
        offset += 4 + length
    blocks.insert(1, (_FLAC_VORBIS_COMMENT, comment_body(vendor, pairs)))  # STREAMINFO stays first
    out = [b"fLaC"]
    for index, (kind, body) in enumerate(blocks):
        flag = 0x80 if index == len(blocks) - 1 else 0
        out.append(bytes([flag | kind]) + len(body).to_bytes(3, "big") + body)
    return b"".join(out) + data[offset:]


def tag_ogg(data: bytes, codec: str, pairs: Sequence[Tuple[str, str]]) -> bytes:
    """``data`` (Ogg Opus or Ogg Vorbis) with its comment header holding ``pairs``; the
    encoder's vendor string is kept."""
    headers = 2 if codec == "OPUS" else 3
    packets, body_start, first_sequence = ogg.header_packets(data, headers)
    magic = b"OpusTags" if codec == "OPUS" else b"\x03vorbis"
    old = packets[1]
    if not old.startswith(magic):
        raise AudioValidationError(f"the second Ogg packet is not a {codec} comment header")
    vendor_length = struct.unpack_from("<I", old, len(magic))[0]
    vendor = old[len(magic) + 4: len(magic) + 4 + vendor_length].decode("utf-8", "replace")
    packets[1] = magic + comment_body(vendor, pairs) + (b"\x01" if codec == "VORBIS" else b"")
    return ogg.replace_headers(data, packets, body_start, first_sequence)
