"""Shared streaming front end of the tempo and key analysers: framing and magnitude spectra.

A :class:`FrameStream` turns blocks of any size into overlapping frames with bounded
memory: it keeps only the samples of the frame in progress between calls, so a whole
array fed at once and the same array fed in blocks yield identical frames.
"""

from __future__ import annotations

import numpy as np

from . import _fft as fft
from ._arrays import as_audio_array

__all__ = ["FrameStream", "as_mono_block", "power_spectra"]

_CHUNK_SAMPLES = 1 << 17
"""Samples (frames x FFT size) transformed per batch: bounds the transient memory of one
``update`` call, and keeps the temporaries small enough to be reused from cache rather
than freshly mapped (which made 512-frame batches twice as slow)."""


def as_mono_block(block, name: str = "block") -> np.ndarray:
    """Validate a block ((samples,) or (channels, samples)) and return it as mono float32.

    Channels are averaged (a mono mix-down); an empty block is allowed and returns an
    empty array, since a stream may hand over empty reads.
    """
    if isinstance(block, np.ndarray) and block.size == 0 and block.ndim in (1, 2):
        if not np.issubdtype(block.dtype, np.floating):
            raise TypeError(f"{name} must hold floating-point samples; got dtype {block.dtype}")
        return np.zeros(0, dtype=np.float32)
    array = as_audio_array(block, name)
    mono = array[0] if array.shape[0] == 1 else array.mean(axis=0)
    return np.asarray(mono, dtype=np.float32)


class FrameStream:
    """Cut a stream of mono blocks into frames of ``size`` samples every ``hop`` samples.

    ``push(block)`` returns the frames completed by that block, shape (frames, size); the
    first frame starts at sample 0.
    """

    def __init__(self, size: int, hop: int):
        if not 0 < hop <= size:
            raise ValueError(f"need 0 < hop <= size; got hop={hop!r}, size={size!r}")
        self.size = size
        self.hop = hop
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_done = 0
        self.samples_seen = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        self.samples_seen += block.size
        buffer = np.concatenate((self._pending, block)) if self._pending.size else block
        count = 0 if buffer.size < self.size else (buffer.size - self.size) // self.hop + 1
        if count == 0:
            self._pending = np.array(buffer, dtype=np.float32, copy=True)
            return np.zeros((0, self.size), dtype=np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(buffer, self.size)[:: self.hop][:count]
        self._pending = np.array(buffer[count * self.hop:], dtype=np.float32, copy=True)
        self.frames_done += count
        return frames


def power_spectra(frames: np.ndarray, window: np.ndarray, n_fft: int | None = None):
    """Yield (first frame index, |rfft|^2 of the windowed frames) in batches of bounded size.

    ``window`` has the frame length; ``n_fft`` (>= frame length) zero-pads. Powers are
    float32, shape (batch, n_fft // 2 + 1).
    """
    step = max(1, _CHUNK_SAMPLES // (n_fft or len(window)))
    for start in range(0, len(frames), step):
        batch = frames[start:start + step] * window
        spectrum = fft.rfft(batch, n=n_fft, axis=1)
        yield start, spectrum.real ** 2 + spectrum.imag ** 2
