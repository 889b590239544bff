"""Generation history: every generation job, its status, file and measured metadata.

SQLAlchemy 2 over SQLite (default ``sqlite:///data/generations.db``) or PostgreSQL
(``DATABASE_URL=postgresql://...``, extra ``dgx-music[postgres]``). The schema is
created by Alembic migrations on first use. The public names load their modules on first
use, so ``import services.storage`` costs nothing until one is read (SQLAlchemy takes
0.2 s to import)::

    from services.storage import get_session, create_generation, complete_generation

    with get_session() as session:
        generation = create_generation(session=session, prompt="lofi piano", model_name="procedural",
                                       duration_seconds=8.0, sample_rate=32000, channels=2,
                                       file_path="data/outputs/2025/01/01/gen_1.wav")
    with get_session() as session:
        complete_generation(session=session, generation_id=generation.id, generation_time=1.5,
                            file_size_bytes=1_024_044, metadata={"bpm": 120.0})
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Generation",
    "GenerationStatus",
    "Prompt",
    "StorageValueError",
    "complete_generation",
    "count_generations",
    "create_generation",
    "delete_generation",
    "dispose_engines",
    "fail_generation",
    "get_all_generations",
    "get_database_stats",
    "get_engine",
    "get_generation",
    "get_most_used_prompts",
    "get_pending_generations",
    "get_prompt_by_text",
    "get_session",
    "init_db",
    "reset_database",
    "track_prompt_usage",
    "update_generation_status",
]

_LOCATIONS = {
    **{name: ".crud" for name in (
        "complete_generation", "count_generations", "create_generation", "delete_generation",
        "fail_generation", "get_all_generations", "get_database_stats", "get_generation",
        "get_most_used_prompts", "get_pending_generations", "get_prompt_by_text",
        "track_prompt_usage", "update_generation_status")},
    **{name: ".database" for name in ("dispose_engines", "get_engine", "get_session", "init_db", "reset_database")},
    **{name: ".models" for name in ("ALLOWED_TRANSITIONS", "Generation", "GenerationStatus", "Prompt")},
    "StorageValueError": ".validation",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .crud import (
        complete_generation,
        count_generations,
        create_generation,
        delete_generation,
        fail_generation,
        get_all_generations,
        get_database_stats,
        get_generation,
        get_most_used_prompts,
        get_pending_generations,
        get_prompt_by_text,
        track_prompt_usage,
        update_generation_status,
    )
    from .database import dispose_engines, get_engine, get_session, init_db, reset_database
    from .models import ALLOWED_TRANSITIONS, Generation, GenerationStatus, Prompt
    from .validation import StorageValueError


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)
