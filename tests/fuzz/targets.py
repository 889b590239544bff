"""Fuzz targets: bytes in, and either a result or one of the documented exceptions out.

Each target takes arbitrary ``bytes`` so that the same code runs under atheris
(``scripts/fuzz.py``, coverage-guided, for long runs by hand) and under Hypothesis
(``tests/unit/test_fuzz.py``, a few hundred inputs in every test run). Anything else
raised is a bug.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from functools import lru_cache

import numpy as np

from services._text import MAX_PROMPT_CHARS, clean_prompt
from services.errors import AudioDecodeError, GenerationRequestError
from services.generation.procedural import ProceduralBackend
from services.generation.prompt import GENRES, MOODS, PromptSpec, parse_prompt

HEADER_BYTES = 128
"""Mutations land in the first bytes of a file: the RIFF/fmt/data headers of a WAV, the
STREAMINFO block and first frame header of a FLAC."""


def prompt_target(data: bytes) -> None:
    """The prompt's checks and parser: ``GenerationRequestError`` or a consistent PromptSpec."""
    text = data.decode("utf-8", "surrogateescape")  # undecodable bytes as argv delivers them
    spec = parse_prompt(text)  # never raises for a str, whatever it holds
    _check_spec(spec, text)
    try:
        cleaned = clean_prompt(text)
    except GenerationRequestError as exc:
        assert str(exc).startswith("prompt must")
        return
    assert len(cleaned) <= MAX_PROMPT_CHARS and cleaned == cleaned.strip()
    assert not any(ch in cleaned for ch in "\x00\x1b\n\r\t\x7f")
    try:
        ProceduralBackend.check_prompt(parse_prompt(cleaned))
    except GenerationRequestError as exc:
        assert "tempo must be between" in str(exc)


def _check_spec(spec: PromptSpec, text: str) -> None:
    assert isinstance(spec, PromptSpec) and spec.text == text
    assert spec.bpm is None or (isinstance(spec.bpm, float) and not math.isnan(spec.bpm) and spec.bpm >= 0)
    assert spec.mode in (None, "major", "minor")
    assert spec.beats_per_bar in (None, 3, 4)
    assert spec.genre is None or spec.genre in GENRES
    assert all(mood in MOODS for mood in spec.moods)
    if spec.key is not None:
        assert spec.tonic in range(12)


@lru_cache(maxsize=None)
def seed_files() -> tuple:
    """Small valid files to mutate: WAV 16-bit, WAV 24-bit 3-channel (WAVE_FORMAT_EXTENSIBLE),
    WAV float, FLAC 16-bit."""
    import soundfile

    t = np.arange(2400) / 8000.0
    tone = 0.25 * np.sin(2 * np.pi * 440.0 * t)
    files = []
    for fmt, subtype, channels in (("WAV", "PCM_16", 1), ("WAV", "PCM_24", 3), ("WAV", "FLOAT", 2),
                                   ("FLAC", "PCM_16", 2)):
        buffer = io.BytesIO()
        soundfile.write(buffer, np.stack([tone] * channels, axis=1), 8000, subtype=subtype, format=fmt)
        files.append(buffer.getvalue())
    return tuple(files)


def mutate(data: bytes) -> bytes:
    """A seed file changed as ``data`` says: byte 0 picks the seed, bytes 1-2 a truncation
    (0: none), then (offset, value) pairs overwrite header bytes."""
    seeds = seed_files()
    if not data:
        return seeds[0]
    content = bytearray(seeds[data[0] % len(seeds)])
    for offset, value in zip(data[3::2], data[4::2]):
        content[offset % HEADER_BYTES] = value
    cut = int.from_bytes(data[1:3].ljust(2, b"\0"), "little")
    return bytes(content[:cut] if 0 < cut < len(content) else content)


def reader_target(data: bytes) -> None:
    """The audio reader on a mutated WAV/FLAC: ``AudioDecodeError`` or finite float32 blocks
    of the header's shape, as many frames as the header declares."""
    from services.audio._reader import AudioFile

    fd, path = tempfile.mkstemp(suffix=".wav" if data[:1] and data[0] % 4 != 3 else ".flac")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(mutate(data))
        try:
            with AudioFile(path) as audio:
                header = audio.header
                if header.frames * header.channels > 50_000_000:  # a mutated size field: refused
                    return                                        # elsewhere by the memory guard
                frames = 0
                for block in audio.blocks(4096):
                    assert block.dtype == np.float32 and block.shape[0] == header.channels
                    frames += block.shape[1]
                assert frames == header.frames
        except AudioDecodeError as exc:
            assert path in str(exc)
    finally:
        os.unlink(path)
