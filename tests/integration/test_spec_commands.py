"""The spec's "Testing" commands, run as written: from the repository root, in a
subprocess, with this virtualenv's Python (``pytest`` is ``sys.executable -m pytest``),
so they keep working.

Nothing is written into the repository: output folders, the history database,
pytest's temporary folders and coverage's data files all go to this test's tmp_path.
The inner runs would collect this file again; the environment variable GUARD tells
them to skip it, so a run never recurses. The coverage command runs the whole suite
again, so it runs only where FULL_RUN is set: scripts/test.sh, and so CI, sets it.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "spec" / "audio-services.txt"
GUARD = "DGX_MUSIC_INSIDE_SPEC_COMMAND"
FULL_RUN = "DGX_MUSIC_TEST_SPEC_COVERAGE"  # set: also run the whole-suite coverage command

pytestmark = pytest.mark.skipif(
    os.environ.get(GUARD) == "1", reason="running inside a spec command started by this file"
)

# The spec's "Testing" section, in its order.
UNIT = [
    "pytest tests/unit/test_audio_export.py -v",
    "pytest tests/unit/test_audio_metadata.py -v",
    "pytest tests/unit/test_audio_storage.py -v",
    "pytest tests/unit/test_audio_*.py -v",
    "pytest tests/integration/test_audio_pipeline.py -v -s",
]
COVERAGE = "pytest tests/ --cov=services.audio --cov-report=term"
COMMANDS = [*UNIT, COVERAGE]

# A measured process must not hand its coverage set-up (or pytest-xdist's worker
# identity) to the inner run: the inner run is a user's run, measured by itself or not at all.
INHERITED_NOT = re.compile(r"COVERAGE_.*|COV_CORE_.*|PYTEST_XDIST_.*|PYTEST_CURRENT_TEST|PYTEST_ADDOPTS")


def argv(command: str) -> list[str]:
    """The command as a POSIX shell in the repository root would run it: words split,
    file patterns expanded (sorted), ``pytest`` being this virtualenv's pytest."""
    words = shlex.split(command)
    assert words[0] == "pytest"
    expanded: list[str] = []
    for word in words[1:]:
        matches = sorted(glob.glob(word, root_dir=ROOT)) if set(word) & set("*?[") else []
        expanded.extend(matches or [word])
    return [sys.executable, "-m", "pytest", *expanded]


def run(command: str, tmp_path: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not INHERITED_NOT.fullmatch(name)}
    env.update({
        GUARD: "1",
        "AUDIO_OUTPUT_DIR": str(tmp_path / "outputs"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'generations.db'}",
        "COVERAGE_FILE": str(tmp_path / ".coverage"),
        # Settings, not arguments: pytest's cache and temporary folders out of the repository.
        "PYTEST_ADDOPTS": f"-p no:cacheprovider --basetemp={tmp_path / 'pytest'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return subprocess.run(argv(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def passed(done: subprocess.CompletedProcess) -> int:
    """The number of passed tests on pytest's summary line; the run must have exited 0."""
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    summary = re.search(r"=+ (.*\d+ passed.*) in [\d.]+s", done.stdout)
    assert summary, done.stdout[-3000:]
    assert not re.search(r"\d+ (failed|errors?)\b", summary.group(1)), summary.group(1)
    return int(re.search(r"(\d+) passed", summary.group(1)).group(1))


def test_the_commands_are_the_specs():
    if not SPEC.is_file():
        pytest.skip(f"the spec is not beside this checkout ({SPEC})")
    section = SPEC.read_text(encoding="utf-8").split("Testing\nUnit Tests", 1)[1].split("\nConfiguration", 1)[0]
    # The spec's text lost the line break before two headings ("... -vIntegration Tests").
    found = [re.sub(r"(Integration Tests|Test Coverage)$", "", line)
             for line in section.splitlines() if line.startswith("pytest ")]
    assert found == COMMANDS


def test_glob_expansion_matches_the_shells():
    files = argv("pytest tests/unit/test_audio_*.py -v")[3:-1]
    shell = subprocess.run(["sh", "-c", 'printf "%s\\n" tests/unit/test_audio_*.py'], cwd=ROOT, capture_output=True,
                           text=True, check=True, env={**os.environ, "LC_ALL": "C"}).stdout.split()
    assert files == shell and "tests/unit/test_audio_export.py" in files and len(files) >= 3


@pytest.mark.parametrize("command", UNIT, ids=lambda command: command.split(" ", 1)[1])
def test_unit_and_pipeline_commands_pass(command, tmp_path):
    done = run(command, tmp_path, timeout=600)
    count = passed(done)
    listed = re.findall(r"^(tests/\S+\.py)::", done.stdout, flags=re.MULTILINE)  # -v: a line per test
    assert len(listed) >= count > 0
    assert set(listed) == {word for word in argv(command)[3:] if word.endswith(".py")}
    assert not (tmp_path / ".coverage").exists()  # these commands measure nothing


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get(FULL_RUN) != "1",
                    reason=f"runs the whole suite again; scripts/test.sh (and so CI) sets {FULL_RUN}=1")
def test_coverage_command_prints_the_services_audio_table(tmp_path):
    """The whole suite again, serially, measured for services.audio (with the subprocesses
    that the CLI tests start): about 90 s alone on 2 cores, 2 minutes beside the rest of
    an ``-n 2`` run. Opt-in, so that a user's own ``pytest tests/ --cov=...`` does not
    run the suite twice."""
    done = run(COVERAGE, tmp_path, timeout=1500)
    assert passed(done) > 1000
    table = done.stdout[done.stdout.index("coverage: platform"):]
    rows = re.findall(r"^(services/\S+\.py) +\d+ +\d+ +(\d+)%$", table, flags=re.MULTILINE)
    names = {name for name, _ in rows}
    assert {"services/audio/export.py", "services/audio/metadata.py", "services/audio/files.py",
            "services/audio/loudness.py"} <= names
    assert all(name.startswith("services/audio/") for name in names), names  # --cov=services.audio only
    total = re.search(r"^TOTAL +\d+ +\d+ +(\d+)%$", table, flags=re.MULTILINE)
    assert total and int(total.group(1)) >= 90, table
    assert (tmp_path / ".coverage").is_file()  # the data went to COVERAGE_FILE, not the repository
