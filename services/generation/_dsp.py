"""Zero-phase filtering in the frequency domain with numpy's FFT only.

The procedural backend filters with Butterworth magnitude responses applied to a
spectrum: no phase shift (an onset stays on its sample) and no scipy import on the hot
path (``import scipy.signal`` alone costs seconds on a cold start).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..audio._fft import next_fast_len as fast_length  # smallest 2^a 3^b 5^c >= n

__all__ = ["fast_length", "butterworth_gain", "fft_filter"]


def butterworth_gain(
    freqs: np.ndarray, low: Optional[float] = None, high: Optional[float] = None, order: int = 2
) -> np.ndarray:
    """Magnitude of a Butterworth high-pass at ``low`` Hz times a low-pass at ``high`` Hz."""
    gain = np.ones_like(freqs, dtype=np.float64)
    if low:
        with np.errstate(divide="ignore"):
            ratio = np.where(freqs > 0, low / np.maximum(freqs, 1e-12), np.inf)
        gain /= np.sqrt(1.0 + ratio ** (2 * order))
    if high:
        gain /= np.sqrt(1.0 + (freqs / high) ** (2 * order))
    return gain


def fft_filter(
    x: np.ndarray,
    sample_rate: int,
    low: Optional[float] = None,
    high: Optional[float] = None,
    order: int = 2,
    pad: int = 0,
) -> np.ndarray:
    """Zero-phase Butterworth band-limit of ``x`` along its last axis (shape kept).

    ``pad`` zeros are appended before the FFT so the filter's tails do not wrap around.
    """
    n = x.shape[-1]
    size = fast_length(n + pad)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    spectrum = np.fft.rfft(x, size, axis=-1)
    spectrum *= butterworth_gain(freqs, low, high, order).astype(spectrum.real.dtype)
    return np.fft.irfft(spectrum, size, axis=-1)[..., :n]
