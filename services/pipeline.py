"""The product's main job: prompt -> generated, normalized, measured, filed and recorded track.

This module is the only place that knows the order of the spec's integration workflow.
A job is split in two, so that whoever runs it (the CLI in the foreground, the local
runner inside ``serve``, a Procrastinate worker) runs the same code:

:func:`submit_generation` (the request is checked before anything is written)
  1. a job id and a dated output path (AudioFileManager);
  2. a history record, ``pending``, holding what a run needs (duration, seed, bit depth);
     a queue may add its own job in the same transaction (``enqueue``).

:func:`run_generation` (one run of a recorded job)
  3. the record ``processing`` under a lease (:mod:`services.jobs.lifecycle`);
  4. audio from the generation engine (cut to a seamless loop of N bars on request);
  5. tempo and key of that audio in memory (the prompt's tempo as the BPM hint); for the
     procedural engine, the tempo and key it rendered are the track's (``"rendered"``),
     the analysis's stay under ``"measured"`` and a disagreement is logged;
  6. a loudness-normalized file in the requested format at the job's path (AudioExporter,
     atomic), with tags from that analysis and the loudness the exporter measured on what it
     wrote: one measurement, never a second pass over the written file;
  7. the record ``completed`` with the file size, generation time and metadata.

Each step starts by recording it (``progress_step``) and checking that the job was not
cancelled and is still this process's. A failure at any step ends the record ``failed``
with the error message and removes the file this job wrote, so no orphan or partial
file remains; a cancel ends it ``cancelled``; a runner's shutdown re-queues it. A re-run
writes to the same path, so a job never leaves two files.

:func:`generate_track` does both in the foreground (the ``dgx-music generate`` command).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional

__all__ = ["TrackResult", "generate_track", "new_job_id", "run_generation", "submit_generation"]

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class TrackResult:
    """A finished track: where it is, how it was made, and what was measured."""

    job_id: str
    generation_id: str
    prompt: str
    file_path: str
    file_size_bytes: int
    generation_time_seconds: float
    sample_rate: int
    channels: int
    metadata: Dict[str, Any] = field(default_factory=dict)
    prompt_bpm: Optional[float] = None
    gain_db: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "job_id": self.job_id,
            "generation_id": self.generation_id,
            "prompt": self.prompt,
            "file_path": self.file_path,
            "file_size_bytes": self.file_size_bytes,
            "generation_time_seconds": self.generation_time_seconds,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "prompt_bpm": self.prompt_bpm,
            "gain_db": self.gain_db,
            "metadata": dict(self.metadata),
        }


def new_job_id() -> str:
    """A fresh job id such as ``gen_3f2a9c1e``."""
    return f"gen_{uuid.uuid4().hex[:8]}"


def submit_generation(
    prompt: str,
    duration: float = 16.0,
    seed: Optional[int] = None,
    *,
    bit_depth: str = "PCM_16",
    delivery: Any = None,
    runner: str = "cli",
    engine: Any = None,
    file_manager: Any = None,
    database_url: Optional[str] = None,
    job_id: Optional[str] = None,
    queue_limit: Optional[int] = None,
    enqueue: Optional[Callable[[Any, Any], None]] = None,
):
    """Check a request and record it as a ``pending`` job; returns the stored ``Generation``.

    ``duration`` in seconds; ``runner`` is who will run it ("cli", "local",
    "procrastinate"). Invalid values raise before anything is written (``TypeError``, or a
    ``ValueError`` naming the argument). With ``queue_limit``, a job that would make more
    than that many wait raises :class:`~services.errors.QueueFullError`. ``delivery`` (a
    :class:`~services.audio.delivery.DeliveryOptions` or a mapping of its fields) picks the
    format, preset, loop, file name template and peaks. ``enqueue(session,
    generation)`` runs inside the same transaction as the insert (a queue's own job), so
    either both are written or neither.
    """
    from .audio import AudioFileManager
    from .audio.export import validate_bit_depth
    from .errors import QueueFullError
    from .generation import MusicGenerationEngine
    from .jobs.events import announce, publish
    from ._text import clean_prompt
    from .storage import count_generations, create_generation, get_session

    engine = engine or MusicGenerationEngine()
    prompt_spec = engine.validate_request(prompt, duration, seed)  # raises before any record
    prompt = clean_prompt(prompt)  # stored as the engine reads it: line breaks and tabs as spaces
    bit_depth = validate_bit_depth(bit_depth)
    options = _delivery_options(delivery)
    _check_encoding(options, bit_depth)
    _check_loop_fits(options, prompt_spec, duration)
    file_manager = file_manager or AudioFileManager()
    job_id = job_id or new_job_id()
    output_path = Path(os.path.abspath(file_manager.get_output_path(job_id, extension=options.extension)))  # recorded absolute
    if output_path.exists():
        raise FileExistsError(f"job {job_id!r} already has a file: {str(output_path)!r}")
    info = engine.get_info()
    request = {"duration": float(duration), "seed": None if seed is None else int(seed), "bit_depth": bit_depth,
               **options.to_request()}

    with get_session(database_url) as session:
        if queue_limit is not None:
            _lock_queue(session)
            waiting = count_generations(session, status="pending")
            if waiting >= queue_limit:
                raise QueueFullError(
                    f"the queue is full: {waiting} jobs are waiting (DGX_MUSIC_QUEUE_LIMIT={queue_limit})",
                    retry_after=_retry_after_seconds(session),
                )
        generation = create_generation(
            session=session,
            prompt=prompt,
            model_name=str(info.get("model_name", info.get("backend", "unknown"))),
            model_version=info.get("model_version"),
            duration_seconds=float(duration),
            sample_rate=int(engine.sample_rate),
            channels=int(info.get("channels", 2)),
            file_path=str(output_path),
            job_id=job_id,
            runner=runner,
            request=request,
        )
        generation.progress_step = "queued"
        session.flush()
        if enqueue is not None:
            enqueue(session, generation)
        announce(session, generation.id)
    publish(generation.id)
    return generation


def _delivery_options(delivery: Any):
    from .audio.delivery import DeliveryOptions

    if delivery is None or isinstance(delivery, DeliveryOptions):
        return delivery or DeliveryOptions()
    return DeliveryOptions.from_request(delivery)


def _check_encoding(options, bit_depth: str) -> None:
    """Refuse a bit depth the chosen format cannot take, before anything is recorded."""
    from .audio.formats import FORMATS, resolve_encoding

    resolve_encoding(FORMATS[options.extension], bit_depth, options.mp3_mode)


def _check_loop_fits(options, prompt_spec: Any, duration: float) -> None:
    """Refuse a loop longer than the track when the prompt states the tempo (otherwise the
    run finds out, once the tempo is known)."""
    bpm = getattr(prompt_spec, "bpm", None)
    if not options.loop_bars or not bpm:
        return
    from .audio.loops import loop_seconds
    from .errors import GenerationRequestError

    beats = getattr(prompt_spec, "beats_per_bar", None) or 4
    needed = loop_seconds(options.loop_bars, bpm, beats)
    if needed > float(duration):
        raise GenerationRequestError(
            f"loop_bars is {options.loop_bars}: {options.loop_bars} bars need {needed:.2f} s at {bpm:g} BPM ({beats} beats a bar); "
            f"duration is {float(duration):g} s"
        )


def _rendered(engine: Any) -> Optional[Dict[str, Any]]:
    """Tempo, key, meter and first downbeat the procedural renderer used (exact), or None."""
    spec = getattr(engine, "last_spec", None)
    if spec is None or not isinstance(getattr(spec, "bpm", None), (int, float)):
        return None
    return {"bpm": float(spec.bpm), "key": str(spec.key), "beats_per_bar": int(spec.beats_per_bar),
            "first_downbeat_seconds": 0.0, "source": "procedural"}


def _lock_queue(session) -> None:
    """Serialize submissions, so the queue limit holds under concurrent requests (SQLite's
    ``BEGIN IMMEDIATE`` already does; PostgreSQL takes a transaction-level advisory lock)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SUBMIT_LOCK_KEY})


_SUBMIT_LOCK_KEY = 0x64677820_73756231  # "dgx sub1"


def _retry_after_seconds(session) -> int:
    """When a place in the queue is likely to free up: the mean run time of the last
    20 completed jobs (at least 1 s, at most 10 minutes; 10 s with no history)."""
    from sqlalchemy import select

    from .storage import Generation

    times = session.scalars(
        select(Generation.generation_time_seconds)
        .where(Generation.status == "completed", Generation.generation_time_seconds.is_not(None))
        .order_by(Generation.created_at.desc())
        .limit(20)
    ).all()
    if not times:
        return 10
    return int(min(600, max(1, round(sum(times) / len(times) + 0.5))))


def _failure_message(exc: BaseException) -> str:
    from .errors import Terminated

    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, OSError) and exc.strerror and exc.filename:  # "No space left on device: out.wav"
        return f"{exc.strerror}: {exc.filename}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def run_generation(
    generation_id: str,
    *,
    owner: Optional[str] = None,
    engine: Any = None,
    exporter: Any = None,
    extractor: Any = None,
    database_url: Optional[str] = None,
    on_step: Optional[Callable[[str], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    lease_seconds: Optional[float] = None,
    claimed: bool = False,
) -> Optional[TrackResult]:
    """Run one recorded job to its end and return the :class:`TrackResult`.

    Claims the job for ``owner`` (default: this process) first, unless ``claimed`` says the
    caller already did; returns None when there is nothing to run (finished, cancelled, or
    running elsewhere). ``on_step(label)`` is
    called as each step starts; ``should_stop()``, checked at each step, asks the job to
    stop and go back to the queue (a runner's shutdown). Raises what stopped the job:
    :class:`~services.errors.JobCancelledError`, :class:`~services.errors.JobInterruptedError`,
    :class:`~services.errors.LeaseLostError` (another process took it over: nothing is
    touched), or the step's own error after the record is marked ``failed``.
    """
    from .audio import AudioExporter, AudioMetadataExtractor
    from .audio._arrays import as_audio_array
    from .audio.delivery import DeliveryOptions, render_file_name, track_tags
    from .config import get_settings
    from .errors import JobInterruptedError, LeaseLostError
    from .generation import MusicGenerationEngine
    from .jobs import lifecycle
    from .jobs.events import changing
    from .jobs.owner import current_owner
    from .storage import complete_generation

    owner = owner or current_owner()
    if lease_seconds is None:
        lease_seconds = get_settings().lease_seconds
    with changing(generation_id, database_url) as session:
        if claimed:
            generation = lifecycle.owned(session, generation_id, owner)
        else:
            generation = lifecycle.claim(session, generation_id, owner, lease_seconds=lease_seconds)
        job = None if generation is None else generation.to_dict()
    if job is None:
        return None

    request = job.get("request") or {}
    duration = float(request.get("duration", job["duration_seconds"]))
    seed = request.get("seed")
    bit_depth = request.get("bit_depth", "PCM_16")
    output_path = Path(job["file_path"])
    target = output_path  # where this run writes: the job's path, or its templated name
    engine = engine or MusicGenerationEngine()
    prompt_spec = engine.validate_request(job["prompt"], duration, seed)

    def step(label: str) -> None:
        if should_stop is not None and should_stop():
            raise JobInterruptedError(f"generation {generation_id!r} stopped for a shutdown; re-queued")
        with changing(generation_id, database_url) as session:
            lifecycle.enter_step(session, generation_id, owner, label)
        if on_step is not None:
            on_step(label)

    try:
        options = DeliveryOptions.from_request(request)
        job_id = job["job_id"] or output_path.stem
        step("generate")
        audio, generation_time = _generate(engine, job["prompt"], duration, seed)
        audio = as_audio_array(audio, name="audio")
        rate = int(engine.sample_rate)
        rendered = _rendered(engine)
        seed_used = getattr(engine, "last_seed", seed)
        step("analyse")
        extractor = extractor or AudioMetadataExtractor(extract_bpm=True, extract_key=True)
        analysis = extractor.extract_metadata_from_tensor(audio, rate, compute_stats=False, bpm_hint=prompt_spec.bpm)
        loop = None
        if options.loop_bars:
            audio, loop = _cut_loop(audio, rate, options.loop_bars, rendered, analysis)
        tags = track_tags(prompt=job["prompt"], job_id=job_id, analysis=analysis, rendered=rendered, loop=loop,
                          seed=seed_used)
        if options.name_template:
            name = render_file_name(options.name_template, job_id=job_id, bpm=tags.bpm, key=tags.key,
                                    bars=options.loop_bars, preset=options.preset)
            target = output_path.with_name(name + options.extension)
            if target != output_path and target.exists():
                target = output_path.with_name(f"{name}_{job_id}{options.extension}")
        step("export")
        exporter = exporter or AudioExporter()
        export = exporter.export(
            audio, target, sample_rate=rate, bit_depth=bit_depth, preset=options.preset, tags=tags,
            dither=options.dither, mp3_mode=options.mp3_mode, peaks_samples_per_pixel=options.peaks,
        )
        metadata = _metadata(analysis, export, audio)
        metadata.update({"job_id": job_id, "prompt_bpm": prompt_spec.bpm, "gain_db": export.gain.gain_db,
                         "normalization": export.gain.reason, "preset": options.preset or "default",
                         "tempo_source": tags.tempo_source})
        if loop is not None:
            metadata["loop"] = {"bars": loop.bars, "beats": loop.bars * tags.beats_per_bar,
                                "start_frame": loop.start_frame, "end_frame": loop.end_frame}
        if export.peaks_paths:
            metadata["peaks_files"] = list(export.peaks_paths)
        if seed_used is not None:
            metadata["seed"] = seed_used
        metadata = _with_rendered_values(metadata, rendered, job["job_id"])
        step("complete")
        with changing(generation_id, database_url) as session:
            lifecycle.owned(session, generation_id, owner)
            completed = complete_generation(
                session=session,
                generation_id=generation_id,
                generation_time=generation_time,
                file_size_bytes=export.size_bytes,
                metadata=metadata,
            )
            completed.lease_owner = None
            completed.progress_step = None
            completed.file_path = export.path
            completed.sample_rate = export.sample_rate  # the file's (48 kHz for Opus)
    except LeaseLostError:
        raise  # the job (and its path) belong to another run now: touch nothing
    except BaseException as exc:
        _end_run(generation_id, owner, target, exc, database_url)
        raise

    return TrackResult(
        job_id=job["job_id"] or output_path.stem,
        generation_id=generation_id,
        prompt=job["prompt"],
        file_path=export.path,
        file_size_bytes=export.size_bytes,
        generation_time_seconds=float(generation_time),
        sample_rate=int(export.sample_rate or engine.sample_rate),
        channels=int(metadata.get("channels", 2)),
        metadata=metadata,
        prompt_bpm=prompt_spec.bpm,
        gain_db=export.gain.gain_db,
    )


def _cut_loop(audio, rate: int, bars: int, rendered: Optional[Dict[str, Any]], analysis: Dict[str, Any]):
    """The loop of ``bars`` bars: from the renderer's exact tempo and downbeat when known,
    else from the estimated tempo (4/4 from the start)."""
    from .audio.loops import make_loop

    if rendered is not None:
        return make_loop(audio, rate, rendered["bpm"], bars, beats_per_bar=rendered["beats_per_bar"],
                         start_seconds=rendered["first_downbeat_seconds"])
    return make_loop(audio, rate, analysis.get("bpm"), bars)


def _metadata(analysis: Dict[str, Any], export: Any, audio: Any) -> Dict[str, Any]:
    """The stored record: the analysis in memory, the file's facts, and the loudness the
    exporter measured on what it wrote (no second pass over the file)."""
    import math

    import numpy as np

    report = export.loudness
    gain = 10.0 ** (export.gain.gain_db / 20.0)
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) * gain
    peak = None if report is None or not math.isfinite(report.sample_peak_dbfs) else 10.0 ** (report.sample_peak_dbfs / 20.0)

    def finite(value):
        return value if value is not None and math.isfinite(value) else None

    metadata = dict(analysis)
    metadata.update({
        "duration_seconds": export.frames / export.sample_rate,
        "sample_rate": export.sample_rate,
        "frames": export.frames,
        "format": export.format,
        "bit_depth": export.encoding,
        "file_size_bytes": export.size_bytes,
        "peak_amplitude": peak,
        "rms_energy": rms,
        "dynamic_range_db": 20.0 * math.log10(peak / rms) if peak and rms > 0 else None,
        "loudness_lufs": finite(report.integrated_lufs) if report else None,
        "true_peak_dbtp": finite(report.true_peak_dbtp) if report else None,
        "loudness_range_lu": finite(report.loudness_range_lu) if report and finite(report.integrated_lufs) else None,
    })
    return metadata


def _with_rendered_values(metadata: Dict[str, Any], rendered: Optional[Dict[str, Any]],
                          job_id: Optional[str]) -> Dict[str, Any]:
    """Make the tempo and key the procedural engine rendered (:func:`_rendered`) the track's.

    Adds ``"rendered"`` = {bpm, key, beats_per_bar, first_downbeat_seconds (0.0: bar 1 starts
    at sample 0), source "procedural"}, keeps the analysis's four fields under
    ``"measured"``, and reports the known values as ``bpm``/``key`` with confidence 1.0, so
    the product never contradicts its own prompt. A measured tempo off by more than 4 % or
    another key is logged as a warning. Without them (MusicGen) nothing changes.
    """
    if rendered is None:
        return metadata
    measured = {name: metadata.get(name) for name in ("bpm", "bpm_confidence", "key", "key_confidence")}
    bpm = measured["bpm"]
    if bpm is None or abs(bpm / rendered["bpm"] - 1.0) > 0.04 or measured["key"] != rendered["key"]:
        logger.warning("generation %s: measured %s BPM, %s; the engine rendered %.2f BPM, %s",
                       job_id, "no" if bpm is None else f"{bpm:.2f}", measured["key"] or "no key",
                       rendered["bpm"], rendered["key"])
    return {**metadata, "bpm": rendered["bpm"], "bpm_confidence": 1.0, "key": rendered["key"],
            "key_confidence": 1.0, "measured": measured, "rendered": rendered}


def _generate(engine: Any, prompt: str, duration: float, seed: Optional[int]):
    """``(audio, seconds)``: a NumPy array from an engine that offers ``generate_array``
    (the procedural backend then never imports torch), else the spec's ``generate_audio``."""
    generate_array = getattr(engine, "generate_array", None)
    if generate_array is None:
        return engine.generate_audio(prompt, duration=duration, seed=seed)
    result = generate_array(prompt, duration=duration, seed=seed)
    return result.audio, result.generation_time


def _end_run(generation_id: str, owner: str, output_path: Path, exc: BaseException, database_url) -> None:
    """Record how a run stopped (cancelled, re-queued or failed) and remove its file, if
    this process still holds the job."""
    from .audio.peaks import peaks_paths_for
    from .errors import JobCancelledError, JobInterruptedError, LeaseLostError
    from .jobs import lifecycle
    from .jobs.events import changing
    from .jobs.recovery import remove_job_file
    from .storage import fail_generation

    try:
        with changing(generation_id, database_url) as session:
            generation = lifecycle.owned(session, generation_id, owner)
            remove_job_file(str(output_path))
            for peaks_path in peaks_paths_for(output_path):
                remove_job_file(str(peaks_path))
            if isinstance(exc, JobCancelledError):
                lifecycle.end_cancelled(generation)
            elif isinstance(exc, JobInterruptedError):
                lifecycle.requeue(generation, str(exc))
            else:
                fail_generation(session, generation_id, _failure_message(exc))
                generation.lease_owner = None
    except LeaseLostError:
        logger.warning("generation %s was taken over before its failure could be recorded", generation_id)
    except Exception:  # the original error matters more than the bookkeeping one
        logger.exception("could not record the end of generation %s", generation_id)


def generate_track(
    prompt: str,
    duration: float = 16.0,
    seed: Optional[int] = None,
    *,
    engine: Any = None,
    exporter: Any = None,
    extractor: Any = None,
    file_manager: Any = None,
    database_url: Optional[str] = None,
    bit_depth: str = "PCM_16",
    delivery: Any = None,
    job_id: Optional[str] = None,
    on_step: Optional[Callable[[str], None]] = None,
) -> TrackResult:
    """Run the whole workflow for ``prompt`` in the foreground; return the :class:`TrackResult`.

    ``duration`` in seconds. Components default to the configured ones (environment
    variables, see :mod:`services.config`). ``on_step`` is called with a short label as
    each step starts ("record", "generate", "analyse", "export", "complete"). ``delivery``:
    see :func:`submit_generation`. Errors
    propagate after the record is marked ``failed``; invalid arguments raise before
    anything is recorded. The job's lease is renewed while it runs, so a kill of this
    process is detected (:func:`services.jobs.lifecycle.recover`).
    """
    from .generation import MusicGenerationEngine
    from .jobs.heartbeat import Heartbeat
    from .jobs.owner import current_owner

    engine = engine or MusicGenerationEngine()
    if on_step is not None:
        on_step("record")
    generation = submit_generation(
        prompt, duration, seed, bit_depth=bit_depth, delivery=delivery, runner="cli", engine=engine,
        file_manager=file_manager, database_url=database_url, job_id=job_id,
    )
    owner = current_owner()
    with Heartbeat(owner, database_url=database_url):
        result = run_generation(
            generation.id, owner=owner, engine=engine, exporter=exporter, extractor=extractor,
            database_url=database_url, on_step=on_step,
        )
    if result is None:  # pragma: no cover - only if another process cancelled it in between
        from .errors import JobCancelledError

        raise JobCancelledError(f"generation {generation.id!r} was cancelled before it started")
    return result
