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
