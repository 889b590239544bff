"""AudioExporter: a tensor from a music model becomes a loudness-normalized audio file.

:meth:`AudioExporter.export` picks the format from the path's extension (WAV, FLAC, MP3,
Ogg Opus, Ogg Vorbis: :mod:`services.audio.formats`), takes an optional destination
``preset`` (:mod:`services.audio.presets`), writes ``tags`` in the format's own way
(:mod:`services.audio.tags`) and, on request, waveform peaks beside the file.
:meth:`AudioExporter.export_wav` stays the spec's WAV-only call.

Normalization is one linear gain to ``target_lufs`` (BS.1770-5 integrated loudness),
capped so that the output true peak stays at or below ``true_peak_ceiling`` dBTP (the
spec's "fallback to peak normalization"): the output never clips, at any bit depth.
Audio below the -70 LUFS absolute gate is written unchanged. Files are written
atomically: a temporary file in the target folder, flushed to disk, then renamed.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..config import get_settings
from ..errors import AudioValidationError, BatchExportError
from . import _native
from ._arrays import as_audio_array, validate_sample_rate
from ._atomic import PendingOutput
from ._fsutil import fsync_dir
from ._blas import single_threaded_blas
from .loudness import (
    ABSOLUTE_GATE_LUFS, DB_PER_DOUBLING, LoudnessReport, _measure_validated, rescale_exponent, shifted_report,
)

__all__ = ["AudioExporter", "ExportResult", "GainDecision", "SUPPORTED_BIT_DEPTHS", "plan_gain"]

logger = logging.getLogger(__name__)

SUPPORTED_BIT_DEPTHS = ("PCM_16", "PCM_24", "PCM_32", "FLOAT")
_TARGET_RANGE_LUFS = (-70.0, 0.0)
_CEILING_RANGE_DBTP = (-20.0, 0.0)
_WAV_LIMIT_BYTES = 0xFFFFFFFF - 1024  # larger data needs RF64
_SYNC_THREADS = 2  # batch export: files being fsynced and renamed while the next are computed
_SYNC_BACKLOG_PER_WORKER = 4  # written files waiting for those threads, per worker
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_BYTES_PER_SAMPLE = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}
# Integer PCM: (numpy type handed to libsndfile, full scale of the format, alignment factor).
# libsndfile stores the top 24 bits of an int32 for PCM_24, hence the factor 2**8.
_PCM = {
    "PCM_16": (np.int16, 32767, 1),
    "PCM_24": (np.int32, 8388607, 256),
    "PCM_32": (np.int32, 2147483647, 1),
}


def _interleaved_samples(audio: np.ndarray, gain: float, subtype: str) -> np.ndarray:
    """(channels, samples) float audio times ``gain`` -> the interleaved (samples, channels)
    array handed to libsndfile: the integers of ``subtype`` (rounded half to even, clipped to
    the format), or float32 for FLOAT.

    PCM is quantized here rather than by libsndfile, whose per-sample float conversion is
    about four times slower: in one compiled pass where the extension was built, else with
    :func:`_scaled_interleaved` and a few array operations, with the same results.
    """
    if subtype not in _PCM:
        return _scaled_interleaved(audio, gain, np.float32)
    dtype, full_scale, alignment = _PCM[subtype]
    if _native.kernels is not None:
        frames = np.empty(audio.shape[::-1], dtype)
        _native.kernels.interleave_pcm(
            audio, audio.dtype == np.float64, audio.shape[0], audio.shape[1], gain * full_scale, -full_scale - 1,
            full_scale, alignment, frames,
        )
        return frames
    work = np.float32 if subtype == "PCM_16" else np.float64  # float32 cannot hold 2**31 - 1
    scaled = _scaled_interleaved(audio, gain * full_scale, work)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -full_scale - 1, full_scale, out=scaled)
    integers = scaled.astype(dtype)
    if alignment != 1:
        np.multiply(integers, alignment, out=integers)
    return integers


def _scaled_interleaved(audio: np.ndarray, factor: float, dtype) -> np.ndarray:
    """(channels, samples) ``audio`` times ``factor`` (in ``dtype``), interleaved to (samples,
    channels): one multiplication per channel straight into the layout (NumPy's transposing
    copy is several times slower)."""
    frames = np.empty(audio.shape[::-1], dtype)
    for channel, samples in enumerate(audio):
        np.multiply(samples, dtype(factor), out=frames[:, channel], casting="same_kind")
    return frames


@dataclass(frozen=True)
class GainDecision:
    """How an export changes the level: the gain (dB) and what it leads to.

    ``reason`` is one of ``"loudness"`` (gain to the target), ``"true_peak_cap"`` (the
    ceiling bound the gain), ``"silent"`` (below -70 LUFS, unchanged), ``"disabled"``
    (normalization off), ``"clip_guard"`` (normalization off, but PCM samples above full
    scale were lowered to the ceiling instead of clipping).
    """

    gain_db: float
    reason: str
    input_lufs: float
    output_lufs: float
    output_true_peak_dbtp: float


@dataclass(frozen=True)
class ExportResult:
    """A written file: its path, its size in bytes, and the gain decision that shaped it.

    ``format``/``encoding`` say what was written ("MP3"/"CBR_320", "WAV"/"PCM_16"...),
    ``sample_rate`` (Hz) and ``frames`` (samples per channel) describe the file, and
    ``loudness`` is the :class:`~services.audio.loudness.LoudnessReport` of the delivered
    audio (for lossy formats: measured on the decoded file) or None when nothing was
    measured. ``peaks_paths`` lists the peak files written beside it.
    """

    path: str
    size_bytes: int
    gain: GainDecision
    format: str = "WAV"
    encoding: str = "PCM_16"
    sample_rate: int = 0
    frames: int = 0
    loudness: Optional[LoudnessReport] = None
    peaks_paths: Tuple[str, ...] = ()


@dataclass
class _Plan:
    """What one export writes (validated): format, encoding, level targets, tags, peaks."""

    fmt: Any
    encoding: str
    target_lufs: float
    ceiling: float
    tags: Any = None
    dither: bool = True
    peaks_samples_per_pixel: Optional[int] = None


def _shifted(report: Optional[LoudnessReport], gain_db: float) -> Optional[LoudnessReport]:
    """The loudness figures of ``report``'s audio after a linear gain of ``gain_db`` (None stays None)."""
    return None if report is None else shifted_report(report, gain_db)


def plan_gain(
    integrated_lufs: float,
    true_peak_dbtp: float,
    target_lufs: float,
    true_peak_ceiling: float,
) -> GainDecision:
    """The single gain (dB) that brings audio to ``target_lufs`` without exceeding the ceiling."""
    if not integrated_lufs > ABSOLUTE_GATE_LUFS:
        return GainDecision(0.0, "silent", integrated_lufs, integrated_lufs, true_peak_dbtp)
    gain_db = target_lufs - integrated_lufs
    reason = "loudness"
    if true_peak_dbtp + gain_db > true_peak_ceiling:
        gain_db = true_peak_ceiling - true_peak_dbtp
        reason = "true_peak_cap"
    return GainDecision(gain_db, reason, integrated_lufs, integrated_lufs + gain_db, true_peak_dbtp + gain_db)


def _validate_level(name: str, value: Any, bounds: Tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and bounds[0] <= value <= bounds[1]):
        raise ValueError(f"{name} must be between {bounds[0]} and {bounds[1]}; got {value!r}")
    return value


def validate_bit_depth(bit_depth: Any) -> str:
    if not isinstance(bit_depth, str):
        raise TypeError(f"bit_depth must be a string such as 'PCM_16'; got {type(bit_depth).__name__}")
    normalized = bit_depth.strip().upper()
    if normalized not in SUPPORTED_BIT_DEPTHS:
        raise AudioValidationError(
            f"bit_depth must be one of {', '.join(SUPPORTED_BIT_DEPTHS)}; got {bit_depth!r}"
        )
    return normalized


def _validate_output_path(output_path: Any, wav_only: bool = True) -> Path:
    if not isinstance(output_path, (str, os.PathLike)):
        raise TypeError(f"output_path must be a str or os.PathLike; got {type(output_path).__name__}")
    path = Path(output_path)
    if str(output_path).strip() == "" or path.name in ("", ".", ".."):
        raise AudioValidationError(f"output_path must name a file; got {str(output_path)!r}")
    if wav_only and path.suffix.lower() != ".wav":
        raise AudioValidationError(f"output_path must end in .wav (this exporter writes WAV); got {str(path)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"output_path is a directory: {str(path)!r}")
    return path


class AudioExporter:
    """Export (channels, samples) audio to WAV at a target loudness with a true-peak ceiling.

    ``target_lufs`` defaults to ``AUDIO_TARGET_LUFS`` (-16.0 LUFS), ``true_peak_ceiling``
    to ``AUDIO_TRUE_PEAK_CEILING`` (-1.0 dBTP). ``AUDIO_NORMALIZE=false`` turns
    normalization off for every export, whatever ``normalize`` a call passes.
    """

    def __init__(
        self,
        target_lufs: Optional[float] = None,
        *,
        true_peak_ceiling: Optional[float] = None,
        max_workers: Optional[int] = None,
    ) -> None:
        settings = get_settings()
        self.target_lufs = _validate_level(
            "target_lufs", settings.audio_target_lufs if target_lufs is None else target_lufs, _TARGET_RANGE_LUFS
        )
        self.true_peak_ceiling = _validate_level(
            "true_peak_ceiling",
            settings.audio_true_peak_ceiling if true_peak_ceiling is None else true_peak_ceiling,
            _CEILING_RANGE_DBTP,
        )
        self.normalization_enabled = settings.audio_normalize
        if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive int; got {max_workers!r}")
        self.max_workers = max_workers or os.cpu_count() or 1

    # -- single export ---------------------------------------------------------------------

    def export_wav(
        self,
        audio_tensor: Any,
        output_path: Union[str, Path],
        sample_rate: int = 32000,
        normalize: bool = True,
        bit_depth: str = "PCM_16",
    ) -> Tuple[str, int]:
        """Write ``audio_tensor`` ((samples,), (channels, samples) or (1, channels, samples),
        torch tensor on any device or ndarray, any float dtype) to ``output_path`` as WAV.

        Returns ``(path, size in bytes)``. Raises ``TypeError``/``ValueError`` naming the
        problem before anything is written; on any failure no file is left at the path.
        """
        result = self._export_validated(*self._validate(audio_tensor, output_path, sample_rate, bit_depth, normalize))
        return result.path, result.size_bytes

    def export(
        self,
        audio_tensor: Any,
        output_path: Union[str, Path],
        sample_rate: int = 32000,
        normalize: bool = True,
        bit_depth: str = "PCM_16",
        *,
        preset: Optional[str] = None,
        tags: Any = None,
        dither: bool = True,
        mp3_mode: str = "CBR_320",
        peaks_samples_per_pixel: Optional[int] = None,
    ) -> ExportResult:
        """As :meth:`export_wav`, in the format of the path's extension (.wav, .flac, .mp3,
        .opus, .ogg), returning an :class:`ExportResult`.

        ``preset`` (a name of :mod:`services.audio.presets`) sets this file's target and
        ceiling. Lossy files are decoded and measured after encoding; the gain is lowered and
        the file re-encoded until the decoded true peak is at or below the ceiling. ``tags``
        (a :class:`~services.audio.tags.TrackTags`) are written with the measured loudness
        filled in. ``dither`` (PCM_16 only) adds reproducible TPDF dither.
        ``peaks_samples_per_pixel`` also writes ``<name>.peaks.json`` and ``<name>.peaks.dat``
        (audiowaveform version 2) beside the file, from the audio in memory.
        """
        args = self._validate(audio_tensor, output_path, sample_rate, bit_depth, normalize, wav_only=False)
        plan = self._plan(args[1], args[0].shape[0], args[3], preset, tags, dither, mp3_mode, peaks_samples_per_pixel)
        return self._export_validated(*args, plan=plan)

    def _plan(self, path, channels, subtype, preset, tags, dither, mp3_mode, peaks_samples_per_pixel) -> _Plan:
        from .formats import check_channels, format_for_path, resolve_encoding
        from .presets import resolve_preset
        from .tags import TrackTags

        fmt = format_for_path(path)
        encoding = resolve_encoding(fmt, subtype, mp3_mode)
        check_channels(fmt, channels)
        target, ceiling = self.target_lufs, self.true_peak_ceiling
        if preset is not None:
            chosen = resolve_preset(preset, channels)
            target, ceiling = chosen.target_lufs, chosen.ceiling_dbtp
        if tags is not None and not isinstance(tags, TrackTags):
            raise TypeError(f"tags must be a TrackTags; got {type(tags).__name__}")
        if not isinstance(dither, (bool, np.bool_)):
            raise TypeError(f"dither must be a bool; got {type(dither).__name__}")
        if peaks_samples_per_pixel is not None and (
            isinstance(peaks_samples_per_pixel, bool) or not isinstance(peaks_samples_per_pixel, int)
            or peaks_samples_per_pixel < 1
        ):
            raise ValueError(f"peaks_samples_per_pixel must be a positive int; got {peaks_samples_per_pixel!r}")
        return _Plan(fmt, encoding, target, ceiling, tags, bool(dither), peaks_samples_per_pixel)

    def _validate(self, audio_tensor, output_path, sample_rate, bit_depth, normalize, wav_only=True):
        """All argument checks, before anything is written: (audio, path, rate, subtype, normalize)."""
        subtype = validate_bit_depth(bit_depth)
        rate = validate_sample_rate(sample_rate)
        path = _validate_output_path(output_path, wav_only)
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be a bool; got {type(normalize).__name__}")
        audio = as_audio_array(audio_tensor, name="audio_tensor")
        return audio, path, rate, subtype, bool(normalize)

    def _export_validated(
        self, audio: np.ndarray, path: Path, rate: int, subtype: str, normalize: bool, plan: Optional[_Plan] = None
    ) -> ExportResult:
        pending, decision, delivered = self._write_pending(audio, path, rate, subtype, normalize, plan)
        if plan is not None and plan.peaks_samples_per_pixel:
            from .peaks import write_peaks_beside

            try:
                peaks_paths = write_peaks_beside(path, delivered.pop("peaks_audio"), delivered["sample_rate"],
                                                 plan.peaks_samples_per_pixel)
            except BaseException:
                pending.discard()
                raise
            delivered["peaks_paths"] = peaks_paths
        delivered.pop("peaks_audio", None)
        return ExportResult(str(path), pending.commit(), decision, **delivered)

    def _write_pending(
        self, audio: np.ndarray, path: Path, rate: int, subtype: str, normalize: bool, plan: Optional[_Plan] = None
    ) -> Tuple[PendingOutput, GainDecision, dict]:
        """Measure, apply the gain and write a temporary file that the caller commits; the
        decision and the :class:`ExportResult` fields that describe what was written."""
        if plan is not None and plan.fmt.name != "WAV":
            return self._write_encoded(audio, path, rate, normalize, plan)
        import soundfile

        target, ceiling = (self.target_lufs, self.true_peak_ceiling) if plan is None else (plan.target_lufs, plan.ceiling)
        measure_always = plan is not None and plan.tags is not None
        audio, gain, decision, report = self._apply_gain(audio, rate, normalize, subtype, target, ceiling, measure_always)
        frames = self._pcm_frames(audio, gain, subtype, plan)
        data_bytes = frames.size * _BYTES_PER_SAMPLE[subtype]
        container = "WAV" if data_bytes < _WAV_LIMIT_BYTES else "RF64"
        pending = PendingOutput(path)
        try:
            # Through the Python file object, not its descriptor: libsndfile would fsync a
            # descriptor on close, and the commit (perhaps on another thread) does that.
            with soundfile.SoundFile(
                pending.handle, mode="w", samplerate=rate, channels=frames.shape[1], subtype=subtype, format=container
            ) as sound:
                sound.write(frames)
            pending.check()  # under python -O too, where soundfile's own check is gone
        except BaseException as exc:
            pending.fail(exc)
        delivered = {"format": "WAV", "encoding": subtype, "sample_rate": rate, "frames": int(audio.shape[1]),
                     "loudness": _shifted(report, decision.gain_db)}
        if plan is not None:
            if plan.tags is not None:
                self._append_wav_tags(pending, plan, delivered, audio.shape[0], subtype)
            if plan.peaks_samples_per_pixel:
                delivered["peaks_audio"] = audio if gain == 1.0 else audio * np.float32(gain)
        return pending, decision, delivered

    @staticmethod
    def _pcm_frames(audio: np.ndarray, gain: float, subtype: str, plan: Optional[_Plan]) -> np.ndarray:
        if subtype == "PCM_16" and (plan is None or plan.dither):
            from ._dither import tpdf_pcm16

            return tpdf_pcm16(audio, gain)
        return _interleaved_samples(audio, gain, subtype)

    @staticmethod
    def _append_wav_tags(pending: PendingOutput, plan: _Plan, delivered: dict, channels: int, subtype: str) -> None:
        from .tags.riff import append_chunks, metadata_chunks

        tags = plan.tags.replace(loudness=delivered["loudness"])
        bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32}[subtype]
        try:
            append_chunks(pending.handle, metadata_chunks(tags, delivered["sample_rate"], channels, delivered["frames"], bits))
            pending.check()
        except BaseException as exc:
            pending.fail(exc)

    def _write_encoded(
        self, audio: np.ndarray, path: Path, rate: int, normalize: bool, plan: _Plan
    ) -> Tuple[PendingOutput, GainDecision, dict]:
        """FLAC, MP3, Opus or Vorbis: encode in memory, tag, write a temporary file."""
        from .formats import delivery_rate

        out_rate = delivery_rate(plan.fmt, rate)
        if plan.fmt.lossy:
            data, decision, report, decoded = self._encode_to_ceiling(audio, rate, out_rate, normalize, plan)
            frames, peaks_audio = decoded.shape[1], decoded
        else:
            data, decision, report, peaks_audio = self._encode_flac(audio, rate, normalize, plan)
            frames = audio.shape[1]
        if plan.tags is not None:
            from .tags import tag_encoded

            data = tag_encoded(data, plan.fmt.name, plan.tags.replace(loudness=report))
        pending = PendingOutput(path)
        pending.write_all(data)
        delivered = {"format": plan.fmt.name, "encoding": plan.encoding, "sample_rate": out_rate,
                     "frames": int(frames), "loudness": report}
        if plan.peaks_samples_per_pixel:
            delivered["peaks_audio"] = peaks_audio
        return pending, decision, delivered

    def _encode_flac(self, audio: np.ndarray, rate: int, normalize: bool, plan: _Plan):
        import io

        import soundfile

        audio, gain, decision, report = self._apply_gain(
            audio, rate, normalize, plan.encoding, plan.target_lufs, plan.ceiling, plan.tags is not None
        )
        frames = self._pcm_frames(audio, gain, plan.encoding, plan)
        buffer = io.BytesIO()
        with soundfile.SoundFile(buffer, "w", samplerate=rate, channels=audio.shape[0], subtype=plan.encoding,
                                 format="FLAC", compression_level=0.5) as sound:
            sound.write(frames)
        peaks_audio = (audio * np.float32(gain)) if plan.peaks_samples_per_pixel else None
        return buffer.getvalue(), decision, _shifted(report, decision.gain_db), peaks_audio

    def _encode_to_ceiling(self, audio: np.ndarray, rate: int, out_rate: int, normalize: bool, plan: _Plan):
        from ._lossy import encode_to_ceiling

        return encode_to_ceiling(audio, rate, out_rate, plan, normalize and self.normalization_enabled)

    def _apply_gain(
        self, audio: np.ndarray, sample_rate: int, normalize: bool, subtype: str,
        target: Optional[float] = None, ceiling: Optional[float] = None, measure_always: bool = False,
    ):
        """(audio to write, linear gain for it, :class:`GainDecision`, the input's LoudnessReport
        or None). At any scale: audio whose peak lies outside [2**-20, 2**20] is written from a
        copy scaled by a power of two (exact), with the gain adjusted by the same dB; the
        decision and the report describe the input as given."""
        target = self.target_lufs if target is None else target
        ceiling = self.true_peak_ceiling if ceiling is None else ceiling
        exponent = rescale_exponent(audio)
        report = None
        if normalize and self.normalization_enabled:
            report = _measure_validated(audio, sample_rate, exponent=exponent)
            decision = plan_gain(report.integrated_lufs, report.true_peak_dbtp, target, ceiling)
            if decision.reason == "true_peak_cap":
                logger.info(
                    "true-peak ceiling %.1f dBTP bound the gain: reached %.2f LUFS instead of %.2f LUFS",
                    ceiling, decision.output_lufs, target,
                )
            elif decision.reason == "silent":
                logger.info("audio below %.0f LUFS: written without normalization", ABSOLUTE_GATE_LUFS)
        else:
            decision, report = self._clip_guard(audio, sample_rate, subtype, ceiling, measure_always, exponent)
        if decision.gain_db == 0.0:
            return audio, 1.0, decision, report  # unchanged
        scaled = np.ldexp(audio, exponent) if exponent else audio
        return scaled, 10.0 ** ((decision.gain_db - exponent * DB_PER_DOUBLING) / 20.0), decision, report

    def _clip_guard(
        self, audio: np.ndarray, sample_rate: int, subtype: str, ceiling: float, measure_always: bool, exponent: int
    ):
        """Without normalization, samples are kept, unless PCM would clip them."""
        peak = float(max(audio.max(), -audio.min()))
        if subtype == "FLOAT" and peak > _FLOAT32_MAX:
            raise AudioValidationError(
                f"audio_tensor peaks at {peak:.3g}, beyond what FLOAT (32-bit) samples can hold; "
                "normalize it, or scale it below 3.4e38"
            )
        if subtype == "FLOAT" or peak <= 1.0:
            report = _measure_validated(audio, sample_rate, exponent=exponent) if measure_always else None
            return GainDecision(0.0, "disabled", math.nan, math.nan, math.nan), report
        report = _measure_validated(audio, sample_rate, exponent=exponent)
        gain_db = ceiling - report.true_peak_dbtp
        logger.warning(
            "samples reach %.2f dBFS, beyond what %s can hold: lowered by %.2f dB to the %.1f dBTP ceiling",
            20 * math.log10(peak), subtype, -gain_db, ceiling,
        )
        return GainDecision(
            gain_db, "clip_guard", report.integrated_lufs, report.integrated_lufs + gain_db, ceiling
        ), report

    # -- batch export ----------------------------------------------------------------------

    def export_wav_batch(
        self,
        audio_tensors: Sequence[Any],
        output_paths: Sequence[Union[str, Path]],
        sample_rate: int = 32000,
        normalize: bool = True,
        bit_depth: str = "PCM_16",
    ) -> List[Tuple[str, int]]:
        """Export many clips in parallel on ``max_workers`` threads; results in input order.

        Every item is attempted. If any fails, the others are still written and a
        :class:`~services.errors.BatchExportError` is raised whose ``results`` hold
        ``(path, size)`` or ``None`` per item and whose ``failures`` map each failed
        index to its exception.

        Items are measured, gained and written to temporary files on ``max_workers``
        threads (the heavy parts release Python's GIL, so the threads run in parallel
        without copying the audio to other processes; BLAS stays on one thread for the whole
        batch). Each finished file is handed to a syncing thread that fsyncs and renames it
        while the workers go on with the next items, so waiting for the disk overlaps with
        computing; one fsync per folder at the end makes the renames durable.
        """
        if isinstance(audio_tensors, (str, bytes)) or not isinstance(audio_tensors, Sequence):
            raise TypeError(f"audio_tensors must be a list; got {type(audio_tensors).__name__}")
        if isinstance(output_paths, (str, bytes)) or not isinstance(output_paths, Sequence):
            raise TypeError(f"output_paths must be a list; got {type(output_paths).__name__}")
        if len(audio_tensors) != len(output_paths):
            raise ValueError(
                f"audio_tensors and output_paths differ in length: {len(audio_tensors)} vs {len(output_paths)}"
            )
        resolved = [os.path.abspath(p) if isinstance(p, (str, os.PathLike)) else None for p in output_paths]
        duplicates = sorted({p for p in resolved if p is not None and resolved.count(p) > 1})
        if duplicates:
            raise ValueError(f"output_paths name the same file more than once: {duplicates!r}")

        count = len(audio_tensors)
        workers = min(self.max_workers, count)
        # Written files waiting for their fsync hold a descriptor each: past this many, a
        # worker waits for the syncing threads (a slow disk cannot exhaust descriptors).
        waiting = threading.BoundedSemaphore(_SYNC_BACKLOG_PER_WORKER * max(workers, 1))

        def commit(pending: PendingOutput) -> int:
            try:
                return pending.commit(sync_directory=False)
            finally:
                waiting.release()

        def prepare(index: int, syncing: ThreadPoolExecutor):
            """The item's commit (a future of its size) once its temporary file is written,
            or the exception that stopped it."""
            try:  # validation (and the move to CPU) too runs on the worker threads
                args = self._validate(audio_tensors[index], output_paths[index], sample_rate, bit_depth, normalize)
                waiting.acquire()
                try:
                    pending, _, _ = self._write_pending(*args)
                except BaseException:
                    waiting.release()
                    raise
            except Exception as exc:  # reported per item
                return exc
            return syncing.submit(commit, pending)

        with single_threaded_blas(), ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="export-sync") as syncing:
            if workers <= 1:
                outcomes = [prepare(index, syncing) for index in range(count)]
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export") as pool:
                    outcomes = list(pool.map(prepare, range(count), [syncing] * count))
            results: List[Optional[Tuple[str, int]]] = [None] * count
            failures = {}
            for index, outcome in enumerate(outcomes):
                if not isinstance(outcome, Future):
                    failures[index] = outcome
                    continue
                try:
                    results[index] = (str(Path(output_paths[index])), outcome.result())
                except Exception as exc:  # the fsync or the rename failed
                    failures[index] = exc
        for folder in sorted({os.path.dirname(path) for path, _ in filter(None, results)}):
            fsync_dir(folder)
        if failures:
            raise BatchExportError(results, failures)
        return results

    def get_info(self) -> dict:
        """The exporter's configuration (the spec's keys plus the ceiling and worker count)."""
        from .formats import FORMAT_NAMES

        return {
            "target_lufs": self.target_lufs,
            "normalization_available": True,
            "normalization_enabled": self.normalization_enabled,
            "supported_bit_depths": list(SUPPORTED_BIT_DEPTHS),
            "supported_formats": list(FORMAT_NAMES),
            "true_peak_ceiling": self.true_peak_ceiling,
            "max_workers": self.max_workers,
        }
