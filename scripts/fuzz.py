#!/usr/bin/env python3
"""Coverage-guided fuzzing of the prompt parser or the audio reader with atheris.

    python scripts/fuzz.py prompt -runs=200000
    python scripts/fuzz.py reader -max_total_time=600

Arguments after the target's name go to libFuzzer. The targets are in
``tests/fuzz/targets.py``; the test suite runs the same targets under Hypothesis.
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

with atheris.instrument_imports(include=["services", "tests"]):
    from tests.fuzz import targets

TARGETS = {"prompt": targets.prompt_target, "reader": targets.reader_target}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    atheris.Setup([sys.argv[0], *sys.argv[2:]], TARGETS[sys.argv[1]])
    atheris.Fuzz()
