"""Atomic file output: the final path holds either the complete new file or what it held before."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO

from ._fsutil import fsync_dir

__all__ = ["PendingOutput"]


class PendingOutput:
    """A hidden temporary file next to ``path`` that becomes ``path`` on :meth:`commit`.

    Parents are created; the leading dot keeps the temporary file out of the file
    manager's listings. Write to :attr:`handle`, then either :meth:`commit` (flush, fsync,
    rename over ``path`` with ``os.replace``, atomic on POSIX) or :meth:`discard`. Splitting
    the two lets a batch write its next file while an earlier one is being synced.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp")
        fd = os.open(self.temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        try:
            self.handle: BinaryIO = os.fdopen(fd, "w+b")
        except BaseException:
            os.close(fd)
            self._remove_temporary()
            raise

    def commit(self, sync_directory: bool = True) -> int:
        """Make the data durable and the file visible at ``path``; return its size in bytes.

        On failure the temporary file is removed and ``path`` is untouched.
        ``sync_directory=False`` leaves the folder's fsync (which makes the rename durable)
        to the caller, who may do it once for many files.
        """
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            size = os.fstat(self.handle.fileno()).st_size
            self.handle.close()
            os.replace(self.temporary, self.path)
        except BaseException:
            self.discard()
            raise
        if sync_directory:
            fsync_dir(str(self.path.parent))
        return size

    def discard(self) -> None:
        """Close and remove the temporary file; ``path`` is untouched."""
        with contextlib.suppress(OSError):
            self.handle.close()
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temporary)
