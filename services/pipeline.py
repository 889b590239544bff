"""The product's main job: prompt -> generated, normalized, measured, filed and recorded track.

This module is the only place that knows the order of the spec's integration workflow:

1. a job id and a dated output path (AudioFileManager);
2. a history record, ``pending`` then ``processing`` (services.storage);
3. audio from the generation engine;
4. a loudness-normalized WAV at the path (AudioExporter, atomic);
5. metadata from the written file, with the prompt's tempo as the BPM hint;
6. the record ``completed`` with the file size, generation time and metadata.

The record is created before generation so that a failure at any later step is
recorded: the record ends ``failed`` with the error message, and the file this job
wrote (if any) is removed, so no orphan or partial file remains.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional

__all__ = ["TrackResult", "generate_track", "new_job_id"]

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
    """Run the whole workflow for ``prompt`` and return the finished :class:`TrackResult`.

    ``duration`` in seconds. Components default to the configured ones (environment
    variables, see :mod:`services.config`). ``on_step`` is called with a short label as
    each step starts (for progress display). Errors propagate after the record is
    marked ``failed``; invalid arguments raise before anything is recorded.
    """
    from .audio import AudioExporter, AudioFileManager, AudioMetadataExtractor
    from .generation import MusicGenerationEngine
    from .storage import (
        complete_generation,
        create_generation,
        fail_generation,
        get_session,
        track_prompt_usage,
        update_generation_status,
    )

    step = on_step or (lambda label: None)
    engine = engine or MusicGenerationEngine()
    prompt_spec = engine.validate_request(prompt, duration, seed)  # raises before any record
    exporter = exporter or AudioExporter()
    extractor = extractor or AudioMetadataExtractor(extract_bpm=True, extract_key=True)
    file_manager = file_manager or AudioFileManager()
    job_id = job_id or new_job_id()
    output_path = file_manager.get_output_path(job_id)
    if output_path.exists():
        raise FileExistsError(f"job {job_id!r} already has a file: {str(output_path)!r}")
    info = engine.get_info()

    step("record")
    with get_session(database_url) as session:
        generation = create_generation(
            session=session,
            prompt=prompt,
            model_name=str(info.get("model_name", info.get("backend", "unknown"))),
            model_version=info.get("model_version"),
            duration_seconds=float(duration),
            sample_rate=int(engine.sample_rate),
            channels=int(info.get("channels", 2)),
            file_path=str(output_path),
        )
        track_prompt_usage(session, prompt)
        generation_id = generation.id

    wrote_file = False
    try:
        with get_session(database_url) as session:
            update_generation_status(session, generation_id, "processing")
        step("generate")
        audio, generation_time = engine.generate_audio(prompt, duration=duration, seed=seed)
        step("export")
        export = exporter.export(audio, output_path, sample_rate=engine.sample_rate, bit_depth=bit_depth)
        wrote_file = True
        step("analyse")
        metadata = extractor.extract_metadata(export.path, compute_stats=True, bpm_hint=prompt_spec.bpm)
        metadata = {**metadata, "job_id": job_id, "prompt_bpm": prompt_spec.bpm, "gain_db": export.gain.gain_db,
                    "normalization": export.gain.reason}
        seed_used = getattr(engine, "last_seed", seed)
        if seed_used is not None:
            metadata["seed"] = seed_used
        step("complete")
        with get_session(database_url) as session:
            complete_generation(
                session=session,
                generation_id=generation_id,
                generation_time=generation_time,
                file_size_bytes=export.size_bytes,
                metadata=metadata,
            )
    except BaseException as exc:
        if wrote_file:
            Path(output_path).unlink(missing_ok=True)
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        try:
            with get_session(database_url) as session:
                fail_generation(session, generation_id, message)
        except Exception:  # the original error matters more than the bookkeeping one
            logger.exception("could not record the failure of generation %s", generation_id)
        raise

    return TrackResult(
        job_id=job_id,
        generation_id=generation_id,
        prompt=prompt,
        file_path=export.path,
        file_size_bytes=export.size_bytes,
        generation_time_seconds=float(generation_time),
        sample_rate=int(engine.sample_rate),
        channels=int(metadata.get("channels", 2)),
        metadata=metadata,
        prompt_bpm=prompt_spec.bpm,
        gain_db=export.gain.gain_db,
    )
