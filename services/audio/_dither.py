"""TPDF dither for 16-bit output: reproducible, so the same input gives the same file.

Triangular noise of +-1 LSB peak (the difference of two uniform values in [0, 1) LSB, each
of 16 bits, cut from the generator's raw 64-bit words) is added before rounding,
which makes the quantization error independent of the signal (no distortion on fades and
quiet passages; the noise floor rises by about 4.8 dB). The noise is seeded by a CRC-32 of
the input's samples, its shape and the gain, never by the clock.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["tpdf_pcm16"]

_FULL_SCALE = 32767
_UNIFORM_STEP = np.float32(1.0 / 65536)


def _seed(audio: np.ndarray, gain: float) -> list:
    """From every 61st sample (enough to tell inputs apart; the noise never depends on
    the signal's values otherwise), the shape and the gain."""
    sampled = np.ascontiguousarray(audio[:, ::61])
    return [zlib.crc32(sampled.data), *audio.shape, zlib.crc32(struct.pack("<d", float(gain)))]


def tpdf_pcm16(audio: np.ndarray, gain: float) -> np.ndarray:
    """(channels, samples) float audio times ``gain`` -> interleaved (samples, channels)
    int16, TPDF-dithered, rounded half to even, clipped to the 16-bit range."""
    rng = np.random.default_rng(_seed(audio, gain))
    channels, samples = audio.shape
    count = channels * samples
    halves = rng.bit_generator.random_raw((count + 1) // 2).view(np.uint16)  # >= 2 x count uniform words
    noise = np.subtract(halves[:count], halves[count:2 * count], dtype=np.float32).reshape(channels, samples)
    noise *= _UNIFORM_STEP
    frames = np.empty((samples, channels), np.int16)
    scale = np.float32(gain * _FULL_SCALE)
    work = np.empty(samples, np.float32)
    for channel in range(channels):
        np.multiply(audio[channel], scale, out=work, dtype=np.float32)
        work += noise[channel]
        np.rint(work, out=work)
        np.clip(work, -_FULL_SCALE - 1, _FULL_SCALE, out=work)
        frames[:, channel] = work
    return frames
