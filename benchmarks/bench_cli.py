"""Cold starts of the `dgx-music` command: process start to exit, a fresh process each run.

    python benchmarks/bench_cli.py [--runs N] [--quick]

Each command runs in a throwaway folder with its own SQLite history (20 completed
generations, schema current) and output tree. Timed with hyperfine when it is installed
(`apt-get install hyperfine`; no shell in between, median of N runs after one warm-up),
else by starting the process N times here (median).

| command | goal (median) |
|---|---|
| `dgx-music generate "techno at 128 BPM" --duration 16` | <= 1.5 s |
| `dgx-music history` | <= 0.35 s |
| `dgx-music analyze CLIP` (16 s stereo WAV, every field) | <= 0.5 s |
| `dgx-music --help` | <= 0.15 s |
| `dgx-music normalize IN OUT` (3 min stereo 44.1 kHz WAV) | >= 3x faster than ffmpeg-normalize |

The peer, ffmpeg-normalize (the `bench` extra; it drives Debian's ffmpeg), does the same
EBU R128 job in its two passes: -16 LUFS, -1 dBTP, linear gain (the input's loudness
range kept), 16-bit PCM at the input's rate. Both outputs are measured afterwards with
libebur128 (pyebur128), to show they did the same thing. The last table lists the heavy
modules each command loads (from a fresh interpreter, as the import test checks them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from _common import ROOT, machine, table

from _synth_clip import music_clip  # noqa: E402

BIN = Path(sys.executable).parent
GOALS = {"generate": 1.5, "history": 0.35, "analyze": 0.5, "--help": 0.15}
OUTPUTS = {"normalize": "ours.wav", "ffmpeg-normalize": "peer.wav"}  # removed before each run
HEAVY = ("torch", "transformers", "alembic", "scipy", "numpy.f2py", "sqlalchemy", "numpy", "soundfile")


def prepare(folder: Path) -> Dict[str, str]:
    """The history (20 completed generations), a 16 s clip and a 3 min clip; returns the env."""
    import numpy as np
    import soundfile

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'history.db'}",
           "AUDIO_OUTPUT_DIR": str(folder / "outputs"), "DGX_MUSIC_BACKEND": "procedural",
           "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "AUDIO_OUTPUT_DIR")})
    from services.storage import complete_generation, create_generation, dispose_engines, get_session

    with get_session() as session:
        for index in range(20):
            generation = create_generation(session=session, prompt=f"techno at {120 + index} BPM",
                                           model_name="procedural", duration_seconds=16.0, sample_rate=32000,
                                           channels=2, file_path=str(folder / f"outputs/gen_{index:08d}.wav"))
            complete_generation(session=session, generation_id=generation.id, generation_time=0.3,
                                file_size_bytes=2_048_044, metadata={"bpm": 120.0 + index, "key": "A minor"})
    dispose_engines()
    soundfile.write(folder / "clip16.wav", music_clip(16.0, 32000).T, 32000, subtype="PCM_16")
    # Gently saturated, as mastered music is: 11 dB from loudness to true peak, so both tools
    # reach -16 LUFS with one linear gain (no limiter) and do the same job.
    song = 0.3 * np.tanh(2.0 * music_clip(180.0, 44100)) / np.tanh(2.0)
    soundfile.write(folder / "song3min.wav", song.T, 44100, subtype="PCM_16")
    return env


def commands(folder: Path) -> Dict[str, List[str]]:
    dgx = str(BIN / "dgx-music")
    ffmpeg_normalize = shutil.which("ffmpeg-normalize", path=f"{BIN}:{os.environ.get('PATH', '')}")
    found = {
        "generate": [dgx, "generate", "techno at 128 BPM", "--duration", "16"],
        "history": [dgx, "history"],
        "analyze": [dgx, "analyze", str(folder / "clip16.wav")],
        "--help": [dgx, "--help"],
        "normalize": [dgx, "normalize", str(folder / "song3min.wav"), str(folder / OUTPUTS["normalize"]), "--force"],
    }
    if ffmpeg_normalize and shutil.which("ffmpeg"):
        found["ffmpeg-normalize"] = [
            ffmpeg_normalize, str(folder / "song3min.wav"), "-o", str(folder / OUTPUTS["ffmpeg-normalize"]), "-f",
            "-nt", "ebu", "-t", "-16", "-tp", "-1", "--keep-loudness-range-target",
            "-c:a", "pcm_s16le", "-ar", "44100",
        ]
    return found


def _quoted(argv: List[str]) -> str:
    import shlex

    return " ".join(shlex.quote(arg) for arg in argv)


def time_with_hyperfine(cmds: Dict[str, List[str]], runs: int, env: Dict[str, str], folder: Path):
    """(median wall seconds, mean CPU seconds) per command from one hyperfine run (no shell)."""
    report = folder / "hyperfine.json"
    argv = ["hyperfine", "--shell=none", "--warmup", "1", "--runs", str(runs), "--export-json", str(report),
            "--style", "basic"]
    for name in cmds:  # one per command: an output from the run before is removed first
        argv += ["--prepare", _quoted(["rm", "-f", OUTPUTS[name]] if name in OUTPUTS else ["true"])]
    for name, command in cmds.items():
        argv += [f"--command-name={name}", _quoted(command)]  # "=": a name may start with "--"
    subprocess.run(argv, env=env, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    results = json.loads(report.read_text())["results"]
    return {r["command"]: r["median"] for r in results}, {r["command"]: r["user"] + r["system"] for r in results}


def time_with_processes(cmds: Dict[str, List[str]], runs: int, env: Dict[str, str], folder: Path):
    """(median wall seconds, mean CPU seconds) per command, each started ``runs`` times
    after one warm-up."""
    import resource

    medians, cpu = {}, {}
    for name, command in cmds.items():
        times = []
        subprocess.run(command, env=env, cwd=folder, check=True, stdout=subprocess.DEVNULL)  # warm-up
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(runs):
            if name in OUTPUTS:
                (folder / OUTPUTS[name]).unlink(missing_ok=True)
            started = time.perf_counter()
            subprocess.run(command, env=env, cwd=folder, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        medians[name] = statistics.median(times)
        cpu[name] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / runs
    return medians, cpu


_PROBE = ("import runpy, sys, json; out = sys.argv.pop(1); sys.argv[0] = 'dgx-music'\n"
          "try:\n    runpy.run_module('services.cli', run_name='__main__')\n"
          "except SystemExit:\n    pass\n"
          "finally:\n    json.dump(sorted(sys.modules), open(out, 'w'))")


def heavy_modules(command: List[str], env: Dict[str, str], folder: Path) -> str:
    """The heavy packages a `dgx-music` command has loaded when it ends."""
    out = folder / "modules.json"
    subprocess.run([sys.executable, "-c", _PROBE, str(out), *command[1:]], env=env, cwd=folder,
                   check=True, stdout=subprocess.DEVNULL)
    loaded = set(json.loads(out.read_text()))
    return ", ".join(name for name in HEAVY if name in loaded) or "-"


def loudness(path: Path) -> Optional[str]:
    """Integrated loudness (LUFS) and true peak (dBTP) by libebur128, if pyebur128 is installed."""
    try:
        import pyebur128
    except ImportError:
        return None
    import soundfile

    data, rate = soundfile.read(path, dtype="float64", always_2d=True)
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(data.shape[1], rate, mode.MODE_I | mode.MODE_TRUE_PEAK)
    state.add_frames(data.ravel(), data.shape[0])  # interleaved frames
    peak = max(pyebur128.get_true_peak(state, channel) for channel in range(data.shape[1]))
    return f"{pyebur128.get_loudness_global(state):.2f} LUFS, {20 * math.log10(peak):.2f} dBTP"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 runs per command")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs

    with tempfile.TemporaryDirectory(prefix="bench-cli-") as name:
        folder = Path(name)
        env = prepare(folder)
        cmds = commands(folder)
        tool = "hyperfine" if shutil.which("hyperfine") else "fresh processes"
        timer = time_with_hyperfine if tool == "hyperfine" else time_with_processes
        load_before = os.getloadavg()[0]
        medians, cpu = timer(cmds, runs, env, folder)

        rows = []
        for name, goal in GOALS.items():
            met = "yes" if medians[name] <= goal else "NO"
            rows.append([f"`{_quoted(['dgx-music'] + cmds[name][1:]).replace(str(folder) + '/', '')}`",
                         f"{medians[name]:.3f} s", f"{cpu[name]:.3f} s", f"<= {goal} s", met])
        print(f"Machine: {machine()}; {runs} runs per command, median, timed with {tool}; "
              f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
        print(table(["command", "median (wall)", "CPU (user + sys, mean)", "goal", "met"], rows))
        if "ffmpeg-normalize" in medians:
            speedup = medians["ffmpeg-normalize"] / medians["normalize"]
            print()
            print(table(
                ["3 min stereo 44.1 kHz WAV to -16 LUFS / -1 dBTP", "median (wall)", "CPU", "output (libebur128)"],
                [["`dgx-music normalize IN OUT`", f"{medians['normalize']:.3f} s", f"{cpu['normalize']:.3f} s",
                  loudness(folder / OUTPUTS["normalize"]) or "-"],
                 ["`ffmpeg-normalize IN -o OUT -nt ebu -t -16 -tp -1 ...`", f"{medians['ffmpeg-normalize']:.3f} s",
                  f"{cpu['ffmpeg-normalize']:.3f} s", loudness(folder / OUTPUTS["ffmpeg-normalize"]) or "-"]],
            ))
            print(f"\nspeed-up: {speedup:.2f}x (goal >= 3x): {'met' if speedup >= 3 else 'NOT met'}")
        else:
            print("\nffmpeg-normalize or ffmpeg not found: pip install -e '.[bench]' and apt-get install ffmpeg")
        print()
        print(table(["command", "heavy modules loaded"],
                    [[f"`{name}`", heavy_modules(cmds[name], env, folder)] for name in GOALS]
                    + [["`normalize`", heavy_modules(cmds["normalize"], env, folder)]]))


if __name__ == "__main__":
    main()
