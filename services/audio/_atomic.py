"""Atomic file output: the final path holds either the complete new file or what it held before."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator

from ._fsutil import fsync_dir

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(path: Path, sync_directory: bool = True) -> Iterator[BinaryIO]:
    """Yield a writable binary file that becomes ``path`` only if the block succeeds.

    The data goes to a hidden temporary file in the same folder (parents are created;
    the leading dot keeps it out of the file manager's listings),
    is flushed and fsynced, then renamed over ``path`` (``os.replace``, atomic on POSIX).
    On any exception the temporary file is removed and ``path`` is untouched.
    ``sync_directory=False`` leaves the folder's fsync (which makes the rename durable)
    to the caller, who may do it once for many files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if sync_directory:
        fsync_dir(str(path.parent))
