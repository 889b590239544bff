"""The declared public surface of services.audio (services.storage and services.generation pin
theirs in their own tests), and light imports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = {
    "services.audio": {
        "AudioExporter", "AudioMetadataExtractor", "AudioFileManager",
        "LoudnessMeter", "LoudnessReport", "measure_loudness",
    },
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_pinned_and_resolves(module_name):
    module = importlib.import_module(module_name)
    assert set(module.__all__) == PUBLIC[module_name]
    for name in module.__all__:
        assert getattr(module, name) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        getattr(module, "not_a_public_name")


@pytest.mark.parametrize("module_name", ["services", "services.audio", "services.generation", "services.config"])
def test_import_is_light(module_name):
    """Importing a package loads no torch, scipy, transformers or analysis library."""
    heavy = ["torch", "scipy", "transformers", "librosa", "soundfile", "sqlalchemy"]
    code = f"import sys, {module_name}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
