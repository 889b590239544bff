"""The `dgx-music` command, end to end in a subprocess (the way a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def run(tmp_path):
    env = {
        **os.environ,
        "AUDIO_OUTPUT_DIR": str(tmp_path / "outputs"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
        "PYTHONPATH": str(ROOT),
    }

    def invoke(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
        )
        assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done

    return invoke


def test_generate_then_history_show_analyze_files(run, tmp_path):
    generated = json.loads(run("generate", "chill lofi hip hop in F major at 84 BPM", "--duration", "6",
                               "--seed", "3", "--json").stdout)
    path = Path(generated["file_path"])
    assert path.is_file() and path.is_relative_to(tmp_path / "outputs")
    assert generated["metadata"]["bpm"] == pytest.approx(84.0, abs=0.5)

    text = run("generate", "aggressive drum and bass at 174 BPM", "--duration", "5", "--seed", "4").stdout
    assert "Generated:" in text and "LUFS" in text and "BPM" in text

    history = json.loads(run("history", "--json").stdout)
    assert [item["status"] for item in history] == ["completed", "completed"]
    assert history[1]["id"] == generated["generation_id"]  # newest first
    assert "completed" in run("history", "--status", "completed").stdout

    shown = json.loads(run("show", generated["job_id"], "--json").stdout)
    assert shown["id"] == generated["generation_id"]
    assert generated["job_id"] in run("show", generated["generation_id"][:8]).stdout  # the file path names it

    (analysis,) = json.loads(run("analyze", str(path), "--json").stdout)  # always a list
    assert analysis["duration_seconds"] == pytest.approx(6.0, abs=1e-3)
    assert analysis["loudness_lufs"] == pytest.approx(generated["metadata"]["loudness_lufs"], abs=1e-6)
    table = run("analyze", str(path), str(path)).stdout
    assert table.count(str(path)) == 2 and "LUFS" in table

    listed = json.loads(run("files", "list", "--json").stdout)
    assert sorted(listed) == sorted(str(p) for p in (tmp_path / "outputs").rglob("*.wav"))
    stats = json.loads(run("files", "stats", "--json").stdout)
    assert stats["total_files"] == 2
    cleanup = json.loads(run("files", "cleanup", "--days", "1", "--json").stdout)
    assert cleanup == {"dry_run": True, "files": 0, "empty_directories_removed": 0}  # today's files are young
    assert path.is_file()


def test_normalize(run, tmp_path):
    t = np.arange(3 * 44100) / 44100
    source = tmp_path / "quiet.flac"
    soundfile.write(source, np.stack([0.05 * np.sin(2 * np.pi * 440 * t)] * 2).T, 44100)
    report = json.loads(run("normalize", str(source), str(tmp_path / "loud.wav"), "--target", "-14",
                            "--bit-depth", "PCM_24", "--json").stdout)
    assert report["output_lufs"] == pytest.approx(-14.0, abs=0.1)
    assert soundfile.info(tmp_path / "loud.wav").subtype == "PCM_24"


def test_db_init(run, tmp_path):
    assert "database ready" in run("db", "init").stdout
    assert (tmp_path / "history.db").is_file()


@pytest.mark.parametrize(
    "args, expect, message",
    [
        (["analyze", "missing.wav"], 1, "missing.wav"),
        (["normalize", "missing.wav", "out.wav"], 1, "missing.wav"),
        (["show", "no-such-job"], 1, "no generation"),
        (["generate", "   "], 1, "prompt"),
        (["generate", "house", "--duration", "-3"], 2, "positive"),
        (["history", "--status", "nonsense"], 2, "invalid choice"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code(run, tmp_path, args, expect, message):
    done = run(*args, expect=expect)
    assert message in done.stderr
    if expect == 1:
        assert len(done.stderr.strip().splitlines()) == 1
        assert done.stderr.startswith("dgx-music: error:")


def test_not_audio_is_a_clear_error(run, tmp_path):
    (tmp_path / "notes.wav").write_text("these are not samples")
    done = run("analyze", str(tmp_path / "notes.wav"), expect=1)
    assert "notes.wav" in done.stdout + done.stderr
