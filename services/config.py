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
``DGX_MUSIC_API_KEYS``      comma-separated bearer keys of the API unset (no key needed)
``DGX_MUSIC_QUEUE_LIMIT``   most jobs waiting before 429           ``100``
``DGX_MUSIC_MAX_UPLOAD_MB`` largest upload to analyse, MB          ``200``
``DGX_MUSIC_LEASE_SECONDS`` a job's lease without a heartbeat, s   ``30``
``DGX_MUSIC_MAX_ATTEMPTS``  runs of an interrupted job, at most    ``3``
``DGX_MUSIC_SHUTDOWN_GRACE`` s a running job may finish on SIGTERM ``30``
==========================  =====================================  ==========================
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

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


def _parse_number(name: str, raw: str, kind, minimum):
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {'whole ' if kind is int else ''}number; got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}; got {raw!r}")
    return value


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
    api_keys: Tuple[str, ...] = field(default=(), repr=False)  # secrets: never in a repr
    queue_limit: int = 100
    max_upload_mb: float = 200.0
    lease_seconds: float = 30.0
    max_attempts: int = 3
    shutdown_grace_seconds: float = 30.0

    @property
    def heartbeat_seconds(self) -> float:
        """How often a running job's process renews its lease: a sixth of the lease."""
        return self.lease_seconds / 6.0

    @property
    def sweep_seconds(self) -> float:
        """How often runners look for jobs whose process died: a third of the lease."""
        return self.lease_seconds / 3.0


def get_settings(environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Read the settings from ``environ`` (default: ``os.environ``).

    Raises ``ValueError`` naming the variable when a value cannot be parsed.
    """
    env = os.environ if environ is None else environ
    defaults = Settings()

    def text(name: str, default: Optional[str]) -> Optional[str]:
        raw = env.get(name)
        return default if raw is None or raw.strip() == "" else raw.strip()

    def number(name: str, kind, minimum, default):
        raw = env.get(name)
        return default if raw is None or not raw.strip() else _parse_number(name, raw.strip(), kind, minimum)

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
        api_keys=_parse_keys(env.get("DGX_MUSIC_API_KEYS")),
        queue_limit=number("DGX_MUSIC_QUEUE_LIMIT", int, 1, defaults.queue_limit),
        max_upload_mb=number("DGX_MUSIC_MAX_UPLOAD_MB", float, 0.001, defaults.max_upload_mb),
        lease_seconds=number("DGX_MUSIC_LEASE_SECONDS", float, 1.0, defaults.lease_seconds),
        max_attempts=number("DGX_MUSIC_MAX_ATTEMPTS", int, 1, defaults.max_attempts),
        shutdown_grace_seconds=number("DGX_MUSIC_SHUTDOWN_GRACE", float, 0.0, defaults.shutdown_grace_seconds),
    )


def _parse_keys(raw: Optional[str]) -> Tuple[str, ...]:
    """``DGX_MUSIC_API_KEYS``: comma-separated keys, blanks ignored; each key at least 8
    visible ASCII characters (what an ``Authorization: Bearer`` header can carry)."""
    if raw is None:
        return ()
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    for key in keys:
        if len(key) < 8 or not all(33 <= ord(char) <= 126 for char in key):
            raise ValueError(
                "DGX_MUSIC_API_KEYS must hold keys of at least 8 visible ASCII characters, "
                f"separated by commas; one key has {len(key)} characters"
            )
    return keys
