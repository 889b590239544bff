"""The fuzz targets of ``tests/fuzz/targets.py`` under Hypothesis (every run), and a short
coverage-guided atheris run where atheris is installed (``scripts/fuzz.py`` runs longer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import HEADER_BYTES, prompt_target, reader_target, seed_files

ROOT = Path(__file__).resolve().parents[2]
PROMPT_WORDS = ["at", "BPM", "bpm", "tempo", "in", "minor", "major", "key of", "#", "b", "flat", "3/4",
                "house", "dark", " ", "\n", "\t", "\x1b[31m", "\x00", "\u202e", "9" * 30, "120", "1e9", "."]


@settings(max_examples=200)
@given(st.one_of(st.binary(max_size=300),
                 st.lists(st.sampled_from(PROMPT_WORDS), max_size=12).map(lambda w: " ".join(w).encode()),
                 st.text(max_size=2100).map(lambda t: t.encode("utf-8", "surrogatepass"))))
@example(b"house at 100000 BPM")
@example(b"x" * 2001)
@example(b"\xff\xfe techno")  # not UTF-8: unpaired surrogates after surrogateescape
def test_prompt_target(data):
    prompt_target(data)


@settings(max_examples=150)
@given(st.binary(min_size=1, max_size=60))
@example(b"\x03\x8d\x00")  # a FLAC cut inside its header failed its first seek (found by atheris)
@example(b"\x00\x00\x00" + bytes([22, 0, 23, 0]))  # a WAV declaring 0 channels
def test_reader_target(data):
    reader_target(data)


def test_seed_files_are_valid_audio():
    import io

    import soundfile

    for content in seed_files():
        assert len(content) > HEADER_BYTES and soundfile.info(io.BytesIO(content)).frames == 2400


@pytest.mark.parametrize("target", ["prompt", "reader"])
def test_atheris_smoke_run(target):
    pytest.importorskip("atheris")
    done = subprocess.run([sys.executable, "scripts/fuzz.py", target, "-runs=1500", "-seed=1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 1500 runs" in done.stderr
