"""Validation shared by every audio entry point: tensor/ndarray -> float array (channels, samples).

Torch is never imported here: a tensor is recognised by its type's module, so code that
only handles numpy arrays never pays for ``import torch``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import AudioValidationError
from . import _native

__all__ = [
    "MAX_CHANNELS",
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "is_torch_tensor",
    "to_numpy",
    "as_audio_array",
    "validate_sample_rate",
]

MAX_CHANNELS = 32
"""More channels than this is taken as a transposed (samples, channels) array."""

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
"""Sample rates outside [1 kHz, 768 kHz] are refused as absurd."""


def is_torch_tensor(value: Any) -> bool:
    """True for a ``torch.Tensor`` (checked without importing torch)."""
    cls = type(value)
    return cls.__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def to_numpy(audio: Any, name: str = "audio") -> np.ndarray:
    """Return ``audio`` (torch tensor on any device, or ndarray) as a floating numpy array.

    float16 and bfloat16 become float32; float32 and float64 are kept. Integer, boolean
    and complex data are a ``TypeError``: audio here is floating point in [-1, 1].
    """
    if is_torch_tensor(audio):
        tensor = audio.detach()
        if tensor.device.type == "meta":
            raise AudioValidationError(
                f"{name} is a tensor on the 'meta' device, which holds a shape but no samples; "
                "create it on 'cpu' or 'cuda'"
            )
        if tensor.is_complex() or not tensor.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor; got dtype {tensor.dtype}")
        import torch  # already imported by whoever made the tensor

        if tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.float()  # float16 / bfloat16 have no lossless numpy view
        array = tensor.cpu().numpy()
    elif isinstance(audio, np.ndarray):
        array = audio
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy.ndarray; got {type(audio).__name__}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} must hold floating-point samples; got dtype {array.dtype}")
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    elif array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    return array


def as_audio_array(audio: Any, name: str = "audio", check_finite: bool = True) -> np.ndarray:
    """Validate ``audio`` and return it as a C-contiguous float array of shape (channels, samples).

    Accepted shapes: (samples,), (channels, samples), and (1, channels, samples), the
    batch-of-one that MusicGen returns. Raises ``TypeError`` for a wrong type and
    :class:`~services.errors.AudioValidationError` (a ``ValueError``) for a wrong value:
    another shape, no samples, NaN or infinite samples.
    """
    array = to_numpy(audio, name)
    if array.ndim == 3:
        if array.shape[0] != 1:
            raise AudioValidationError(
                f"{name} has a batch axis of {array.shape[0]} items; shape {tuple(array.shape)}: "
                "export one item at a time (or use export_wav_batch)"
            )
        array = array[0]
    if array.ndim == 1:
        array = array[np.newaxis, :]
    elif array.ndim != 2:
        raise AudioValidationError(
            f"{name} must have shape (samples,), (channels, samples) or (1, channels, samples); "
            f"got {tuple(array.shape)}"
        )
    channels, samples = array.shape
    if channels == 0 or samples == 0:
        raise AudioValidationError(f"{name} is empty: shape {tuple(array.shape)}")
    if channels > MAX_CHANNELS:
        hint = " (it looks like (samples, channels); transpose it)" if samples <= MAX_CHANNELS else ""
        raise AudioValidationError(
            f"{name} has {channels} channels, more than {MAX_CHANNELS}{hint}; "
            f"expected (channels, samples), got {tuple(array.shape)}"
        )
    array = np.ascontiguousarray(array)
    if check_finite and not _all_finite(array):
        bad = np.argwhere(~np.isfinite(array))
        channel, index = (int(v) for v in bad[0])
        raise AudioValidationError(
            f"{name} contains {len(bad)} non-finite samples (NaN or Inf); the first at "
            f"channel {channel}, sample {index}: {array[channel, index]!r}"
        )
    return array


def _all_finite(array: np.ndarray) -> bool:
    """Whether a contiguous float array holds no NaN or infinity (one pass, compiled where
    the extension was built; NumPy's ``isfinite`` otherwise)."""
    if _native.kernels is not None:
        return _native.kernels.all_finite(array, array.dtype == np.float64)
    return bool(np.isfinite(array).all())


def validate_sample_rate(sample_rate: Any, name: str = "sample_rate") -> int:
    """Return ``sample_rate`` as an int in Hz, or raise ``TypeError``/``ValueError``."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        raise TypeError(f"{name} must be an integer number of Hz; got {type(sample_rate).__name__}")
    if isinstance(sample_rate, numbers.Integral):
        rate = int(sample_rate)
    else:
        value = float(sample_rate)
        if not value.is_integer():
            raise AudioValidationError(f"{name} must be a whole number of Hz; got {sample_rate!r}")
        rate = int(value)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioValidationError(
            f"{name} must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz; got {sample_rate!r}"
        )
    return rate
