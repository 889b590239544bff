"""Atomic file output: the final path holds either the complete new file or what it held before.

Every write is checked: a failed or short write (a full disk, an I/O error), a failed
fsync or rename raises an ``OSError`` that names the final path and the cause, also under
``python -O`` (where soundfile's own check, an ``assert``, is gone); the temporary file is
then removed and the final path is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, Optional

from ._fsutil import fsync_dir, name_path

__all__ = ["PendingOutput", "CheckedWriter"]


def _open_for_writing(fd: int) -> BinaryIO:
    """The buffered file object over a new temporary file (a seam for fault injection)."""
    return os.fdopen(fd, "w+b")


class CheckedWriter:
    """A writable binary file that remembers its first failed or short write.

    libsndfile writes through callbacks that can only report a byte count (an exception
    there is printed and lost), so the failure is kept here and raised by
    :meth:`PendingOutput.check`. ``end`` is the furthest byte offset written, to compare with
    the file's size on disk.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.error: Optional[OSError] = None
        self.end = 0

    def write(self, data: Any) -> int:
        if self.error is not None:
            return 0
        wanted = len(memoryview(data).cast("B"))
        try:
            written = self.raw.write(data)
        except OSError as exc:
            self.error = exc
            return 0
        written = wanted if written is None else written
        if written < wanted:
            self.error = OSError(errno.EIO, f"short write ({written} of {wanted} bytes written)")
        with contextlib.suppress(OSError, ValueError):
            self.end = max(self.end, self.raw.tell())
        return written

    def __getattr__(self, name: str) -> Any:  # seek, tell, read, flush, fileno, close, ...
        return getattr(self.raw, name)


class PendingOutput:
    """A hidden temporary file next to ``path`` that becomes ``path`` on :meth:`commit`.

    Parents are created; the leading dot keeps the temporary file out of the file
    manager's listings. Write to :attr:`handle`, then either :meth:`commit` (check, flush,
    fsync, rename over ``path`` with ``os.replace``, atomic on POSIX) or :meth:`discard`.
    Splitting the two lets a batch write its next file while an earlier one is being synced.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp")
        fd = os.open(self.temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        try:
            self.handle = CheckedWriter(_open_for_writing(fd))
        except BaseException:
            os.close(fd)
            self._remove_temporary()
            raise

    def check(self) -> None:
        """Raise the first failed or short write as an ``OSError`` naming :attr:`path`."""
        if self.handle.error is not None:
            raise name_path(self.handle.error, self.path)

    def write_all(self, data: bytes) -> None:
        """Write ``data`` (a whole encoded file or a part of one), checked; on failure the
        temporary file is removed and the ``OSError`` names :attr:`path`."""
        try:
            self.handle.write(data)
            self.check()
        except BaseException as exc:
            self.fail(exc)

    def fail(self, exc: BaseException) -> NoReturn:
        """Discard after ``exc`` stopped a writer; raise the write error behind it if any.

        soundfile turns a short write into an ``AssertionError``: that becomes the
        ``OSError`` of the write (or, if none was seen, an ``EIO`` one), naming the path.
        """
        self.discard()
        if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: as they are
            raise exc
        if self.handle.error is not None:
            raise name_path(self.handle.error, self.path) from exc
        if isinstance(exc, AssertionError):
            raise OSError(errno.EIO, "incomplete write (the encoder wrote fewer frames than given)",
                          str(self.path)) from exc
        if isinstance(exc, OSError):
            raise name_path(exc, self.path) from None
        raise exc

    def commit(self, sync_directory: bool = True) -> int:
        """Make the data durable and the file visible at ``path``; return its size in bytes.

        On failure the temporary file is removed, ``path`` is untouched and the ``OSError``
        names ``path``. ``sync_directory=False`` leaves the folder's fsync (which makes the
        rename durable) to the caller, who may do it once for many files.
        """
        try:
            self.check()
            self.handle.flush()
            os.fsync(self.handle.fileno())
            size = os.fstat(self.handle.fileno()).st_size
            if size < self.handle.end:
                raise OSError(errno.EIO, f"short write ({size} of {self.handle.end} bytes on disk)")
            self.handle.close()
            os.replace(self.temporary, self.path)
        except OSError as exc:
            self.discard()
            raise name_path(exc, self.path) from exc
        except BaseException:
            self.discard()
            raise
        if sync_directory:
            fsync_dir(str(self.path.parent))
        return size

    def discard(self) -> None:
        """Close and remove the temporary file; ``path`` is untouched."""
        with contextlib.suppress(OSError, ValueError):
            self.handle.close()
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temporary)
