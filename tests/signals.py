"""Test signals whose level, peak and loudness are known by construction."""

from __future__ import annotations

import numpy as np


def db_to_amplitude(dbfs: float) -> float:
    return 10.0 ** (dbfs / 20.0)


def sine(
    frequency: float,
    dbfs: float,
    seconds: float,
    sample_rate: int = 48000,
    channels: int = 2,
    phase_degrees: float = 0.0,
) -> np.ndarray:
    """A sine of peak level ``dbfs`` on every channel: (channels, samples) float64."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    wave = db_to_amplitude(dbfs) * np.sin(2 * np.pi * frequency * t + np.deg2rad(phase_degrees))
    return np.tile(wave, (channels, 1))


def sequence(*parts: np.ndarray) -> np.ndarray:
    """Concatenate (channels, samples) parts in time."""
    return np.concatenate(parts, axis=1)


def silence(seconds: float, sample_rate: int = 48000, channels: int = 2) -> np.ndarray:
    return np.zeros((channels, int(round(seconds * sample_rate))))


def music_like(seconds: float, sample_rate: int = 32000, seed: int = 0, bpm: float = 124.0) -> np.ndarray:
    """A stereo groove (kick, snare, hats, bass, chords), peak 0.9: (2, samples) float32.

    Not a known-loudness signal: it stands in for real music in cross-checks against
    reference meters.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    beat = 60.0 / bpm
    out = np.zeros((2, n))

    def envelope(length_s: float, decay: float) -> np.ndarray:
        tt = np.arange(int(length_s * sample_rate)) / sample_rate
        return tt, np.exp(-tt * decay)

    kt, kenv = envelope(0.25, 12)
    kick = np.sin(2 * np.pi * (50 * kt + 2 * (1 - np.exp(-kt * 30)))) * kenv
    _, senv = envelope(0.2, 25)
    snare = rng.standard_normal(senv.size) * senv * 0.5
    _, henv = envelope(0.05, 80)
    hat = rng.standard_normal(henv.size) * henv * 0.2

    def add(sound: np.ndarray, start: int, gains=(1.0, 1.0)) -> None:
        if start >= n:
            return
        end = min(n, start + sound.size)
        out[0, start:end] += gains[0] * sound[: end - start]
        out[1, start:end] += gains[1] * sound[: end - start]

    for i in range(int(seconds / beat) + 1):
        start = int(round(i * beat * sample_rate))
        add(kick, start)
        if i % 2:
            add(snare, start, (1.0, 0.9))
        add(hat, start, (0.7, 1.0))
        add(hat, int(round((i + 0.5) * beat * sample_rate)), (0.7, 1.0))
    roots = (110.0, 87.31, 130.81, 98.0)
    bar = 4 * beat
    for i in range(int(seconds / bar) + 1):
        start, end = int(i * bar * sample_rate), min(n, int((i + 1) * bar * sample_rate))
        if start >= n:
            break
        tt = t[start:end] - t[start]
        root = roots[i % len(roots)]
        out[:, start:end] += 0.3 * np.sin(2 * np.pi * root * tt) * np.exp(-tt * 0.5)
        for ratio, phase in ((2.0, 0.3), (2.5198, 1.1), (2.9966, 2.0)):
            out[0, start:end] += 0.08 * np.sin(2 * np.pi * root * 2 * ratio * tt + phase)
            out[1, start:end] += 0.08 * np.sin(2 * np.pi * root * 2 * ratio * tt + phase + 0.8)
    out *= 0.9 / np.abs(out).max()
    return out.astype(np.float32)


def full_oversampling_peak_db(audio: np.ndarray) -> float:
    """Reference true peak (dBTP) of (channels, samples) audio: the largest magnitude of the
    complete 4x interpolation with the meter's filter (a 49-tap Hann-windowed sinc), by
    scipy's ``upfirdn``, with nothing skipped."""
    from scipy.signal import upfirdn

    from services.audio.loudness import TRUE_PEAK_OVERSAMPLING, TRUE_PEAK_TAPS

    m = np.arange(TRUE_PEAK_TAPS) - (TRUE_PEAK_TAPS - 1) / 2
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(TRUE_PEAK_TAPS) / (TRUE_PEAK_TAPS - 1))
    taps = np.sinc(m / TRUE_PEAK_OVERSAMPLING) * window
    peak = max(np.abs(upfirdn(taps, channel.astype(np.float64), up=TRUE_PEAK_OVERSAMPLING)).max() for channel in audio)
    return 20 * np.log10(peak)
