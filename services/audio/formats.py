"""Output formats chosen by the file's extension, and the lossy encoders behind them.

=========  ===========  =====================================  ==========================
extension  format       encodings (``bit_depth`` / ``mp3_mode``)  sample rate written
=========  ===========  =====================================  ==========================
.wav       WAV (RIFF)   PCM_16, PCM_24, PCM_32, FLOAT          the input's
.flac      FLAC         PCM_16, PCM_24                         the input's
.mp3       MP3 (LAME)   CBR_320 (320 kbit/s), V0 (VBR best)    the input's if MPEG allows it, else 48 kHz
.opus      Ogg Opus     OPUS (about 160 kbit/s)                48 kHz (Opus decodes at 48 kHz only)
.ogg/.oga  Ogg Vorbis   VORBIS (quality 0.9)                   the input's
=========  ===========  =====================================  ==========================

Every codec runs in-process: libsndfile's (LAME, libvorbis, libFLAC, libopus, bundled with
soundfile), except that Opus goes through the system's libopus when there is one, twice as
fast (:mod:`services.audio._opus`). Resampling is polyphase (:func:`scipy.signal.resample_poly`, Kaiser window, beta 8.6:
images about 90 dB down).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Tuple

import numpy as np

from ..errors import AudioValidationError

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "MP3_MODES",
    "OutputFormat",
    "check_channels",
    "decode_bytes",
    "delivery_rate",
    "encode_lossy",
    "format_for_path",
    "resample",
    "resolve_encoding",
]

MP3_MODES = ("CBR_320", "V0")
_MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_OPUS_RATE = 48000
_VORBIS_COMPRESSION = 0.1  # libsndfile's 0..1 scale, 0 = best: about Vorbis quality 9
_RESAMPLE_WINDOW = ("kaiser", 8.6)  # images and aliases about 90 dB down
_OPUS_COMPRESSION = 0.7  # about 160 kbit/s stereo (0 would be about 500 kbit/s)


@dataclass(frozen=True)
class OutputFormat:
    """One output format: its name, libsndfile container, encodings, and whether it is lossy."""

    name: str
    container: str
    encodings: Tuple[str, ...]
    lossy: bool
    max_channels: int = 32


FORMATS = {
    ".wav": OutputFormat("WAV", "WAV", ("PCM_16", "PCM_24", "PCM_32", "FLOAT"), False),
    ".flac": OutputFormat("FLAC", "FLAC", ("PCM_16", "PCM_24"), False, max_channels=8),
    ".mp3": OutputFormat("MP3", "MP3", MP3_MODES, True, max_channels=2),
    ".opus": OutputFormat("OPUS", "OGG", ("OPUS",), True, max_channels=8),
    ".ogg": OutputFormat("VORBIS", "OGG", ("VORBIS",), True),
    ".oga": OutputFormat("VORBIS", "OGG", ("VORBIS",), True),
}
FORMAT_NAMES = ("wav", "flac", "mp3", "opus", "ogg")
"""What ``--format`` and the API's ``format`` accept (each is also the file's extension)."""


def format_for_path(path: Any, *, field: str = "output_path") -> OutputFormat:
    """The :class:`OutputFormat` of ``path``'s extension; an error naming ``field`` if none."""
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix not in FORMATS:
        raise AudioValidationError(
            f"{field} must end in one of {', '.join(sorted(FORMATS))} (the extension picks the format); "
            f"got {str(path)!r}"
        )
    return FORMATS[suffix]


def check_channels(fmt: OutputFormat, channels: int) -> None:
    """Refuse audio with more channels than ``fmt`` holds (MP3: 2; FLAC, Opus: 8)."""
    if channels > fmt.max_channels:
        raise AudioValidationError(
            f"{fmt.name} holds at most {fmt.max_channels} channels; the audio has {channels} "
            f"(write .wav or .ogg instead)"
        )


def resolve_encoding(fmt: OutputFormat, bit_depth: str, mp3_mode: Any) -> str:
    """The encoding written: ``bit_depth`` for WAV/FLAC, ``mp3_mode`` for MP3, the codec
    otherwise. A ``bit_depth`` other than the default PCM_16 with a lossy format is refused
    (it would be silently ignored), as is a bit depth FLAC cannot hold."""
    if not isinstance(mp3_mode, str) or mp3_mode.strip().upper() not in MP3_MODES:
        raise AudioValidationError(f"mp3_mode must be one of {', '.join(MP3_MODES)}; got {mp3_mode!r}")
    if not fmt.lossy:
        if bit_depth not in fmt.encodings:
            raise AudioValidationError(
                f"bit_depth is {bit_depth!r}, which cannot be written as {fmt.name}; use one of {', '.join(fmt.encodings)}"
            )
        return bit_depth
    if bit_depth != "PCM_16":
        raise AudioValidationError(
            f"bit_depth is {bit_depth!r}, which applies to WAV and FLAC only; {fmt.name} is a lossy codec"
        )
    return mp3_mode.strip().upper() if fmt.name == "MP3" else fmt.encodings[0]


def delivery_rate(fmt: OutputFormat, sample_rate: int) -> int:
    """The sample rate (Hz) the file of ``fmt`` will have for input at ``sample_rate``."""
    if fmt.name == "OPUS":
        return _OPUS_RATE
    if fmt.name == "MP3" and sample_rate not in _MPEG_RATES:
        return 48000
    return sample_rate


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """(channels, samples) float32 audio resampled from ``from_rate`` to ``to_rate`` Hz
    (polyphase filter; same array when the rates are equal)."""
    if from_rate == to_rate:
        return audio
    from scipy.signal import resample_poly

    divisor = math.gcd(from_rate, to_rate)
    resampled = resample_poly(audio, to_rate // divisor, from_rate // divisor, axis=1, window=_RESAMPLE_WINDOW)
    return resampled.astype(np.float32)


def encode_lossy(audio: np.ndarray, sample_rate: int, fmt: OutputFormat, encoding: str) -> bytes:
    """Encode (channels, samples) float audio (full scale 1.0) at ``sample_rate`` Hz; the
    file's bytes (no tags)."""
    import soundfile

    if fmt.name == "OPUS":
        from . import _opus

        encoded = _opus.encode(audio, sample_rate)
        if encoded is not None:
            return encoded
    options = {"format": fmt.container}
    if fmt.name == "MP3":
        # libsndfile's scale: 0 = best. CONSTANT at 0 is 320 kbit/s, VARIABLE at 0 is LAME -V0.
        options.update(subtype="MPEG_LAYER_III", compression_level=0.0,
                       bitrate_mode="CONSTANT" if encoding == "CBR_320" else "VARIABLE")
    elif fmt.name == "OPUS":
        options.update(subtype="OPUS", compression_level=_OPUS_COMPRESSION)
    else:
        options.update(subtype="VORBIS", compression_level=_VORBIS_COMPRESSION)
    buffer = io.BytesIO()
    buffer.name = f"encoded.{fmt.name.lower()}"
    frames = np.ascontiguousarray(audio.T, dtype=np.float32)
    with soundfile.SoundFile(buffer, "w", samplerate=sample_rate, channels=audio.shape[0], **options) as sound:
        sound.write(frames)
    return buffer.getvalue()


def decode_bytes(data: bytes) -> Tuple[np.ndarray, int]:
    """Decode an encoded file held in memory: ((channels, samples) float32, sample rate Hz)."""
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return np.ascontiguousarray(samples.T), int(rate)
