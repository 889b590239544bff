"""The product's exceptions: one root, a small tree under it.

Each class also subclasses the builtin that callers already catch (``ValueError``,
``LookupError``, ``RuntimeError``, ``OSError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "DgxMusicError",
    "AudioValidationError",
    "AudioDecodeError",
    "BatchExportError",
    "StorageError",
    "GenerationNotFoundError",
    "InvalidTransitionError",
    "GenerationError",
    "ModelNotAvailableError",
    "GenerationRequestError",
    "JobError",
    "JobCancelledError",
    "JobInterruptedError",
    "LeaseLostError",
    "QueueFullError",
    "Terminated",
]


class DgxMusicError(Exception):
    """Root of every error this package raises on purpose."""


class AudioValidationError(DgxMusicError, ValueError):
    """Audio, a sample rate or a format argument has a wrong value (NaN, empty, bad shape...)."""


class AudioDecodeError(DgxMusicError, ValueError):
    """A file exists but cannot be decoded as audio (empty, truncated, not audio, unsupported)."""


class BatchExportError(DgxMusicError, RuntimeError):
    """Some items of a batch export failed; the others were written.

    ``results`` holds one entry per input item, in input order: ``(path, size)`` for an
    item that was written, ``None`` for one that failed. ``failures`` maps the index of
    each failed item to the exception it raised.
    """

    def __init__(self, results, failures):
        self.results = list(results)
        self.failures = dict(failures)
        details = "; ".join(
            f"item {index}: {type(exc).__name__}: {exc}" for index, exc in sorted(self.failures.items())
        )
        written = sum(result is not None for result in self.results)
        super().__init__(
            f"{len(self.failures)} of {len(self.results)} exports failed "
            f"({written} written): {details}"
        )


class StorageError(DgxMusicError):
    """The generation history refused or could not complete an operation."""


class GenerationNotFoundError(StorageError, LookupError):
    """No generation has the given id."""


class InvalidTransitionError(StorageError, ValueError):
    """A status change that the generation's life cycle does not allow."""


class GenerationError(DgxMusicError, RuntimeError):
    """The generation engine could not produce audio."""


class ModelNotAvailableError(GenerationError):
    """A model backend or its local weights are not installed."""


class GenerationRequestError(GenerationError, ValueError):
    """A generation request has a wrong value (empty prompt, duration or tempo out of range)."""


class JobError(DgxMusicError, RuntimeError):
    """A generation job could not run or be changed as asked."""


class JobCancelledError(JobError):
    """The job was cancelled while it ran; it stopped at a step boundary and left no file."""


class JobInterruptedError(JobError):
    """The job's runner is shutting down: the job stopped at a step boundary to be re-queued."""


class LeaseLostError(JobError):
    """Another process took over this job (its lease had expired); this run must stop
    without touching the job's row or file."""


class QueueFullError(JobError):
    """Too many jobs are waiting; ``retry_after`` says in how many seconds to try again."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = int(retry_after)


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (systemd, a container runtime, ``kill``): handled like
    Ctrl-C, so a foreground job ends ``failed`` ("terminated") and leaves no file."""

