"""Audio files through libsndfile: header facts without decoding, then bounded-memory blocks.

:class:`AudioFile` opens any format the installed libsndfile reads (WAV, FLAC, OGG/Vorbis,
MP3 where supported, AIFF, ...). Opening reads the header only; :meth:`AudioFile.blocks`
then decodes float32 blocks of shape (channels, frames), one at a time, so the memory in use
depends on the block length, not on the file's. Every way a file can fail to be audio (a
directory, no bytes, bytes that are not audio, an unsupported codec, a truncated body) is an
:class:`~services.errors.AudioDecodeError` that names the file; a missing file is
``FileNotFoundError``. ``soundfile`` is imported when the first file is opened.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import AudioDecodeError

__all__ = ["FileHeader", "AudioFile", "array_blocks", "block_frames_for", "fspath"]

# libsndfile logs a header's size field that disagrees with the bytes present as
# "data : 256000 (should be 127978)". The data chunk of WAV/WAVEX ("data"), AIFF ("SSND")
# and AU ("Data Size") declaring more bytes than the file holds means a truncated body.
_DECLARED_VS_PRESENT = re.compile(
    r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE
)
# Writers that cannot seek back to patch the header (streams) leave these sizes.
_UNKNOWN_LENGTH_MARKERS = frozenset({0xFFFFFFFF, 0x7FFFFFFF})


@dataclass(frozen=True)
class FileHeader:
    """What a file's header says, read without decoding any audio."""

    path: str
    format: str  # libsndfile major format: "WAV", "FLAC", "OGG", "MP3", ...
    subtype: str  # sample encoding: "PCM_16", "FLOAT", "VORBIS", "MPEG_LAYER_III", ...
    sample_rate: int  # Hz
    channels: int
    frames: int  # samples per channel
    size_bytes: int


def fspath(path: Any, name: str = "audio_path") -> str:
    """``path`` (str or os.PathLike) as a str; ``TypeError`` for anything else.

    An int is refused on purpose: libsndfile would take it as an open file descriptor.
    """
    if isinstance(path, (str, os.PathLike)):
        text = os.fspath(path)
        return os.fsdecode(text) if isinstance(text, bytes) else text
    raise TypeError(f"{name} must be a str or os.PathLike; got {type(path).__name__}")


def block_frames_for(sample_rate: int, block_seconds: float) -> int:
    """Frames per block for ``block_seconds`` at ``sample_rate`` Hz (at least 1)."""
    return max(1, int(round(block_seconds * sample_rate)))


def array_blocks(audio: np.ndarray, block_frames: int) -> Iterator[np.ndarray]:
    """Views of ``audio`` (channels, samples) as consecutive (channels, <= block_frames) blocks."""
    for start in range(0, audio.shape[1], block_frames):
        yield audio[:, start : start + block_frames]


def _libsndfile_reason(exc: BaseException) -> str:
    """The libsndfile sentence of a soundfile error, without its "Error opening 'x':" prefix."""
    reason = (getattr(exc, "error_string", None) or str(exc)).strip()
    if reason.startswith("File does not exist or is not a regular file"):
        # libsndfile's last probe (MPEG) says this of any regular file it cannot parse.
        return "Format not recognised."
    return reason or type(exc).__name__


# Integer PCM is read as integers and scaled here, which is several times faster than
# libsndfile's per-sample conversion and gives the same values (its full scale is 2**15
# for 16 bits and 2**31 for the left-aligned 24- and 32-bit samples).
_INTEGER_READS = {
    "PCM_S8": ("int16", np.float32(1.0 / 2**15)),
    "PCM_U8": ("int16", np.float32(1.0 / 2**15)),
    "PCM_16": ("int16", np.float32(1.0 / 2**15)),
    "PCM_24": ("int32", np.float32(1.0 / 2**31)),
    "PCM_32": ("int32", np.float32(1.0 / 2**31)),
}


class AudioFile:
    """An open audio file: :attr:`header` at once, decoded :meth:`blocks` on demand.

    Use as a context manager. Raises ``FileNotFoundError`` (or another ``OSError`` such as
    ``PermissionError``) when the path cannot be opened at all, and
    :class:`~services.errors.AudioDecodeError` when it is not decodable audio.
    """

    def __init__(self, path: Any) -> None:
        import soundfile  # deferred: loading libsndfile is not free

        self.path = fspath(path)
        info = os.stat(self.path)  # FileNotFoundError / PermissionError name the path
        if stat.S_ISDIR(info.st_mode):
            raise AudioDecodeError(f"{self.path!r} is a directory, not an audio file")
        if not stat.S_ISREG(info.st_mode):
            raise AudioDecodeError(f"{self.path!r} is not a regular file")
        if info.st_size == 0:
            raise AudioDecodeError(f"{self.path!r} is empty (0 bytes)")
        with open(self.path, "rb"):
            pass  # a PermissionError here is clearer than libsndfile's "System error"
        try:
            self._file = soundfile.SoundFile(self.path, mode="r")
        except (soundfile.SoundFileError, RuntimeError) as exc:
            raise AudioDecodeError(
                f"{self.path!r} is not audio that libsndfile can decode: {_libsndfile_reason(exc)}"
            ) from exc
        try:
            self.header = FileHeader(
                path=self.path,
                format=str(self._file.format),
                subtype=str(self._file.subtype),
                sample_rate=int(self._file.samplerate),
                channels=int(self._file.channels),
                frames=int(self._file.frames),
                size_bytes=int(info.st_size),
            )
            self._check_header()
            # Only floating-point encodings can store NaN or Inf (or overflow float32).
            self._may_hold_non_finite = self.header.subtype in ("FLOAT", "DOUBLE")
        except BaseException:
            self._file.close()
            raise

    def _check_header(self) -> None:
        header = self.header
        for declared, present in _DECLARED_VS_PRESENT.findall(self._file.extra_info):
            declared, present = int(declared), int(present)
            if declared > present and declared not in _UNKNOWN_LENGTH_MARKERS:
                raise AudioDecodeError(
                    f"{self.path!r} is truncated: its header declares {declared} bytes of "
                    f"audio, the file holds {present}"
                )
        if header.channels < 1 or header.sample_rate < 1:
            raise AudioDecodeError(
                f"{self.path!r} has an invalid header: {header.channels} channels "
                f"at {header.sample_rate} Hz"
            )
        if header.frames == 0:
            raise AudioDecodeError(f"{self.path!r} contains no audio frames")

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """Decode the whole file as float32 blocks of shape (channels, <= block_frames).

        Raises :class:`~services.errors.AudioDecodeError` when the decoder fails or stops
        before the number of frames that the header declares (a truncated file).
        """
        import soundfile

        try:
            self._file.seek(0)
        except (soundfile.SoundFileError, RuntimeError) as exc:  # e.g. a FLAC cut inside its header
            raise AudioDecodeError(f"{self.path!r} cannot be decoded: {_libsndfile_reason(exc)}") from exc
        decoded = 0
        integer_type, scale = _INTEGER_READS.get(self.header.subtype, ("float32", None))
        while True:
            try:
                data = self._file.read(block_frames, dtype=integer_type, always_2d=True)
            except (soundfile.SoundFileError, RuntimeError) as exc:
                raise AudioDecodeError(
                    f"{self.path!r} cannot be decoded ({decoded} frames decoded before the "
                    f"error): {_libsndfile_reason(exc)}"
                ) from exc
            if data.shape[0] == 0:
                break
            if self._may_hold_non_finite and not np.isfinite(data).all():
                first = decoded + int(np.argwhere(~np.isfinite(data))[0][0])
                raise AudioDecodeError(
                    f"{self.path!r} holds non-finite samples (NaN or Inf), "
                    f"the first at frame {first}"
                )
            decoded += data.shape[0]
            if scale is None:
                yield np.ascontiguousarray(data.T)
            else:  # integers to float in one pass that also de-interleaves
                block = np.empty((data.shape[1], data.shape[0]), dtype=np.float32)
                np.multiply(data.T, scale, out=block, dtype=np.float32)
                yield block
        if decoded < self.header.frames:
            raise AudioDecodeError(
                f"{self.path!r} is truncated: its header declares {self.header.frames} frames, "
                f"only {decoded} could be decoded"
            )

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "AudioFile":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
