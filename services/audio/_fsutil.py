"""File moves and copies that never overwrite silently and never leave a partial file.

The pattern is the one of beets' ``util.move``: within one file system a move is a
rename (or a hard link, which refuses an existing destination atomically); across file
systems the data is copied to a temporary file in the destination folder, flushed to
disk with ``fsync``, and only then published under the final name. The destination is
therefore either complete or absent, whatever fails and whenever. A copy is checked
against the source's size, and every ``OSError`` of writing it (a full disk, a failed
fsync) names the destination.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile

__all__ = ["copy_file", "move_file", "move_by_copy", "fsync_dir", "name_path"]

_TEMP_PREFIX = ".dgx-"
_TEMP_SUFFIX = ".part"
"""Temporary names start with a dot, so tree listings skip a copy in progress."""
_CHUNK = 1 << 20
_EXISTS = "destination exists (pass overwrite=True to replace it)"


def name_path(exc: OSError, path) -> OSError:
    """``exc`` as an ``OSError`` of the same kind whose message names ``path`` and the cause,
    e.g. "[Errno 28] No space left on device: 'out.wav'"."""
    if exc.errno is None:
        return OSError(errno.EIO, str(exc) or type(exc).__name__, str(path))
    named = type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
    named.__cause__ = exc
    return named


def fsync_dir(path: str) -> None:
    """Flush a folder's entries (a rename, a new name) to disk; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the data itself is synced
        pass
    finally:
        os.close(fd)


def _check_source(source: str) -> None:
    """Raise unless ``source`` is (a link to) a regular file."""
    mode = os.stat(source).st_mode  # FileNotFoundError for a missing source or dangling link
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "source is a directory, not a file", source)
    if not stat.S_ISREG(mode):
        raise ValueError(f"source is not a regular file: {source!r}")


def _prepare_destination(source: str, destination: str, overwrite: bool) -> str:
    """Create the destination folder; refuse a folder, the source itself or (unless asked) a file.

    Returns the destination folder.
    """
    if os.path.isdir(destination):
        raise IsADirectoryError(errno.EISDIR, "destination is a directory, not a file name", destination)
    if os.path.lexists(destination):
        if os.path.exists(destination) and os.path.samefile(source, destination):
            raise ValueError(f"source and destination are the same file: {source!r}, {destination!r}")
        if not overwrite:
            raise FileExistsError(errno.EEXIST, _EXISTS, destination)
    folder = os.path.dirname(destination) or os.curdir
    os.makedirs(folder, exist_ok=True)
    return folder


def _publish(temp: str, destination: str, overwrite: bool) -> None:
    """Give the complete file ``temp`` its final name; without ``overwrite`` never replace one.

    A hard link refuses an existing name atomically, so two writers racing for the same
    destination cannot both win. On a file system without hard links the check and the
    rename are two steps.
    """
    if overwrite:
        os.replace(temp, destination)
        return
    try:
        os.link(temp, destination)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, _EXISTS, destination) from None
    except OSError:  # no hard links here (FAT, some network file systems)
        if os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, _EXISTS, destination) from None
        os.rename(temp, destination)
    else:
        os.unlink(temp)


def _copy_to_temp(source: str, folder: str, destination: str) -> str:
    """Copy ``source`` (data, permission bits, times) to a new temporary file in ``folder``,
    synced and checked against the source's size; an ``OSError`` names ``destination``."""
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=folder)
    try:
        with _open_for_copy(fd) as dst, open(source, "rb") as src:  # fd owned before anything can fail
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            copied, expected = os.fstat(dst.fileno()).st_size, os.fstat(src.fileno()).st_size
            if copied != expected:
                raise OSError(errno.EIO, f"short write ({copied} of {expected} bytes copied)")
            shutil.copystat(source, temp)
            os.fsync(dst.fileno())
    except OSError as exc:
        _discard(temp)
        if exc.filename in (None, temp):
            raise name_path(exc, destination) from None
        raise
    except BaseException:
        _discard(temp)
        raise
    return temp


def _open_for_copy(fd: int):
    """The buffered file object a copy is written to (a seam for fault injection)."""
    return os.fdopen(fd, "wb")


def _discard(temp: str) -> None:
    """Remove a temporary file after a failure (it may already be gone)."""
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass


def _copy_and_publish(source: str, destination: str, folder: str, overwrite: bool) -> None:
    temp = _copy_to_temp(source, folder, destination)
    try:
        _publish(temp, destination, overwrite)
    except BaseException:
        _discard(temp)
        raise
    fsync_dir(folder)


def copy_file(source: str, destination: str, *, overwrite: bool = False) -> None:
    """Copy a regular file to ``destination`` (a file name), creating its folder.

    Raises ``FileNotFoundError`` (missing source), ``IsADirectoryError`` (either side is a
    folder), ``FileExistsError`` (destination exists and not ``overwrite``) and
    ``ValueError`` (same file, or a source that is not a regular file). Permission bits
    and times are copied as ``shutil.copy2`` does; a symbolic link source is followed.
    """
    _check_source(source)
    folder = _prepare_destination(source, destination, overwrite)
    _copy_and_publish(source, destination, folder, overwrite)


def move_by_copy(source: str, destination: str, *, overwrite: bool = False) -> None:
    """Move by copying to a synced temporary file beside the destination, then removing the source.

    The path :func:`move_file` takes across file systems (or without hard links). If the
    source cannot be removed afterwards, the error propagates and both files remain.
    """
    _check_source(source)
    folder = _prepare_destination(source, destination, overwrite)
    _copy_publish_remove(source, destination, folder, overwrite)


def _copy_publish_remove(source: str, destination: str, folder: str, overwrite: bool) -> None:
    _copy_and_publish(source, destination, folder, overwrite)
    _remove_source(source)


def _remove_source(source: str) -> None:
    try:
        os.unlink(source)
    except FileNotFoundError:  # removed meanwhile by someone else: the move is still done
        pass


def move_file(source: str, destination: str, *, overwrite: bool = False) -> None:
    """Move a regular file to ``destination`` (a file name), creating its folder.

    Same errors as :func:`copy_file`. Within one file system the file is renamed (its
    inode and times are kept; a symbolic link source is moved as the link); across file
    systems it is copied (following a link) and the source removed, see :func:`move_by_copy`.
    """
    _check_source(source)
    folder = _prepare_destination(source, destination, overwrite)
    try:
        if overwrite:
            os.replace(source, destination)
        else:  # a hard link refuses an existing destination atomically
            os.link(source, destination, follow_symlinks=False)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, _EXISTS, destination) from None
    except OSError as exc:
        if overwrite and exc.errno != errno.EXDEV:
            raise
        # another file system (EXDEV), or one without hard links: copy, then remove
        _copy_publish_remove(source, destination, folder, overwrite)
        return
    if not overwrite:
        _remove_source(source)  # the file now lives under its new name; drop the old one
    fsync_dir(folder)
