"""Genre presets of the procedural backend: tempo range, meter, grooves, instruments, harmony.

Patterns are written one bar per string on a 16th-note grid (16 steps in 4/4, 12 in 3/4);
a tuple of bars repeats in turn.

- drums: ``X`` accent, ``x`` normal, ``o`` ghost, ``r`` a 32nd-note roll (2 hits), ``t`` a
  triplet roll (3 hits), ``.`` silence;
- bass: ``R`` chord root, ``5`` fifth, ``O`` octave, ``3`` third, ``7`` seventh, ``L`` fifth
  below, ``A`` approach (the scale step below the next chord's root), ``-`` hold, ``.`` rest;
- chords: ``X`` accented or ``x`` normal hit of the whole chord, ``-`` hold, ``.`` rest.

Progressions are roman numerals, one chord per ``chord_bars`` bars; every progression
starts on the tonic so the key is stated at once. ``swing`` delays the off-beat of each
pair of ``swing_unit`` notes (16 = 16ths, 8 = 8ths) by that fraction of the pair's first
note: 1/3 gives a triplet feel. Beats themselves never move, so the tempo stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Style", "STYLES", "DEFAULT_GENRE", "MOOD_EFFECTS", "MoodEffect"]

DEFAULT_GENRE = "pop"

_FOUR = "X...X...X...X..."
_BACKBEAT = "....X.......X..."
_EIGHTHS = "x.x.x.x.x.x.x.x."
_OFFBEAT_OPEN = "..X...X...X...X."


@dataclass(frozen=True)
class Style:
    """One genre's parameters (see the module docstring for the pattern alphabets)."""

    name: str
    bpm_range: tuple
    drum_kit: str
    drums: dict
    bass: tuple
    bass_voice: str
    chords: tuple
    chord_voice: str
    melody_voice: str
    melody_density: float
    major: tuple
    minor: tuple
    minor_weight: float
    beats_per_bar: int = 4
    melody_grid: int = 2
    sevenths: bool = False
    chord_bars: int = 1
    swing: float = 0.0
    swing_unit: int = 16
    sidechain: float = 0.0
    reverb: float = 0.15
    reverb_seconds: float = 1.2
    brightness: float = 0.6
    fills: bool = True
    crash: bool = False
    crackle: bool = False
    levels: dict = field(default_factory=dict)

    @property
    def time_signature(self) -> str:
        return f"{self.beats_per_bar}/4"


@dataclass(frozen=True)
class MoodEffect:
    """How a mood steers a song: preferred ``mode`` (or None), ``energy`` in [0, 1] (where
    the tempo falls in the genre's range), ``brightness`` in [0, 1] (timbre)."""

    mode: object
    energy: float
    brightness: float


MOOD_EFFECTS = {
    "dark": MoodEffect("minor", 0.55, 0.3),
    "sad": MoodEffect("minor", 0.2, 0.4),
    "happy": MoodEffect("major", 0.6, 0.75),
    "upbeat": MoodEffect("major", 0.8, 0.7),
    "chill": MoodEffect(None, 0.25, 0.45),
    "energetic": MoodEffect(None, 0.9, 0.8),
}

STYLES = {
    style.name: style
    for style in (
        Style(
            "pop", (100, 124), "electronic",
            {"kick": ("X.....x.X.......", "X.....x.X.x....."), "snare": (_BACKBEAT,), "hat": (_EIGHTHS,)},
            ("R--RR-.RR--R5-O-",), "electric_bass",
            ("X-----X---X-----",), "piano",
            "pluck", 0.45,
            ("I V vi IV", "I vi IV V", "I IV vi V"), ("i VI VII i", "i iv VI V", "i VI iv V"),
            0.3, brightness=0.65, reverb=0.2, crash=True,
        ),
        Style(
            "edm", (124, 130), "electronic",
            {"kick": (_FOUR,), "clap": (_BACKBEAT,), "ohat": (_OFFBEAT_OPEN,), "hat": ("o..oo..oo..oo..o",)},
            ("..R-..R-..R-..R-",), "synth_bass",
            ("X---------------",), "supersaw",
            "pluck", 0.55,
            ("I V vi IV", "I vi IV V"), ("i VI VII i", "i VII VI V", "i iv VI V"),
            0.5, sidechain=0.6, reverb=0.25, reverb_seconds=1.6, brightness=0.75, crash=True,
        ),
        Style(
            "house", (120, 126), "electronic",
            {"kick": (_FOUR,), "clap": (_BACKBEAT,), "ohat": (_OFFBEAT_OPEN,), "hat": ("x..ox..ox..ox..o",)},
            ("..R-..R-..R-..O-",), "synth_bass",
            ("..X-.....X-...X.",), "stab",
            "bell", 0.3,
            ("I ii V I", "I IV vi V"), ("i iv V i", "i VI iv v"),
            0.5, sevenths=True, sidechain=0.35, reverb=0.2,
        ),
        Style(
            "techno", (126, 134), "electronic",
            {"kick": (_FOUR,), "clap": ("....x.......x...",), "hat": ("..X...X...X...X.",),
             "ride": ("o.o.o.o.o.o.o.o.",)},
            (".RRR.RRR.RRR.RRR",), "dark_bass",
            ("X-....X-....X-..",), "stab",
            "lead", 0.25,
            ("I IV I V",), ("i i VI VII", "i iv i VII"),
            0.9, chord_bars=2, sidechain=0.3, reverb=0.2, brightness=0.45,
        ),
        Style(
            "trance", (134, 140), "electronic",
            {"kick": (_FOUR,), "clap": (_BACKBEAT,), "ohat": (_OFFBEAT_OPEN,), "hat": (".o.o.o.o.o.o.o.o",)},
            (".RRR.RRR.RRR.RRR",), "synth_bass",
            ("X---------------",), "supersaw",
            "pluck", 0.6,
            ("I V vi IV", "I IV I V"), ("i VI VII i", "i VII VI V"),
            0.75, melody_grid=1, sidechain=0.55, reverb=0.35, reverb_seconds=2.0, brightness=0.75,
            crash=True,
        ),
        Style(
            "trap", (130, 150), "808",
            {"kick": ("X......X..X.....", "X.....X...X..X.."), "clap": ("........X.......",),
             "hat": (_EIGHTHS, "x.x.x.x.x.x.rrrr", "x.x.xxx.x.x.x.x.", "x.x.x.x.x.t.t.rr")},
            ("R---------R-----", "R-------R---5---"), "808",
            ("X---------------",), "pad",
            "bell", 0.35,
            ("I vi IV V",), ("i VI i VII", "i iv VI V"),
            0.9, chord_bars=2, reverb=0.25, brightness=0.5, fills=False,
            levels={"chords": 0.35},
        ),
        Style(
            "hip hop", (84, 96), "acoustic",
            {"kick": ("X.....X...X.....", "X.......X.X....."), "snare": (_BACKBEAT,),
             "hat": ("x.xox.x.x.xox.x.",)},
            ("R-----R-..R-----",), "electric_bass",
            ("X-------X-------",), "epiano",
            "flute", 0.3,
            ("I ii V I", "I IV ii V"), ("i iv V i", "i VI iv v"),
            0.6, sevenths=True, swing=0.22, reverb=0.15,
        ),
        Style(
            "lofi", (70, 88), "lofi",
            {"kick": ("X.......X.X.....", "X.........X....."), "snare": ("....x.......x...",),
             "hat": ("x.xox.x.x.xox.x.",)},
            ("R-------R---5---",), "electric_bass",
            ("X-------X-------",), "epiano",
            "bell", 0.3,
            ("I ii V I", "I IV ii V"), ("i iv V i", "i VI iv V"),
            0.5, sevenths=True, swing=0.28, reverb=0.25, reverb_seconds=1.5, brightness=0.35,
            fills=False, crackle=True,
        ),
        Style(
            "drum and bass", (170, 176), "electronic",
            {"kick": ("X.........X.....", "X.........X..X.."), "snare": ("....X..o.o..X...", "....X.......X..o"),
             "hat": (_EIGHTHS,)},
            ("R-----------R-5-",), "reese",
            ("X---------------",), "pad",
            "bell", 0.3,
            ("I vi IV V", "I IV I V"), ("i VI VII i", "i iv VI V"),
            0.75, chord_bars=2, reverb=0.3, crash=True,
        ),
        Style(
            "dubstep", (138, 142), "electronic",
            {"kick": ("X.........X.....", "X.....X...X....."), "snare": ("........X.......",),
             "hat": (_EIGHTHS,)},
            ("R-------R---R-R-",), "wobble",
            ("X---------------",), "pad",
            "bell", 0.25,
            ("I IV vi V",), ("i VI iv V", "i i VI VII"),
            0.9, chord_bars=2, reverb=0.25, brightness=0.55, crash=True,
        ),
        Style(
            "rock", (100, 140), "acoustic",
            {"kick": ("X.......X.X.....",), "snare": (_BACKBEAT,), "hat": (_EIGHTHS,)},
            ("R-R-R-R-R-R-R-R-",), "electric_bass",
            ("X-X-X-X-X-X-X-X-",), "guitar",
            "lead", 0.4,
            ("I IV V IV", "I V vi IV", "I IV I V"), ("i VI VII i", "i VII VI V", "i iv VII i"),
            0.4, reverb=0.15, brightness=0.7, crash=True,
        ),
        Style(
            "reggae", (70, 90), "acoustic",
            {"kick": ("........X.......",), "rim": ("........X.......",), "hat": (_EIGHTHS,)},
            ("R--.5-R-..R-3-..",), "electric_bass",
            ("..x...x...x...x.",), "organ",
            "flute", 0.3,
            ("I IV I V", "I V vi IV"), ("i iv i v", "i VII VI V"),
            0.35, swing=0.12, reverb=0.3, reverb_seconds=1.6, brightness=0.55, fills=False,
        ),
        Style(
            "waltz", (84, 108), "brush",
            {"kick": ("X...........",), "snare": ("....o...o...",)},
            ("R---........", "L---........"), "upright",
            ("....X---X---",), "piano",
            "strings", 0.45,
            ("I IV V I", "I vi IV V", "I IV I V"), ("i iv V i", "i VI iv V"),
            0.4, beats_per_bar=3, reverb=0.3, reverb_seconds=1.8, brightness=0.55, fills=False,
        ),
        Style(
            "jazz", (110, 170), "brush",
            {"ride": ("X...X.x.X...X.x.",), "hat": ("....x.......x...",), "kick": ("o...o...o...o...",),
             "snare": ("..........o.....", ".......o.....o..")},
            ("R---3---5---A---", "R---5---O---A---"), "upright",
            ("X-----X---------",), "epiano",
            "flute", 0.5,
            ("I ii V I", "I vi ii V"), ("i iv V i", "i VI ii V"),
            0.35, sevenths=True, swing=1.0 / 3.0, swing_unit=8, reverb=0.2, fills=False,
        ),
        Style(
            "funk", (96, 112), "acoustic",
            {"kick": ("X.....X.X..X....",), "snare": ("....X..o.o..X..o",), "hat": ("xoxoxoxoxoxoxoxo",)},
            ("R..RO..R.R.5R.O.",), "electric_bass",
            ("..X..X....X..X..",), "stab",
            "lead", 0.35,
            ("I IV I IV", "I ii V I"), ("i iv i iv", "i VII iv i"),
            0.5, sevenths=True, swing=0.1, reverb=0.15,
        ),
        Style(
            "disco", (115, 125), "electronic",
            {"kick": (_FOUR,), "snare": (_BACKBEAT,), "ohat": (_OFFBEAT_OPEN,), "hat": ("x..xx..xx..xx..x",)},
            ("R-O-R-O-R-O-R-O-",), "electric_bass",
            ("X-------X-------",), "strings",
            "pluck", 0.45,
            ("I IV vi V", "I IV ii V"), ("i iv V i", "i VI VII i"),
            0.35, sidechain=0.2, reverb=0.25, brightness=0.75, crash=True,
        ),
        Style(
            "synthwave", (84, 118), "electronic",
            {"kick": ("X.......X.......",), "snare": (_BACKBEAT,), "hat": (_EIGHTHS,)},
            ("R-R-R-R-R-R-R-R-",), "synth_bass",
            ("X---------------",), "pad",
            "lead", 0.4,
            ("I V vi IV", "I IV I V"), ("i VI VII i", "i VII VI V"),
            0.6, reverb=0.35, reverb_seconds=2.0, brightness=0.65, crash=True,
        ),
        Style(
            "ambient", (60, 80), "soft",
            {"kick": ("o...............",), "hat": ("..o...o...o...o.",)},
            ("R---------------",), "sub_bass",
            ("X---------------",), "pad",
            "bell", 0.18,
            ("I IV I V", "I vi IV V"), ("i VI i VII", "i iv VI i"),
            0.5, melody_grid=4, chord_bars=2, reverb=0.5, reverb_seconds=3.0, brightness=0.4,
            fills=False, levels={"drums": 0.35, "chords": 0.75},
        ),
    )
}
