"""How a track is delivered: format, destination preset, loop, file name, peaks, and its tags.

:class:`DeliveryOptions` is checked once (the CLI's flags, the API's fields, the stored job
request all go through :meth:`DeliveryOptions.from_request`) so a bad value is refused,
naming the field, before any job is recorded. :func:`track_tags` builds the tags of a file
from the analysis record, preferring the values the renderer knows exactly.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional

from ..errors import AudioValidationError
from .formats import FORMAT_NAMES, MP3_MODES

__all__ = ["DeliveryOptions", "render_file_name", "track_tags"]

_TEMPLATE_FIELDS = ("job_id", "bpm", "key", "camelot", "bars", "preset")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_PEAKS_SAMPLES_PER_PIXEL = 1 << 20


@dataclass(frozen=True)
class DeliveryOptions:
    """``format`` (wav, flac, mp3, opus, ogg), ``preset`` (a destination name or None),
    ``loop_bars`` (N bars or None), ``name_template`` (e.g. ``"{job_id}_{bpm}_{key}"`` or
    None), ``peaks`` (samples per pixel or None), ``mp3_mode`` and ``dither``."""

    format: str = "wav"
    preset: Optional[str] = None
    loop_bars: Optional[int] = None
    name_template: Optional[str] = None
    peaks: Optional[int] = None
    mp3_mode: str = "CBR_320"
    dither: bool = True

    @classmethod
    def from_request(cls, request: Mapping[str, Any], labels: Optional[Mapping[str, str]] = None) -> "DeliveryOptions":
        """Validated options from a mapping (missing keys take the defaults). Errors name the
        field as ``labels`` spells it (the CLI passes its flags: ``{"preset": "--preset"}``)."""
        from .loops import validate_loop_bars
        from .presets import resolve_preset

        labels = labels or {}

        def name(field: str) -> str:
            return labels.get(field, field)

        fmt = request.get("format") or "wav"
        if not isinstance(fmt, str) or fmt.strip().lower().lstrip(".") not in FORMAT_NAMES:
            raise AudioValidationError(f"{name('format')} must be one of {', '.join(FORMAT_NAMES)}; got {fmt!r}")
        preset = request.get("preset")
        if preset is not None:
            preset = resolve_preset(preset, field=name("preset")).name
        loop_bars = request.get("loop_bars")
        if loop_bars is not None:
            loop_bars = validate_loop_bars(loop_bars, name("loop_bars"))
        template = request.get("name_template")
        if template is not None:
            _check_template(template, name("name_template"))
        peaks = request.get("peaks")
        if peaks is not None and (isinstance(peaks, bool) or not isinstance(peaks, int)
                                  or not 1 <= peaks <= MAX_PEAKS_SAMPLES_PER_PIXEL):
            raise AudioValidationError(
                f"{name('peaks')} must be samples per pixel between 1 and {MAX_PEAKS_SAMPLES_PER_PIXEL}; got {peaks!r}"
            )
        mp3_mode = str(request.get("mp3_mode") or "CBR_320").strip().upper()
        if mp3_mode not in MP3_MODES:
            raise AudioValidationError(f"{name('mp3_mode')} must be one of {', '.join(MP3_MODES)}; got {request.get('mp3_mode')!r}")
        dither = request.get("dither", True)
        if not isinstance(dither, bool):
            raise AudioValidationError(f"{name('dither')} must be true or false; got {dither!r}")
        return cls(fmt.strip().lower().lstrip("."), preset, loop_bars, template, peaks, mp3_mode, dither)

    @property
    def extension(self) -> str:
        return f".{self.format}"

    def to_request(self) -> Dict[str, Any]:
        return asdict(self)


def _check_template(template: Any, field: str = "name_template") -> None:
    if not isinstance(template, str) or not template.strip():
        raise AudioValidationError(f"{field} must be a non-empty string; got {template!r}")
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        raise AudioValidationError(f"{field} {template!r} is not a valid template: {exc}") from None
    names = [name for name, _, _ in fields]
    if any(spec or conversion for _, spec, conversion in fields):
        raise AudioValidationError(f"{field} takes plain fields such as {{bpm}}, without ! or :; got {template!r}")
    unknown = [name for name in names if name not in _TEMPLATE_FIELDS]
    if unknown:
        raise AudioValidationError(
            f"{field} may use {', '.join('{' + f + '}' for f in _TEMPLATE_FIELDS)}; got {{{unknown[0]}}}"
        )
    if "/" in template or "\\" in template:
        raise AudioValidationError(f"{field} must not contain a folder separator; got {template!r}")


def render_file_name(template: str, *, job_id: str, bpm: Optional[float], key: Optional[str],
                     bars: Optional[int] = None, preset: Optional[str] = None) -> str:
    """The file name (without extension) for ``template``: safe characters only
    (letters, digits, ``.``, ``_``, ``-``; "F#m" becomes "Fsharpm"), never empty."""
    from .key_names import camelot_code, short_key_name

    short = short_key_name(key)
    values = {
        "job_id": job_id,
        "bpm": "unknown-bpm" if bpm is None else f"{round(bpm):d}bpm",
        "key": (short or "unknown-key").replace("#", "sharp"),
        "camelot": camelot_code(key) or "unknown-key",
        "bars": f"{bars}bars" if bars else "full",
        "preset": preset or "default",
    }
    name = _UNSAFE.sub("_", template.format(**values)).strip("._")
    return name or job_id


def track_tags(
    *,
    prompt: str,
    job_id: str,
    analysis: Mapping[str, Any],
    rendered: Optional[Mapping[str, Any]] = None,
    loop: Any = None,
    seed: Optional[int] = None,
    when: Optional[dt.datetime] = None,
):
    """:class:`~services.audio.tags.TrackTags` for a track: tempo, key and meter from
    ``rendered`` (exact, marked known) when the renderer gave them, else from ``analysis``."""
    from .tags import TrackTags

    when = when or dt.datetime.now(dt.timezone.utc)
    known = bool(rendered) and rendered.get("bpm") is not None
    bpm = rendered["bpm"] if known else analysis.get("bpm")
    key = (rendered.get("key") if known else None) or analysis.get("key")
    beats_per_bar = int(rendered.get("beats_per_bar") or 4) if known else 4
    record = {key_: value for key_, value in analysis.items() if not isinstance(value, (dict, list))}
    record.update({"job_id": job_id, "bpm": bpm, "key": key, "beats_per_bar": beats_per_bar,
                   "tempo_source": "procedural" if known else "estimated"})
    if known:
        record["first_downbeat_seconds"] = rendered.get("first_downbeat_seconds", 0.0)
        record["known_fields"] = ["bpm", "key", "beats_per_bar", "first_downbeat_seconds"]
    if loop is not None:
        record["loop_bars"] = loop.bars
    return TrackTags(
        title=prompt,
        comment=f"dgx-music {job_id}" + ("" if seed is None else f", seed {seed}"),
        date=when.strftime("%Y-%m-%dT%H:%M:%S"),
        bpm=None if bpm is None else float(bpm),
        key=key,
        beats_per_bar=beats_per_bar,
        first_downbeat_seconds=record.get("first_downbeat_seconds"),
        known=known,
        reference=job_id,
        loop=loop,
        record=record,
    )
