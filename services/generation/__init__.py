"""Music generation: ``MusicGenerationEngine`` and the prompt parser.

The public names load their modules on first use, so ``import services.generation`` stays
light (no torch, no transformers).

    from services.generation import MusicGenerationEngine, parse_prompt

    engine = MusicGenerationEngine()                      # procedural backend, 32 kHz
    audio, seconds = engine.generate_audio("dark techno in D minor at 128 BPM", duration=16.0)
    audio.shape                                           # torch.Size([2, 512000])
    engine.last_spec.bpm, engine.last_spec.key            # (128.0, 'D minor')
    parse_prompt("lofi hip hop at 85 bpm").bpm            # 85.0: the tempo hint for analysis
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

__all__ = [
    "MusicGenerationEngine",
    "GenerationResult",
    "PromptSpec",
    "parse_prompt",
    "SongSpec",
    "GENRES",
    "MOODS",
]

_LOCATIONS = {
    "MusicGenerationEngine": ".engine",
    "GenerationResult": ".engine",
    "PromptSpec": ".prompt",
    "parse_prompt": ".prompt",
    "GENRES": ".prompt",
    "MOODS": ".prompt",
    "SongSpec": ".procedural",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .engine import GenerationResult, MusicGenerationEngine
    from .procedural import SongSpec
    from .prompt import GENRES, MOODS, PromptSpec, parse_prompt


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)
