"""Audio services: export, measurement and the dated file tree.

The public names load their modules on first use, so ``import services.audio`` stays
light (no torch, no scipy, no analysis library).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AudioExporter",
    "AudioMetadataExtractor",
    "AudioFileManager",
    "LoudnessMeter",
    "LoudnessReport",
    "measure_loudness",
]

_LOCATIONS = {
    "AudioExporter": ".export",
    "AudioMetadataExtractor": ".metadata",
    "AudioFileManager": ".files",
    "LoudnessMeter": ".loudness",
    "LoudnessReport": ".loudness",
    "measure_loudness": ".loudness",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .export import AudioExporter
    from .files import AudioFileManager
    from .loudness import LoudnessMeter, LoudnessReport, measure_loudness
    from .metadata import AudioMetadataExtractor


def __getattr__(name: str) -> Any:
    try:
        module_name = _LOCATIONS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
