"""Settings: every environment variable of the product is read here, and only here.

Settings are read when asked for (:func:`get_settings`), never at import time, so a
process (or a test) that changes the environment sees the change on the next call.

==========================  =====================================  ==========================
Variable                    Meaning                                Default
==========================  =====================================  ==========================
``AUDIO_OUTPUT_DIR``        base folder of the dated file tree     ``data/outputs``
``AUDIO_NORMALIZE``         loudness-normalize exports             ``true``
``AUDIO_TARGET_LUFS``       default export loudness, LUFS          ``-16.0``
``AUDIO_TRUE_PEAK_CEILING`` export true-peak ceiling, dBTP         ``-1.0``
``DATABASE_URL``            SQLAlchemy URL of the history          ``sqlite:///data/generations.db``
``DGX_MUSIC_BACKEND``       generation backend                     ``procedural``
``DGX_MUSIC_MODEL_PATH``    local MusicGen weights (folder/name)   unset
==========================  =====================================  ==========================
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping, Optional

__all__ = ["Settings", "get_settings", "parse_bool"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(name: str, raw: str) -> bool:
    """Parse a boolean environment value (``true/false``, ``1/0``, ``yes/no``, ``on/off``)."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be one of true/false, 1/0, yes/no, on/off; got {raw!r}")


def _parse_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number; got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """The product's settings, validated."""

    audio_output_dir: str = "data/outputs"
    audio_normalize: bool = True
    audio_target_lufs: float = -16.0
    audio_true_peak_ceiling: float = -1.0
    database_url: str = "sqlite:///data/generations.db"
    generation_backend: str = "procedural"
    model_path: Optional[str] = None


def get_settings(environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Read the settings from ``environ`` (default: ``os.environ``).

    Raises ``ValueError`` naming the variable when a value cannot be parsed.
    """
    env = os.environ if environ is None else environ
    defaults = Settings()

    def text(name: str, default: Optional[str]) -> Optional[str]:
        raw = env.get(name)
        return default if raw is None or raw.strip() == "" else raw.strip()

    normalize = env.get("AUDIO_NORMALIZE")
    target = env.get("AUDIO_TARGET_LUFS")
    ceiling = env.get("AUDIO_TRUE_PEAK_CEILING")
    return Settings(
        audio_output_dir=text("AUDIO_OUTPUT_DIR", defaults.audio_output_dir),
        audio_normalize=(
            defaults.audio_normalize
            if normalize is None or not normalize.strip()
            else parse_bool("AUDIO_NORMALIZE", normalize)
        ),
        audio_target_lufs=(
            defaults.audio_target_lufs
            if target is None or not target.strip()
            else _parse_float("AUDIO_TARGET_LUFS", target)
        ),
        audio_true_peak_ceiling=(
            defaults.audio_true_peak_ceiling
            if ceiling is None or not ceiling.strip()
            else _parse_float("AUDIO_TRUE_PEAK_CEILING", ceiling)
        ),
        database_url=text("DATABASE_URL", defaults.database_url),
        generation_backend=text("DGX_MUSIC_BACKEND", defaults.generation_backend).lower(),
        model_path=text("DGX_MUSIC_MODEL_PATH", None),
    )
