"""Mixing of the procedural backend: panning, sidechain ducking, reverb, master bus.

Buffers are float64 numpy arrays, mono (samples,) or stereo (2, samples). The master bus
adds the reverb, removes DC, shapes brightness (one zero-phase FFT pass), sets the level,
limits peaks to a ceiling (look-ahead gain computer, so the ceiling holds exactly) and fades
both ends to avoid clicks.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ._dsp import butterworth_gain, fast_length, fft_filter

__all__ = [
    "CEILING",
    "pan_gains",
    "place",
    "sidechain_envelope",
    "reverb_impulse",
    "crackle",
    "limit",
    "master",
]

CEILING = 0.95
"""Peak ceiling of the master bus (linear full scale)."""


def pan_gains(pan: float) -> tuple:
    """Constant-power (left, right) gains for ``pan`` in [-1 (left), 1 (right)]."""
    angle = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4.0
    return float(np.cos(angle)), float(np.sin(angle))


def place(buffer: np.ndarray, sound: np.ndarray, start: int, left: float, right: float) -> None:
    """Add mono ``sound`` into stereo ``buffer`` (2, samples) from sample ``start``, cut at the end."""
    end = min(start + len(sound), buffer.shape[1])
    if start >= end or start < 0:
        return
    segment = sound[: end - start]
    buffer[0, start:end] += left * segment
    buffer[1, start:end] += right * segment


def sidechain_envelope(samples: int, starts, sample_rate: int, depth: float, release: float = 0.18) -> np.ndarray:
    """Gain (samples,) that dips by ``depth`` at each of ``starts`` and recovers in ``release`` s."""
    envelope = np.ones(samples)
    if depth <= 0:
        return envelope
    n = int(release * sample_rate * 2)
    t = np.arange(n) / sample_rate
    # dips within 4 ms (no click), then recovers exponentially
    curve = 1.0 - depth * np.exp(-t / (release / 2.5)) * np.minimum(1.0, t / 0.004)
    for start in starts:
        end = min(start + n, samples)
        if 0 <= start < end:
            envelope[start:end] = np.minimum(envelope[start:end], curve[: end - start])
    return envelope


def reverb_impulse(sample_rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Stereo reverb impulse response (2, samples): 12 ms pre-delay, then low-passed noise
    decaying by 60 dB in ``seconds``, each channel of unit energy (decorrelated channels)."""
    n = int(seconds * sample_rate)
    predelay = int(0.012 * sample_rate)
    decay = np.exp(-6.9 * np.arange(n) / (seconds * sample_rate))
    noise = fft_filter(rng.standard_normal((2, n)), sample_rate, None, min(6000.0, 0.4 * sample_rate))
    impulse = np.zeros((2, predelay + n))
    impulse[:, predelay:] = noise * decay
    impulse /= np.sqrt(np.sum(impulse**2, axis=1, keepdims=True))
    return impulse


def crackle(samples: int, sample_rate: int, rng: np.random.Generator, rate: float = 9.0) -> np.ndarray:
    """Stereo vinyl crackle (2, samples): ``rate`` random clicks per second plus faint hiss."""
    out = 0.004 * rng.standard_normal((2, samples))
    for channel in range(2):
        count = rng.poisson(rate * samples / sample_rate)
        positions = rng.integers(0, samples, size=count)
        out[channel, positions] += rng.uniform(-1.0, 1.0, size=count) ** 3
    return fft_filter(out, sample_rate, 800.0, min(6000.0, 0.45 * sample_rate))


def limit(audio: np.ndarray, sample_rate: int, ceiling: float = CEILING, lookahead: float = 0.008) -> np.ndarray:
    """Peak-limit stereo ``audio`` to ``ceiling`` with a look-ahead gain computer.

    Per block of ``lookahead`` seconds, the needed gain is ceiling / block peak (at most 1),
    lowered to the minimum of the block and its two neighbours; the gain curve interpolates
    linearly between block centres. Every sample's gain is then at most its own block's
    need, so the ceiling holds exactly, and the gain moves smoothly (no clicks).
    """
    n = audio.shape[1]
    block = max(2, int(lookahead * sample_rate))
    blocks = -(-n // block)
    peak = np.zeros(blocks * block, dtype=audio.dtype)
    peak[:n] = np.abs(audio).max(axis=0)
    need = np.minimum(1.0, ceiling / np.maximum(peak.reshape(blocks, block).max(axis=1), 1e-12))
    if need.min() >= 1.0:
        return audio
    around = np.minimum(need, np.minimum(np.r_[1.0, need[:-1]], np.r_[need[1:], 1.0]))
    centres = (np.arange(blocks) + 0.5) * block
    gain = np.interp(np.arange(n), centres, around).astype(audio.dtype)
    out = audio * gain
    top = np.abs(out).max()
    if top > ceiling:  # float rounding only
        out *= ceiling / top
    return out


def master(
    dry: np.ndarray,
    sample_rate: int,
    brightness: float,
    send: Optional[np.ndarray] = None,
    impulse: Optional[np.ndarray] = None,
    fade: float = 0.005,
) -> np.ndarray:
    """Master bus of stereo ``dry`` (2, samples) -> float32 (2, samples), peak <= CEILING.

    In one FFT pass: adds ``send`` convolved with the reverb ``impulse``, high-passes at
    25 Hz (DC, rumble) and low-passes by ``brightness`` (zero-phase: onsets stay on their
    samples). Then sets the level (99.9th percentile at 0.8), limits, and fades both ends.
    """
    n = dry.shape[1]
    tail = 0 if impulse is None else impulse.shape[1]
    size = fast_length(n + tail + sample_rate // 2)
    cutoff = 2500.0 * 2.0 ** (3.0 * brightness)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    gain = butterworth_gain(freqs, 25.0, cutoff if cutoff < 0.45 * sample_rate else None).astype(np.float32)
    del freqs
    out = np.empty((2, n), dtype=np.float32)
    for channel in range(2):  # one channel at a time: half the memory of the spectra
        spectrum = np.fft.rfft(dry[channel].astype(np.float32, copy=False), size)
        if send is not None and impulse is not None:
            spectrum += np.fft.rfft(send[channel].astype(np.float32, copy=False), size) * np.fft.rfft(
                impulse[channel].astype(np.float32), size
            )
        spectrum *= gain
        out[channel] = np.fft.irfft(spectrum, size)[:n]
        del spectrum
    level = np.percentile(np.abs(out[:, ::4]), 99.9)
    if level > 0:
        out *= 0.8 / level
    out = limit(out, sample_rate)
    fade_in = min(n, max(1, int(fade * sample_rate)))
    fade_out = min(n, max(1, int(2 * fade * sample_rate)))
    out[:, :fade_in] *= 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade_in))
    out[:, n - fade_out:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade_out))
    return out.astype(np.float32)
