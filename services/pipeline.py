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
  4. audio from the generation engine;
  5. a loudness-normalized WAV at the job's path (AudioExporter, atomic);
  6. metadata from the written file, with the prompt's tempo as the BPM hint; for the
     procedural engine, the tempo and key it rendered are the track's (``"rendered"``),
     the analysis's stay under ``"measured"`` and a disagreement is logged;
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
    than that many wait raises :class:`~services.errors.QueueFullError`. ``enqueue(session,
    generation)`` runs inside the same transaction as the insert (a queue's own job), so
    either both are written or neither.
    """
    from .audio import AudioFileManager
    from .audio.export import validate_bit_depth
    from .errors import QueueFullError
    from .generation import MusicGenerationEngine
    from .jobs.events import announce, publish
    from .storage import count_generations, create_generation, get_session

    from ._text import clean_prompt

    engine = engine or MusicGenerationEngine()
    engine.validate_request(prompt, duration, seed)  # raises before any record
    prompt = clean_prompt(prompt)  # stored as the engine reads it: line breaks and tabs as spaces
    bit_depth = validate_bit_depth(bit_depth)
    file_manager = file_manager or AudioFileManager()
    job_id = job_id or new_job_id()
    output_path = Path(os.path.abspath(file_manager.get_output_path(job_id)))  # recorded absolute
    if output_path.exists():
        raise FileExistsError(f"job {job_id!r} already has a file: {str(output_path)!r}")
    info = engine.get_info()
    request = {"duration": float(duration), "seed": None if seed is None else int(seed), "bit_depth": bit_depth}

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
        step("generate")
        audio, generation_time = _generate(engine, job["prompt"], duration, seed)
        step("export")
        exporter = exporter or AudioExporter()
        export = exporter.export(audio, output_path, sample_rate=engine.sample_rate, bit_depth=bit_depth)
        step("analyse")
        extractor = extractor or AudioMetadataExtractor(extract_bpm=True, extract_key=True)
        metadata = extractor.extract_metadata(export.path, compute_stats=True, bpm_hint=prompt_spec.bpm)
        metadata = {**metadata, "job_id": job["job_id"] or output_path.stem, "prompt_bpm": prompt_spec.bpm,
                    "gain_db": export.gain.gain_db, "normalization": export.gain.reason}
        seed_used = getattr(engine, "last_seed", seed)
        if seed_used is not None:
            metadata["seed"] = seed_used
        metadata = _with_rendered_values(metadata, getattr(engine, "last_spec", None), job["job_id"])
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
    except LeaseLostError:
        raise  # the job (and its path) belong to another run now: touch nothing
    except BaseException as exc:
        _end_run(generation_id, owner, output_path, exc, database_url)
        raise

    return TrackResult(
        job_id=job["job_id"] or output_path.stem,
        generation_id=generation_id,
        prompt=job["prompt"],
        file_path=export.path,
        file_size_bytes=export.size_bytes,
        generation_time_seconds=float(generation_time),
        sample_rate=int(engine.sample_rate),
        channels=int(metadata.get("channels", 2)),
        metadata=metadata,
        prompt_bpm=prompt_spec.bpm,
        gain_db=export.gain.gain_db,
    )


def _with_rendered_values(metadata: Dict[str, Any], spec: Any, job_id: Optional[str]) -> Dict[str, Any]:
    """Make the tempo and key the procedural engine rendered (``spec``, a SongSpec) the track's.

    Adds ``"rendered"`` = {bpm, key, beats_per_bar, first_downbeat_seconds (0.0: bar 1 starts
    at sample 0), source "procedural"}, keeps the analysis's four fields under
    ``"measured"``, and reports the known values as ``bpm``/``key`` with confidence 1.0, so
    the product never contradicts its own prompt. A measured tempo off by more than 4 % or
    another key is logged as a warning. Without a spec (MusicGen) nothing changes.
    """
    if spec is None:
        return metadata
    rendered = {"bpm": float(spec.bpm), "key": str(spec.key), "beats_per_bar": int(spec.beats_per_bar),
                "first_downbeat_seconds": 0.0, "source": "procedural"}
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
    from .errors import JobCancelledError, JobInterruptedError, LeaseLostError
    from .jobs import lifecycle
    from .jobs.events import changing
    from .jobs.recovery import remove_job_file
    from .storage import fail_generation

    try:
        with changing(generation_id, database_url) as session:
            generation = lifecycle.owned(session, generation_id, owner)
            remove_job_file(str(output_path))
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
    job_id: Optional[str] = None,
    on_step: Optional[Callable[[str], None]] = None,
) -> TrackResult:
    """Run the whole workflow for ``prompt`` in the foreground; return the :class:`TrackResult`.

    ``duration`` in seconds. Components default to the configured ones (environment
    variables, see :mod:`services.config`). ``on_step`` is called with a short label as
    each step starts ("record", "generate", "export", "analyse", "complete"). Errors
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
        prompt, duration, seed, bit_depth=bit_depth, runner="cli", engine=engine,
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
