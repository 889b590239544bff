"""Shared fixtures."""

from __future__ import annotations

import pytest

from services.audio import _native

BUILT_KERNELS = _native.kernels


@pytest.fixture(params=["compiled", "numpy"])
def implementation(request, monkeypatch):
    """Run a test once on the compiled inner loops and once on the NumPy fallback that
    installs without a C compiler use (``services.audio._native.kernels`` set to None)."""
    if request.param == "compiled":
        if BUILT_KERNELS is None:
            pytest.skip("the C extension services.audio._kernels was not built")
        monkeypatch.setattr(_native, "kernels", BUILT_KERNELS)
    else:
        monkeypatch.setattr(_native, "kernels", None)
    return request.param
