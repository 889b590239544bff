"""services.generation: prompt parsing, music theory, genre presets, the procedural backend
and the MusicGenerationEngine API.

Ground truth comes from the request, measured on the rendered audio with plain numpy:
the tempo by autocorrelation of an onset envelope (to 0.05 %), the beat grid by the kick's
onsets (to the sample), the key by correlating a chromagram with the Krumhansl-Kessler key
profiles.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import services.generation as generation
from services.errors import GenerationRequestError
from services.generation import GENRES, MOODS, MusicGenerationEngine, parse_prompt
from services.generation.procedural import MAX_BPM, MIN_BPM, ProceduralBackend
from services.generation.sequencer import fit_pattern, swing_position
from services.generation.styles import MOOD_EFFECTS, STYLES
from services.generation.synth import VOICES
from services.generation.drums import KITS
from services.generation.theory import Key, diatonic_chord, parse_key, voice_chord

SR = 32000

# Krumhansl & Kessler (1982) probe-tone ratings, C major / C minor.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def render(prompt: str, duration: float = 8.0, seed: int = 0, stems: bool = False):
    backend = ProceduralBackend(SR)
    return backend.render(backend.resolve(parse_prompt(prompt), duration, seed), keep_stems=stems)


def beat_grid(bpm: float, samples: int, every: int = 1) -> np.ndarray:
    """Sample of every ``every``-th beat: beat k starts at k * 60 / bpm seconds."""
    period = 60.0 * SR / bpm
    beats = np.round(np.arange(0, math.ceil(samples / period), every) * period).astype(int)
    return beats[beats < samples]


def measured_bpm(audio: np.ndarray, bpm: float, beats: int, hop: int = 64, frame: int = 512) -> float:
    """Tempo (BPM) from the autocorrelation peak of a spectral-flux onset envelope near the lag
    of ``beats`` beats at ``bpm`` (+-3 %), refined by parabolic interpolation."""
    mono = audio.astype(np.float64).mean(axis=0)
    count = (len(mono) - frame) // hop + 1
    frames = mono[np.arange(frame)[None, :] + hop * np.arange(count)[:, None]] * np.hanning(frame)
    magnitude = np.log1p(1000.0 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(magnitude, axis=0), 0.0).sum(axis=1)
    flux -= flux.mean()
    size = 1 << (2 * len(flux)).bit_length()
    spectrum = np.fft.rfft(flux, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[: len(flux)]
    lag = beats * 60.0 * SR / bpm / hop
    low, high = int(lag * 0.97), int(lag * 1.03) + 1
    k = low + int(np.argmax(acf[low:high]))
    a, b, c = acf[k - 1], acf[k], acf[k + 1]
    peak = k + 0.5 * (a - c) / (a - 2.0 * b + c)
    return beats * 60.0 * SR / (peak * hop)


def kick_onsets(kick: np.ndarray, expected: np.ndarray, radius: int = 320) -> np.ndarray:
    """First sample near each expected onset where the kick's slope jumps above 5 % of the
    window's largest: the start of the click that opens every kick."""
    slope = np.abs(np.diff(kick.astype(np.float64), prepend=0.0))
    found = []
    for position in expected:
        low = max(0, position - radius)
        window = slope[low:position + radius]
        found.append(low + int(np.argmax(window > 0.05 * window.max())))
    return np.array(found)


def key_ranking(audio: np.ndarray) -> list:
    """The 24 keys, best first, by Pearson correlation of a 65-1000 Hz chromagram (16384-sample
    frames, each normalized to its maximum, then averaged) with the rotated KK profiles."""
    frame = 16384
    mono = audio.astype(np.float64).mean(axis=0)
    frames = mono[: len(mono) // frame * frame].reshape(-1, frame) * np.hanning(frame)
    magnitude = np.abs(np.fft.rfft(frames, axis=1))
    freqs = np.fft.rfftfreq(frame, 1.0 / SR)
    band = (freqs >= 65.0) & (freqs <= 1000.0)
    midi = 69.0 + 12.0 * np.log2(freqs[band] / 440.0)
    nearest = np.round(midi)
    weights = np.exp(-0.5 * ((midi - nearest) / 0.25) ** 2)
    fold = np.zeros((band.sum(), 12))
    fold[np.arange(band.sum()), nearest.astype(int) % 12] = weights
    chroma = magnitude[:, band] @ fold
    profile = (chroma / chroma.max(axis=1, keepdims=True)).mean(axis=0)
    scores = [
        (np.corrcoef(np.roll(template, tonic), profile)[0, 1], Key(tonic, mode).name)
        for template, mode in ((KK_MAJOR, "major"), (KK_MINOR, "minor"))
        for tonic in range(12)
    ]
    return [name for _, name in sorted(scores, reverse=True)]


# ---------------------------------------------------------------- public surface


def test_public_names_are_pinned():
    assert generation.__all__ == [
        "MusicGenerationEngine", "GenerationResult", "PromptSpec", "parse_prompt", "SongSpec", "GENRES", "MOODS",
    ]
    for name in generation.__all__:
        assert getattr(generation, name) is not None


def test_import_is_light():
    code = (
        "import sys, services.generation as g; g.parse_prompt('house at 124 bpm');"
        "heavy = [m for m in ('torch', 'transformers', 'scipy', 'numpy') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- prompt parsing


@pytest.mark.parametrize(
    "prompt, bpm",
    [
        ("upbeat electronic dance music at 140 BPM", 140.0),
        ("140bpm trap", 140.0),
        ("lofi at 92.5 bpm", 92.5),
        ("house 124-bpm groove", 124.0),
        ("120 beats per minute", 120.0),
        ("tempo: 96, chill", 96.0),
        ("BPM 128 techno", 128.0),
        ("tempo of 75", 75.0),
        ("at 90 bpm, then 120 bpm", 90.0),
        ("the 1990s sound", None),
        ("track 2 of 3", None),
        ("no tempo stated", None),
    ],
)
def test_parse_tempo(prompt, bpm):
    assert parse_prompt(prompt).bpm == bpm


@pytest.mark.parametrize(
    "prompt, key, mode",
    [
        ("dark techno in D minor", "D minor", "minor"),
        ("F# major groove", "F# major", "major"),
        ("Bb minor ballad", "Bb minor", "minor"),
        ("happy song in A", "A major", "major"),
        ("waltz in E flat major", "Eb major", "major"),
        ("drum and bass in C sharp minor", "C# minor", "minor"),
        ("rock in Am", "A minor", "minor"),
        ("reggae in the key of g", "G major", "major"),
        ("A# minor", "Bb minor", "minor"),
        ("Gb major", "F# major", "major"),
        ("D minor, later E major", "D minor", "minor"),
        ("Cmaj7 chords", None, None),
        ("a sad song in a minor key", None, "minor"),
        ("ambient in major", None, "major"),
        ("music in a dark room", None, None),
        ("I am happy", None, None),
    ],
)
def test_parse_key(prompt, key, mode):
    spec = parse_prompt(prompt)
    assert (spec.key, spec.mode) == (key, mode)
    assert spec.tonic == (None if key is None else parse_key(key).tonic)


@pytest.mark.parametrize(
    "prompt, genre",
    [
        ("upbeat electronic dance music", "edm"),
        ("deep house", "house"),
        ("dark techno", "techno"),
        ("chill trap beat", "trap"),
        ("hip-hop instrumental", "hip hop"),
        ("boom bap", "hip hop"),
        ("drum & bass roller", "drum and bass"),
        ("liquid dnb", "drum and bass"),
        ("classic rock anthem", "rock"),
        ("roots reggae", "reggae"),
        ("lofi hip hop to study to", "lofi"),
        ("lo-fi beats", "lofi"),
        ("ambient soundscape", "ambient"),
        ("a viennese waltz", "waltz"),
        ("smooth jazz", "jazz"),
        ("funky bassline", "funk"),
        ("dubstep drop", "dubstep"),
        ("dub plate", "reggae"),
        ("synthwave drive", "synthwave"),
        ("disco fever", "disco"),
        ("uplifting trance", "trance"),
        ("a pop song", "pop"),
        ("dancehall", None),
        ("an orchestral piece", None),
    ],
)
def test_parse_genre(prompt, genre):
    assert parse_prompt(prompt).genre == genre


@pytest.mark.parametrize(
    "prompt, moods",
    [
        ("dark and energetic", ("dark", "energetic")),
        ("a happy, upbeat tune", ("happy", "upbeat")),
        ("sad piano", ("sad",)),
        ("melancholic and calm", ("sad", "chill")),
        ("laid-back vibes", ("chill",)),
        ("aggressive hard techno", ("energetic",)),
        ("chillhop", ()),
        ("a neutral prompt", ()),
    ],
)
def test_parse_moods(prompt, moods):
    spec = parse_prompt(prompt)
    assert spec.moods == moods
    assert spec.mood == (moods[0] if moods else None)


@pytest.mark.parametrize(
    "prompt, beats", [("a march in 4/4", 4), ("jazz in 3/4 time", 3), ("6/8 jig", None), ("13/4", None)]
)
def test_parse_time_signature(prompt, beats):
    assert parse_prompt(prompt).beats_per_bar == beats


def test_prompt_spec_to_dict_is_json():
    data = parse_prompt("sad lofi in C minor at 80 bpm").to_dict()
    assert json.loads(json.dumps(data)) == {
        "text": "sad lofi in C minor at 80 bpm", "bpm": 80.0, "key": "C minor", "mode": "minor",
        "beats_per_bar": None, "genre": "lofi", "mood": "sad", "moods": ["sad"],
    }


@pytest.mark.parametrize("value", [None, 140, b"house"])
def test_parse_prompt_rejects_non_text(value):
    with pytest.raises(TypeError):
        parse_prompt(value)


# ---------------------------------------------------------------- music theory


@pytest.mark.parametrize(
    "key, numeral, sevenths, name, tones",
    [
        ("C major", "I", False, "C", (0, 4, 7)),
        ("C major", "vii", False, "Bdim", (11, 2, 5)),
        ("A minor", "V", False, "E", (4, 8, 11)),  # harmonic minor's leading tone G#
        ("A minor", "VII", False, "G", (7, 11, 2)),
        ("D minor", "VI", False, "Bb", (10, 2, 5)),
        ("F# major", "IV", False, "B", (11, 3, 6)),
        ("C major", "ii", True, "Dm7", (2, 5, 9, 0)),
        ("C major", "V", True, "G7", (7, 11, 2, 5)),
        ("C major", "IV", True, "Fmaj7", (5, 9, 0, 4)),
        ("C major", "I", True, "Cadd9", (0, 4, 7, 2)),
        ("A minor", "i", True, "Am(add9)", (9, 0, 4, 11)),
        ("Eb major", "vi", False, "Cm", (0, 3, 7)),
    ],
)
def test_diatonic_chords(key, numeral, sevenths, name, tones):
    chord = diatonic_chord(parse_key(key), numeral, sevenths)
    assert (chord.name, chord.tones) == (name, tones)


@pytest.mark.parametrize(
    "key, numeral", [("C major", "II"), ("C major", "VI"), ("A minor", "IV"), ("A minor", "iii"), ("C major", "VIII")]
)
def test_diatonic_chord_refuses_a_wrong_numeral(key, numeral):
    with pytest.raises(ValueError):
        diatonic_chord(parse_key(key), numeral)


@pytest.mark.parametrize(
    "text, tonic, mode",
    [("C", 0, "major"), ("c minor", 0, "minor"), ("Am", 9, "minor"), ("Bb", 10, "major"), ("E flat minor", 3, "minor"),
     ("B#", 0, "major"), ("Cb major", 11, "major"), ("F-sharp minor", 6, "minor")],
)
def test_parse_key_names(text, tonic, mode):
    assert parse_key(text) == Key(tonic, mode)


@pytest.mark.parametrize("text", ["H major", "", "C minor major", "am"])
def test_parse_key_refuses_nonsense(text):
    with pytest.raises(ValueError):
        parse_key(text)


def test_voice_chord_stays_in_range_and_moves_smoothly():
    key = parse_key("C major")
    previous = None
    for numeral in "I vi IV V I".split():
        notes = voice_chord(diatonic_chord(key, numeral), 52, 76, previous)
        assert 52 <= min(notes) and max(notes) <= 76
        assert sorted(n % 12 for n in notes) == sorted(diatonic_chord(key, numeral).tones)
        if previous is not None:  # common-practice voice leading: no voice leaps more than a fourth
            assert max(abs(a - b) for a, b in zip(sorted(notes), sorted(previous))) <= 5
        previous = notes


# ---------------------------------------------------------------- genre presets


def test_every_parsed_genre_and_mood_has_a_preset():
    assert set(GENRES) == set(STYLES)
    assert set(MOODS) == set(MOOD_EFFECTS)


@pytest.mark.parametrize("genre", sorted(STYLES))
def test_style_tables_are_well_formed(genre):
    style = STYLES[genre]
    steps = 4 * style.beats_per_bar
    low, high = style.bpm_range
    assert MIN_BPM <= low < high <= MAX_BPM
    for patterns in style.drums.values():
        assert all(len(p) == steps and set(p) <= set("Xxort.") for p in patterns)
    for pattern in style.bass:
        assert len(pattern) == steps and set(pattern) <= set("R53O7LA-.") and pattern[0] != "-"
    for pattern in style.chords:
        assert len(pattern) == steps and set(pattern) <= set("Xx-.") and pattern[0] != "-"
    for pattern in style.bass + style.chords:
        assert ".-" not in pattern  # a hold must follow a note
    assert {style.bass_voice, style.chord_voice, style.melody_voice} <= set(VOICES)
    assert style.drum_kit in KITS
    for mode, progressions in (("major", style.major), ("minor", style.minor)):
        for progression in progressions:
            numerals = progression.split()
            assert numerals[0] in ("I", "i")  # every loop states the key at once
            for numeral in numerals:
                diatonic_chord(Key(0, mode), numeral, style.sevenths)  # raises if not diatonic


@pytest.mark.parametrize(
    "step, swing, unit, beat",
    [
        (0, 1 / 3, 16, 0.0), (1, 0.0, 16, 0.25), (1, 1 / 3, 16, 1 / 3), (2, 1 / 3, 16, 0.5),
        (3, 0.2, 16, 0.8), (2, 1 / 3, 8, 2 / 3), (4, 1 / 3, 8, 1.0), (6, 1 / 3, 8, 5 / 3), (1, 1 / 3, 8, 1 / 3),
    ],
)
def test_swing_moves_offbeats_only(step, swing, unit, beat):
    assert swing_position(step, swing, unit) == pytest.approx(beat, abs=1e-12)


@pytest.mark.parametrize(
    "pattern, steps, fitted",
    [("X...x...X...", 16, "X...x...X...X..."), ("X...x...X...x...", 12, "X...x...X..."), ("R---", 8, "R---R---")],
)
def test_fit_pattern(pattern, steps, fitted):
    assert fit_pattern(pattern, steps) == fitted


# ---------------------------------------------------------------- resolution (no rendering)


@pytest.mark.parametrize("genre", sorted(STYLES))
def test_unstated_tempo_falls_in_the_genre_range(genre):
    backend = ProceduralBackend(SR)
    low, high = STYLES[genre].bpm_range
    for seed in range(8):
        song = backend.resolve(parse_prompt(genre), 8.0, seed)
        assert low <= song.bpm <= high and song.bpm == int(song.bpm)
        assert song.genre == genre and song.time_signature == STYLES[genre].time_signature


@pytest.mark.parametrize("mood, mode", [("dark", "minor"), ("sad", "minor"), ("happy", "major"), ("upbeat", "major")])
def test_mood_sets_the_mode_when_no_key_is_stated(mood, mode):
    backend = ProceduralBackend(SR)
    for seed in range(8):
        assert backend.resolve(parse_prompt(f"{mood} trap"), 8.0, seed).mode == mode
    # a stated key wins over the mood
    assert backend.resolve(parse_prompt(f"{mood} trap in E major"), 8.0, 0).key == "E major"
    assert backend.resolve(parse_prompt(f"{mood} trap in E minor"), 8.0, 0).key == "E minor"


def test_energetic_is_faster_than_chill_within_the_genre():
    backend = ProceduralBackend(SR)
    fast = [backend.resolve(parse_prompt("energetic rock"), 8.0, seed).bpm for seed in range(10)]
    slow = [backend.resolve(parse_prompt("chill rock"), 8.0, seed).bpm for seed in range(10)]
    assert all(f >= s for f, s in zip(fast, slow)) and np.mean(fast) > np.mean(slow) + 10


def test_prompt_without_genre_uses_pop_and_stated_meter_wins():
    song = ProceduralBackend(SR).resolve(parse_prompt("something nice in 3/4"), 8.0, 1)
    assert song.genre == "pop" and song.beats_per_bar == 3 and song.time_signature == "3/4"


# ---------------------------------------------------------------- rendered audio: ground truth


@pytest.mark.parametrize("genre", sorted(STYLES))
def test_every_genre_renders_clean_stereo_at_exactly_the_stated_tempo(genre):
    low, high = STYLES[genre].bpm_range
    bpm = round((low + high) / 2 + 0.37, 2)  # a non-integer tempo: samples per beat is fractional
    result = render(f"{genre} at {bpm} bpm", duration=10.0, seed=11)
    audio = result.audio
    assert audio.shape == (2, 10 * SR) and audio.dtype == np.float32
    assert np.isfinite(audio).all()
    assert 0.5 < np.abs(audio).max() <= 0.95  # limited below the 0.99 ceiling, not silent
    assert audio[:, 0].tolist() == [0.0, 0.0] and audio[:, -1].tolist() == [0.0, 0.0]  # faded ends
    assert not np.allclose(audio[0], audio[1])  # panned: really stereo
    assert result.song.bpm == bpm
    two_bars = 2 * result.song.beats_per_bar
    assert measured_bpm(audio, bpm, two_bars) == pytest.approx(bpm, rel=5e-4)


@pytest.mark.parametrize(
    "genre, bpm", [("house", 123.7), ("techno", 131.13), ("edm", 140.0), ("trance", 138.5), ("disco", 119.99)]
)
def test_four_on_the_floor_kicks_start_exactly_on_the_beat_grid(genre, bpm):
    result = render(f"{genre} at {bpm} bpm", duration=8.0, seed=3, stems=True)
    expected = beat_grid(bpm, 8 * SR)
    assert len(expected) == math.ceil(8.0 * bpm / 60.0)
    assert kick_onsets(result.stems["kick"][0], expected).tolist() == expected.tolist()


def test_waltz_has_three_beats_per_bar():
    result = render("waltz at 96.5 bpm", duration=8.0, seed=2, stems=True)
    assert result.song.time_signature == "3/4"
    bars = beat_grid(96.5, 8 * SR, every=3)
    assert kick_onsets(result.stems["kick"][0], bars).tolist() == bars.tolist()
    kick = np.abs(result.stems["kick"][0])
    for beat in beat_grid(96.5, 8 * SR):
        if beat not in bars:  # beats 2 and 3: no new kick, only the decaying tail
            assert kick[beat:beat + 200].max() < 0.2 * kick[:200].max()


@pytest.mark.parametrize("prompt, beats", [("pop in 3/4 at 100 bpm", 3), ("waltz in 4/4 at 100 bpm", 4)])
def test_a_stated_meter_overrides_the_genre(prompt, beats):
    result = render(prompt, duration=10.0, seed=6, stems=True)
    assert result.song.beats_per_bar == beats
    bars = beat_grid(100.0, 10 * SR, every=beats)
    assert kick_onsets(result.stems["kick"][0], bars).tolist() == bars.tolist()  # a kick opens every bar
    assert measured_bpm(result.audio, 100.0, 2 * beats) == pytest.approx(100.0, rel=5e-4)


def test_swung_genres_delay_the_offbeat_sixteenths():
    result = render("lofi at 80 bpm", duration=8.0, seed=4)
    swing = STYLES["lofi"].swing
    hats = np.array([hit.start for hit in result.score.hits if hit.voice == "hat"])
    fractions = set(np.round(hats % 1.0, 9).tolist())
    late = round(0.75 + 0.25 * swing, 9)  # the fourth 16th of the beat, pushed late
    assert fractions == {0.0, 0.5, late}


KEY_CASES = [
    (genre, Key(tonic, mode).name)
    for index, genre in enumerate(sorted(STYLES))
    for tonic, mode in (((5 * index) % 12, "major"), ((7 * index + 3) % 12, "minor"))
]


def test_rendered_audio_is_in_the_stated_key():
    """36 clips (every genre in a major and a minor key, tonics spread over all 12): a naive
    profile-correlation key finder names the stated key for at least 33, and always ranks it
    among its top 3 (the misses are neighbours: relative or dominant keys)."""
    exact, ranks = 0, {}
    for index, (genre, key) in enumerate(KEY_CASES):
        ranking = key_ranking(render(f"{genre} in {key}", duration=10.0, seed=index).audio)
        ranks[(genre, key)] = ranking.index(key) + 1
        exact += ranking[0] == key
    assert max(ranks.values()) <= 3, ranks
    assert exact >= 33, {case: rank for case, rank in ranks.items() if rank > 1}


def test_chords_and_melody_use_only_the_key_scale():
    for genre, key in KEY_CASES[::3]:
        result = render(f"{genre} in {key}", duration=8.0, seed=1)
        parsed = parse_key(key)
        allowed = set(parsed.scale)
        if parsed.mode == "minor":
            allowed.add((parsed.tonic + 11) % 12)  # harmonic minor's leading tone (the V chord)
        pitches = {note.midi % 12 for note in result.score.notes}
        assert pitches <= allowed, (genre, key, sorted(pitches - allowed))


# ---------------------------------------------------------------- the engine


@pytest.fixture(scope="module")
def engine():
    return MusicGenerationEngine(backend="procedural")


def test_spec_example_call(engine):
    audio, seconds = engine.generate_audio("upbeat electronic dance music at 140 BPM", duration=16.0, seed=7)
    import torch

    assert isinstance(audio, torch.Tensor) and audio.dtype == torch.float32
    assert tuple(audio.shape) == (2, 16 * 32000) and engine.sample_rate == 32000
    assert 0.0 < seconds < 30.0
    spec = engine.last_spec
    assert (spec.bpm, spec.genre, spec.mood, spec.seed) == (140.0, "edm", "upbeat", 7)
    assert spec.mode == "major"  # "upbeat" asks for major when no key is stated


@pytest.mark.parametrize(
    "duration, sample_rate", [(1e-3, 32000), (1 / 3, 32000), (2.5, 44100), (4.99999, 48000), (1.0, 16000)]
)
def test_length_is_exactly_duration_times_sample_rate(duration, sample_rate):
    engine = MusicGenerationEngine(backend="procedural", sample_rate=sample_rate)
    audio, _ = engine.generate_audio("rock", duration=duration, seed=1)
    assert tuple(audio.shape) == (2, round(duration * sample_rate))
    assert engine.get_info()["sample_rate"] == sample_rate


def test_default_duration_is_16_seconds(engine):
    audio, _ = engine.generate_audio("reggae", seed=2)
    assert tuple(audio.shape) == (2, 16 * 32000)


def test_same_seed_same_audio_other_seed_other_audio(engine):
    first, _ = engine.generate_audio("dark techno", duration=3.0, seed=42)
    again, _ = engine.generate_audio("dark techno", duration=3.0, seed=42)
    other, _ = engine.generate_audio("dark techno", duration=3.0, seed=43)
    assert first.numpy().tobytes() == again.numpy().tobytes()
    assert np.abs(first.numpy() - other.numpy()).max() > 0.1


def test_random_seed_is_reported_and_reproduces(engine):
    audio, _ = engine.generate_audio("funk", duration=2.0)
    seed = engine.last_seed
    assert isinstance(seed, int) and engine.get_info()["last_seed"] == seed
    again, _ = engine.generate_audio("funk", duration=2.0, seed=seed)
    assert audio.numpy().tobytes() == again.numpy().tobytes()


def test_generate_reports_what_was_made(engine):
    result = engine.generate("sad lofi in Bb minor at 77.5 bpm", duration=2.0, seed=5)
    assert (result.song.bpm, result.song.key, result.song.genre) == (77.5, "Bb minor", "lofi")
    assert result.prompt_spec.bpm == 77.5 and result.duration == 2.0
    data = json.loads(json.dumps(result.to_dict()))
    assert data["song"]["key"] == "Bb minor" and data["channels"] == 2 and data["seed"] == 5
    assert data["song"]["chords"][0] == "Bbm(add9)"


def test_get_info(engine):
    info = engine.get_info()
    assert {k: info[k] for k in ("backend", "model_name", "sample_rate", "channels", "max_duration_seconds")} == {
        "backend": "procedural", "model_name": "procedural", "sample_rate": 32000, "channels": 2,
        "max_duration_seconds": 300.0,
    }


def test_backend_comes_from_settings(monkeypatch):
    monkeypatch.setenv("DGX_MUSIC_BACKEND", "Procedural")
    monkeypatch.setenv("DGX_MUSIC_MODEL_PATH", "/nowhere")  # used by musicgen only: ignored here
    assert MusicGenerationEngine().backend == "procedural"
    monkeypatch.setenv("DGX_MUSIC_BACKEND", "stable-audio")
    with pytest.raises(GenerationRequestError, match="DGX_MUSIC_BACKEND"):
        MusicGenerationEngine()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"prompt": None}, TypeError),
        ({"prompt": 42}, TypeError),
        ({"prompt": ""}, ValueError),
        ({"prompt": "  \n\t"}, ValueError),
        ({"duration": 0}, ValueError),
        ({"duration": -1.0}, ValueError),
        ({"duration": float("nan")}, ValueError),
        ({"duration": float("inf")}, ValueError),
        ({"duration": 300.001}, ValueError),
        ({"duration": 1e-6}, ValueError),  # less than one sample
        ({"duration": "16"}, TypeError),
        ({"duration": True}, TypeError),
        ({"duration": None}, TypeError),
        ({"seed": -1}, ValueError),
        ({"seed": 2**63}, ValueError),
        ({"seed": 1.5}, TypeError),
        ({"seed": "7"}, TypeError),
        ({"seed": True}, TypeError),
        ({"prompt": "house at 12 bpm"}, ValueError),
        ({"prompt": "house at 400 bpm"}, ValueError),
    ],
)
@pytest.mark.parametrize("method", ["validate_request", "generate_audio"])
def test_invalid_requests(engine, kwargs, error, method):
    call = {"prompt": "house", "duration": 1.0, "seed": 1, **kwargs}
    with pytest.raises(error) as info:
        getattr(engine, method)(**call)
    if error is ValueError:
        assert isinstance(info.value, GenerationRequestError)
        bad = next(iter(kwargs.values()))
        assert repr(bad) in str(info.value) or "bpm" in str(bad)


def test_validate_request_returns_the_parsed_prompt():
    fresh = MusicGenerationEngine(backend="procedural")
    spec = fresh.validate_request("  dark techno in D minor at 128 bpm ", duration=30.0, seed=3)
    assert (spec.text, spec.bpm, spec.key, spec.genre) == ("dark techno in D minor at 128 bpm", 128.0, "D minor", "techno")
    assert fresh.last_result is None and fresh.last_seed is None  # nothing was generated


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"backend": "magenta"}, ValueError),
        ({"backend": 1}, TypeError),
        ({"sample_rate": 8000}, ValueError),
        ({"sample_rate": "32000"}, TypeError),
        ({"sample_rate": 32000.5}, ValueError),
        ({"model_path": "/models/musicgen-small"}, ValueError),
        ({"model_path": 3}, TypeError),
    ],
)
def test_invalid_engine_arguments(kwargs, error):
    with pytest.raises(error):
        MusicGenerationEngine(**{"backend": "procedural", **kwargs})


@pytest.mark.slow
def test_five_minutes_render(engine):
    audio, _ = engine.generate_audio("trance", duration=300.0, seed=9)
    array = audio.numpy()
    assert array.shape == (2, 300 * 32000) and np.isfinite(array).all()
    assert 0.5 < np.abs(array).max() <= 0.95
    # the last 20 s are still on the grid: no drift over five minutes
    assert measured_bpm(array[:, -20 * SR:], engine.last_spec.bpm, 8) == pytest.approx(engine.last_spec.bpm, rel=5e-4)
