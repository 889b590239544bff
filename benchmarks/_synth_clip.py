"""A music-like test clip for the metadata benchmarks: drums, bass and chords, synthesized
with numpy at a known tempo and key (no soundfont, no randomness beyond a fixed seed).

Four-on-the-floor kick, snare on 2 and 4, eighth-note hats (panned), an eighth-note bass on
the chord roots and sustained triads (slightly detuned between the channels), over the
progression i - VI - III - VII of a minor key, one chord per bar.
"""

from __future__ import annotations

import numpy as np

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_PROGRESSION = ((0, 3, 7), (8, 12, 15), (3, 7, 10), (10, 14, 17))  # i VI III VII (semitones)


def _hz(midi_note: float) -> float:
    return 440.0 * 2.0 ** ((midi_note - 69.0) / 12.0)


def _add(out: np.ndarray, start: int, sound: np.ndarray) -> None:
    end = min(out.shape[-1], start + sound.shape[-1])
    if end > start:
        out[..., start:end] += sound[..., : end - start]


def music_clip(
    seconds: float = 16.0,
    sample_rate: int = 32000,
    bpm: float = 123.4,
    tonic: str = "A",
    seed: int = 0,
) -> np.ndarray:
    """(2, samples) float32 stereo clip in ``tonic`` minor at ``bpm``, peak 0.9."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    out = np.zeros((2, n))
    beat = 60.0 / bpm
    root = 48 + PITCH_NAMES.index(tonic)  # the tonic in octave 3 (C3..B3)

    t = np.arange(int(0.35 * sample_rate)) / sample_rate
    kick = np.sin(2 * np.pi * (50 * t + 70 * 0.04 * (1 - np.exp(-t / 0.04)))) * np.exp(-t / 0.12)
    t = np.arange(int(0.2 * sample_rate)) / sample_rate
    snare = (0.6 * rng.standard_normal(t.size) + np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.05)
    t = np.arange(int(0.06 * sample_rate)) / sample_rate
    hat = np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t / 0.012)

    beats = int(seconds / beat) + 1
    for b in range(beats):
        start = int(round(b * beat * sample_rate))
        _add(out, start, 0.9 * np.stack([kick, kick]))
        if b % 2 == 1:
            _add(out, start, 0.35 * np.stack([snare, snare]))
        for half in (0, 1):
            pos = int(round((b + 0.5 * half) * beat * sample_rate))
            _add(out, pos, np.stack([0.10 * hat, 0.16 * hat]))

        chord = _PROGRESSION[(b // 4) % len(_PROGRESSION)]
        for half in (0, 1):  # eighth-note bass on the chord root
            length = int(0.5 * beat * sample_rate)
            tb = np.arange(length) / sample_rate
            f = _hz(root - 12 + chord[0])
            bass = sum(np.sin(2 * np.pi * k * f * tb) / k for k in (1, 2, 3))
            bass *= np.minimum(1.0, tb / 0.005) * np.exp(-tb / 0.25)
            pos = int(round((b + 0.5 * half) * beat * sample_rate))
            _add(out, pos, 0.30 * np.stack([bass, bass]))
        if b % 4 == 0:  # one sustained triad per bar
            length = int(4 * beat * sample_rate)
            tc = np.arange(length) / sample_rate
            env = np.minimum(1.0, tc / 0.03) * np.minimum(1.0, (tc[-1] - tc) / 0.05)
            pad = np.zeros((2, length))
            for interval in chord:
                f = _hz(root + 12 + interval)
                for channel, detune in enumerate((0.998, 1.002)):
                    pad[channel] += sum(
                        np.sin(2 * np.pi * k * f * detune * tc) / k**1.5 for k in (1, 2, 3, 4)
                    )
            _add(out, start, 0.06 * pad * env)
    return (0.9 * out / np.abs(out).max()).astype(np.float32)
