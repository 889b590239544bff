"""The command line as a hostile user meets it, each case in a subprocess: read-only commands
create nothing, a closed pipe is quiet, terminal output is escaped, id prefixes match
literally, integer options are range-checked, errors name the flag typed, ``normalize``
refuses what ``analyze`` refuses and never overwrites silently, JSON is stable."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from services.cli import build_parser
from services.generation import GENRES, MOODS

ROOT = Path(__file__).resolve().parents[2]


def command(folder: Path):
    env = {
        **os.environ,
        "AUDIO_OUTPUT_DIR": str(folder / "outputs"),
        "DATABASE_URL": f"sqlite:///{folder / 'history.db'}",
        "PYTHONPATH": str(ROOT),
    }

    def invoke(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                              env=env, cwd=folder, timeout=300)
        assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        if expect == 1:
            assert done.stderr.startswith("dgx-music: error:") and len(done.stderr.strip().splitlines()) == 1
        return done

    invoke.env = env
    return invoke


@pytest.fixture()
def run(tmp_path):
    return command(tmp_path)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A folder with a history of one generated track: (run, folder, the generate JSON)."""
    folder = tmp_path_factory.mktemp("recorded")
    invoke = command(folder)
    generated = json.loads(invoke("generate", "house\tat 124 BPM\nin A minor", "--duration", "4", "--seed", "1",
                                  "--json").stdout)
    return invoke, folder, generated


def created_files(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.startswith(".coverage"))


def test_read_only_commands_create_nothing(run, tmp_path):
    assert run("history").stdout.strip() == "no generations recorded yet"
    assert json.loads(run("history", "--json").stdout) == []
    assert "nothing recorded yet" in run("show", "abc", expect=1).stderr
    assert run("files", "list").stdout == ""
    assert json.loads(run("files", "stats", "--json").stdout)["total_files"] == 0
    run("analyze", "missing.wav", expect=1)
    assert created_files(tmp_path) == []


def test_a_closed_pipe_ends_quietly(run, tmp_path):
    for args, codes in ((["files", "stats"], {141}), (["generate", "--help"], {0, 141})):
        process = subprocess.Popen([sys.executable, "-m", "services.cli", *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=run.env, cwd=tmp_path)
        process.stdout.close()  # the reader is gone before the first line is written
        error = process.stderr.read()
        process.stderr.close()
        assert process.wait(timeout=120) in codes and error == b""  # 141 as for SIGPIPE


def test_generate_shows_confidences_and_absolute_json_paths(recorded):
    run, folder, generated = recorded
    assert Path(generated["file_path"]).is_absolute() and Path(generated["file_path"]).is_file()
    assert generated["metadata"]["bpm_confidence"] > 0
    text = run("generate", "techno at 130 BPM", "--duration", "3", "--seed", "2").stdout
    tempo = next(line for line in text.splitlines() if line.startswith("Tempo:"))
    key = next(line for line in text.splitlines() if line.startswith("Key:"))
    # The procedural renderer's tempo and key are the track's, shown beside what was measured.
    assert "130.0 BPM (rendered; measured " in tempo and "BPM, conf. " in tempo
    assert "(rendered; measured " in key


def test_history_keeps_one_line_per_record_and_the_prompt_as_the_engine_read_it(recorded):
    run, _, generated = recorded
    shown = json.loads(run("show", generated["job_id"], "--json").stdout)
    assert shown["prompt"] == "house at 124 BPM in A minor"  # tab and newline became spaces
    table = run("history").stdout.splitlines()
    assert len(table) == 2 + len(json.loads(run("history", "--json").stdout))


def test_id_prefixes_match_literally(recorded):
    run, _, generated = recorded
    record_id = generated["generation_id"]
    assert record_id in run("show", record_id[:6]).stdout
    for pattern in ("%", "_", "%" + record_id[1:4], "_" + record_id[1:6], record_id[:3] + "%"):
        assert "no generation" in run("show", pattern, expect=1).stderr


@pytest.mark.parametrize("args, message", [
    (["history", "--limit", "99999999999999999999999"], "argument --limit: expected a whole number from 1"),
    (["history", "--offset", "-1"], "argument --offset"),
    (["generate", "house", "--seed", "9" * 30], "argument --seed"),
    (["files", "cleanup", "--days", "99999999"], "argument --days"),
    (["serve", "--workers", "100000"], "argument --workers"),
    (["normalize", "a.wav", "b.wav", "--target", "5"], "argument --target: expected LUFS between -70 and 0"),
    (["normalize", "a.wav", "b.wav", "--ceiling", "nan"], "argument --ceiling"),
])
def test_usage_errors_name_the_flag(run, args, message):
    assert message in run(*args, expect=2).stderr


@pytest.mark.parametrize("args, message", [
    (["generate", "house at 100000 BPM"], "tempo must be between 30 and 300 BPM"),
    (["generate", "house at 1000 BPM"], "tempo must be between 30 and 300 BPM"),
    (["generate", "house at 9" + "0" * 400 + " BPM"], "tempo must be between 30 and 300 BPM"),
    (["generate", "dark \x1b[31mtechno"], "control characters"),
    (["generate", "x" * 2001], "at most 2000 characters"),
    (["generate", "house", "--duration", "100000"], "--duration must be at most"),
    (["files", "list", "--since", "2026-02-01", "--until", "2026-01-01"],
     "--since 2026-02-01 is after --until 2026-01-01"),
])
def test_errors_name_what_the_user_typed(run, tmp_path, args, message):
    error = run(*args, expect=1).stderr
    assert message in error and "datetime" not in error and "\x1b" not in error
    assert created_files(tmp_path) == []


def write_tone(path: Path, subtype: str, seconds: float = 2.0, rate: int = 44100) -> None:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, np.stack([0.05 * np.sin(2 * np.pi * 440 * t)] * 2).T, rate, subtype=subtype)


def test_normalize_refuses_a_truncated_file_like_analyze(run, tmp_path):
    write_tone(tmp_path / "whole.wav", "PCM_16")
    data = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    assert "truncated" in run("analyze", "cut.wav", expect=1).stderr
    assert "truncated" in run("normalize", "cut.wav", "out.wav", expect=1).stderr
    assert not (tmp_path / "out.wav").exists()


def test_normalize_keeps_resolution_and_never_overwrites_without_force(run, tmp_path):
    write_tone(tmp_path / "in24.flac", "PCM_24")
    report = json.loads(run("normalize", "in24.flac", "out.wav", "--json").stdout)
    assert report["bit_depth"] == "PCM_24" and soundfile.info(tmp_path / "out.wav").subtype == "PCM_24"
    assert report["input"] == str(tmp_path / "in24.flac") and report["output"] == str(tmp_path / "out.wav")
    (tmp_path / "taken.wav").write_bytes(b"keep me")
    error = run("normalize", "in24.flac", "taken.wav", expect=1).stderr
    assert "OUT exists (add --force to replace it)" in error and "taken.wav" in error
    assert (tmp_path / "taken.wav").read_bytes() == b"keep me"
    run("normalize", "in24.flac", "taken.wav", "--force", "--bit-depth", "PCM_16")
    assert soundfile.info(tmp_path / "taken.wav").subtype == "PCM_16"


def test_analyze_json_is_always_a_list_and_the_table_escapes_names(run, tmp_path):
    name = "evil\x1b[31mred.wav"
    write_tone(tmp_path / name, "PCM_16")
    assert "--bpm-hint must be between" in run("analyze", name, "--bpm-hint", "1e300", expect=1).stderr
    (listed,) = json.loads(run("analyze", name, "--json").stdout)
    assert listed["file"] == str(tmp_path / name) and "bpm_confidence" in listed
    table = run("analyze", name).stdout
    assert "\x1b" not in table and "evil\\x1b[31mred.wav" in table
    assert table.splitlines()[0].split() == ["file", "duration", "LUFS", "dBTP", "LRA", "BPM", "BPM", "conf.",
                                             "key", "key", "conf.", "peak"]


def test_files_stats_is_a_table_and_json(recorded):
    run, folder, generated = recorded
    count = len(json.loads(run("files", "list", "--json").stdout))  # other tests may add tracks to the folder
    table = run("files", "stats").stdout
    assert "{" not in table and f"Files:        {count}" in table and f"File types:   .wav {count}" in table
    stats = json.loads(run("files", "stats", "--json").stdout)
    assert stats["total_files"] >= 1 and Path(stats["newest_file"]).is_absolute()
    assert all(Path(p).is_absolute() for p in json.loads(run("files", "list", "--json").stdout))


def test_generate_help_lists_the_prompt_words(run):
    text = run("generate", "--help").stdout
    for word in GENRES + MOODS:
        assert word in text
    assert "examples:" in text and "BPM" in text and "3/4" in text


def test_every_option_has_a_help_text():
    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from parsers(child)

    undocumented = [
        f"{parser.prog} {action.option_strings or action.dest}"
        for parser in parsers(build_parser()) for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert undocumented == []
