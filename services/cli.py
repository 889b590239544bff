"""The ``dgx-music`` command: generate, analyze, normalize, history, show, files, db.

A thin layer over the services: it parses arguments, calls one function, prints a
table or JSON. Expected failures print one line (``dgx-music: error: ...``, naming the
flag the user typed) and exit 1; usage errors exit 2 (argparse); Ctrl-C exits 130; a closed
pipe (``| head``) ends the command quietly with 141. Text from files and prompts is escaped
before it reaches a terminal; read-only commands create no file or folder.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence

from . import __version__

__all__ = ["main", "build_parser"]

PROG = "dgx-music"


# --- output helpers ---------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become null, paths and dates strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (Path, datetime, date)):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _plain(value.item())
    if hasattr(value, "value") and not isinstance(value, (str, int)):  # enums
        return value.value
    return value


def _print_json(value: Any) -> None:
    print(json.dumps(_plain(value), indent=2, sort_keys=False))  # escapes control characters


def _safe(value: Any) -> str:
    """``value`` as text that cannot drive a terminal (control characters escaped)."""
    from ._text import terminal_safe

    return terminal_safe(value)


def _absolute(path: Any) -> str:
    return os.path.abspath(os.fspath(path))


def _fmt(value: Any, spec: str = "", unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:{spec}}{unit}"


def _with_confidence(value: str, confidence: Any) -> str:
    """"140.0 (conf. 0.87)"; the value alone where there is no confidence."""
    if value == "-" or confidence is None:
        return value
    return f"{value} (conf. {confidence:.2f})"


def _print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [[_safe(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


class _Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()

    def update(self, done: int, label: str) -> None:
        if self.enabled:
            width = 24
            filled = int(width * done / max(1, self.total))
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {label[:40]:<40}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 80 + "\r")
            sys.stderr.flush()


def _measured(value: str, confidence: Any) -> str:
    """"124.1 BPM, conf. 0.97"; "none" where the analysis reported nothing."""
    if value == "-":
        return "none"
    return value if confidence is None else f"{value}, conf. {confidence:.2f}"


def _tempo_line(metadata: dict) -> str:
    """"124.0 BPM (conf. 0.87)", or for a tempo the renderer used, "124.0 BPM (rendered;
    measured 124.1 BPM, conf. 0.97)"."""
    measured = metadata.get("measured")
    if metadata.get("rendered") and isinstance(measured, dict):
        heard = _measured(_fmt(measured.get("bpm"), ".1f", " BPM"), measured.get("bpm_confidence"))
        return f"{_fmt(metadata.get('bpm'), '.1f', ' BPM')} (rendered; measured {heard})"
    return _with_confidence(_fmt(metadata.get("bpm"), ".1f", " BPM"), metadata.get("bpm_confidence"))


def _key_line(metadata: dict) -> str:
    """"A minor (conf. 0.66)", or for a key the renderer used, "A minor (rendered; measured
    A minor, conf. 0.71)"."""
    measured = metadata.get("measured")
    if metadata.get("rendered") and isinstance(measured, dict):
        heard = _measured(measured.get("key") or "-", measured.get("key_confidence"))
        return f"{metadata.get('key') or '-'} (rendered; measured {heard})"
    return _with_confidence(metadata.get("key") or "-", metadata.get("key_confidence"))


def _summary_lines(metadata: dict) -> List[str]:
    figures = [
        ("Duration", _fmt(metadata.get("duration_seconds"), ".2f", " s")),
        ("Loudness", _fmt(metadata.get("loudness_lufs"), ".1f", " LUFS")),
        ("True peak", _fmt(metadata.get("true_peak_dbtp"), ".1f", " dBTP")),
        ("Loudness range", _fmt(metadata.get("loudness_range_lu"), ".1f", " LU")),
        ("Tempo", _tempo_line(metadata)),
        ("Key", _key_line(metadata)),
        ("Peak", _fmt(metadata.get("peak_amplitude"), ".3f")),
        ("Dynamic range", _fmt(metadata.get("dynamic_range_db"), ".1f", " dB")),
    ]
    return [f"{label + ':':<16}{_safe(value)}" for label, value in figures]


# --- commands ---------------------------------------------------------------------------------

def _cmd_generate(args: argparse.Namespace) -> int:
    from .pipeline import generate_track

    progress = _Progress(5, enabled=not args.json)
    labels = ["record", "generate", "analyse", "export", "complete"]

    def on_step(label: str) -> None:
        progress.update(labels.index(label) if label in labels else 0, label)

    try:
        delivery = _delivery(args, format=args.format, loop_bars=args.loop_bars, name_template=args.name_template)
        result = generate_track(args.prompt, duration=args.duration, seed=args.seed,
                                bit_depth=args.bit_depth, delivery=delivery, on_step=on_step)
    finally:
        progress.close()
    if args.json:
        _print_json({**result.to_dict(), "file_path": _absolute(result.file_path)})
        return 0
    print(f"{'Generated:':<16}{_safe(result.file_path)}")
    print(f"{'Job:':<16}{result.job_id} (record {result.generation_id})")
    print(f"{'Size:':<16}{result.file_size_bytes / 1024 / 1024:.2f} MB, {result.sample_rate} Hz, {result.channels} ch")
    print(f"{'Generation:':<16}{result.generation_time_seconds:.2f} s")
    for line in _summary_lines(result.metadata):
        print(line)
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .audio import AudioMetadataExtractor

    extractor = AudioMetadataExtractor(extract_bpm=not args.no_bpm, extract_key=not args.no_key)
    progress = _Progress(len(args.files), enabled=not args.json and len(args.files) > 1)
    results, errors = [], []
    for index, name in enumerate(args.files):
        progress.update(index, Path(name).name)
        file = _absolute(name) if args.json else name
        try:
            results.append({"file": file, **extractor.extract_metadata(name, compute_stats=True, bpm_hint=args.bpm_hint)})
        except (OSError, ValueError) as exc:
            errors.append(f"{PROG}: error: {_error_message(exc)}")
            if args.json:
                results.append({"file": file, "error": str(exc)})
    progress.close()
    for line in errors:  # one line per file that could not be analysed
        print(line, file=sys.stderr)
    if args.json:
        _print_json(results)  # always a list, one item per file
    elif results:
        _print_table(
            ["file", "duration", "LUFS", "dBTP", "LRA", "BPM", "BPM conf.", "key", "key conf.", "peak"],
            [[
                item["file"], _fmt(item.get("duration_seconds"), ".2f", " s"),
                _fmt(item.get("loudness_lufs"), ".1f"), _fmt(item.get("true_peak_dbtp"), ".1f"),
                _fmt(item.get("loudness_range_lu"), ".1f"), _fmt(item.get("bpm"), ".1f"),
                _fmt(item.get("bpm_confidence"), ".2f"), item.get("key") or "-",
                _fmt(item.get("key_confidence"), ".2f"), _fmt(item.get("peak_amplitude"), ".3f"),
            ] for item in results],
        )
    return 1 if errors else 0


# The WAV sample format that keeps an input's resolution (lossy input: 24 bits).
_KEEP_RESOLUTION = {
    "PCM_S8": "PCM_16", "PCM_U8": "PCM_16", "PCM_16": "PCM_16", "PCM_24": "PCM_24", "PCM_32": "PCM_32",
    "FLOAT": "FLOAT", "DOUBLE": "FLOAT", "ALAC_16": "PCM_16", "ALAC_20": "PCM_24", "ALAC_24": "PCM_24",
    "ALAC_32": "PCM_32",
}


def _output_bit_depth(requested: Optional[str], input_subtype: str, output: Path) -> str:
    """``--bit-depth``, else the input's resolution as OUT's format holds it (FLAC: 16 or
    24 bits; lossy formats: the codec decides, and the exporter takes PCM_16 as "not set")."""
    if requested:
        return requested
    suffix = output.suffix.lower()
    if suffix in (".mp3", ".opus", ".ogg"):
        return "PCM_16"
    keep = _KEEP_RESOLUTION.get(input_subtype, "PCM_24")
    return "PCM_24" if suffix == ".flac" and keep not in ("PCM_16", "PCM_24") else keep


def _cmd_normalize(args: argparse.Namespace) -> int:
    import numpy as np

    from .audio import AudioExporter, measure_loudness
    from .audio._reader import AudioFile

    source, output = Path(args.input), Path(args.output)
    if output.resolve() == source.resolve():
        raise ValueError("OUT must differ from IN (the original is never overwritten)")
    if os.path.lexists(output) and not args.force:
        raise FileExistsError(errno.EEXIST, "OUT exists (add --force to replace it)", str(output))
    delivery = _delivery(args)
    exporter = AudioExporter(target_lufs=args.target, true_peak_ceiling=args.ceiling)
    with AudioFile(source) as decoded:  # refuses what analyze refuses: not audio, truncated, ...
        rate, subtype = decoded.header.sample_rate, decoded.header.subtype
        data = np.concatenate(list(decoded.blocks(1 << 20)), axis=1)
    bit_depth = _output_bit_depth(args.bit_depth, subtype, output)
    before = measure_loudness(data, rate)
    tags = _normalize_tags(source, data, rate)
    result = exporter.export(data, output, sample_rate=rate, bit_depth=bit_depth,
                             preset=delivery.preset, tags=tags, dither=delivery.dither, mp3_mode=delivery.mp3_mode,
                             peaks_samples_per_pixel=delivery.peaks)
    after = result.loudness  # measured on what was written (decoded, for lossy formats)
    report = {
        "input": _absolute(source), "output": _absolute(result.path), "size_bytes": result.size_bytes,
        "bit_depth": bit_depth, "gain_db": result.gain.gain_db, "reason": result.gain.reason,
        "input_lufs": before.integrated_lufs, "input_true_peak_dbtp": before.true_peak_dbtp,
        "output_lufs": after.integrated_lufs, "output_true_peak_dbtp": after.true_peak_dbtp,
    }
    if args.json:
        _print_json(report)
    else:
        print(f"Wrote {_safe(result.path)} ({result.size_bytes / 1024:.1f} KB, {result.format} {result.encoding})")
        print(f"Loudness:  {_fmt(before.integrated_lufs, '.1f')} -> {_fmt(after.integrated_lufs, '.1f')} LUFS "
              f"(gain {result.gain.gain_db:+.2f} dB, {result.gain.reason})")
        print(f"True peak: {_fmt(before.true_peak_dbtp, '.1f')} -> {_fmt(after.true_peak_dbtp, '.1f')} dBTP")
    return 0


def _normalize_tags(source: Path, audio, rate: int):
    """Tags for ``normalize``: title, comment and date carried from the input's own tags when
    it has them (else the file name), tempo and key measured on the audio in memory."""
    import soundfile

    from .audio import AudioMetadataExtractor
    from .audio.delivery import track_tags

    with soundfile.SoundFile(source) as sound:
        carried = {name: getattr(sound, name, "") or None for name in ("title", "comment", "date")}
    analysis = AudioMetadataExtractor(extract_bpm=True, extract_key=True).extract_metadata_from_tensor(
        audio, rate, compute_stats=False)
    tags = track_tags(prompt=carried["title"] or source.stem, job_id=source.stem, analysis=analysis)
    return tags.replace(comment=carried["comment"] or f"normalized from {source.name} by dgx-music",
                        date=carried["date"] or tags.date)


def _generation_row(data: dict) -> List[str]:
    created = data.get("created_at")
    metadata = data.get("metadata") or {}
    return [
        str(data["id"])[:8], str(data.get("status")), str(created)[:19] if created else "-",
        _fmt(data.get("duration_seconds"), ".1f", " s"), _fmt(metadata.get("bpm"), ".1f"),
        metadata.get("key") or "-", (data.get("prompt") or "")[:40],  # escaped by _print_table
    ]


def _history_exists() -> bool:
    """Whether the configured history can be read without creating it (an SQLite file that
    does not exist yet holds nothing: reading must not create it or its folder)."""
    from .storage.database import resolve_url

    url = resolve_url()
    if not url.startswith("sqlite"):
        return True
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return bool(database) and database != ":memory:" and Path(database).is_file()


def _cmd_history(args: argparse.Namespace) -> int:
    dicts = _history_from_sqlite(args)
    if dicts is None and not _history_exists():  # nothing recorded: reading must not create the history
        dicts = []
    elif dicts is None:  # PostgreSQL, a schema to migrate or a job to recover: SQLAlchemy
        _recover_existing()
        from .storage import get_all_generations, get_session

        with get_session(readonly=True) as session:
            generations = get_all_generations(session, limit=args.limit, offset=args.offset, status=args.status)
            dicts = [g.to_dict() for g in generations]
    rows = [_generation_row(data) for data in dicts]
    if args.json:
        _print_json(dicts)
    elif not rows:
        print("no generations recorded yet")
    else:
        _print_table(["id", "status", "created (UTC)", "duration", "BPM", "key", "prompt"], rows)
    return 0


def _history_from_sqlite(args: argparse.Namespace) -> Optional[List[dict]]:
    """The rows read with ``sqlite3`` alone (no SQLAlchemy import), or None when that path
    cannot answer (see :mod:`services.storage.sqlite_reads`)."""
    from .config import get_settings
    from .storage.sqlite_reads import list_generations, sqlite_file

    path = sqlite_file(get_settings().database_url)
    if path is None:
        return None
    return list_generations(path, limit=args.limit, offset=args.offset, status=args.status)


def _find_generation(session, identifier: str):
    from sqlalchemy import select

    from .storage import Generation, get_generation

    found = get_generation(session, identifier)
    if found is not None:
        return found
    candidates = session.scalars(  # autoescape: "%" and "_" in what the user typed match literally
        select(Generation).where(
            Generation.id.startswith(identifier, autoescape=True) | (Generation.job_id == identifier)
            | Generation.file_path.endswith(f"{identifier}.wav", autoescape=True)
        ).limit(2)
    ).all()
    if len(candidates) > 1:
        raise LookupError(f"{identifier!r} matches more than one generation; give more of the id")
    if not candidates:
        raise LookupError(f"no generation with id or job id {identifier!r}")
    return candidates[0]


def _cmd_show(args: argparse.Namespace) -> int:
    from .storage import get_session

    if not _history_exists():
        raise LookupError(f"no generation with id or job id {args.job_id!r} (nothing recorded yet)")
    with get_session(readonly=True) as session:
        data = _find_generation(session, args.job_id).to_dict()
    if args.json:
        _print_json(data)
        return 0
    metadata = data.pop("metadata", None) or {}
    for key, value in data.items():
        print(f"{key + ':':<26}{_safe(_fmt(value, '.3f') if isinstance(value, float) else value)}")
    if metadata:
        print()
        for line in _summary_lines(metadata):
            print(line)
    return 0


def _parse_day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD; got {text!r}") from None


def _cmd_files(args: argparse.Namespace) -> int:
    from .audio import AudioFileManager

    manager = AudioFileManager(base_dir=args.base_dir) if args.base_dir else AudioFileManager()
    if args.files_command == "list":
        if args.since and args.until and args.since > args.until:
            raise ValueError(f"--since {args.since:%Y-%m-%d} is after --until {args.until:%Y-%m-%d}")
        files = manager.list_files(start_date=args.since, end_date=args.until, limit=args.limit, extension=args.ext)
        if args.json:
            _print_json([_absolute(f) for f in files])
        else:
            for path in files:
                print(_safe(path))
    elif args.files_command == "stats":
        stats = manager.get_storage_stats()
        for key in ("oldest_file", "newest_file"):
            stats[key] = None if stats[key] is None else _absolute(stats[key])
        if args.json:
            _print_json(stats)
        else:
            _print_stats(stats)
    else:  # cleanup
        dry_run = not args.yes
        count = manager.cleanup_old_files(days_old=args.days, dry_run=dry_run)
        removed_dirs = 0 if dry_run else manager.cleanup_empty_directories()
        if args.json:
            _print_json({"dry_run": dry_run, "files": count, "empty_directories_removed": removed_dirs})
        elif dry_run:
            print(f"Would delete {count} files older than {args.days} days (dry run; add --yes to delete)")
        else:
            print(f"Deleted {count} files older than {args.days} days; removed {removed_dirs} empty folders")
    return 0


def _print_stats(stats: dict) -> None:
    types = ", ".join(f"{ext or '(none)'} {count}" for ext, count in stats["file_types"].items())
    size = stats["total_size_bytes"]
    for label, value in [
        ("Files", f"{stats['total_files']:,}"),
        ("Total size", f"{size / 1024 / 1024:.1f} MB ({size:,} bytes)"),
        ("Oldest file", stats["oldest_file"] or "-"),
        ("Newest file", stats["newest_file"] or "-"),
        ("File types", types or "-"),
    ]:
        print(f"{label + ':':<14}{_safe(value)}")


def _cmd_jobs(args: argparse.Namespace) -> int:
    from .config import get_settings
    from .jobs.recovery import recover_jobs, worst_case_recovery_seconds

    actions = recover_jobs()
    if args.json:
        _print_json([action.to_dict() for action in actions])
    elif not actions:
        lease = get_settings().lease_seconds
        print(f"no interrupted jobs (a job whose process stops is found within "
              f"{worst_case_recovery_seconds(lease):.0f} s by a running service or worker)")
    else:
        _print_table(["id", "job", "action", "owner"],
                     [[a.generation_id[:8], a.job_id or "-", a.action, a.owner or "-"] for a in actions])
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .api.server import serve

    return serve(args.host, args.port, args.workers)


def _cmd_worker(args: argparse.Namespace) -> int:
    from .config import get_settings
    from .storage import init_db
    from .storage.database import resolve_url

    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    url = resolve_url()
    init_db(url)
    if url.startswith("postgresql"):
        from .jobs.queue import run_worker

        print(f"{PROG}: queue worker on PostgreSQL, {args.concurrency} job(s) at once; Ctrl-C or SIGTERM stops it",
              file=sys.stderr, flush=True)
        run_worker(url, concurrency=args.concurrency)
        return 0
    return _run_local_worker(url, args.concurrency, get_settings().shutdown_grace_seconds)


def _run_local_worker(url: str, concurrency: int, grace: float) -> int:
    """``worker`` on SQLite: the local runner without the API, until SIGTERM or Ctrl-C."""
    import signal
    import threading

    from .jobs.local import LocalRunner

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    runner = LocalRunner(concurrency, database_url=url).start()
    print(f"{PROG}: local worker on {url.split(':///')[-1]}, {concurrency} job(s) at once; "
          "Ctrl-C or SIGTERM stops it", file=sys.stderr, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        requeued = runner.stop(grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if requeued:
        print(f"{PROG}: re-queued {len(requeued)} unfinished job(s)", file=sys.stderr)
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    from .storage import init_db
    from .storage.database import resolve_url

    init_db(args.url)
    shown = resolve_url(args.url)
    if "@" in shown:  # never print a password
        scheme, rest = shown.split("://", 1)
        shown = f"{scheme}://***@{rest.split('@', 1)[1]}"
    print(f"database ready: {shown}")
    return 0


# --- parser ---------------------------------------------------------------------------------

MAX_SEED = 2**63 - 1
MAX_LIST = 1_000_000  # --limit of history and files list
MAX_OFFSET = 2**62
MAX_DAYS = 36_500  # cleanup --days: a hundred years
MAX_JOBS_AT_ONCE = 256  # serve --workers, worker --concurrency


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
    return value


def _level(low: float, high: float, unit: str):
    """An argparse type: a number of ``unit`` (LUFS, dBTP) within [low, high]."""
    def level(text: str) -> float:
        value = _number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {unit} between {low:g} and {high:g}; got {text!r}")
        return value

    level.__name__ = unit
    return level


def _int_range(low: int, high: int):
    """An argparse type: a whole number within [low, high]."""
    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number; got {text[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high:,}; got {text[:40]!r}")
        return value

    return whole_number


_port = _int_range(0, 65535)

GENERATE_EPILOG = """\
prompt words the procedural generator understands (case-insensitive):
  tempo      "140 BPM", "at 92.5 bpm", "120 beats per minute", "tempo 96" (30-300 BPM)
  key        "in D minor", "F# major", "Bb minor", "E flat major", "in Am", "key of G"
  meter      "3/4", "4/4"
  genres     lofi, trap, drum and bass, dubstep, techno, trance, house, disco, synthwave,
             reggae, waltz, jazz, funk, ambient, rock, hip hop, pop, edm (also "dnb", "chillhop",
             "electronic", "dance", ...)
  moods      dark, sad, happy, upbeat, chill, energetic (also "gloomy", "uplifting", "groovy",
             "mellow", "aggressive", ...)
A prompt has at most 2,000 characters; control characters are refused.

examples:
  dgx-music generate "upbeat electronic dance music at 140 BPM"
  dgx-music generate "dark techno in A minor at 128 BPM" --duration 30 --seed 7
  dgx-music generate "melancholic waltz in 3/4, E flat major" --json
"""


_DELIVERY_FLAGS = {"format": "--format", "preset": "--preset", "loop_bars": "--loop-bars",
                   "name_template": "--name-template", "peaks": "--peaks", "mp3_mode": "--mp3-mode"}


def _add_delivery_flags(p: argparse.ArgumentParser, formats: bool) -> None:
    if formats:
        p.add_argument("--format", default="wav", metavar="FORMAT", help="wav (default), flac, mp3, opus or ogg")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="destination loudness and ceiling: spotify, apple-music, youtube, amazon-music, tidal, "
                        "deezer, podcast, ebu-r128, atsc-a85, default (overrides --target/--ceiling)")
    p.add_argument("--mp3-mode", default="CBR_320", metavar="MODE", help="CBR_320 (default) or V0")
    p.add_argument("--no-dither", dest="dither", action="store_false", help="PCM_16 without TPDF dither")
    p.add_argument("--peaks", type=_int_range(1, 1 << 20), default=None, metavar="SPP",
                   help="also write waveform peaks (.peaks.json, .peaks.dat) at SPP samples per pixel")


def _delivery(args: argparse.Namespace, **fields):
    """The command's delivery options, checked, with errors naming the flags."""
    from .audio.delivery import DeliveryOptions

    request = {"preset": args.preset, "mp3_mode": args.mp3_mode, "dither": args.dither, "peaks": args.peaks, **fields}
    return DeliveryOptions.from_request(request, labels=_DELIVERY_FLAGS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="DGX Music audio services.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bit_depths = ["PCM_16", "PCM_24", "PCM_32", "FLOAT"]
    as_json = "print the result as JSON (paths absolute)"

    p = commands.add_parser("generate", help="generate a track from a prompt (the main job)",
                            epilog=GENERATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt", metavar="PROMPT", help='what to play, e.g. "upbeat electronic dance music at 140 BPM"')
    p.add_argument("--duration", type=_positive_float, default=16.0, help="seconds (default 16)")
    p.add_argument("--seed", type=_int_range(0, MAX_SEED), default=None, help="for a reproducible track (0 to 2**63-1)")
    p.add_argument("--bit-depth", choices=bit_depths, default="PCM_16", help="WAV and FLAC sample format (default PCM_16)")
    _add_delivery_flags(p, formats=True)
    p.add_argument("--loop-bars", type=_int_range(1, 1024), default=None, metavar="N",
                   help="exactly N bars at the track's tempo, crossfaded to loop without a click")
    p.add_argument("--name-template", default=None, metavar="TEMPLATE",
                   help="file name, e.g. '{job_id}_{bpm}_{key}' (also {camelot}, {bars}, {preset})")
    p.add_argument("--json", action="store_true", help=as_json)
    p.set_defaults(handler=_cmd_generate)

    p = commands.add_parser("analyze", help="measure audio files (duration, loudness, tempo, key)")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG, ...)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per file (paths absolute)")
    p.add_argument("--no-bpm", action="store_true", help="skip tempo estimation")
    p.add_argument("--no-key", action="store_true", help="skip key estimation")
    p.add_argument("--bpm-hint", type=_positive_float, default=None, help="expected tempo (resolves 70 vs 140)")
    p.set_defaults(handler=_cmd_analyze)

    p = commands.add_parser("normalize", help="loudness-normalize an audio file (format from OUT's extension)")
    p.add_argument("input", metavar="IN", help="an audio file (never modified)")
    p.add_argument("output", metavar="OUT",
                   help="a .wav, .flac, .mp3, .opus or .ogg path that does not exist yet (see --force)")
    p.add_argument("--target", type=_level(-70.0, 0.0, "LUFS"), default=None,
                   help="loudness, -70 to 0 LUFS (default: AUDIO_TARGET_LUFS or -16)")
    p.add_argument("--ceiling", type=_level(-20.0, 0.0, "dBTP"), default=None,
                   help="true-peak ceiling, -20 to 0 dBTP (default: AUDIO_TRUE_PEAK_CEILING or -1)")
    p.add_argument("--bit-depth", choices=bit_depths, default=None,
                   help="WAV and FLAC sample format (default: the input's resolution as OUT's format holds it, "
                        "24 bits for lossy input)")
    _add_delivery_flags(p, formats=False)
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help=as_json)
    p.set_defaults(handler=_cmd_normalize)

    p = commands.add_parser("history", help="list recorded generations, newest first")
    p.add_argument("--limit", type=_int_range(1, MAX_LIST), default=20, help="at most this many (default 20)")
    p.add_argument("--offset", type=_int_range(0, MAX_OFFSET), default=0, help="skip this many newest first (default 0)")
    p.add_argument("--status", choices=["pending", "processing", "completed", "failed", "cancelled"],
                   help="only generations in this state")
    p.add_argument("--json", action="store_true", help=as_json)
    p.set_defaults(handler=_cmd_history)

    p = commands.add_parser("show", help="show one generation (record id, its prefix, or job id)")
    p.add_argument("job_id", metavar="JOB_ID", help="a record id, the start of one, or a job id (gen_...)")
    p.add_argument("--json", action="store_true", help=as_json)
    p.set_defaults(handler=_cmd_show)

    p = commands.add_parser("files", help="the dated output tree: list, stats, cleanup")
    p.add_argument("--base-dir", default=None, help="default: AUDIO_OUTPUT_DIR or data/outputs")
    files = p.add_subparsers(dest="files_command", required=True, metavar="ACTION")
    q = files.add_parser("list", help="files, newest first")
    q.add_argument("--limit", type=_int_range(0, MAX_LIST), default=20, help="at most this many (default 20)")
    q.add_argument("--since", type=_parse_day, default=None, metavar="YYYY-MM-DD", help="from this day on")
    q.add_argument("--until", type=_parse_day, default=None, metavar="YYYY-MM-DD", help="up to this day")
    q.add_argument("--ext", default=None, help="only this extension, e.g. wav")
    q.add_argument("--json", action="store_true", help=as_json)
    q = files.add_parser("stats", help="counts and sizes")
    q.add_argument("--json", action="store_true", help=as_json)
    q = files.add_parser("cleanup", help="delete files older than --days (a dry run unless --yes)")
    q.add_argument("--days", type=_int_range(0, MAX_DAYS), default=30, help="age in days (default 30)")
    q.add_argument("--yes", action="store_true", help="really delete")
    q.add_argument("--json", action="store_true", help=as_json)
    p.set_defaults(handler=_cmd_files)

    p = commands.add_parser("serve", help="the HTTP API (and, by default, one job at a time)")
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="0-65535 (default 8000)")
    p.add_argument("--workers", type=_int_range(0, MAX_JOBS_AT_ONCE), default=1,
                   help="jobs run at once in this process (default 1; 0 = the API alone)")
    p.set_defaults(handler=_cmd_serve)

    p = commands.add_parser("worker", help="run queued jobs (PostgreSQL: a queue worker; SQLite: this machine)")
    p.add_argument("--concurrency", type=_int_range(1, MAX_JOBS_AT_ONCE), default=1, help="jobs at once (default 1)")
    p.set_defaults(handler=_cmd_worker)

    p = commands.add_parser("jobs", help="generation jobs")
    jobs = p.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    q = jobs.add_parser("recover", help="re-queue or fail the jobs whose process died")
    q.add_argument("--json", action="store_true", help=as_json)
    p.set_defaults(handler=_cmd_jobs)

    p = commands.add_parser("db", help="the generation history database")
    db = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    q = db.add_parser("init", help="create or migrate the schema")
    q.add_argument("--url", default=None, help="default: DATABASE_URL or sqlite:///data/generations.db")
    p.set_defaults(handler=_cmd_db)
    return parser


# Commands that open the history: each first re-queues or fails the jobs whose process died
# (``history`` does it itself, when a job is processing).
_RECOVERING_COMMANDS = ("generate", "show")


def _recover_quietly() -> None:
    """Recover interrupted jobs of an existing history (never creates one)."""
    if _history_exists():
        _recover_existing()


def _recover_existing() -> None:
    """Re-queue or fail the jobs whose process died, saying so on stderr."""
    from .jobs.recovery import recover_jobs

    for action in recover_jobs():
        print(f"{PROG}: job {action.job_id or action.generation_id} {action.action}: "
              f"its process ({action.owner}) is gone", file=sys.stderr)


class _sigterm_as_terminated:
    """While active (and in the main thread), SIGTERM raises :class:`~services.errors.Terminated`,
    so a foreground job ends ``failed`` ("terminated") and leaves no file, like Ctrl-C."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.previous = None

    def __enter__(self):
        import signal
        import threading

        if self.enabled and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, *exc_info) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _raise_terminated(signum, frame) -> None:
    from .errors import Terminated

    raise Terminated()


# API argument names in error messages -> the flag the user typed.
_FLAGS = {
    "target_lufs": "--target", "true_peak_ceiling": "--ceiling", "duration": "--duration",
    "seed": "--seed", "bit_depth": "--bit-depth", "bpm_hint": "--bpm-hint", "limit": "--limit",
    "offset": "--offset", "days_old": "--days", "output_path": "OUT", "start_date": "--since",
    "end_date": "--until", "extension": "--ext", "base_dir": "--base-dir", "preset": "--preset",
    "mp3_mode": "--mp3-mode", "loop_bars": "--loop-bars", "name_template": "--name-template",
    "peaks_samples_per_pixel": "--peaks",
}
_API_NAME = re.compile(r"\b(" + "|".join(_FLAGS) + r")\b(?= (?:must|is|has)\b)")


def _error_message(exc: BaseException) -> str:
    """One line for the user: the flags they typed, the path of an OSError, control characters escaped."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
        message = f"{message}: {exc.filename}"
    return _safe(_API_NAME.sub(lambda match: _FLAGS[match.group(1)], message))


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``| head``): end quietly, as SIGPIPE would (141)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush goes nowhere
    except (OSError, ValueError):  # pragma: no cover - stdout without a descriptor
        pass
    return 141


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``dgx-music``; returns the exit status."""
    from .errors import DgxMusicError, Terminated

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:  # --help, --version, usage errors: their output may meet a closed pipe too
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            return _quiet_broken_pipe()
        raise
    try:
        with _sigterm_as_terminated(args.command not in ("serve", "worker")):
            if args.command in _RECOVERING_COMMANDS:
                _recover_quietly()
            status = args.handler(args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (DgxMusicError, OSError, ValueError, TypeError, LookupError, NotImplementedError) as exc:
        print(f"{PROG}: error: {_error_message(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
