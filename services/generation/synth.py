"""Tonal instruments of the procedural backend: band-limited wavetable synthesis with envelopes.

Each :class:`Voice` is one or more oscillator layers reading a single-cycle wavetable whose
harmonics stop below Nyquist (no aliasing). A layer crossfades from a bright table to a
dark one (a filter envelope without a recursive filter), or wobbles between them with a
tempo-synced LFO. Amplitude follows an attack/decay/sustain/release envelope. Everything is
vectorized over samples: a note costs a few numpy passes whatever its pitch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from .theory import midi_to_hz

__all__ = ["Layer", "Voice", "VOICES", "render_note"]

TABLE_SIZE = 2048
"""Samples of one wavetable cycle (linear interpolation between them)."""


@dataclass(frozen=True)
class Layer:
    """One oscillator: ``spectrum`` name, detune in cents, gain, octave shift."""

    spectrum: str
    detune_cents: float = 0.0
    gain: float = 1.0
    octave: int = 0


@dataclass(frozen=True)
class Voice:
    """An instrument. Times in seconds, ``sustain`` a level in [0, 1].

    ``bright_decay``: time constant of the crossfade from the bright table to the dark one
    (None keeps the mix at ``brightness``); ``drive``: tanh saturation amount (0 = clean);
    ``vibrato_cents`` at ``vibrato_rate`` Hz after ``vibrato_delay``; ``glide``: pitch glide
    time constant from the previous note; ``wobble_per_beat``: LFO cycles per beat between
    the dark and bright tables; ``max_harmonics`` caps the tables.
    """

    name: str
    layers: tuple
    attack: float = 0.005
    decay: float = 0.3
    sustain: float = 0.7
    release: float = 0.2
    bright_decay: Optional[float] = None
    drive: float = 0.0
    vibrato_cents: float = 0.0
    vibrato_rate: float = 5.0
    vibrato_delay: float = 0.25
    glide: float = 0.0
    wobble_per_beat: float = 0.0
    max_harmonics: int = 40


def _saw(k):
    return 1.0 / k


def _square(k):
    return np.where(k % 2 == 1, 1.0 / k, 0.0)


def _triangle(k):
    return np.where(k % 2 == 1, (-1.0) ** ((k - 1) // 2) / k**2, 0.0)


def _sine(k):
    return np.where(k == 1, 1.0, 0.0)


def _partials(weights):
    def spectrum(k):
        out = np.zeros_like(k, dtype=float)
        for harmonic, weight in weights.items():
            out[k == harmonic] = weight
        return out

    return spectrum


SPECTRA = {
    "saw": _saw,
    "square": _square,
    "triangle": _triangle,
    "sine": _sine,
    "sub": _partials({1: 1.0, 2: 0.25, 3: 0.08}),
    "organ": _partials({1: 1.0, 2: 0.7, 3: 0.5, 4: 0.35, 6: 0.2, 8: 0.15}),
    "epiano": _partials({1: 1.0, 2: 0.45, 3: 0.22, 4: 0.12, 5: 0.05, 7: 0.03}),
    "bell": _partials({1: 1.0, 2: 0.55, 3: 0.3, 4: 0.22, 6: 0.14, 8: 0.08}),
    "flute": _partials({1: 1.0, 2: 0.3, 3: 0.12, 4: 0.04}),
    "piano": lambda k: 1.0 / k**1.3,
}

VOICES = {
    voice.name: voice
    for voice in (
        Voice("sub_bass", (Layer("sub"),), attack=0.01, decay=0.4, sustain=0.85, release=0.12,
              max_harmonics=4),
        Voice("synth_bass", (Layer("saw"), Layer("square", -6.0, 0.5)), attack=0.004, decay=0.25,
              sustain=0.6, release=0.08, bright_decay=0.12, max_harmonics=24),
        Voice("dark_bass", (Layer("saw"), Layer("sub", 0.0, 0.8)), attack=0.003, decay=0.2,
              sustain=0.5, release=0.06, bright_decay=0.035, max_harmonics=16),
        Voice("808", (Layer("sub"),), attack=0.003, decay=1.6, sustain=0.25, release=0.15,
              drive=1.8, glide=0.05, max_harmonics=4),
        Voice("reese", (Layer("saw", -9.0), Layer("saw", 9.0), Layer("sub", 0.0, 0.8, -1)),
              attack=0.01, decay=0.5, sustain=0.8, release=0.1, max_harmonics=16),
        Voice("wobble", (Layer("saw", -5.0), Layer("square", 5.0, 0.7)), attack=0.005, decay=0.3,
              sustain=0.9, release=0.08, wobble_per_beat=2.0, drive=1.2, max_harmonics=32),
        Voice("electric_bass", (Layer("piano"),), attack=0.004, decay=0.6, sustain=0.4,
              release=0.08, bright_decay=0.09, max_harmonics=14),
        Voice("upright", (Layer("triangle"), Layer("piano", 0.0, 0.5)), attack=0.006, decay=0.5,
              sustain=0.2, release=0.1, bright_decay=0.05, max_harmonics=10),
        Voice("pad", (Layer("saw", -8.0, 0.7), Layer("saw", 8.0, 0.7), Layer("triangle", 0.0, 0.6)),
              attack=0.35, decay=1.0, sustain=0.85, release=0.6, max_harmonics=20),
        Voice("supersaw", (Layer("saw", -14.0, 0.6), Layer("saw", 0.0, 0.6), Layer("saw", 14.0, 0.6),
                           Layer("saw", 0.0, 0.3, -1)),
              attack=0.02, decay=0.8, sustain=0.8, release=0.3, max_harmonics=32),
        Voice("strings", (Layer("saw", -6.0, 0.7), Layer("saw", 6.0, 0.7)), attack=0.18, decay=0.8,
              sustain=0.8, release=0.4, vibrato_cents=8.0, vibrato_rate=5.2, max_harmonics=18),
        Voice("stab", (Layer("organ"), Layer("saw", 4.0, 0.4)), attack=0.003, decay=0.18,
              sustain=0.25, release=0.12, bright_decay=0.08, max_harmonics=24),
        Voice("epiano", (Layer("epiano"),), attack=0.004, decay=1.2, sustain=0.3, release=0.35,
              bright_decay=0.25, max_harmonics=12),
        Voice("piano", (Layer("piano"),), attack=0.003, decay=1.4, sustain=0.15, release=0.3,
              bright_decay=0.3, max_harmonics=24),
        Voice("organ", (Layer("organ"),), attack=0.004, decay=0.1, sustain=0.8, release=0.05,
              max_harmonics=16),
        Voice("guitar", (Layer("saw", -4.0), Layer("saw", 4.0)), attack=0.003, decay=0.4,
              sustain=0.55, release=0.06, bright_decay=0.2, drive=3.0, max_harmonics=24),
        Voice("pluck", (Layer("saw"), Layer("square", 7.0, 0.4)), attack=0.002, decay=0.28,
              sustain=0.0, release=0.15, bright_decay=0.07, max_harmonics=30),
        Voice("bell", (Layer("bell"),), attack=0.002, decay=0.9, sustain=0.0, release=0.4,
              bright_decay=0.15, max_harmonics=16),
        Voice("lead", (Layer("saw", -5.0, 0.7), Layer("square", 5.0, 0.5)), attack=0.01, decay=0.3,
              sustain=0.75, release=0.12, vibrato_cents=18.0, vibrato_rate=5.5, drive=0.8,
              max_harmonics=28),
        Voice("flute", (Layer("flute"),), attack=0.04, decay=0.3, sustain=0.85, release=0.12,
              vibrato_cents=12.0, vibrato_rate=4.8, max_harmonics=8),
    )
}

def _table(spectrum: str, harmonics: int, tilt: float) -> np.ndarray:
    """One cycle (TABLE_SIZE + 1 samples, the last repeating the first) at RMS 0.5.

    ``tilt`` > 0 darkens: harmonic k is scaled by exp(-tilt * (k - 1)); it is rounded to
    0.05 so that the cache of tables stays small.
    """
    return _cached_table(spectrum, harmonics, round(tilt * 20.0) / 20.0)


@lru_cache(maxsize=256)
def _cached_table(spectrum: str, harmonics: int, tilt: float) -> np.ndarray:
    k = np.arange(1, harmonics + 1)
    amplitudes = SPECTRA[spectrum](k) * np.exp(-tilt * (k - 1))
    x = np.arange(TABLE_SIZE + 1) / TABLE_SIZE
    table = amplitudes @ np.sin(2.0 * np.pi * np.outer(k, x))
    table /= max(np.sqrt(np.mean(table[:-1] ** 2)), 1e-12) * 2.0
    table.setflags(write=False)
    return table


def _lookup(phase: np.ndarray, *tables: np.ndarray) -> list:
    """Read each of ``tables`` at ``phase`` (in cycles), linearly interpolated."""
    position = (phase % 1.0) * TABLE_SIZE
    index = position.astype(np.int64)
    frac = position - index
    following = index + 1
    return [table[index] + frac * (table[following] - table[index]) for table in tables]


def _envelope(voice: Voice, n_on: int, n_total: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n_total) / sample_rate
    attack = max(voice.attack, 1.0 / sample_rate)
    level = np.where(
        t < attack,
        t / attack,
        voice.sustain + (1.0 - voice.sustain) * np.exp(-(t - attack) / max(voice.decay, 1e-4)),
    )
    if n_total > n_on:
        off_level = level[n_on - 1] if n_on > 0 else 0.0
        tau = max(voice.release, 1e-3) / 4.6  # ~ -40 dB at the end of the release
        level[n_on:] = off_level * np.exp(-(t[n_on:] - t[n_on]) / tau)
    ramp = min(n_total, max(1, sample_rate // 500))  # 2 ms to exactly zero
    level[-ramp:] *= np.linspace(1.0, 0.0, ramp)
    return level


def render_note(
    voice: Voice,
    midi: float,
    n_on: int,
    sample_rate: int,
    brightness: float = 0.6,
    beat_seconds: float = 0.5,
    glide_from: Optional[float] = None,
) -> np.ndarray:
    """Render one note at unit velocity: mono float64, ``n_on`` samples held plus the release.

    ``brightness`` in [0, 1] sets how many harmonics the bright table keeps; ``beat_seconds``
    syncs the wobble LFO; ``glide_from`` (MIDI) starts the pitch there and glides to ``midi``.
    """
    n_total = n_on + int(round(voice.release * sample_rate))
    t = np.arange(n_total) / sample_rate
    f0 = float(midi_to_hz(midi))
    ratio = None
    if voice.glide > 0 and glide_from is not None and glide_from != midi:
        ratio = 2.0 ** ((glide_from - midi) / 12.0 * np.exp(-t / voice.glide))
    if voice.vibrato_cents > 0:
        ramp = np.clip((t - voice.vibrato_delay) / 0.3, 0.0, 1.0)
        vibrato = 2.0 ** (voice.vibrato_cents / 1200.0 * ramp * np.sin(2 * np.pi * voice.vibrato_rate * t))
        ratio = vibrato if ratio is None else ratio * vibrato
    if ratio is None:
        cycles = f0 * t
        peak_ratio = 1.0
    else:
        cycles = np.cumsum(f0 * ratio) / sample_rate
        peak_ratio = float(ratio.max())

    bright_tilt = 0.05 + 0.55 * (1.0 - brightness)
    if voice.bright_decay is not None:
        weight = np.exp(-t / voice.bright_decay)
    elif voice.wobble_per_beat > 0:
        weight = 0.5 - 0.5 * np.cos(2 * np.pi * voice.wobble_per_beat * t / beat_seconds)
    else:
        weight = None

    out = np.zeros(n_total)
    for number, layer in enumerate(voice.layers):
        scale = 2.0 ** (layer.detune_cents / 1200.0 + layer.octave)
        top = f0 * scale * peak_ratio
        harmonics = int(max(1, min(voice.max_harmonics, 0.45 * sample_rate // max(top, 1.0))))
        phase = cycles * scale + 0.173 * number  # fixed offsets: layers do not start in phase
        bright = _table(layer.spectrum, harmonics, bright_tilt)
        if weight is None:
            (wave,) = _lookup(phase, bright)
        else:
            bright_wave, dark_wave = _lookup(phase, bright, _table(layer.spectrum, harmonics, 0.9))
            wave = dark_wave + weight * (bright_wave - dark_wave)
        out += layer.gain * wave
    out *= _envelope(voice, n_on, n_total, sample_rate)
    if voice.drive > 0:
        out = np.tanh(voice.drive * out) / np.tanh(voice.drive)
    return out
