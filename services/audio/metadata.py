"""AudioMetadataExtractor: header facts, signal statistics, loudness, tempo and key.

Files and tensors take one code path: the audio is a sequence of (channels, frames) blocks
(decoded from a file by :class:`~services.audio._reader.AudioFile`, or views of a validated
array), and one pass over the blocks feeds every measurement at once: the peak/RMS
accumulators, the BS.1770 :class:`~services.audio.loudness.LoudnessMeter`, and a mono mix
into the :class:`~services.audio.tempo.TempoAnalyzer` and
:class:`~services.audio.key.KeyAnalyzer`. Memory therefore stays bounded by the block length
and the analyzers' compact state, whatever the duration.

Fields of a result (every key is always present, so stored JSON has one schema; a file's
result also has ``format``, ``bit_depth`` and ``file_size_bytes``, a tensor's does not).
The last column says when a value is None:

=================  ======================================================  ==============
key                meaning                                                 None when
=================  ======================================================  ==============
duration_seconds   frames / sample_rate, seconds                           never
sample_rate        Hz                                                      never
channels           1 = mono, 2 = stereo                                    never
frames             samples per channel                                     never
format             container: "WAV", "FLAC", "OGG", "MP3"... (files)       never
bit_depth          encoding: "PCM_16", "FLOAT", "VORBIS"... (files)        never
file_size_bytes    bytes on disk (files)                                   never
bpm                tempo, beats per minute                                 off, unknown
bpm_confidence     0..1, 0.0 when the tempo cannot be determined           off
key                "C major", "F# minor", ...                              off, unknown
key_confidence     0..1, 0.0 when the key cannot be determined             off
peak_amplitude     max |sample| over all channels (full scale = 1.0)       stats off
rms_energy         sqrt(mean(sample**2)) over all samples and channels     stats off
dynamic_range_db   20 log10(peak / rms): peak-to-RMS ratio, dB             stats off, 0/0
loudness_lufs      BS.1770 integrated loudness, LUFS                       stats off, gated
true_peak_dbtp     BS.1770 true peak (4x oversampled), dBTP                stats off, 0
loudness_range_lu  EBU Tech 3342 loudness range, LU                        stats off, gated
=================  ======================================================  ==============

"off" means disabled by the caller (``extract_bpm=False``, ``extract_key=False``,
``compute_stats=False``): the value and its confidence are None. "unknown" means enabled but
not determinable from this audio (silence, DC, a clip too short, noise without rhythm or
pitch): the value is None and its confidence is 0.0. Figures that are mathematically
undefined are None rather than ``-inf`` or NaN, which JSON cannot hold: the peak-to-RMS
ratio of silence (0/0), the true peak of silence, and the loudness figures when nothing
passes the -70 LUFS absolute gate ("gated").
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import os
from typing import Any, Dict, Iterable, Optional, Union

import numpy as np

from ..errors import AudioDecodeError, AudioValidationError
from . import _fft as fft
from ._arrays import MAX_CHANNELS, as_audio_array, validate_sample_rate
from ._blas import single_threaded_blas
from ._reader import AudioFile, FileHeader, array_blocks, block_frames_for

__all__ = ["AudioMetadataExtractor", "BPM_HINT_RANGE", "DEFAULT_BLOCK_SECONDS"]

DEFAULT_BLOCK_SECONDS = 2.0
"""Audio is read and analysed this many seconds at a time (bounded memory)."""

BPM_HINT_RANGE = (20.0, 400.0)
"""A tempo hint outside this range (BPM) is refused as absurd."""

_STATS_KEYS = (
    "peak_amplitude",
    "rms_energy",
    "dynamic_range_db",
    "loudness_lufs",
    "true_peak_dbtp",
    "loudness_range_lu",
)


class AudioMetadataExtractor:
    """Extract metadata from audio files and tensors.

    ``extract_bpm`` enables tempo estimation, ``extract_key`` key estimation (both run in the
    same single pass over the audio as the statistics). ``block_seconds`` (keyword-only) is
    the length of the blocks in which audio is read and analysed.
    """

    def __init__(
        self,
        extract_bpm: bool = True,
        extract_key: bool = False,
        *,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
    ) -> None:
        self.extract_bpm = _flag(extract_bpm, "extract_bpm")
        self.extract_key = _flag(extract_key, "extract_key")
        if isinstance(block_seconds, bool) or not isinstance(block_seconds, numbers.Real):
            raise TypeError(
                f"block_seconds must be a number of seconds; got {type(block_seconds).__name__}"
            )
        if not (math.isfinite(block_seconds) and block_seconds > 0):
            raise AudioValidationError(
                f"block_seconds must be a positive number; got {block_seconds!r}"
            )
        self.block_seconds = float(block_seconds)

    # -- public API (the spec's) ------------------------------------------------------------

    def extract_metadata(
        self,
        audio_path: Union[str, "os.PathLike[str]"],
        compute_stats: bool = True,
        *,
        bpm_hint: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Metadata of the audio file at ``audio_path`` (any format libsndfile reads).

        With ``compute_stats=False`` and tempo/key disabled only the header is read (no
        decoding). ``bpm_hint`` (BPM, e.g. from a prompt's "140 BPM") resolves the tempo's
        octave ambiguity (70 vs 140) but never replaces what the audio says.

        Raises ``FileNotFoundError`` for a missing file and
        :class:`~services.errors.AudioDecodeError` (a ``ValueError``) naming the file for a
        directory, an empty, truncated or non-audio file, an unsupported format, NaN/Inf
        samples, or (when samples are needed) a layout the analysis cannot take: more than
        32 channels or a sample rate outside 1-768 kHz.
        """
        compute_stats = _flag(compute_stats, "compute_stats")
        hint = _bpm_hint(bpm_hint)
        with AudioFile(audio_path) as audio_file:
            header = audio_file.header
            result: Dict[str, Any] = {
                "duration_seconds": header.frames / header.sample_rate,
                "sample_rate": header.sample_rate,
                "channels": header.channels,
                "frames": header.frames,
                "format": header.format,
                "bit_depth": header.subtype,
                "file_size_bytes": header.size_bytes,
            }
            if self._decodes(compute_stats):
                _check_analysable(header)
            blocks = audio_file.blocks(block_frames_for(header.sample_rate, self.block_seconds))
            with fft.sized_for(header.frames / header.sample_rate):
                result.update(
                    self._analyse(blocks, header.sample_rate, header.channels, compute_stats, hint)
                )
        return result

    def extract_metadata_from_tensor(
        self,
        audio_tensor: Any,
        sample_rate: int,
        compute_stats: bool = True,
        *,
        bpm_hint: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Metadata of ``audio_tensor`` (torch tensor or ndarray: (samples,), (channels,
        samples) or (1, channels, samples), float, finite) at ``sample_rate`` Hz.

        The result has no ``format``, ``bit_depth`` or ``file_size_bytes``. Raises
        ``TypeError`` for a wrong type and :class:`~services.errors.AudioValidationError`
        (a ``ValueError``) for a wrong value (NaN/Inf samples, empty, bad shape or rate).
        """
        compute_stats = _flag(compute_stats, "compute_stats")
        hint = _bpm_hint(bpm_hint)
        rate = validate_sample_rate(sample_rate)
        audio = as_audio_array(audio_tensor, name="audio_tensor")
        channels, frames = audio.shape
        result: Dict[str, Any] = {
            "duration_seconds": frames / rate,
            "sample_rate": rate,
            "channels": channels,
            "frames": frames,
        }
        blocks = array_blocks(audio, block_frames_for(rate, self.block_seconds))
        with fft.sized_for(frames / rate):
            result.update(self._analyse(blocks, rate, channels, compute_stats, hint))
        return result

    def get_info(self) -> Dict[str, Any]:
        """Configuration and capabilities (spec keys first: extract_bpm, extract_key,
        librosa_available; the latter only says whether librosa is installed, for
        compatibility: no analysis here uses it, and it is not imported to find out)."""
        import soundfile  # the formats depend on the installed libsndfile

        return {
            "extract_bpm": self.extract_bpm,
            "extract_key": self.extract_key,
            "librosa_available": importlib.util.find_spec("librosa") is not None,
            "tempo_estimator": "services.audio.tempo.TempoAnalyzer",
            "key_estimator": "services.audio.key.KeyAnalyzer",
            "loudness_meter": "services.audio.loudness.LoudnessMeter (ITU-R BS.1770, EBU R128)",
            "block_seconds": self.block_seconds,
            "libsndfile_version": soundfile.__libsndfile_version__,
            # RAW (headerless) data cannot be opened without being told its layout.
            "supported_formats": sorted(set(soundfile.available_formats()) - {"RAW"}),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(extract_bpm={self.extract_bpm!r}, "
            f"extract_key={self.extract_key!r}, block_seconds={self.block_seconds!r})"
        )

    # -- the single pass ----------------------------------------------------------------------

    def _decodes(self, compute_stats: bool) -> bool:
        """Whether any enabled measurement needs the samples (else the header suffices)."""
        return compute_stats or self.extract_bpm or self.extract_key

    def _analyse(
        self,
        blocks: Iterable[np.ndarray],
        sample_rate: int,
        channels: int,
        compute_stats: bool,
        bpm_hint: Optional[float],
    ) -> Dict[str, Any]:
        """Run every enabled measurement over ``blocks`` in one pass; the measured fields."""
        fields: Dict[str, Any] = dict.fromkeys(
            ("bpm", "bpm_confidence", "key", "key_confidence") + _STATS_KEYS
        )
        if not self._decodes(compute_stats):
            return fields  # header facts only: nothing is decoded

        stats = meter = tempo = key = None
        if compute_stats:
            from .loudness import LoudnessMeter

            stats = _SignalStats()
            meter = LoudnessMeter(sample_rate, channels)
        if self.extract_bpm:
            from .tempo import TempoAnalyzer

            tempo = TempoAnalyzer(sample_rate)
        if self.extract_key:
            from .key import KeyAnalyzer

            key = KeyAnalyzer(sample_rate)

        with single_threaded_blas():  # set once for the whole pass, not per block
            for block in blocks:
                if stats is not None:
                    stats.update(block)
                    meter.update(block)
                if tempo is not None or key is not None:
                    mono = block[0] if channels == 1 else block.mean(axis=0)
                    if tempo is not None:
                        tempo.update(mono)
                    if key is not None:
                        key.update(mono)
            report = None if meter is None else meter.report()

        if stats is not None:
            fields.update(stats.fields())
            loudness = _finite_or_none(report.integrated_lufs)
            fields["loudness_lufs"] = loudness
            fields["true_peak_dbtp"] = _finite_or_none(report.true_peak_dbtp)
            # The meter reads 0.0 LU when nothing passes the gate; that is "undefined" here.
            fields["loudness_range_lu"] = (
                None if loudness is None else _finite_or_none(report.loudness_range_lu)
            )
        if tempo is not None:
            tempo_estimate = tempo.result(hint_bpm=bpm_hint)
            fields["bpm"], fields["bpm_confidence"] = _estimate_fields(
                tempo_estimate.bpm, tempo_estimate.confidence
            )
        if key is not None:
            key_estimate = key.result()
            fields["key"], fields["key_confidence"] = _estimate_fields(
                key_estimate.key, key_estimate.confidence
            )
        return fields


class _SignalStats:
    """Running peak and RMS over all samples and channels (float64 accumulation)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.sum_squares = 0.0
        self.count = 0

    def update(self, block: np.ndarray) -> None:
        """Add a (channels, frames) block."""
        self.peak = max(self.peak, float(block.max()), -float(block.min()))
        # Squares in float64 (exact for float32 input), pairwise summation; not np.dot,
        # whose threaded BLAS kernel is slower than this on a busy machine.
        self.sum_squares += float(np.square(block, dtype=np.float64).sum())
        self.count += block.size

    def fields(self) -> Dict[str, Optional[float]]:
        rms = math.sqrt(self.sum_squares / self.count) if self.count else 0.0
        ratio_db = 20.0 * math.log10(self.peak / rms) if rms > 0.0 else None
        return {"peak_amplitude": self.peak, "rms_energy": rms, "dynamic_range_db": ratio_db}


def _check_analysable(header: FileHeader) -> None:
    """Refuse, naming the file, a layout that the analysis cannot take (the header-only
    path still reports it): a sample rate or a channel count that tensors may not have."""
    try:
        validate_sample_rate(header.sample_rate)
    except AudioValidationError as exc:
        raise AudioDecodeError(f"{header.path!r} cannot be analysed: {exc}") from exc
    if header.channels > MAX_CHANNELS:
        raise AudioDecodeError(
            f"{header.path!r} cannot be analysed: {header.channels} channels, "
            f"more than {MAX_CHANNELS}"
        )


def _estimate_fields(value: Any, confidence: float):
    """(value, confidence) as stored: confidence 0.0 whenever the value is unknown."""
    if value is None:
        return None, 0.0
    if isinstance(value, numbers.Real):
        value = float(value)
    return value, min(1.0, max(0.0, float(confidence)))


def _finite_or_none(value: float) -> Optional[float]:
    value = float(value)
    return value if math.isfinite(value) else None


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool; got {type(value).__name__} {value!r}")


def _bpm_hint(value: Any) -> Optional[float]:
    """Validate a tempo hint: None, or a number of BPM within :data:`BPM_HINT_RANGE`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"bpm_hint must be a number of BPM or None; got {type(value).__name__}")
    hint = float(value)
    low, high = BPM_HINT_RANGE
    if not (math.isfinite(hint) and low <= hint <= high):
        raise AudioValidationError(
            f"bpm_hint must be between {low:g} and {high:g} BPM; got {value!r}"
        )
    return hint
