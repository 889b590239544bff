"""Speed of AudioMetadataExtractor beside librosa (and essentia), in one run.

    python benchmarks/bench_metadata_speed.py            # full run (a few minutes)
    python benchmarks/bench_metadata_speed.py --quick    # fewer rounds

Four measurements on a 16 s stereo 32 kHz music-like clip (drums, bass, chords at
123.4 BPM in A minor, synthesized by ``_synth_clip.py``, written as a 16-bit WAV into a
temporary directory):

1. warm: every field (statistics, loudness, BPM, key) in a warm process, against librosa's
   ``beat.beat_track`` plus ``chroma_cqt`` (Krumhansl-Schmuckler key), the peer of the
   accuracy benchmark; goal >= 5x faster;
2. cold: a fresh ``python`` process analysing the file, start to result, against the same
   with librosa; goal >= 2.5x faster;
3. import: ``import services.audio`` time, and which heavy modules each step loads; goal:
   no torch, scipy or analysis library at import;
4. header only (``compute_stats=False``, BPM and key off); goal < 5 ms.

Times are medians; each system gets an unmeasured warm-up first, and the systems compared
are timed in alternation (one call each per round), so that the load of a shared machine
weighs on all of them alike.
Prints Markdown tables; writes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from _common import ROOT, interleaved_medians, machine, median_seconds, table
from _synth_clip import music_clip

BENCH = Path(__file__).resolve().parent

SAMPLE_RATE = 32000
SECONDS = 16.0
CLIP_BPM, CLIP_KEY = 123.4, "A minor"
OURS_FILE = "ours, file: stats + loudness + BPM + key"
OURS_TENSOR = "ours, tensor: stats + loudness + BPM + key"
LIBROSA = "librosa: beat_track + chroma_cqt (KS key)"
ESSENTIA = "essentia: RhythmExtractor2013 + KeyExtractor"
FORBIDDEN_AT_IMPORT = ("torch", "scipy", "librosa", "numba", "essentia")
HEAVY = ("torch", "scipy", "scipy.signal", "librosa", "numba", "essentia", "soundfile", "numpy")

COLD_OURS = """
import sys
from services.audio import AudioMetadataExtractor
m = AudioMetadataExtractor(extract_bpm=True, extract_key=True).extract_metadata(sys.argv[1])
print(m["bpm"], m["key"], m["loudness_lufs"])
"""
COLD_LIBROSA = """
import sys
import soundfile as sf
from accuracy.peers import librosa_tempo_key
audio, rate = sf.read(sys.argv[1], dtype="float32")
print(*librosa_tempo_key(audio.mean(axis=1), rate))
"""
COLD_NOTHING = "pass"
IMPORT_PROBE = """
import sys, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
print(elapsed, ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def ms(seconds: float) -> str:
    """Milliseconds, with three decimals below 10 ms."""
    return f"{seconds * 1e3:.3f}" if seconds < 0.01 else f"{seconds * 1e3:.1f}"


def _subprocess_env() -> dict:
    path = os.pathsep.join([str(ROOT), str(BENCH)])
    return {**os.environ, "PYTHONPATH": path}


def run_process(code: str, *args: str) -> tuple:
    """(wall seconds from spawn to exit, stdout) of ``python -c code args``."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True,
        env=_subprocess_env(), cwd=ROOT,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"subprocess failed:\n{done.stderr}")
    return elapsed, done.stdout.strip()


# --- 1. warm ---------------------------------------------------------------------------------


def bench_warm(path: Path, audio: np.ndarray, rounds: int) -> None:
    import soundfile as sf

    from services.audio import AudioMetadataExtractor

    everything = AudioMetadataExtractor(extract_bpm=True, extract_key=True)
    answers = {}
    calls: Dict[str, Callable[[], object]] = {
        OURS_FILE: lambda: everything.extract_metadata(path),
        OURS_TENSOR: lambda: everything.extract_metadata_from_tensor(audio, SAMPLE_RATE),
    }
    result = everything.extract_metadata(path)
    answers[OURS_FILE] = (result["bpm"], result["key"])
    try:
        from accuracy.peers import librosa_tempo_key

        def librosa_run():
            data, rate = sf.read(path, dtype="float32")
            return librosa_tempo_key(data.mean(axis=1), rate)

        answers[LIBROSA] = librosa_run()
        calls[LIBROSA] = librosa_run
    except ImportError as exc:
        print(f"librosa peer skipped: {exc}")
    try:
        from accuracy.peers import essentia_tempo_key

        answers[ESSENTIA] = essentia_tempo_key(str(path))
        calls[ESSENTIA] = lambda: essentia_tempo_key(str(path))
    except ImportError as exc:
        print(f"essentia peer skipped: {exc}")
    medians = interleaved_medians(calls, rounds)

    stages = []
    for label, flags, stats in (
        ("header only", dict(extract_bpm=False), False),
        ("+ peak, RMS, loudness", dict(extract_bpm=False), True),
        ("+ BPM", dict(extract_bpm=True), True),
        ("+ key (all fields)", dict(extract_bpm=True, extract_key=True), True),
    ):
        extractor = AudioMetadataExtractor(**flags)
        seconds = median_seconds(lambda: extractor.extract_metadata(path, stats), rounds)
        stages.append((label, seconds))

    print(f"\n### 1. Warm: all fields of a {SECONDS:g} s stereo {SAMPLE_RATE // 1000} kHz clip "
          f"(true: {CLIP_BPM} BPM, {CLIP_KEY}; {rounds} interleaved rounds)\n")
    ours = medians[OURS_FILE]
    rows = []
    for name, seconds in medians.items():
        bpm, key = answers.get(name, (None, None))
        shown_bpm = "" if name == OURS_TENSOR else ("None" if bpm is None else f"{bpm:.2f}")
        rows.append([name, ms(seconds), f"{seconds / ours:.2f}", shown_bpm, key or ""])
    print(table(["system", "median ms", "x ours (file)", "BPM", "key"], rows))
    print("\nOurs by stage (file, cumulative):\n")
    print(table(["fields", "median ms"], [[label, ms(seconds)] for label, seconds in stages]))
    if LIBROSA in medians:
        ratio = medians[LIBROSA] / ours
        print(f"\nlibrosa / ours = {ratio:.1f}x (goal >= 5x): {'PASS' if ratio >= 5 else 'FAIL'}")


# --- 2. cold ---------------------------------------------------------------------------------


def bench_cold(path: Path, rounds: int) -> None:
    programs = {}
    for name, code in (
        ("python -c pass (interpreter start)", COLD_NOTHING),
        ("ours: all fields", COLD_OURS),
        ("librosa: beat_track + chroma_cqt", COLD_LIBROSA),
    ):
        try:
            run_process(code, str(path))  # warm-up: OS file cache, numba's on-disk cache
        except RuntimeError as exc:
            print(f"{name} skipped: {exc}")
            continue
        programs[name] = code
    times: Dict[str, List[float]] = {name: [] for name in programs}
    printed: Dict[str, str] = {}
    for _ in range(rounds):  # interleaved, like the warm measurement
        for name, code in programs.items():
            elapsed, printed[name] = run_process(code, str(path))
            times[name].append(elapsed)
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = [
        [name, ms(medians[name]), ms(min(times[name])), ms(max(times[name])),
         printed[name] or "-"]
        for name in programs
    ]
    print(f"\n### 2. Cold process: `python -c ...` analysing the file, start to result "
          f"({rounds} interleaved rounds)\n")
    print(table(["process", "median ms", "min ms", "max ms", "printed"], rows))
    ours = medians.get("ours: all fields")
    peer = medians.get("librosa: beat_track + chroma_cqt")
    if ours and peer:
        ratio = peer / ours
        verdict = "PASS" if ratio >= 2.5 else "FAIL"
        print(f"\nlibrosa / ours = {ratio:.1f}x (goal >= 2.5x): {verdict}")


# --- 3. import -------------------------------------------------------------------------------


def bench_import(path: Path, repeats: int) -> None:
    probes = (
        ("import services.audio", "import services.audio"),
        ("from services.audio import AudioMetadataExtractor",
         "from services.audio import AudioMetadataExtractor"),
        ("... + header-only metadata of a file",
         "from services.audio import AudioMetadataExtractor\n"
         f"AudioMetadataExtractor(extract_bpm=False).extract_metadata({str(path)!r}, False)"),
        ("... + all fields of a file (imports on first use)",
         "from services.audio import AudioMetadataExtractor\n"
         "AudioMetadataExtractor(extract_bpm=True, extract_key=True)"
         f".extract_metadata({str(path)!r})"),
        ("import librosa.beat, librosa.feature (the peer, for reference)",
         "import librosa.beat, librosa.feature"),
    )
    rows = []
    light = None
    for name, statement in probes:
        code = IMPORT_PROBE.format(statement=statement, heavy=HEAVY)
        try:
            run_process(code)
        except RuntimeError as exc:
            print(f"{name} skipped: {exc}")
            continue
        times, modules = [], ""
        for _ in range(repeats):
            _, output = run_process(code)
            elapsed, _, modules = output.partition(" ")
            times.append(float(elapsed))
        if name == "import services.audio":
            light = modules
        rows.append([f"`{name}`", ms(statistics.median(times)), modules or "(none)"])
    print(f"\n### 3. Import cost (in-process time, median of {repeats} fresh processes)\n")
    print(table(["statement", "median ms", f"heavy modules loaded (of {', '.join(HEAVY)})"], rows))
    if light is not None:
        forbidden = [m for m in light.split(",") if m in FORBIDDEN_AT_IMPORT]
        print(f"\n`import services.audio` loads no torch/scipy/analysis library: "
              f"{'PASS' if not forbidden else 'FAIL ' + ','.join(forbidden)}")


# --- 4. header only ----------------------------------------------------------------------------


def bench_header(path: Path, repeats: int) -> None:
    import soundfile as sf

    from services.audio import AudioMetadataExtractor

    extractor = AudioMetadataExtractor(extract_bpm=False)
    rows = []
    ours = median_seconds(lambda: extractor.extract_metadata(path, compute_stats=False), repeats)
    rows.append(["ours: `extract_metadata(path, compute_stats=False)`, BPM off", ms(ours)])
    floor = median_seconds(lambda: sf.info(str(path)), repeats)
    rows.append(["soundfile.info(path) (the floor)", ms(floor)])
    try:
        import librosa

        rows.append(["librosa.get_duration(path=path)",
                     ms(median_seconds(lambda: librosa.get_duration(path=str(path)), repeats))])
    except ImportError:
        pass
    print(f"\n### 4. Header-only metadata of a {SECONDS:g} s file (median of {repeats} calls)\n")
    print(table(["call", "median ms"], rows))
    print(f"\nours = {ours * 1e3:.3f} ms (goal < 5 ms): {'PASS' if ours < 0.005 else 'FAIL'}")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    rounds, processes, header_calls = (5, 3, 200) if args.quick else (15, 7, 1000)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"## AudioMetadataExtractor speed ({'quick' if args.quick else 'full'} run)\n")
    print(f"{machine()}; numpy {np.__version__}; load average {load:.2f} at start")

    audio = music_clip(SECONDS, SAMPLE_RATE, bpm=CLIP_BPM, tonic=CLIP_KEY.split()[0])
    with tempfile.TemporaryDirectory(prefix="bench_metadata_") as tmp:
        import soundfile as sf

        path = Path(tmp) / "clip_16s_32k_stereo.wav"
        sf.write(path, audio.T, SAMPLE_RATE, subtype="PCM_16")
        bench_warm(path, audio, rounds)
        bench_cold(path, processes)
        bench_import(path, processes)
        bench_header(path, header_calls)


if __name__ == "__main__":
    main()
