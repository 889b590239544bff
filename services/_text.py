"""Text from users: prompts checked the same way at every entry point (CLI, Python API, HTTP
API, history), and anything shown on a terminal escaped.

A prompt is at most :data:`MAX_PROMPT_CHARS` characters. Line breaks and tabs become
spaces; any other control character (escape sequences, NUL, DEL, C1 controls), the
Unicode bidirectional overrides and unpaired surrogates (bytes that are not UTF-8) are refused, so a stored prompt can neither drive a terminal
nor break a table.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from .errors import GenerationRequestError

__all__ = ["MAX_PROMPT_CHARS", "clean_prompt", "terminal_safe"]

MAX_PROMPT_CHARS = 2000
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\r\v\f]")
# Bidirectional embeddings, overrides and isolates reorder what a terminal shows.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_control(character: str) -> bool:
    """Control characters, bidi overrides, and unpaired surrogates (undecodable bytes of argv)."""
    return unicodedata.category(character) in ("Cc", "Cs") or character in _BIDI_CONTROLS


def clean_prompt(prompt: Any, name: str = "prompt") -> str:
    """``prompt`` with line breaks and tabs turned into spaces and surrounding space removed.

    Raises ``TypeError`` for a non-str and :class:`~services.errors.GenerationRequestError`
    (a ``ValueError``) naming ``name`` for an empty prompt, one longer than
    :data:`MAX_PROMPT_CHARS` characters, or one holding another control character.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"{name} must be a str; got {type(prompt).__name__}")
    text = _WHITESPACE_CONTROLS.sub(" ", prompt).strip()
    if not text:
        raise GenerationRequestError(f"{name} must not be empty; got {terminal_safe(repr(prompt))}")
    if len(text) > MAX_PROMPT_CHARS:
        raise GenerationRequestError(f"{name} must be at most {MAX_PROMPT_CHARS} characters; got {len(text)}")
    for position, character in enumerate(text):
        if _is_control(character):
            raise GenerationRequestError(
                f"{name} must not contain control characters; found U+{ord(character):04X} "
                f"at character {position + 1}"
            )
    return text


def terminal_safe(text: Any) -> str:
    """``str(text)`` with every control character (and bidi override) shown as an escape
    such as ``\\x1b`` or ``\\u202e``, so printing it cannot move the cursor, change colours
    or break a line."""
    text = str(text)
    if not any(_is_control(character) for character in text):
        return text
    return "".join(_escape(character) if _is_control(character) else character for character in text)


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
