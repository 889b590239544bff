"""TPDF dither for 16-bit output: reproducible, so the same input gives the same file.

Triangular noise of +-1 LSB peak (the difference of two uniform values in [0, 1) LSB) is
added before rounding, which makes the quantization error independent of the signal (no
distortion on fades and quiet passages; the noise floor rises by about 4.8 dB). The noise
is seeded by a hash of the input samples and the gain, never by the clock.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["tpdf_pcm16"]

_FULL_SCALE = 32767


def _seed(audio: np.ndarray, gain: float) -> int:
    digest = hashlib.blake2b(np.ascontiguousarray(audio).data, digest_size=8, key=repr(float(gain)).encode())
    return int.from_bytes(digest.digest(), "little")


def tpdf_pcm16(audio: np.ndarray, gain: float) -> np.ndarray:
    """(channels, samples) float audio times ``gain`` -> interleaved (samples, channels)
    int16, TPDF-dithered, rounded half to even, clipped to the 16-bit range."""
    rng = np.random.default_rng(_seed(audio, gain))
    channels, samples = audio.shape
    frames = np.empty((samples, channels), np.int16)
    scale = np.float32(gain * _FULL_SCALE)
    for channel in range(channels):
        work = np.multiply(audio[channel], scale, dtype=np.float32)
        work += rng.random(samples, dtype=np.float32)
        work -= rng.random(samples, dtype=np.float32)
        np.rint(work, out=work)
        np.clip(work, -_FULL_SCALE - 1, _FULL_SCALE, out=work)
        frames[:, channel] = work
    return frames
