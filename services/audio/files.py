"""AudioFileManager: generated files in a dated tree ``base_dir/YYYY/MM/DD/<job_id><ext>``.

Rules (each one is tested in ``tests/unit/test_audio_storage.py``):

* **Clock.** Folder dates are calendar dates in the machine's **local time zone**:
  "today" is ``datetime.date.today()``; a naive ``datetime`` counts as local wall time,
  an aware one is converted to local time first; a ``datetime.date`` is used as is.
* **Job ids** are file names, never paths: a non-empty ``str`` of at most
  :data:`MAX_JOB_ID_LENGTH` characters without ``/`` or ``\\``, NUL or other control
  characters, not starting with a dot (so never ``.`` or ``..``) nor with or ending in
  white space, and short enough for the file system's name limit (255 bytes, encoded)
  once the extension is added. Anything else is a ``ValueError``; the resulting path is
  always inside ``base_dir``.
* **Extensions** are given with or without the dot, 1-16 ASCII letters or digits, and
  normalized to lower case (``"WAV"`` -> ``".wav"``); filters match case-insensitively.
* **The tree** is the files directly in valid day folders: regular files only (no
  symbolic links, no sub-folders) whose names do not start with a dot (a copy in
  progress). Files elsewhere under ``base_dir`` are never listed, counted or removed.
* **Age and ranges** use the date of a file's folder (its generation date), not its
  modification time; ranges include both ends.
* **Newest first** means: by folder date, then modification time, then name, each
  descending.
* **Units.** MB is 2**20 bytes and GB 2**30 bytes.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import operator
import os
import re
import stat
import unicodedata
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from ..config import get_settings
from . import _fsutil
from ._datetree import (
    day_entries,
    day_parts,
    local_date,
    prune_empty_folders,
    stat_entries,
    suffix,
    walk_days,
)

__all__ = ["AudioFileManager", "MAX_JOB_ID_LENGTH", "validate_job_id", "normalize_extension"]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

MAX_JOB_ID_LENGTH = 200
"""Longest job id, in characters."""
_NAME_MAX = 255
"""Longest file name, in bytes, on the file systems we target (ext4, XFS, btrfs, tmpfs, APFS)."""
_EXTENSION = re.compile(r"\.?([A-Za-z0-9]{1,16})")
_REFUSED_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
"""Control characters (NUL included), lone surrogates, line and paragraph separators."""
_SIZE = operator.attrgetter("st_size")
_MB = float(1 << 20)
_GB = float(1 << 30)


def _order_keys(entries, stats) -> List[Tuple[int, str]]:
    """``(mtime_ns, name)`` of files of one day folder: the order of "newest first" within a day."""
    return [(info.st_mtime_ns, entry.name) for entry, info in zip(entries, stats)]


def normalize_extension(extension: object) -> str:
    """``"wav"``, ``".WAV"`` -> ``".wav"``; a ``ValueError`` for anything but 1-16 letters/digits."""
    if not isinstance(extension, str):
        raise TypeError(f"extension must be a str; got {type(extension).__name__}")
    match = _EXTENSION.fullmatch(extension)
    if match is None:
        raise ValueError(
            f"extension must be 1-16 ASCII letters or digits, with or without a leading dot; got {extension!r}"
        )
    return "." + match.group(1).lower()


def validate_job_id(job_id: object, extension: str = ".wav") -> str:
    """Return ``job_id`` if it is a safe file name (with ``extension``), else raise ``ValueError``."""
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a str; got {type(job_id).__name__}")
    if not job_id:
        raise ValueError("job_id must not be empty")
    if len(job_id) > MAX_JOB_ID_LENGTH:
        raise ValueError(f"job_id is longer than {MAX_JOB_ID_LENGTH} characters: {job_id!r}")
    if "/" in job_id or "\\" in job_id:
        raise ValueError(f"job_id must be a file name, not a path (no '/' or '\\\\'): {job_id!r}")
    if job_id.startswith("."):
        raise ValueError(f"job_id must not start with a dot ('.', '..', hidden names): {job_id!r}")
    if job_id != job_id.strip():
        raise ValueError(f"job_id must not start or end with white space: {job_id!r}")
    for char in job_id:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValueError(f"job_id must not contain control characters such as {char!r}: {job_id!r}")
    try:
        name_bytes = len(os.fsencode(job_id + extension))
    except UnicodeEncodeError:
        raise ValueError(f"job_id cannot be encoded for the file system: {job_id!r}") from None
    if name_bytes > _NAME_MAX:
        raise ValueError(
            f"job_id with extension {extension!r} exceeds the file system's {_NAME_MAX}-byte name limit: {job_id!r}"
        )
    return job_id


def _as_path_str(value: object, name: str) -> str:
    """A ``str`` or ``os.PathLike[str]`` as ``str``; ``TypeError`` for anything else."""
    path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a str or os.PathLike[str]; got {type(value).__name__}")
    if not path:
        raise ValueError(f"{name} must not be empty; got {value!r}")
    return path


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool; got {type(value).__name__}")
    return value


def _check_count(value: object, name: str) -> int:
    """A non-negative ``int`` (``bool`` refused)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int; got bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int; got {type(value).__name__}") from None
    if number < 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")
    return number


class AudioFileManager:
    """Paths, file operations, cleanup, statistics and listings for the dated output tree.

    ``base_dir`` defaults to ``AUDIO_OUTPUT_DIR`` (``data/outputs``) read through
    :func:`services.config.get_settings`. It is kept as given (a relative ``base_dir``
    gives relative paths, as in the spec) and is not created until a path needs it.
    """

    def __init__(self, base_dir: Optional[PathLike] = None) -> None:
        if base_dir is None:
            base_dir = get_settings().audio_output_dir
        self._base = str(Path(_as_path_str(base_dir, "base_dir")))  # "a//b/" -> "a/b"

    @property
    def base_dir(self) -> Path:
        """The base folder of the tree, as given (read-only)."""
        return Path(self._base)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_dir={self._base!r})"

    # ------------------------------------------------------------------ paths

    def get_output_path(
        self,
        job_id: str,
        extension: str = ".wav",
        create_dirs: bool = True,
        date: Optional[dt.date] = None,
    ) -> Path:
        """``base_dir/YYYY/MM/DD/<job_id><extension>`` for ``date`` (default: today, local time).

        ``date`` is a ``datetime.date`` or ``datetime.datetime`` (see the module's clock rule).

        With ``create_dirs`` the day folder is created; several processes may do so at
        once (``exist_ok``). The file itself is not created.
        """
        extension = normalize_extension(extension)
        validate_job_id(job_id, extension)
        _check_flag(create_dirs, "create_dirs")
        day = dt.date.today() if date is None else local_date(date, "date")
        folder = os.path.join(self._base, *day_parts(day))
        if create_dirs:
            os.makedirs(folder, exist_ok=True)
        return Path(folder, job_id + extension)

    def file_exists(self, job_id: str, extension: str = ".wav", date: Optional[dt.date] = None) -> bool:
        """Whether the file of ``job_id`` exists at :meth:`get_output_path` for ``date`` (default today)."""
        return self.get_output_path(job_id, extension, create_dirs=False, date=date).is_file()

    # ------------------------------------------------------------ single files

    def get_file_size(self, path: PathLike) -> int:
        """Size of a file in bytes; ``FileNotFoundError`` if missing, ``IsADirectoryError`` for a folder."""
        path = _as_path_str(path, "path")
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", path)
        return info.st_size

    def get_file_size_mb(self, path: PathLike) -> float:
        """Size of a file in MB (2**20 bytes)."""
        return self.get_file_size(path) / _MB

    def delete_file(self, path: PathLike) -> bool:
        """Delete one file (a symbolic link itself, not its target); False if there was none.

        A folder is refused with ``IsADirectoryError``. The path may lie anywhere, as in
        the spec; only this one name is removed.
        """
        path = _as_path_str(path, "path")
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory; delete_file removes files only", path)
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def move_file(self, source: PathLike, destination: PathLike, *, overwrite: bool = False) -> Path:
        """Move a file to ``destination`` (a file name), creating its folder; returns ``destination``.

        Refuses an existing destination unless ``overwrite`` (``FileExistsError``), works
        across file systems (copy to a synced temporary file, publish, remove the source)
        and leaves the destination complete or absent. A missing source is
        ``FileNotFoundError``, a folder on either side ``IsADirectoryError``.
        """
        return self._transfer(_fsutil.move_file, source, destination, overwrite)

    def copy_file(self, source: PathLike, destination: PathLike, *, overwrite: bool = False) -> Path:
        """Copy a file (data, permission bits, times) to ``destination``; returns ``destination``.

        Same rules and errors as :meth:`move_file`; the copy is written to a temporary
        file beside the destination, synced and then renamed, so it is complete or absent.
        """
        return self._transfer(_fsutil.copy_file, source, destination, overwrite)

    @staticmethod
    def _transfer(operation, source: PathLike, destination: PathLike, overwrite: bool) -> Path:
        source = _as_path_str(source, "source")
        target = _as_path_str(destination, "destination")
        operation(source, target, overwrite=_check_flag(overwrite, "overwrite"))
        return Path(target)

    # ------------------------------------------------------------------ cleanup

    def cleanup_old_files(self, days_old: int = 30, dry_run: bool = True) -> int:
        """Delete the tree's files older than ``days_old`` days; return how many (would) go.

        A file's age is today's date (local) minus its folder's date: a file is removed
        when that is more than ``days_old`` days, so ``days_old=0`` keeps only today's
        (and future) folders. ``dry_run`` (the default) only counts. Files are removed
        through their folder's descriptor: the walk never follows a symbolic link and
        never leaves ``base_dir``. A file that cannot be removed is logged and skipped.
        """
        days_old = _check_count(days_old, "days_old")
        _check_flag(dry_run, "dry_run")
        today = dt.date.today()
        if days_old >= (today - dt.date.min).days:
            return 0  # nothing can be that old
        last = today - dt.timedelta(days=days_old + 1)
        count = 0
        with closing(walk_days(self._base, last=last)) as days:
            for day in days:
                entries = day_entries(day.fd)
                if dry_run:
                    count += len(entries)
                else:
                    count += sum(self._unlink_in(day, entry.name) for entry in entries)
        return count

    def _unlink_in(self, day, name: str) -> bool:
        try:
            os.unlink(name, dir_fd=day.fd)
        except FileNotFoundError:
            return False  # removed meanwhile
        except OSError as exc:
            log.warning("cleanup could not remove %s: %s", os.path.join(self._base, day.rel, name), exc)
            return False
        return True

    def cleanup_empty_directories(self) -> int:
        """Remove empty date folders bottom-up (day, then month, then year); return the count.

        Only folders of the dated tree older than today are candidates (today's folder and
        the month and year holding it are kept for writers in flight); ``base_dir``
        itself, other folders and symbolic links are never removed.
        """
        return prune_empty_folders(self._base, keep_from=dt.date.today())

    # ------------------------------------------------------- stats and listings

    def get_storage_stats(self) -> Dict[str, Any]:
        """Totals over the tree's files.

        ``total_files``, ``total_size_bytes`` (sum of file sizes), ``total_size_gb``
        (GB = 2**30 bytes), ``oldest_file``/``newest_file`` (paths as ``str`` in the order
        of :meth:`list_files`, ``None`` for an empty tree) and ``file_types`` (lower-case
        extension -> count, most frequent first; ``""`` for names without one).
        """
        count = 0
        size = 0
        types: Counter = Counter()
        first = last = None  # (day, entries, stats) of the oldest and newest non-empty folders
        with closing(walk_days(self._base)) as days:
            for day in days:
                entries, stats = stat_entries(day_entries(day.fd))
                if entries:
                    count += len(entries)
                    size += sum(map(_SIZE, stats))
                    types.update([suffix(entry.name) for entry in entries])
                    last = (day, entries, stats)
                    first = first or last
        return {
            "total_files": count,
            "total_size_bytes": size,
            "total_size_gb": size / _GB,
            "oldest_file": None if first is None else self._pick(min, *first),
            "newest_file": None if last is None else self._pick(max, *last),
            "file_types": dict(sorted(types.items(), key=lambda item: (-item[1], item[0]))),
        }

    def list_files(
        self,
        start_date: Optional[dt.date] = None,
        end_date: Optional[dt.date] = None,
        limit: Optional[int] = None,
        extension: Optional[str] = None,
    ) -> List[Path]:
        """The tree's files, newest first, optionally within [start_date, end_date] (folder dates).

        Day folders are visited newest first and the walk stops once ``limit`` files are
        found, so ``list_files(limit=10)`` reads only the last few folders. ``extension``
        filters case-insensitively (``"wav"``, ``".WAV"``...).
        """
        first = None if start_date is None else local_date(start_date, "start_date")
        last = None if end_date is None else local_date(end_date, "end_date")
        if first is not None and last is not None and first > last:
            raise ValueError(f"start_date is after end_date: {start_date!r} > {end_date!r}")
        limit = None if limit is None else _check_count(limit, "limit")
        wanted = None if extension is None else normalize_extension(extension)
        found: List[Path] = []
        if limit == 0:
            return found
        with closing(walk_days(self._base, first=first, last=last, newest_first=True)) as days:
            for day in days:
                entries = day_entries(day.fd)
                if wanted is not None:
                    entries = [entry for entry in entries if suffix(entry.name) == wanted]
                keys = _order_keys(*stat_entries(entries))
                keys.sort(reverse=True)
                folder = os.path.join(self._base, day.rel)
                found.extend(Path(folder, name) for _, name in keys)
                if limit is not None and len(found) >= limit:
                    return found[:limit]
        return found

    def _pick(self, choose, day, entries, stats) -> str:
        """Path (``str``) of the first file of one folder by ``choose`` (``min``/``max``) of :func:`_order_keys`."""
        return os.path.join(self._base, day.rel, choose(_order_keys(entries, stats))[1])

    def get_info(self) -> Dict[str, Any]:
        """The manager's configuration and rules, for logs and ``--info`` style output."""
        return {
            "base_dir": self._base,
            "base_dir_exists": self.base_dir.is_dir(),
            "layout": "YYYY/MM/DD/<job_id><extension>",
            "time_zone": "local",
            "default_extension": ".wav",
            "max_job_id_length": MAX_JOB_ID_LENGTH,
        }
