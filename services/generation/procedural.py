"""The procedural backend: a prompt becomes a resolved :class:`SongSpec`, then rendered audio.

Resolution fills what the prompt leaves open from the genre's preset, the moods and a
seeded random generator: tempo (integer BPM inside the genre's range, higher for
energetic moods), key (mood or genre picks the mode, the seed the tonic), progression.
What the prompt states is kept exactly: beat ``k`` starts at sample
``round(k * 60 * sample_rate / bpm)``, and every chord and melody note is in the key.

The same seed gives the same audio, sample for sample. Separate random streams drive the
resolution, the arrangement, the melody, the drum noise and the mix, so that a change in
one does not reshuffle the others.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from ..audio._arrays import validate_sample_rate
from ..errors import GenerationRequestError
from .drums import KITS, render_kit
from .mixing import crackle, master, pan_gains, place, reverb_impulse, sidechain_envelope
from .prompt import PromptSpec
from .sequencer import Score, arrange
from .styles import DEFAULT_GENRE, MOOD_EFFECTS, STYLES
from .synth import VOICES, render_note
from .theory import Key, diatonic_chord, parse_key

__all__ = ["SongSpec", "Rendering", "ProceduralBackend", "MIN_BPM", "MAX_BPM", "MAX_DURATION"]

MIN_BPM = 30.0
MAX_BPM = 300.0
MAX_DURATION = 300.0
"""Longest render, seconds."""
MIN_SAMPLE_RATE = 16_000

_PART_LEVELS = {"drums": 1.0, "bass": 0.6, "chords": 0.2, "melody": 0.4}
_DRUM_LEVELS = {"kick": 1.0, "snare": 0.7, "clap": 0.6, "rim": 0.45, "hat": 0.22, "ohat": 0.2,
                "ride": 0.2, "crash": 0.3}
_DRUM_PANS = {"kick": 0.0, "snare": 0.05, "clap": -0.05, "rim": 0.2, "hat": 0.3, "ohat": 0.35,
              "ride": -0.3, "crash": -0.25}
_STREAMS = ("resolve", "arrange", "melody", "drums", "mix")


@dataclass(frozen=True)
class SongSpec:
    """The resolved parameters of one procedural song.

    ``bpm`` in quarter-note beats per minute; ``key`` like "D minor" (``tonic`` its pitch
    class, 0 = C); ``beats_per_bar`` quarter notes per bar; ``swing`` in [0, 1/3];
    ``brightness`` in [0, 1]; ``progression`` the roman numerals of the main loop and
    ``chords`` their names; ``duration`` in seconds; ``sample_rate`` in Hz.
    """

    prompt: str
    genre: str
    moods: tuple
    bpm: float
    key: str
    tonic: int
    mode: str
    beats_per_bar: int
    swing: float
    brightness: float
    progression: str
    alternate: str
    chords: tuple
    seed: int
    duration: float
    sample_rate: int

    @property
    def mood(self) -> Optional[str]:
        return self.moods[0] if self.moods else None

    @property
    def time_signature(self) -> str:
        return f"{self.beats_per_bar}/4"

    @property
    def samples(self) -> int:
        """Length of the audio in samples: round(duration * sample_rate)."""
        return int(round(self.duration * self.sample_rate))

    def beat_samples(self) -> np.ndarray:
        """Sample index of every beat that starts inside the audio (beat k at k * 60 / bpm s)."""
        step = 60.0 * self.sample_rate / self.bpm
        count = int(math.ceil(self.samples / step))
        beats = np.round(np.arange(count) * step).astype(np.int64)
        return beats[beats < self.samples]

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(mood=self.mood, time_signature=self.time_signature, moods=list(self.moods),
                    chords=list(self.chords))
        return data


@dataclass(frozen=True)
class Rendering:
    """Rendered audio (2, samples) float32, the :class:`Score`, and dry stems when asked:
    ``stems[name]`` is (2, samples) float32 before the master bus ("kick", "drums" (kick
    included), "bass", "chords", "melody")."""

    audio: np.ndarray
    song: SongSpec
    score: Score
    stems: dict = field(default_factory=dict)


class ProceduralBackend:
    """Offline music generator: drums, bass, chords and melody from a prompt (see module doc)."""

    name = "procedural"
    model_name = "procedural"
    model_version = "1.0"
    max_duration = MAX_DURATION
    channels = 2

    def __init__(self, sample_rate: int = 32000):
        rate = validate_sample_rate(sample_rate)
        if rate < MIN_SAMPLE_RATE:
            raise GenerationRequestError(
                f"the procedural backend renders at {MIN_SAMPLE_RATE} Hz or more; got {sample_rate!r}"
            )
        self.sample_rate = rate

    @staticmethod
    def check_prompt(prompt: PromptSpec) -> None:
        """Raise GenerationRequestError when the prompt states a tempo outside 30-300 BPM."""
        if prompt.bpm is not None and not MIN_BPM <= prompt.bpm <= MAX_BPM:
            raise GenerationRequestError(
                f"tempo must be between {MIN_BPM:g} and {MAX_BPM:g} BPM; the prompt says {prompt.bpm!r}"
            )

    def resolve(self, prompt: PromptSpec, duration: float, seed: int) -> SongSpec:
        """Fill in everything ``prompt`` leaves open (deterministic for ``seed``)."""
        rng = _streams(seed)["resolve"]
        genre = prompt.genre or DEFAULT_GENRE
        style = STYLES[genre]
        effects = [MOOD_EFFECTS[mood] for mood in prompt.moods]
        energy = float(np.mean([e.energy for e in effects])) if effects else 0.5
        brightness = style.brightness
        if effects:
            brightness = 0.5 * brightness + 0.5 * float(np.mean([e.brightness for e in effects]))

        self.check_prompt(prompt)
        jitter = rng.normal(0.0, 0.12)
        if prompt.bpm is None:
            low, high = style.bpm_range
            bpm = float(round(low + (high - low) * float(np.clip(energy + jitter, 0.0, 1.0))))
        else:
            bpm = float(prompt.bpm)

        tonic_draw = int(rng.integers(12))
        mode_draw = float(rng.random())
        if prompt.key is not None:
            key = parse_key(prompt.key)
        else:
            mode = prompt.mode or next((e.mode for e in effects if e.mode), None)
            if mode is None:
                mode = "minor" if mode_draw < style.minor_weight else "major"
            key = Key(tonic_draw, mode)

        progressions = style.major if key.mode == "major" else style.minor
        order = rng.permutation(len(progressions))
        progression = progressions[order[0]]
        alternate = progressions[order[1 % len(order)]]
        chords = tuple(diatonic_chord(key, n, style.sevenths).name for n in progression.split())
        return SongSpec(
            prompt=prompt.text,
            genre=genre,
            moods=tuple(prompt.moods),
            bpm=bpm,
            key=key.name,
            tonic=key.tonic,
            mode=key.mode,
            beats_per_bar=prompt.beats_per_bar or style.beats_per_bar,
            swing=style.swing,
            brightness=round(brightness, 3),
            progression=progression,
            alternate=alternate,
            chords=chords,
            seed=int(seed),
            duration=float(duration),
            sample_rate=self.sample_rate,
        )

    def render(self, song: SongSpec, keep_stems: bool = False) -> Rendering:
        """Render ``song`` to stereo float32 audio (2, ``song.samples``), peak <= 0.95."""
        streams = _streams(song.seed)
        style = STYLES[song.genre]
        score = arrange(song, style, streams["arrange"], streams["melody"])
        levels = {**_PART_LEVELS, **style.levels}
        mix, kick, send, kick_starts = _render_drums(song, style, score, levels, streams["drums"], keep_stems)
        stems = {"kick": kick, "drums": mix.copy()} if keep_stems else {}
        duck = None
        if style.sidechain > 0:
            duck = sidechain_envelope(song.samples, kick_starts, song.sample_rate, style.sidechain)
            duck = duck.astype(np.float32)
        for part, send_gain in (("bass", 0.0), ("chords", 1.0), ("melody", 1.2)):
            buffer = _render_part(song, style, score, part, levels[part])
            if duck is not None:  # the melody ducks half as deep
                buffer *= duck if part != "melody" else 1.0 - 0.5 * (1.0 - duck)
            mix += buffer
            if send_gain:
                send += send_gain * buffer
            if keep_stems:
                stems[part] = buffer
            del buffer  # one part at a time: a five-minute stereo buffer is ~80 MB
        send *= style.reverb
        mix_rng = streams["mix"]
        impulse = reverb_impulse(song.sample_rate, style.reverb_seconds, mix_rng) if style.reverb > 0 else None
        if style.crackle:
            mix += 0.25 * crackle(song.samples, song.sample_rate, mix_rng).astype(np.float32)
        audio = master(mix, song.sample_rate, song.brightness, send, impulse)
        return Rendering(audio, song, score, stems)


def _render_drums(song: SongSpec, style, score: Score, levels: dict, rng, keep_stems: bool):
    """Place every drum hit: ``(drums, kick, reverb send, kick start samples)``, stereo float32
    buffers; ``kick`` is ``drums`` itself unless stems are kept (then also added into ``drums``)."""
    samples, per_beat = song.samples, 60.0 * song.sample_rate / song.bpm
    drums = np.zeros((2, samples), dtype=np.float32)
    kick = np.zeros((2, samples), dtype=np.float32) if keep_stems else drums
    send = np.zeros((2, samples), dtype=np.float32)
    used = {hit.voice for hit in score.hits}
    templates = render_kit(KITS[style.drum_kit], song.sample_rate, song.tonic, rng, voices=used)
    kick_starts = []
    for hit in score.hits:
        start = int(round(hit.start * per_beat))
        sound = templates[hit.voice][int(rng.integers(len(templates[hit.voice])))]
        gain = hit.velocity * _DRUM_LEVELS[hit.voice] * levels["drums"]
        left, right = pan_gains(_DRUM_PANS[hit.voice])
        place(kick if hit.voice == "kick" else drums, sound, start, gain * left, gain * right)
        if hit.voice == "kick":
            kick_starts.append(start)
        elif hit.voice in ("snare", "clap"):
            place(send, sound, start, 0.5 * gain * left, 0.5 * gain * right)
    if keep_stems:
        drums += kick
    return drums, kick, send, kick_starts


def _render_part(song: SongSpec, style, score: Score, part: str, level: float) -> np.ndarray:
    """Render the notes of ``part`` ("bass", "chords", "melody") into a stereo float32 buffer;
    notes that recur (same pitch, length, glide) are synthesized once."""
    samples, per_beat = song.samples, 60.0 * song.sample_rate / song.bpm
    buffer = np.zeros((2, samples), dtype=np.float32)
    voice = VOICES[{"bass": style.bass_voice, "chords": style.chord_voice, "melody": style.melody_voice}[part]]
    cache = {}
    for note in score.notes:
        start = int(round(note.start * per_beat))
        if note.part != part or start >= samples:
            continue
        held = max(1, int(round(note.length * per_beat)))
        glide = note.glide_from if voice.glide > 0 else None
        key = (note.midi, held, glide)
        sound = cache.get(key)
        if sound is None:
            sound = render_note(voice, note.midi, held, song.sample_rate, song.brightness, 60.0 / song.bpm, glide)
            cache[key] = sound
        left, right = pan_gains(note.pan)
        place(buffer, sound, start, note.velocity * level * left, note.velocity * level * right)
    return buffer


def _streams(seed: int) -> dict:
    children = np.random.SeedSequence(int(seed)).spawn(len(_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children)}
