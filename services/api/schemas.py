"""Request and response bodies of API v1 (what ``/openapi.json`` describes)."""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._text import MAX_PROMPT_CHARS  # one limit for every entry point
from ..audio.delivery import MAX_PEAKS_SAMPLES_PER_PIXEL
from ..audio.formats import FORMAT_NAMES, MP3_MODES
from ..audio.loops import MAX_LOOP_BARS
from ..audio.presets import PRESETS

__all__ = [
    "MAX_PROMPT_CHARS",
    "Analysis",
    "GenerationAccepted",
    "GenerationEvent",
    "GenerationLinks",
    "GenerationPage",
    "GenerationRecord",
    "GenerationRequest",
    "GenerationSummary",
    "Health",
    "Peaks",
    "Problem",
]

BitDepth = Literal["PCM_16", "PCM_24", "PCM_32", "FLOAT"]
OutputFormat = Literal[FORMAT_NAMES]  # type: ignore[valid-type]
Mp3Mode = Literal[MP3_MODES]  # type: ignore[valid-type]
PresetName = Literal[PRESETS]  # type: ignore[valid-type]
Status = Literal["pending", "processing", "completed", "failed", "cancelled"]


class GenerationRequest(BaseModel):
    """A prompt to turn into a track."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS,
                        examples=["upbeat electronic dance music at 140 BPM"])
    duration: float = Field(16.0, gt=0, description="seconds (the backend's maximum applies)")
    seed: Optional[int] = Field(None, ge=0, le=2**63 - 1, description="for a reproducible track")
    bit_depth: BitDepth = "PCM_16"
    format: OutputFormat = Field("wav", description="the file's format (and extension)")
    preset: Optional[PresetName] = Field(None, description="destination loudness and true-peak ceiling")
    mp3_mode: Mp3Mode = "CBR_320"
    dither: bool = Field(True, description="TPDF dither for PCM_16")
    loop_bars: Optional[int] = Field(None, ge=1, le=MAX_LOOP_BARS, description="exactly N bars, seamless when repeated")
    name_template: Optional[str] = Field(None, min_length=1, max_length=200, examples=["{job_id}_{bpm}_{key}"],
                                         description="file name from {job_id} {bpm} {key} {camelot} {bars} {preset}")
    peaks: Optional[int] = Field(None, ge=1, le=MAX_PEAKS_SAMPLES_PER_PIXEL,
                                 description="also write waveform peaks beside the file, samples per pixel")

    def delivery(self) -> Dict[str, Any]:
        """The delivery fields, as :class:`~services.audio.delivery.DeliveryOptions` takes them."""
        return self.model_dump(include={"format", "preset", "mp3_mode", "dither", "loop_bars", "name_template",
                                        "peaks"})

    @field_validator("prompt")
    @classmethod
    def _clean_prompt(cls, prompt: str) -> str:
        """At most 2,000 characters, no control characters (line breaks and tabs become spaces)."""
        from .._text import clean_prompt

        return clean_prompt(prompt)


class GenerationLinks(BaseModel):
    self: str
    events: str
    cancel: str
    audio: str
    peaks: str


class GenerationAccepted(BaseModel):
    """The job was queued."""

    id: str
    job_id: str
    status: Status
    queue_position: Optional[int] = Field(None, description="1 = next to run; null once running")
    links: GenerationLinks


class GenerationRecord(BaseModel):
    """One generation: the request, the job's state and, once completed, the measurements."""

    id: str
    job_id: Optional[str]
    prompt: str
    status: Status
    step: Optional[str] = Field(None, description="queued, starting, generate, analyse, export, complete")
    queue_position: Optional[int]
    error: Optional[str]
    attempts: int
    cancel_requested: bool
    created_at: str
    started_at: Optional[str]
    completed_at: Optional[str]
    duration_seconds: float = Field(description="requested length, seconds")
    seed: Optional[int]
    bit_depth: Optional[str]
    format: str = Field("wav", description="the file's format: wav, flac, mp3, opus or ogg")
    preset: Optional[str] = Field(None, description="the destination preset, if one was asked for")
    model_name: str
    sample_rate: int
    channels: int
    file_name: Optional[str]
    file_size_bytes: Optional[int]
    generation_time_seconds: Optional[float]
    bpm: Optional[float]
    key: Optional[str]
    camelot: Optional[str]
    loudness_lufs: Optional[float]
    true_peak_dbtp: Optional[float]
    metadata: Optional[Dict[str, Any]]
    links: GenerationLinks


class GenerationSummary(BaseModel):
    """A generation in a list: what a library view shows. Its record (with the request, the
    full metadata and links) is ``/api/v1/generations/{id}``; its audio, peaks, events and
    cancel are below that path."""

    id: str
    job_id: Optional[str]
    prompt: str
    status: Status
    step: Optional[str]
    queue_position: Optional[int]
    error: Optional[str]
    created_at: str
    completed_at: Optional[str]
    duration_seconds: float
    file_name: Optional[str]
    bpm: Optional[float]
    key: Optional[str]
    camelot: Optional[str]
    loudness_lufs: Optional[float]
    true_peak_dbtp: Optional[float]


class GenerationPage(BaseModel):
    """Generations newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: List[GenerationSummary]
    next_cursor: Optional[str]


class GenerationEvent(BaseModel):
    """One Server-Sent Event of a generation's progress (the ``data:`` line)."""

    id: str
    status: Status
    step: Optional[str]
    queue_position: Optional[int]
    error: Optional[str] = None


class Peaks(BaseModel):
    """Waveform peaks in the JSON format of BBC's audiowaveform (version 2), which players
    such as peaks.js read: ``data`` holds, per pixel, min and max of each channel in turn,
    as signed integers of ``bits`` bits."""

    version: int = 2
    channels: int
    sample_rate: int
    samples_per_pixel: int
    bits: int = 16
    length: int = Field(description="pixels")
    data: List[int]


class Analysis(BaseModel):
    """The extractor's measurements of an uploaded file."""

    model_config = ConfigDict(extra="allow")

    file_name: Optional[str]
    duration_seconds: float
    sample_rate: int
    channels: int


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    queue: str
    runner: str
    workers: int


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: Optional[List[Dict[str, str]]] = None
