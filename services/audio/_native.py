"""The optional C extension :mod:`services.audio._kernels`, or ``None`` where it was not built.

``pip install`` compiles it where a C compiler is present (see ``setup.py``). The meter and
the exporter read :data:`kernels` each time they start work and fall back to NumPy and
SciPy when it is ``None``, with the same results; tests set it to ``None`` to check that.
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional

try:
    from . import _kernels as kernels
except ImportError:  # pragma: no cover - depends on the build
    kernels: Optional[ModuleType] = None  # type: ignore[no-redef]

__all__ = ["kernels"]
