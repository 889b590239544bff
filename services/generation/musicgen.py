"""The MusicGen backend: Meta's MusicGen through ``transformers`` (``pip install 'dgx-music[musicgen]'``).

Weights come only from a local folder (``save_pretrained`` output) or the local Hugging
Face cache: every load passes ``local_files_only=True`` and the hub is put in offline mode
(``HF_HUB_OFFLINE=1``) before ``transformers`` is imported, so nothing is ever downloaded
at run time. The configuration is read when the backend is made (a missing model fails
at once, naming what to do); the weights load on the first generation.

Length: MusicGen emits ``frame_rate`` audio frames per second (50 for musicgen-small);
with its codebook delay pattern, ``n`` new tokens give ``n + 1 - codebooks_per_channel``
frames, so ``max_new_tokens = ceil(duration * frame_rate) + codebooks_per_channel - 1``;
the decoded audio is then cut to exactly ``round(duration * sample_rate)`` samples.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import GenerationError, GenerationRequestError, ModelNotAvailableError

__all__ = ["MusicGenBackend", "DEFAULT_MODEL", "MAX_DURATION"]

DEFAULT_MODEL = "facebook/musicgen-small"
MAX_DURATION = 30.0
"""Seconds: MusicGen was trained on 30-second clips."""

_INSTALL_HINT = "install the optional extra: pip install 'dgx-music[musicgen]' (it brings transformers)"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _import_transformers():
    """Import ``transformers`` in offline mode, or raise ModelNotAvailableError saying what to install."""
    # Written, not read: the hub library reads it when first imported. Every load also passes
    # local_files_only=True, which holds even if the hub was imported earlier.
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import transformers
    except ImportError as exc:
        raise ModelNotAvailableError(f"the musicgen backend needs transformers ({exc}); {_INSTALL_HINT}") from None
    return transformers


class MusicGenBackend:
    """MusicGen text-to-music from local weights (see the module docstring)."""

    name = "musicgen"

    def __init__(self, model_path: Optional[str] = None, device: Optional[str] = None, guidance_scale: float = 3.0):
        if device is not None and not isinstance(device, str):
            raise TypeError(f"device must be a str or None; got {type(device).__name__}")
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, numbers.Real):
            raise TypeError(f"guidance_scale must be a number; got {type(guidance_scale).__name__}")
        if not (math.isfinite(guidance_scale) and guidance_scale >= 1.0):
            raise GenerationRequestError(f"guidance_scale must be a finite number >= 1; got {guidance_scale!r}")
        self.guidance_scale = float(guidance_scale)
        self._transformers = _import_transformers()
        self.source = self._resolve_source(model_path)
        config = self._load(self._transformers.AutoConfig)
        if getattr(config, "model_type", None) != "musicgen":
            raise ModelNotAvailableError(
                f"{self.source!r} holds a {getattr(config, 'model_type', 'unknown')!r} model, not MusicGen"
            )
        self.config = config
        self.model_sample_rate = int(config.audio_encoder.sampling_rate)
        self.frame_rate = int(config.audio_encoder.frame_rate)
        self.model_channels = int(config.decoder.audio_channels)
        self.codebooks_per_channel = int(config.decoder.num_codebooks) // self.model_channels
        self.max_duration = MAX_DURATION
        self.model_name = Path(self.source).name or self.source
        self.model_version = f"transformers-{self._transformers.__version__}"
        import torch

        self._device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model = None
        self._processor = None

    @staticmethod
    def _resolve_source(model_path: Optional[str]) -> str:
        if model_path is None:
            return DEFAULT_MODEL
        expanded = os.path.expanduser(model_path)
        if os.path.isdir(expanded):
            return expanded
        if _REPO_ID.match(model_path) and not os.path.exists(expanded):
            return model_path  # a model id, looked up in the local cache only
        raise ModelNotAvailableError(
            f"MusicGen model folder not found: {model_path!r}; point DGX_MUSIC_MODEL_PATH (or model_path) "
            "at a folder written by save_pretrained, or at a model id in the local cache"
        )

    def _load(self, factory, **kwargs):
        try:
            return factory.from_pretrained(self.source, local_files_only=True, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(
                f"MusicGen model {self.source!r} is not available locally ({type(exc).__name__}: {exc}). "
                "Weights are never downloaded at run time: fetch them once on a machine with network "
                f"(e.g. `hf download {DEFAULT_MODEL}`) or save them with save_pretrained into a folder "
                "and set DGX_MUSIC_MODEL_PATH to it"
            ) from None

    def _ensure_loaded(self):
        if self._model is not None:
            return
        logging = self._transformers.utils.logging
        verbosity = logging.get_verbosity()
        bars = logging.is_progress_bar_enabled()
        logging.set_verbosity_error()
        logging.disable_progress_bar()
        try:
            model = self._load(self._transformers.MusicgenForConditionalGeneration)
            processor = self._load(self._transformers.AutoProcessor)
        finally:
            logging.set_verbosity(verbosity)
            if bars:
                logging.enable_progress_bar()
        self._model = model.to(self._device).eval()
        self._processor = processor

    def info(self) -> dict:
        return {
            "model_path": self.source,
            "device": self._device,
            "model_sample_rate": self.model_sample_rate,
            "model_channels": self.model_channels,
            "frame_rate": self.frame_rate,
            "guidance_scale": self.guidance_scale,
        }

    def max_new_tokens(self, duration: float) -> int:
        """Tokens to generate for ``duration`` seconds (see the module docstring)."""
        return int(math.ceil(duration * self.frame_rate)) + self.codebooks_per_channel - 1

    def generate(self, prompt: str, duration: float, seed: int, sample_rate: int) -> np.ndarray:
        """Return float32 audio (model channels, samples) at ``sample_rate`` Hz, at least
        ``duration`` seconds long (the engine cuts it to the exact length)."""
        import torch

        self._ensure_loaded()
        inputs = self._processor(text=[prompt], padding=True, return_tensors="pt")
        inputs = {name: value.to(self._device) for name, value in inputs.items()}
        devices = [torch.device(self._device).index or 0] if str(self._device).startswith("cuda") else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            values = self._model.generate(
                **inputs,
                do_sample=True,
                guidance_scale=self.guidance_scale,
                max_new_tokens=self.max_new_tokens(duration),
            )
        if values.ndim != 3 or values.shape[0] != 1:
            raise GenerationError(
                f"MusicGen returned audio of shape {tuple(values.shape)}; expected (1, channels, samples)"
            )
        audio = values[0].detach().float().cpu().numpy()
        if self.model_sample_rate != sample_rate:
            audio = _resample(audio, self.model_sample_rate, sample_rate)
        return audio.astype(np.float32)


def _resample(audio: np.ndarray, source: int, target: int) -> np.ndarray:
    """Polyphase resampling (channels, samples) from ``source`` to ``target`` Hz."""
    from scipy.signal import resample_poly

    common = math.gcd(source, target)
    return resample_poly(audio, target // common, source // common, axis=1)
