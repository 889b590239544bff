"""Note events -> a Standard MIDI File (bytes) at a constant tempo, written with mido."""

from __future__ import annotations

import io
from dataclasses import dataclass

DRUM_CHANNEL = 9
TICKS_PER_BEAT = 960


@dataclass(frozen=True)
class Note:
    """One note: ``start`` and ``duration`` in quarter-note beats, ``pitch`` a MIDI number."""

    channel: int
    start: float
    duration: float
    pitch: int
    velocity: int


def midi_bytes(notes: list[Note], bpm: float, programs: dict[int, int], volumes: dict[int, int] | None = None) -> bytes:
    """Return a type-0 MIDI file playing ``notes`` at ``bpm`` quarter notes per minute.

    ``programs`` maps a channel to its General MIDI program (0-127); the drum channel
    (10, index 9) needs none. The tempo is stored in microseconds per quarter note, an
    integer, so the exact rendered tempo is ``60e6 / round(60e6 / bpm)``: use
    :func:`exact_bpm` for the label.
    """
    import mido

    tempo = round(60e6 / bpm)
    events: list[tuple[int, int, mido.Message]] = []
    for channel, program in sorted(programs.items()):
        events.append((0, 0, mido.Message("program_change", channel=channel, program=program)))
    for channel, volume in sorted((volumes or {}).items()):
        events.append((0, 0, mido.Message("control_change", channel=channel, control=7, value=volume)))
    for note in notes:
        on = max(0, round(note.start * TICKS_PER_BEAT))
        off = max(on + 1, round((note.start + note.duration) * TICKS_PER_BEAT))
        velocity = min(127, max(1, int(note.velocity)))
        events.append((on, 2, mido.Message("note_on", channel=note.channel, note=note.pitch, velocity=velocity)))
        events.append((off, 1, mido.Message("note_off", channel=note.channel, note=note.pitch, velocity=0)))
    events.sort(key=lambda item: (item[0], item[1]))  # note-offs before note-ons at one tick
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=TICKS_PER_BEAT))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def exact_bpm(bpm: float) -> float:
    """The tempo a MIDI file written for ``bpm`` really plays (integer microseconds per beat)."""
    return 60e6 / round(60e6 / bpm)
