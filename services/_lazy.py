"""Lazy public names for a package: the module that defines a name loads on first use."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, MutableMapping, Tuple

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: MutableMapping[str, Any], locations: Dict[str, str]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of ``package`` (PEP 562).

    ``locations`` maps each public name to the relative module that defines it; a name is
    imported when first read and then cached in the package's ``namespace``.
    """

    def __getattr__(name: str) -> Any:
        try:
            module_name = locations[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module_name, package), name)
        namespace[name] = value
        return value

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(locations))

    return __getattr__, __dir__
