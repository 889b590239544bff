"""What each `dgx-music` command imports, in a fresh process: only what it uses.

A cold start pays for every module a command imports (torch alone takes 2-3 s, Alembic
0.3 s, ``scipy.fft`` 0.2 s on a 2-core machine), so each command runs here in its own
interpreter, and the modules loaded when it returns are checked against the heavy ones it
must not touch. ``benchmarks/bench_cli.py`` shows the time this saves.
"""

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

# Runs ``main(argv)`` and writes the top-level and dotted names of sys.modules to a file.
_RUNNER = """
import contextlib, io, json, sys
out, argv = sys.argv[1], sys.argv[2:]
code = None
with contextlib.redirect_stdout(io.StringIO()):
    try:
        from services.cli import main
        code = main(argv)
    except SystemExit as exc:  # --help
        code = exc.code
with open(out, "w") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""

TORCH = {"torch", "transformers"}
ALEMBIC = {"alembic"}
SCIPY = {"scipy", "numpy.f2py"}  # scipy.fft pulls numpy.f2py in through its array-API layer
AUDIO_WORK = {"numpy", "soundfile", "services.audio.export", "services.audio.metadata",
              "services.audio.loudness", "services.audio.tempo", "services.audio.key",
              "services.generation", "services.pipeline"}
DATABASE = {"sqlalchemy", "services.storage.database", "services.storage.crud", "services.storage.models"}
EVERYTHING_HEAVY = TORCH | ALEMBIC | SCIPY | AUDIO_WORK | DATABASE


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A current history with one generation, and a 16 s stereo WAV to analyse."""
    folder = tmp_path_factory.mktemp("cold")
    env = {**os.environ, "AUDIO_OUTPUT_DIR": str(folder / "outputs"),
           "DATABASE_URL": f"sqlite:///{folder / 'history.db'}", "PYTHONPATH": str(ROOT),
           "DGX_MUSIC_BACKEND": "procedural"}
    loaded(env, folder, "db", "init")
    t = np.arange(16 * 32000) / 32000
    tone = 0.25 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 2 * t) > 0)  # 120 BPM pulses
    soundfile.write(folder / "tone.wav", np.stack([tone, tone]).T, 32000, subtype="PCM_16")
    return env, folder


def loaded(env: dict, folder: Path, *argv: str) -> set:
    """Modules loaded by ``dgx-music ARGV`` in a fresh interpreter (it must succeed)."""
    out = folder / "modules.json"
    done = subprocess.run([sys.executable, "-c", _RUNNER, str(out), *argv],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["code"] == 0, (argv, done.stderr)
    return set(report["modules"])


def present(modules: set, names: set) -> set:
    """Which of ``names`` (packages or modules) are among ``modules``."""
    return {name for name in names if any(m == name or m.startswith(name + ".") for m in modules)}


@pytest.mark.parametrize(
    "argv, forbidden",
    [
        (["--help"], EVERYTHING_HEAVY),
        (["generate", "techno at 128 BPM", "--duration", "2", "--seed", "1"], TORCH | ALEMBIC | SCIPY),
        (["analyze", "{tone}"], TORCH | ALEMBIC | SCIPY | DATABASE),
        (["analyze", "{tone}", "--no-bpm", "--no-key"], TORCH | ALEMBIC | SCIPY | DATABASE),
        (["history"], TORCH | ALEMBIC | SCIPY | AUDIO_WORK | DATABASE),  # sqlite3 alone
        (["history", "--json", "--status", "completed"], TORCH | ALEMBIC | SCIPY | AUDIO_WORK | DATABASE),
        (["files", "list"], TORCH | ALEMBIC | SCIPY | AUDIO_WORK | DATABASE),
        (["files", "stats"], TORCH | ALEMBIC | SCIPY | AUDIO_WORK | DATABASE),
        (["db", "init"], TORCH | ALEMBIC | SCIPY | AUDIO_WORK),  # already current
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_command_loads_no_heavy_module_it_does_not_use(workspace, argv, forbidden):
    env, folder = workspace
    argv = [arg.format(tone=folder / "tone.wav") for arg in argv]
    assert present(loaded(env, folder, *argv), forbidden) == set()


def test_show_loads_no_audio_module(workspace):
    env, folder = workspace
    job_id = next((folder / "outputs").rglob("*.wav"), None)
    if job_id is None:  # the generate case above may not have run (-k)
        loaded(env, folder, "generate", "lofi", "--duration", "1", "--seed", "2")
        job_id = next((folder / "outputs").rglob("*.wav"))
    modules = loaded(env, folder, "show", job_id.stem)
    assert present(modules, TORCH | ALEMBIC | SCIPY | AUDIO_WORK) == set()


def test_normalize_loads_no_torch_nor_database(workspace):
    from services.audio import loudness

    env, folder = workspace
    modules = loaded(env, folder, "normalize", str(folder / "tone.wav"), str(folder / "loud.wav"))
    forbidden = TORCH | ALEMBIC | DATABASE
    if loudness.implementation() == "compiled":  # the NumPy fallback filters with scipy.signal
        forbidden |= SCIPY
    assert present(modules, forbidden) == set()


def test_the_checks_see_what_a_command_does_load(workspace, tmp_path):
    """The same probe finds the modules when they are used: Alembic when a migration must
    run, the audio modules when a command works on audio."""
    env, folder = workspace
    fresh = {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    # (``history`` on a missing history creates nothing, so no migration: ``db init`` runs one)
    assert present(loaded(fresh, folder, "db", "init"), ALEMBIC | {"sqlalchemy"}) == ALEMBIC | {"sqlalchemy"}
    analysed = loaded(env, folder, "analyze", str(folder / "tone.wav"))
    assert present(analysed, {"numpy", "soundfile", "services.audio.tempo", "services.audio.key"}) == {
        "numpy", "soundfile", "services.audio.tempo", "services.audio.key"}


def test_a_worker_warms_up_without_torch(workspace):
    """The local runner and the Procrastinate worker warm up (render, export, analyse a
    quarter second) on the procedural backend without importing torch."""
    env, folder = workspace
    code = ("import sys; from services.generation import MusicGenerationEngine; "
            "from services.jobs.local import warm_up; warm_up(MusicGenerationEngine()); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'scipy', 'numpy', 'soundfile')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr
    top_level = {name.split(".")[0] for name in json.loads(done.stdout.replace("'", '"'))}
    assert top_level == {"numpy", "soundfile"}


def test_the_spec_boundary_still_returns_a_torch_tensor():
    """``generate_audio`` (the spec's call) gives a float32 torch tensor; ``generate_array``
    (the pipeline's) the same samples as a NumPy array."""
    import torch

    from services.generation import MusicGenerationEngine

    engine = MusicGenerationEngine(backend="procedural")
    tensor, seconds = engine.generate_audio("dark techno in D minor at 128 BPM", duration=2.0, seed=5)
    array = engine.generate_array("dark techno in D minor at 128 BPM", duration=2.0, seed=5)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32 and tuple(tensor.shape) == (2, 64000)
    assert isinstance(array.audio, np.ndarray) and array.audio.dtype == np.float32
    assert np.array_equal(tensor.numpy(), array.audio) and seconds > 0
    assert engine.last_result.audio is array.audio and engine.last_seed == 5
