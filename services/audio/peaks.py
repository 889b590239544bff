"""Waveform peaks for players, in the JSON format of BBC's audiowaveform (version 2).

``{"version": 2, "channels": C, "sample_rate": Hz, "samples_per_pixel": N, "bits": 16,
"length": pixels, "data": [min, max, ...]}``: for each pixel, the minimum and maximum
sample of each channel in turn, as 16-bit signed integers (full scale 32767). peaks.js
reads it as it is; other players take ``data`` in pairs. The file is read in blocks, so
the memory used does not grow with its length.

The binary ``.dat`` form (:func:`peaks_dat`) is audiowaveform's version 2: a 24-byte
little-endian header (int32 version 2, uint32 flags 0 = 16-bit, int32 sample rate, int32
samples per pixel, uint32 length in pixels, int32 channels), then the same int16 values.
An export that has the audio in memory computes them from it (:func:`array_peaks`).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

from ._reader import AudioFile, block_frames_for

__all__ = ["MAX_POINTS", "array_peaks", "peaks_dat", "waveform_peaks", "write_peaks_beside"]

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
    return _document(extremes, header.channels, header.sample_rate, samples_per_pixel)


def _document(extremes: np.ndarray, channels: int, sample_rate: int, samples_per_pixel: int) -> Dict[str, Any]:
    return {
        "version": 2,
        "channels": int(channels),
        "sample_rate": int(sample_rate),
        "samples_per_pixel": int(samples_per_pixel),
        "bits": 16,
        "length": int(extremes.shape[0]),
        "data": extremes.reshape(-1).tolist(),
    }


def array_peaks(audio: np.ndarray, sample_rate: int, samples_per_pixel: int) -> Dict[str, Any]:
    """Peaks (the JSON document) of (channels, samples) float audio at ``samples_per_pixel``."""
    if isinstance(samples_per_pixel, bool) or not isinstance(samples_per_pixel, int) or samples_per_pixel < 1:
        raise ValueError(f"samples_per_pixel must be a positive int; got {samples_per_pixel!r}")
    channels, frames = audio.shape
    whole = frames - frames % samples_per_pixel
    parts = [_pixel_extremes(audio[:, :whole], samples_per_pixel)] if whole else []
    if whole < frames:
        parts.append(_pixel_extremes(audio[:, whole:], frames - whole))
    extremes = np.concatenate(parts) if parts else np.zeros((0, channels, 2), dtype=np.int32)
    return _document(extremes, channels, sample_rate, samples_per_pixel)


def peaks_dat(document: Dict[str, Any]) -> bytes:
    """The audiowaveform binary (version 2) form of a peaks JSON document."""
    header = struct.pack(
        "<iIiiIi", 2, 0, document["sample_rate"], document["samples_per_pixel"], document["length"],
        document["channels"],
    )
    return header + np.asarray(document["data"], dtype="<i2").tobytes()


def peaks_paths_for(path: Any) -> Tuple[Path, Path]:
    """``x/gen_1.mp3`` -> (``x/gen_1.peaks.json``, ``x/gen_1.peaks.dat``)."""
    path = Path(path)
    return path.with_suffix(".peaks.json"), path.with_suffix(".peaks.dat")


def write_peaks_beside(path: Any, audio: np.ndarray, sample_rate: int, samples_per_pixel: int) -> Tuple[str, str]:
    """Write the peaks of ``audio`` as JSON and .dat beside ``path`` (atomically); their paths."""
    from ._atomic import PendingOutput

    document = array_peaks(audio, sample_rate, samples_per_pixel)
    written = []
    for target, payload in zip(peaks_paths_for(path), (json.dumps(document).encode(), peaks_dat(document))):
        pending = PendingOutput(target)
        pending.write_all(payload)
        pending.commit()
        written.append(str(target))
    return tuple(written)
