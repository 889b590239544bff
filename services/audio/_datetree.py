"""The dated folder tree ``base/YYYY/MM/DD``: calendar dates and a symlink-safe walk.

Only folders named exactly like the ones :class:`~services.audio.files.AudioFileManager`
creates belong to the tree: four ASCII digits for the year (0001-9999), two for the
month (01-12) and two for the day (a real calendar day of that month). Anything else
under the base folder is ignored: never listed, counted, entered or removed.

Every folder is opened relative to its parent's descriptor with ``O_NOFOLLOW``, so the
walk never enters a symbolic link, not even one swapped in while it runs, and files are
examined and removed through the day folder's descriptor (``fstatat``/``unlinkat``),
which also spares the kernel a full path lookup per file. POSIX only (Linux, macOS).

Dates are calendar dates of the machine's local time zone (see :func:`local_date`).
"""

from __future__ import annotations

import datetime as dt
import errno
import os
from contextlib import contextmanager
from typing import Iterator, List, NamedTuple, Optional, Tuple

__all__ = [
    "DayDir",
    "local_date",
    "day_parts",
    "walk_days",
    "day_entries",
    "stat_entries",
    "suffix",
    "prune_empty_folders",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_CHILD_FLAGS = _DIR_FLAGS | os.O_NOFOLLOW
_GONE = {errno.ENOENT, errno.ENOTDIR, errno.ELOOP}
"""A child that vanished, or became a file or a symbolic link, during the walk."""
_NOT_EMPTY = {errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT}


class DayDir(NamedTuple):
    """One day folder met by :func:`walk_days`; ``fd`` is open only while the walk is there."""

    day: dt.date
    rel: str
    """``YYYY/MM/DD`` joined with the platform separator."""
    fd: int


def local_date(value: object, name: str) -> dt.date:
    """The calendar date of ``value`` in the machine's local time zone.

    A ``datetime.date`` is taken as is, a naive ``datetime`` as local wall time (its own
    calendar date), an aware ``datetime`` is converted to local time first.
    """
    if isinstance(value, dt.datetime):
        return (value.astimezone() if value.tzinfo is not None else value).date()
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"{name} must be a datetime.date or datetime.datetime; got {type(value).__name__}")


def day_parts(day: dt.date) -> Tuple[str, str, str]:
    """The folder names ``("YYYY", "MM", "DD")`` of ``day``."""
    return f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"


def suffix(name: str) -> str:
    """The lower-case extension of a file name (``".wav"``), ``""`` when it has none.

    Same rule as ``os.path.splitext``: the last dot, a leading dot does not count.
    """
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


@contextmanager
def _open_dir(name: str, dir_fd: Optional[int] = None) -> Iterator[Optional[int]]:
    """Open a folder for reading; ``None`` when it is gone (or, below the base, a link)."""
    try:
        fd = os.open(name, _CHILD_FLAGS if dir_fd is not None else _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _GONE:
            yield None
            return
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def _numbered(fd: int, width: int, low: int, high: int, reverse: bool) -> List[Tuple[int, str]]:
    """Sorted ``(number, name)`` of the sub-folders named by ``width`` digits in [low, high]."""
    found = []
    with os.scandir(fd) as entries:
        for entry in entries:
            name = entry.name
            if len(name) == width and name.isascii() and name.isdigit():
                number = int(name)
                if low <= number <= high and entry.is_dir(follow_symlinks=False):
                    found.append((number, name))
    found.sort(reverse=reverse)
    return found


def _subdirs(fd: int, width: int, low: int, high: int, reverse: bool) -> Iterator[Tuple[int, str, int]]:
    """Like :func:`_numbered`, each folder opened (without following links) while yielded."""
    for number, name in _numbered(fd, width, low, high, reverse):
        with _open_dir(name, fd) as child:
            if child is not None:
                yield number, name, child


def walk_days(
    base: str,
    *,
    first: Optional[dt.date] = None,
    last: Optional[dt.date] = None,
    newest_first: bool = False,
) -> Iterator[DayDir]:
    """Yield the day folders of the tree dated within [first, last] (both ends included).

    Folders outside the range are pruned by name: their files are never examined. Use
    the generator in a ``with contextlib.closing(...)`` block (or exhaust it) so that
    descriptors are released at once when stopping early. A missing base yields nothing.
    """
    lo = first or dt.date.min
    hi = last or dt.date.max
    with _open_dir(base) as base_fd:
        if base_fd is None:
            return
        for year, year_name, year_fd in _subdirs(base_fd, 4, lo.year, hi.year, newest_first):
            low_month = lo.month if year == lo.year else 1
            high_month = hi.month if year == hi.year else 12
            for month, month_name, month_fd in _subdirs(year_fd, 2, low_month, high_month, newest_first):
                low_day = lo.day if (year, month) == (lo.year, lo.month) else 1
                high_day = hi.day if (year, month) == (hi.year, hi.month) else 31
                for day, day_name, day_fd in _subdirs(month_fd, 2, low_day, high_day, newest_first):
                    try:
                        date = dt.date(year, month, day)
                    except ValueError:  # 02/30 and the like: not a folder of ours
                        continue
                    yield DayDir(date, os.path.join(year_name, month_name, day_name), day_fd)


def day_entries(day_fd: int) -> List[os.DirEntry]:
    """The files of one day folder: regular files (no links, no folders), no dot-files.

    Names starting with a dot are temporary files of a copy in progress (job ids never
    start with one). The type comes from the folder listing (no ``stat``); the entries'
    ``stat()`` works through the folder's descriptor while it is open.
    """
    with os.scandir(day_fd) as entries:
        return [e for e in entries if e.is_file(follow_symlinks=False) and not e.name.startswith(".")]


def stat_entries(entries: List[os.DirEntry]) -> Tuple[List[os.DirEntry], List[os.stat_result]]:
    """``(entries, stats)`` of :func:`day_entries`, skipping files removed since the listing.

    ``DirEntry.stat()`` of a non-link entry is an ``lstat`` (``fstatat`` with
    ``AT_SYMLINK_NOFOLLOW``), so a file swapped for a link meanwhile is not followed.
    The common case runs as one ``map`` in C: this loop is what the 100,000-file
    statistics spend their time in.
    """
    try:
        return entries, list(map(os.DirEntry.stat, entries))
    except FileNotFoundError:
        kept, stats = [], []
        for entry in entries:
            try:
                stats.append(entry.stat())
            except FileNotFoundError:
                continue
            kept.append(entry)
        return kept, stats


def _rmdir_if_empty(name: str, dir_fd: int) -> bool:
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _NOT_EMPTY:
            return False
        raise
    return True


def prune_empty_folders(base: str, *, keep_from: dt.date) -> int:
    """Remove empty date folders bottom-up (days, then months, then years); return the count.

    Day folders dated ``keep_from`` or later, and the month and year folders that contain
    ``keep_from``, are kept: a writer that has just created today's folder never finds
    it (or its parent) gone. ``os.rmdir`` only removes an empty folder, so a file created
    concurrently is never lost. The base folder itself is never removed.
    """
    removed = 0
    with _open_dir(base) as base_fd:
        if base_fd is None:
            return 0
        for year, year_name, year_fd in _subdirs(base_fd, 4, 1, 9999, False):
            for month, month_name, month_fd in _subdirs(year_fd, 2, 1, 12, False):
                for day, day_name in _numbered(month_fd, 2, 1, 31, False):
                    try:
                        date = dt.date(year, month, day)
                    except ValueError:
                        continue
                    if date < keep_from:
                        removed += _rmdir_if_empty(day_name, month_fd)
                if (year, month) < (keep_from.year, keep_from.month):
                    removed += _rmdir_if_empty(month_name, year_fd)
            if year < keep_from.year:
                removed += _rmdir_if_empty(year_name, base_fd)
    return removed
