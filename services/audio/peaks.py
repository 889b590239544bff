"""Waveform peaks for players, in the JSON format of BBC's audiowaveform (version 2).

``{"version": 2, "channels": C, "sample_rate": Hz, "samples_per_pixel": N, "bits": 16,
"length": pixels, "data": [min, max, ...]}``: for each pixel, the minimum and maximum
sample of each channel in turn, as 16-bit signed integers (full scale 32767). peaks.js
reads it as it is; other players take ``data`` in pairs. The file is read in blocks, so
the memory used does not grow with its length.
"""

from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np

from ._reader import AudioFile, block_frames_for

__all__ = ["MAX_POINTS", "waveform_peaks"]

MAX_POINTS = 20000
_FULL_SCALE = 32767


def _pixel_extremes(samples: np.ndarray, samples_per_pixel: int) -> np.ndarray:
    """(channels, pixels * spp) -> int array (pixels, channels, 2) of (min, max)."""
    channels, frames = samples.shape
    pixels = frames // samples_per_pixel
    shaped = samples[:, : pixels * samples_per_pixel].reshape(channels, pixels, samples_per_pixel)
    extremes = np.stack([shaped.min(axis=2), shaped.max(axis=2)], axis=-1)  # (channels, pixels, 2)
    scaled = np.clip(np.round(extremes * _FULL_SCALE), -_FULL_SCALE - 1, _FULL_SCALE).astype(np.int32)
    return scaled.transpose(1, 0, 2)


def waveform_peaks(path: Any, points: int = 1000) -> Dict[str, Any]:
    """Peaks of the audio file at ``path`` in about ``points`` pixels (1..:data:`MAX_POINTS`)."""
    if isinstance(points, bool) or not isinstance(points, int):
        raise TypeError(f"points must be an int; got {type(points).__name__}")
    if not 1 <= points <= MAX_POINTS:
        raise ValueError(f"points must be between 1 and {MAX_POINTS}; got {points!r}")
    with AudioFile(path) as audio:
        header = audio.header
        samples_per_pixel = max(1, math.ceil(header.frames / points))
        parts = []
        carry = np.zeros((header.channels, 0), dtype=np.float32)
        block = max(samples_per_pixel, block_frames_for(header.sample_rate, 10.0))
        for chunk in audio.blocks(block):
            joined = np.concatenate([carry, chunk], axis=1) if carry.shape[1] else chunk
            whole = joined.shape[1] - joined.shape[1] % samples_per_pixel
            if whole:
                parts.append(_pixel_extremes(joined[:, :whole], samples_per_pixel))
            carry = joined[:, whole:]
        if carry.shape[1]:  # the last, partial pixel
            parts.append(_pixel_extremes(carry, carry.shape[1]))
    extremes = np.concatenate(parts) if parts else np.zeros((0, header.channels, 2), dtype=np.int32)
    return {
        "version": 2,
        "channels": int(header.channels),
        "sample_rate": int(header.sample_rate),
        "samples_per_pixel": int(samples_per_pixel),
        "bits": 16,
        "length": int(extremes.shape[0]),
        "data": extremes.reshape(-1).tolist(),
    }
