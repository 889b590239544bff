"""Drum sounds of the procedural backend, synthesized: pitched sine sweeps, filtered noise, metal.

A kit renders each drum a few times with different noise (so repeated hits are not
identical), each template peak-normalized to 1. The kick's final pitch and the snare's
body are tuned to the song's tonic so the drums do not fight the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._dsp import fft_filter
from .theory import midi_to_hz

__all__ = ["DRUM_VOICES", "Kit", "KITS", "render_kit"]

DRUM_VOICES = ("kick", "snare", "clap", "rim", "hat", "ohat", "ride", "crash")

_LONGEST = 3.0
"""Seconds: a cymbal's ring is cut there (with a short fade)."""
_METAL_HZ = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0])
"""The six square-wave oscillators of the classic analog cymbal circuit, in Hz."""


@dataclass(frozen=True)
class Kit:
    """Drum kit parameters. Times in seconds (decay = exponential time constant), Hz for bands."""

    name: str
    kick_start: float = 3.2  # start pitch, as a multiple of the end pitch
    kick_sweep: float = 0.035
    kick_decay: float = 0.28
    kick_click: float = 0.25
    kick_drive: float = 1.5
    snare_tone: float = 0.45
    snare_decay: float = 0.14
    snare_band: tuple = (1200.0, 9000.0)
    snare_attack: float = 0.0
    clap_band: tuple = (900.0, 4000.0)
    hat_decay: float = 0.035
    hat_highpass: float = 7000.0
    ohat_decay: float = 0.22
    ride_decay: float = 0.9
    crash_decay: float = 1.1
    lowpass: Optional[float] = None


KITS = {
    kit.name: kit
    for kit in (
        Kit("electronic"),
        Kit("808", kick_start=2.6, kick_sweep=0.05, kick_decay=0.45, kick_click=0.1, kick_drive=1.2,
            snare_tone=0.3, snare_decay=0.12, hat_decay=0.03),
        Kit("acoustic", kick_start=2.2, kick_sweep=0.02, kick_decay=0.16, kick_click=0.6,
            kick_drive=1.0, snare_tone=0.35, snare_decay=0.17, snare_band=(900.0, 10000.0),
            hat_decay=0.045, hat_highpass=6000.0, ohat_decay=0.35),
        Kit("lofi", kick_start=2.2, kick_sweep=0.025, kick_decay=0.2, kick_click=0.3, kick_drive=1.2,
            snare_tone=0.35, snare_decay=0.13, hat_decay=0.03, lowpass=5000.0),
        Kit("brush", kick_start=1.8, kick_sweep=0.02, kick_decay=0.18, kick_click=0.15,
            kick_drive=0.5, snare_tone=0.1, snare_decay=0.2, snare_band=(1500.0, 7000.0),
            snare_attack=0.012, hat_decay=0.05, ride_decay=1.3),
        Kit("soft", kick_start=1.8, kick_sweep=0.03, kick_decay=0.25, kick_click=0.0,
            kick_drive=0.3, snare_tone=0.2, hat_decay=0.05, hat_highpass=5000.0, lowpass=6000.0),
    )
}


def _pitch_in(pitch_class: int, low: float) -> float:
    """Frequency (Hz) of ``pitch_class`` in the octave [low, 2 * low)."""
    midi = 12 + pitch_class  # C0 family
    freq = float(midi_to_hz(midi))
    while freq < low:
        freq *= 2.0
    return freq


def _decay(n: int, sample_rate: int, tau: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (sample_rate * tau))


def _filtered(sound: np.ndarray, sample_rate: int, low=None, high=None) -> np.ndarray:
    nyquist = sample_rate / 2.0
    high = None if high is None or high >= 0.95 * nyquist else high
    low = None if low is None else min(low, 0.9 * nyquist)
    return fft_filter(sound, sample_rate, low, high, pad=sample_rate // 100)


def _metal(n: int, sample_rate: int, rng) -> np.ndarray:
    t = np.arange(n) / sample_rate
    detune = 1.0 + 0.01 * rng.standard_normal(len(_METAL_HZ))
    phases = rng.random(len(_METAL_HZ))
    out = np.zeros(n)
    for freq, phase in zip(_METAL_HZ * detune, phases):
        out += np.where((freq * t + phase) % 1.0 < 0.5, 1.0, -1.0)
    return out


def _kick(kit: Kit, sample_rate: int, tonic: int, rng) -> np.ndarray:
    end = _pitch_in(tonic, 40.0)
    n = int(sample_rate * kit.kick_decay * 6)
    t = np.arange(n) / sample_rate
    start = end * kit.kick_start
    # phase of f(t) = end + (start - end) exp(-t / sweep), integrated analytically
    cycles = end * t + (start - end) * kit.kick_sweep * (1.0 - np.exp(-t / kit.kick_sweep))
    body = np.sin(2 * np.pi * cycles) * _decay(n, sample_rate, kit.kick_decay)
    click = _filtered(rng.standard_normal(n), sample_rate, 1500.0, 8000.0) * _decay(n, sample_rate, 0.004)
    out = body + kit.kick_click * click / max(np.abs(click).max(), 1e-12)
    if kit.kick_drive > 0:
        out = np.tanh(kit.kick_drive * out)
    return out


def _snare(kit: Kit, sample_rate: int, tonic: int, rng) -> np.ndarray:
    n = int(sample_rate * kit.snare_decay * 6)
    t = np.arange(n) / sample_rate
    body_hz = _pitch_in(tonic, 160.0)
    body = (np.sin(2 * np.pi * body_hz * t) + 0.5 * np.sin(2 * np.pi * 1.5 * body_hz * t))
    body *= _decay(n, sample_rate, 0.05)
    noise = _filtered(rng.standard_normal(n), sample_rate, *kit.snare_band)
    noise *= _decay(n, sample_rate, kit.snare_decay) / max(np.abs(noise).max(), 1e-12)
    if kit.snare_attack > 0:
        noise *= 1.0 - np.exp(-t / kit.snare_attack)
    return kit.snare_tone * body / 1.5 + noise


def _clap(kit: Kit, sample_rate: int, tonic: int, rng) -> np.ndarray:
    n = int(sample_rate * 0.5)
    noise = _filtered(rng.standard_normal(n), sample_rate, *kit.clap_band)
    envelope = 0.9 * _decay(n, sample_rate, 0.12)
    for offset in (0.0, 0.011, 0.022):
        start = int(offset * sample_rate)
        envelope[start:] += _decay(n - start, sample_rate, 0.006)
    return noise * envelope


def _rim(kit: Kit, sample_rate: int, tonic: int, rng) -> np.ndarray:
    n = int(sample_rate * 0.08)
    t = np.arange(n) / sample_rate
    tone = np.sin(2 * np.pi * _pitch_in(tonic, 800.0) * t) * _decay(n, sample_rate, 0.012)
    noise = _filtered(rng.standard_normal(n), sample_rate, 2000.0, 6000.0) * _decay(n, sample_rate, 0.006)
    return tone + noise / max(np.abs(noise).max(), 1e-12)


def _cymbal(sample_rate: int, rng, decay: float, highpass: float, metal: float) -> np.ndarray:
    n = int(sample_rate * min(decay * 6, _LONGEST))
    sound = metal * _metal(n, sample_rate, rng) / 6.0 + rng.standard_normal(n) * 0.5
    sound = _filtered(sound, sample_rate, highpass, None)
    return sound * _decay(n, sample_rate, decay)


def render_kit(
    kit: Kit,
    sample_rate: int,
    tonic: int,
    rng: np.random.Generator,
    voices=DRUM_VOICES,
    variants: int = 3,
) -> dict:
    """``{voice: [template, ...]}``: ``variants`` mono float64 renderings of each of ``voices``."""
    makers = {
        "kick": lambda r: _kick(kit, sample_rate, tonic, r),
        "snare": lambda r: _snare(kit, sample_rate, tonic, r),
        "clap": lambda r: _clap(kit, sample_rate, tonic, r),
        "rim": lambda r: _rim(kit, sample_rate, tonic, r),
        "hat": lambda r: _cymbal(sample_rate, r, kit.hat_decay, kit.hat_highpass, 1.0),
        "ohat": lambda r: _cymbal(sample_rate, r, kit.ohat_decay, kit.hat_highpass, 1.0),
        "ride": lambda r: _cymbal(sample_rate, r, kit.ride_decay, 3500.0, 1.5),
        "crash": lambda r: _cymbal(sample_rate, r, kit.crash_decay, 3000.0, 0.7),
    }
    templates = {}
    for voice in DRUM_VOICES:
        if voice not in voices:
            continue
        sounds = []
        for _ in range(1 if voice == "crash" else variants):
            sound = makers[voice](rng)
            if kit.lowpass is not None:
                sound = _filtered(sound, sample_rate, None, kit.lowpass)
            sound = sound / max(np.abs(sound).max(), 1e-12)
            audible = np.flatnonzero(np.abs(sound) > 1e-3)  # cut the tail below -60 dB
            sound = sound[: audible[-1] + 1] if len(audible) else sound[:1]
            ramp = min(len(sound), max(1, sample_rate // 500))
            sound[-ramp:] *= np.linspace(1.0, 0.0, ramp)
            sounds.append(sound)
        templates[voice] = sounds
    return templates
