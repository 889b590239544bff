"""Argument checks of the generation history, and metadata made storable as JSON.

Wrong types raise ``TypeError``; wrong values raise :class:`StorageValueError`
(a ``ValueError``). Each message shows the offending value with ``!r``.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Any, Optional

from ..errors import StorageError
from .models import MAX_CHANNELS, GenerationStatus

__all__ = ["StorageValueError", "json_safe"]


class StorageValueError(StorageError, ValueError):
    """A value given to the generation history is out of range (nothing was changed)."""


def check_text(name: str, value: Any, *, max_length: Optional[int] = None) -> str:
    """A non-blank string, stripped of surrounding whitespace."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str; got {type(value).__name__} {value!r}")
    stripped = value.strip()
    if not stripped:
        raise StorageValueError(f"{name} must not be empty or blank; got {value!r}")
    if max_length is not None and len(stripped) > max_length:
        raise StorageValueError(
            f"{name} must be at most {max_length} characters; got {len(stripped)}: {value!r}"
        )
    return stripped


def check_prompt(value: Any) -> str:
    """A prompt as :func:`services._text.clean_prompt` accepts it (at most 2,000 characters,
    no control characters; line breaks and tabs become spaces)."""
    from .._text import clean_prompt

    check_text("prompt", value)
    try:
        return clean_prompt(value)
    except ValueError as exc:
        raise StorageValueError(str(exc)) from None


def check_optional_text(name: str, value: Any, *, max_length: Optional[int] = None) -> Optional[str]:
    return None if value is None else check_text(name, value, max_length=max_length)


def check_path(name: str, value: Any) -> str:
    """A non-blank path (``str`` or ``os.PathLike``) as ``str``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike; got {type(value).__name__} {value!r}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a text path; got {value!r}")
    if not text.strip():
        raise StorageValueError(f"{name} must not be empty; got {value!r}")
    return text


def check_int(name: str, value: Any, *, minimum: int, maximum: Optional[int] = None) -> int:
    """An integer (numpy integers accepted, bool refused) within ``[minimum, maximum]``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int; got bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise StorageValueError(f"{name} must be {bounds}; got {value!r}")
    return number


def check_float(name: str, value: Any, *, positive: bool) -> float:
    """A finite real number, > 0 when ``positive`` else >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise StorageValueError(f"{name} must be finite; got {value!r}")
    if positive and number <= 0:
        raise StorageValueError(f"{name} must be > 0; got {value!r}")
    if not positive and number < 0:
        raise StorageValueError(f"{name} must be >= 0; got {value!r}")
    return number


def check_channels(value: Any) -> int:
    return check_int("channels", value, minimum=1, maximum=MAX_CHANNELS)


def check_status(value: Any) -> GenerationStatus:
    """A :class:`GenerationStatus` from a member or its string value."""
    if isinstance(value, GenerationStatus):
        return value
    if not isinstance(value, str):
        raise TypeError(f"status must be a GenerationStatus or str; got {type(value).__name__} {value!r}")
    try:
        return GenerationStatus(value.strip().lower())
    except ValueError:
        allowed = ", ".join(status.value for status in GenerationStatus)
        raise StorageValueError(f"status must be one of {allowed}; got {value!r}") from None


def check_generation_id(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"generation_id must be a str; got {type(value).__name__} {value!r}")
    return value


def json_safe(value: Any, *, _path: str = "metadata") -> Any:
    """A copy of ``value`` that every backend stores as valid JSON.

    numpy/torch scalars and arrays become Python numbers and lists; NaN and +-inf
    become ``None`` (JSON has no such numbers; e.g. the loudness of silence is -inf);
    tuples and sets become lists; paths, enums and datetimes become strings.
    Mapping keys must be strings. Anything else raises ``TypeError`` naming the item.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return json_safe(value.tolist(), _path=_path)
    if isinstance(value, Enum):
        return json_safe(value.value, _path=_path)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{_path} keys must be str; got {type(key).__name__} {key!r}")
            result[key] = json_safe(item, _path=f"{_path}[{key!r}]")
        return result
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [json_safe(item, _path=f"{_path}[{index}]") for index, item in enumerate(items)]
    raise TypeError(f"{_path} is not JSON-storable: {type(value).__name__} {value!r}")


def check_metadata(value: Any) -> Optional[dict[str, Any]]:
    """``None`` or a mapping with str keys, made :func:`json_safe`."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"metadata must be a mapping or None; got {type(value).__name__} {value!r}")
    return json_safe(value)
