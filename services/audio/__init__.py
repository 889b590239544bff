"""Audio services: export, measurement and the dated file tree.

The public names load their modules on first use, so ``import services.audio`` stays
light (no torch, no scipy, no analysis library).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)
