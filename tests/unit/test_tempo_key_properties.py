"""Property-based tests (Hypothesis) of the tempo and key analysis.

Random shapes ((samples,) and (channels, samples), 1-8 channels), dtypes (float16/32/64),
scales (1e-4 to 4 full scale; music from 0.01, as the onset curve has a floor at -90 dB
band power), sample rates (8-192 kHz) and signal kinds. What must hold for all of them:

- a value is reported only with a confidence in (0, 1]; no value means confidence 0.0;
- a signal without rhythm (silence, DC, steady tones and chords, white noise) has no BPM;
- a click train at a known tempo is found at that tempo (within 4 %) or at a metrical
  relative (x2, /2), whatever the scale, dtype, channel count and sample rate;
- the estimates do not depend on the scale of the signal (the onset curve is a difference
  of log levels): x and x / 20 give the same tempo within 0.05 BPM (the fit's precision; only the
  -90 dB floor of the band powers differs).

Example counts are small (the suite must stay fast): about 10 s for the file.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.audio.key import estimate_key
from services.audio.tempo import estimate_tempo

RATES = st.sampled_from([8_000, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000])
DTYPES = st.sampled_from([np.float16, np.float32, np.float64])
FAST = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _shape(mono: np.ndarray, channels: int, flat: bool, dtype, rng: np.random.Generator) -> np.ndarray:
    """Spread ``mono`` over ``channels`` with random gains (or keep it 1-D), in ``dtype``."""
    if flat and channels == 1:
        return mono.astype(dtype)
    gains = rng.uniform(0.3, 1.0, size=(channels, 1))
    return (gains * mono[None, :]).astype(dtype)


def _check_contract(tempo, key) -> None:
    assert (tempo.bpm is None) == (tempo.confidence == 0.0)
    assert 0.0 <= tempo.confidence <= 1.0
    assert (key.key is None) == (key.confidence == 0.0)
    assert 0.0 <= key.confidence <= 1.0


def _steady(kind: str, n: int, rate: int, rng: np.random.Generator, channels: int) -> np.ndarray:
    """(channels, n) samples of a signal that has no rhythm, at most 1.0 in magnitude."""
    t = np.arange(n) / rate
    if kind == "silence":
        return np.zeros((channels, n))
    if kind == "dc":
        return np.full((channels, n), rng.uniform(-0.9, 0.9))
    if kind == "noise":
        return 0.3 * rng.standard_normal((channels, n))
    # "tones": each channel its own steady sine, or a chord of up to four partials
    top = min(5_000.0, 0.45 * rate)
    out = np.zeros((channels, n))
    for channel in range(channels):
        for _ in range(int(rng.integers(1, 5)) if kind == "chord" else 1):
            out[channel] += 0.2 * np.sin(2 * np.pi * rng.uniform(50.0, top) * t + rng.uniform(0, 6.3))
    return out


@FAST
@given(kind=st.sampled_from(["silence", "dc", "noise", "tones", "chord"]), rate=RATES,
       channels=st.integers(1, 8), seconds=st.floats(3.0, 6.0), scale=st.floats(1e-4, 4.0),
       dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_no_rhythm_gives_no_bpm(kind, rate, channels, seconds, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    audio = (scale * _steady(kind, int(seconds * rate), rate, rng, channels)).astype(dtype)
    tempo, key = estimate_tempo(audio, rate), estimate_key(audio, rate)
    _check_contract(tempo, key)
    assert tempo.bpm is None, f"{kind}: {tempo}"
    if kind in ("silence", "dc", "noise"):
        assert key.key is None, f"{kind}: {key}"


def _clicks(bpm: float, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Decaying noise bursts every 60/bpm s (20 ms, the first at a random offset)."""
    out = np.zeros(int(seconds * rate))
    burst = rng.standard_normal(int(0.02 * rate)) * np.exp(-np.arange(int(0.02 * rate)) / (0.003 * rate))
    first = rng.uniform(0.0, 60.0 / bpm)
    for k in range(int(seconds * bpm / 60.0) + 1):
        start = int(round((first + k * 60.0 / bpm) * rate))
        end = min(len(out), start + len(burst))
        if start < len(out):
            out[start:end] += burst[: end - start]
    return 0.5 * out / np.max(np.abs(out))


@FAST
@given(bpm=st.floats(70.0, 170.0), rate=RATES, channels=st.integers(1, 8), flat=st.booleans(),
       scale=st.floats(0.01, 4.0), dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_click_trains_are_found_at_their_tempo(bpm, rate, channels, flat, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    audio = _shape(scale * _clicks(bpm, 8.0, rate, rng), channels, flat, dtype, rng)
    tempo, key = estimate_tempo(audio, rate), estimate_key(audio, rate)
    _check_contract(tempo, key)
    assert tempo.bpm is not None and tempo.confidence > 0.0
    assert min(abs(tempo.bpm * factor / bpm - 1.0) for factor in (1.0, 0.5, 2.0)) < 0.04, tempo


@settings(max_examples=6, deadline=None, derandomize=True)
@given(bpm=st.floats(70.0, 170.0), rate=RATES, seed=st.integers(0, 2**32 - 1))
def test_tempo_does_not_depend_on_the_scale(bpm, rate, seed):
    audio = _clicks(bpm, 6.0, rate, np.random.default_rng(seed)) + 0.01 * np.random.default_rng(seed).standard_normal(6 * rate)
    quiet, loud = estimate_tempo(audio / 20, rate), estimate_tempo(audio, rate)
    assert quiet.bpm is not None and loud.bpm is not None
    assert abs(quiet.bpm - loud.bpm) < 0.05
