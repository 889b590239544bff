"""The peers, run on the same files: librosa and essentia (benchmark-only dependencies)."""

from __future__ import annotations

import numpy as np

from .grooves import PITCH_NAMES

# Krumhansl & Kessler (1982) probe-tone profiles, C major / C minor.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def krumhansl_schmuckler(chroma_mean: np.ndarray) -> str:
    """The key whose rotated Krumhansl-Kessler profile correlates best with a 12-bin chroma."""
    best, best_r = "", -np.inf
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(chroma_mean, np.roll(profile, tonic))[0, 1]
            if r > best_r:
                best, best_r = f"{PITCH_NAMES[tonic]} {mode}", r
    return best


def librosa_tempo_key(mono: np.ndarray, sample_rate: int) -> tuple[float | None, str | None]:
    """librosa: ``beat.beat_track`` tempo, Krumhansl-Schmuckler on the mean ``chroma_cqt``."""
    import librosa

    tempo, _ = librosa.beat.beat_track(y=mono, sr=sample_rate)
    bpm = float(np.atleast_1d(tempo)[0])
    chroma = librosa.feature.chroma_cqt(y=mono, sr=sample_rate)
    return (bpm if bpm > 0 else None), krumhansl_schmuckler(chroma.mean(axis=1))


def essentia_tempo_key(path: str) -> tuple[float | None, str | None]:
    """essentia: ``RhythmExtractor2013`` (multifeature) and ``KeyExtractor`` at their native 44.1 kHz."""
    import essentia.standard as es

    audio = es.MonoLoader(filename=str(path), sampleRate=44100)()
    bpm = float(es.RhythmExtractor2013(method="multifeature")(audio)[0])
    key, scale, _ = es.KeyExtractor()(audio)
    key = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}.get(key, key)
    return (bpm if bpm > 0 else None), f"{key} {scale}"
