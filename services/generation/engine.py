"""``MusicGenerationEngine``: a text prompt in, stereo audio (a torch tensor) out.

``generate_audio`` and ``generate`` return the spec's torch tensor; ``generate_array``
returns the same samples as a NumPy array and imports torch only for the MusicGen
backend (the pipeline's path: a cold procedural job never pays for ``import torch``).

Two backends:

- ``"procedural"`` (the default): renders drums, bass, chords and melody offline on any
  machine, deterministic for a seed, at the engine's sample rate; up to 300 s.
- ``"musicgen"``: Meta's MusicGen through ``transformers`` (the ``musicgen`` extra), weights
  from a local folder or the local Hugging Face cache only (never downloaded); up to 30 s.

The default backend and model come from the settings (``DGX_MUSIC_BACKEND``,
``DGX_MUSIC_MODEL_PATH``). Whatever the backend, the audio is float32 of shape
(2, round(duration * sample_rate)); a mono model's channel is duplicated (dual mono).
"""

from __future__ import annotations

import math
import numbers
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any, Optional

import numpy as np

from ..audio._arrays import validate_sample_rate
from ..errors import GenerationError, GenerationRequestError
from .prompt import PromptSpec, parse_prompt

__all__ = ["MusicGenerationEngine", "GenerationResult", "BACKENDS", "CHANNELS"]

BACKENDS = ("procedural", "musicgen")
CHANNELS = 2
_MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class GenerationResult:
    """One generation: ``audio`` float32 (2, samples) at ``sample_rate`` Hz (a torch tensor
    from :meth:`MusicGenerationEngine.generate`, a NumPy array from ``generate_array``),
    ``generation_time`` in seconds, the ``seed`` used, what the prompt stated
    (``prompt_spec``) and, for the procedural backend, the resolved ``song`` (a ``SongSpec``:
    bpm, key, genre, time signature...; None for MusicGen)."""

    audio: Any
    sample_rate: int
    generation_time: float
    seed: int
    backend: str
    model_name: str
    prompt_spec: PromptSpec
    song: Optional[Any] = None

    @property
    def duration(self) -> float:
        """Length of ``audio`` in seconds."""
        return self.audio.shape[-1] / self.sample_rate

    def to_dict(self) -> dict:
        """Everything but the audio, JSON-ready."""
        return {
            "backend": self.backend,
            "model_name": self.model_name,
            "sample_rate": self.sample_rate,
            "channels": int(self.audio.shape[0]),
            "duration_seconds": self.duration,
            "generation_time": self.generation_time,
            "seed": self.seed,
            "prompt": self.prompt_spec.to_dict(),
            "song": None if self.song is None else self.song.to_dict(),
        }


class MusicGenerationEngine:
    """Generate music from a text prompt.

    ``backend``: "procedural" or "musicgen" (default: the ``DGX_MUSIC_BACKEND`` setting);
    ``sample_rate`` of the returned audio in Hz (MusicGen output is resampled when its
    model runs at another rate); ``model_path``: the MusicGen weights, a local folder or a
    model id already in the local cache (default: ``DGX_MUSIC_MODEL_PATH``, else
    ``facebook/musicgen-small``); ``device`` for MusicGen ("cpu", "cuda"; default: CUDA when
    available); ``guidance_scale``: MusicGen's classifier-free guidance.

    After each call, ``last_seed`` and ``last_result`` (and ``last_spec``, the procedural
    ``SongSpec``) describe what was generated.
    """

    def __init__(
        self,
        backend: Optional[str] = None,
        sample_rate: int = 32000,
        model_path: Optional[str] = None,
        *,
        device: Optional[str] = None,
        guidance_scale: float = 3.0,
    ):
        from ..config import get_settings

        settings = get_settings() if backend is None or model_path is None else None
        name = _backend_name(backend, settings)
        if model_path is not None:
            model_path = _path_text(model_path)
        self.sample_rate = validate_sample_rate(sample_rate)
        if name == "procedural":
            if model_path is not None:
                raise GenerationRequestError(
                    f"model_path is used by the 'musicgen' backend only; got {model_path!r} "
                    "with the 'procedural' backend"
                )
            from .procedural import ProceduralBackend

            self._backend = ProceduralBackend(self.sample_rate)
        else:
            from .musicgen import MusicGenBackend

            path = model_path if model_path is not None else settings.model_path
            self._backend = MusicGenBackend(path, device=device, guidance_scale=guidance_scale)
        self.backend = name
        self.last_seed: Optional[int] = None
        self.last_result: Optional[GenerationResult] = None

    @property
    def model_name(self) -> str:
        """Name of the model that makes the audio ("procedural", "musicgen-small", ...)."""
        return self._backend.model_name

    @property
    def max_duration(self) -> float:
        """Longest duration this backend generates, in seconds."""
        return float(self._backend.max_duration)

    @property
    def last_spec(self):
        """The resolved ``SongSpec`` of the last procedural generation (None otherwise)."""
        return None if self.last_result is None else self.last_result.song

    def generate(self, prompt: str, duration: float = 16.0, seed: Optional[int] = None) -> GenerationResult:
        """Generate ``duration`` seconds of music for ``prompt``; see :class:`GenerationResult`.

        ``seed`` (an int >= 0) makes the result repeatable; None draws a random one, reported
        as ``result.seed`` and ``engine.last_seed``. Raises ``TypeError`` for wrong types and
        :class:`~services.errors.GenerationRequestError` (a ``ValueError``) for an empty
        prompt, a duration that is not finite, <= 0 or above :attr:`max_duration`, or a
        stated tempo outside 30-300 BPM. ``result.audio`` is a torch tensor; the pipeline
        uses :meth:`generate_array`, which never imports torch for the procedural backend.
        """
        import torch

        result = self.generate_array(prompt, duration, seed)
        result = replace(result, audio=torch.from_numpy(result.audio))  # shares the memory
        self.last_result = result
        return result

    def generate_array(self, prompt: str, duration: float = 16.0, seed: Optional[int] = None) -> GenerationResult:
        """As :meth:`generate`, but ``result.audio`` is a float32 NumPy array (2, samples).

        The procedural backend renders NumPy arrays, so this path imports no torch (a cold
        ``dgx-music generate`` saves seconds); MusicGen's output is copied off its device.
        """
        spec = self.validate_request(prompt, duration, seed)
        seconds = float(duration)
        seed = secrets.randbits(32) if seed is None else int(seed)
        samples = int(round(seconds * self.sample_rate))

        started = time.perf_counter()
        if self.backend == "procedural":
            song = self._backend.resolve(spec, seconds, seed)
            audio = self._backend.render(song).audio
        else:
            song = None
            audio = self._backend.generate(spec.text, seconds, seed, self.sample_rate)
        audio = _stereo_of_length(audio, samples)
        if not np.isfinite(audio).all():
            raise GenerationError(f"the {self.backend} backend produced non-finite samples for {prompt!r}")
        elapsed = time.perf_counter() - started

        result = GenerationResult(audio, self.sample_rate, elapsed, seed, self.backend,
                                  self.model_name, spec, song)
        self.last_seed = seed
        self.last_result = result
        return result

    def validate_request(self, prompt: str, duration: float = 16.0, seed: Optional[int] = None) -> PromptSpec:
        """Check a request as :meth:`generate` would, without generating; return the parsed prompt.

        Raises the same errors: ``TypeError`` for wrong types,
        :class:`~services.errors.GenerationRequestError` (a ``ValueError``) for an empty prompt,
        one over 2,000 characters or with control characters (line breaks and tabs count as
        spaces), a duration out of range, a negative seed or a stated tempo the backend cannot play.
        """
        from .._text import clean_prompt

        prompt = clean_prompt(prompt)
        self._check_duration(duration)
        self._check_seed(seed)
        spec = parse_prompt(prompt)
        if hasattr(self._backend, "check_prompt"):
            self._backend.check_prompt(spec)
        return spec

    def generate_audio(self, prompt: str, duration: float = 16.0, seed: Optional[int] = None):
        """Return ``(audio, generation_time_seconds)``: float32 tensor (2, samples) at
        :attr:`sample_rate`, samples = round(duration * sample_rate). See :meth:`generate`."""
        result = self.generate(prompt, duration, seed)
        return result.audio, result.generation_time

    def get_info(self) -> dict:
        """Backend, model, sample rate (Hz), channels, max duration (s), last seed."""
        info = {
            "backend": self.backend,
            "model_name": self.model_name,
            "model_version": self._backend.model_version,
            "sample_rate": self.sample_rate,
            "channels": CHANNELS,
            "max_duration_seconds": self.max_duration,
            "last_seed": self.last_seed,
        }
        info.update(self._backend.info() if hasattr(self._backend, "info") else {})
        return info

    def _check_duration(self, duration) -> None:
        if isinstance(duration, bool) or not isinstance(duration, numbers.Real):
            raise TypeError(f"duration must be a number of seconds; got {type(duration).__name__}")
        seconds = float(duration)
        if not math.isfinite(seconds) or seconds <= 0:
            raise GenerationRequestError(f"duration must be a finite number of seconds > 0; got {duration!r}")
        if seconds > self.max_duration:
            raise GenerationRequestError(
                f"duration must be at most {self.max_duration:g} s with the {self.backend} backend; "
                f"got {duration!r}"
            )
        if round(seconds * self.sample_rate) < 1:
            raise GenerationRequestError(
                f"duration is shorter than one sample at {self.sample_rate} Hz; got {duration!r}"
            )

    @staticmethod
    def _check_seed(seed) -> None:
        if seed is None:
            return
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an int or None; got {type(seed).__name__}")
        if not 0 <= int(seed) <= _MAX_SEED:
            raise GenerationRequestError(f"seed must be between 0 and 2**63 - 1; got {seed!r}")


def _backend_name(backend, settings) -> str:
    """The backend's name: ``backend`` as given, else the ``DGX_MUSIC_BACKEND`` setting."""
    source = "backend"
    if backend is None:
        backend, source = settings.generation_backend, "DGX_MUSIC_BACKEND"
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str or None; got {type(backend).__name__}")
    name = backend.strip().lower()
    if name not in BACKENDS:
        raise GenerationRequestError(f"{source} must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return name


def _path_text(path) -> str:
    if isinstance(path, str):
        return path
    if not hasattr(path, "__fspath__"):
        raise TypeError(f"model_path must be a str or path; got {type(path).__name__}")
    return str(path.__fspath__())


def _stereo_of_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """(channels, n) -> float32 (2, samples): mono duplicated, cut or zero-padded at the end."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise GenerationError(f"a backend returned audio of shape {audio.shape}; expected (1 or 2, samples)")
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    if audio.shape[1] >= samples:
        return np.ascontiguousarray(audio[:, :samples])
    out = np.zeros((2, samples), dtype=np.float32)
    out[:, : audio.shape[1]] = audio
    return out
