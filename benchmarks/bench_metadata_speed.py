"""Speed of AudioMetadataExtractor beside librosa (and essentia), in one run.

    python benchmarks/bench_metadata_speed.py            # full run (a few minutes)
    python benchmarks/bench_metadata_speed.py --quick    # fewer repeats

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

Times are medians over the repeats; each measured call follows an unmeasured warm-up.
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
from typing import List, Optional

import numpy as np

from _common import ROOT, machine, median_seconds, table
from _synth_clip import music_clip

BENCH = Path(__file__).resolve().parent

SAMPLE_RATE = 32000
SECONDS = 16.0
CLIP_BPM, CLIP_KEY = 123.4, "A minor"
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


def bench_warm(path: Path, audio: np.ndarray, repeats: int, peer_repeats: int) -> None:
    import soundfile as sf

    from services.audio import AudioMetadataExtractor

    everything = AudioMetadataExtractor(extract_bpm=True, extract_key=True)
    results = everything.extract_metadata(path)
    ours = median_seconds(lambda: everything.extract_metadata(path), repeats)
    ours_tensor = median_seconds(
        lambda: everything.extract_metadata_from_tensor(audio, SAMPLE_RATE), repeats
    )
    stages = []
    for label, flags, stats in (
        ("header only", dict(extract_bpm=False), False),
        ("+ peak, RMS, loudness", dict(extract_bpm=False), True),
        ("+ BPM", dict(extract_bpm=True), True),
        ("+ key (all fields)", dict(extract_bpm=True, extract_key=True), True),
    ):
        extractor = AudioMetadataExtractor(**flags)
        seconds = median_seconds(lambda: extractor.extract_metadata(path, stats), repeats)
        stages.append((label, seconds))

    peers = {}
    try:
        from accuracy.peers import librosa_tempo_key

        def librosa_run():
            data, rate = sf.read(path, dtype="float32")
            return librosa_tempo_key(data.mean(axis=1), rate)

        peers["librosa beat_track + chroma_cqt"] = (
            median_seconds(librosa_run, peer_repeats), librosa_run()
        )
    except ImportError as exc:
        print(f"librosa peer skipped: {exc}")
    try:
        from accuracy.peers import essentia_tempo_key

        peers["essentia RhythmExtractor2013 + KeyExtractor"] = (
            median_seconds(lambda: essentia_tempo_key(str(path)), peer_repeats),
            essentia_tempo_key(str(path)),
        )
    except ImportError as exc:
        print(f"essentia peer skipped: {exc}")

    print(f"\n### 1. Warm: all fields of a {SECONDS:g} s stereo {SAMPLE_RATE // 1000} kHz clip "
          f"(true: {CLIP_BPM} BPM, {CLIP_KEY})\n")
    rows = [
        ["ours, file: stats + loudness + BPM + key", ms(ours), "1.0",
         f"{results['bpm']:.2f}", results["key"]],
        ["ours, tensor: stats + loudness + BPM + key", ms(ours_tensor), f"{ours_tensor / ours:.2f}",
         "", ""],
    ]
    for name, (seconds, (bpm, key)) in peers.items():
        rows.append([f"{name}", ms(seconds), f"{seconds / ours:.1f}",
                     "None" if bpm is None else f"{bpm:.2f}", key])
    print(table(["system", "median ms", "x ours (file)", "BPM", "key"], rows))
    print("\nOurs by stage (file, cumulative):\n")
    print(table(["fields", "median ms"], [[label, ms(seconds)] for label, seconds in stages]))
    librosa = peers.get("librosa beat_track + chroma_cqt")
    if librosa:
        ratio = librosa[0] / ours
        print(f"\nlibrosa / ours = {ratio:.1f}x (goal >= 5x): {'PASS' if ratio >= 5 else 'FAIL'}")


# --- 2. cold ---------------------------------------------------------------------------------


def bench_cold(path: Path, repeats: int) -> None:
    rows = []
    medians = {}
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
        times, output = [], ""
        for _ in range(repeats):
            elapsed, output = run_process(code, str(path))
            times.append(elapsed)
        medians[name] = statistics.median(times)
        rows.append([name, ms(medians[name]), ms(min(times)), ms(max(times)), output or "-"])
    print(f"\n### 2. Cold process: `python -c ...` analysing the file, start to result "
          f"({repeats} runs)\n")
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
    repeats, peer_repeats, processes, header_calls = (
        (5, 3, 3, 200) if args.quick else (21, 7, 7, 1000)
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"## AudioMetadataExtractor speed ({'quick' if args.quick else 'full'} run)\n")
    print(f"{machine()}; numpy {np.__version__}; load average {load:.2f} at start")

    audio = music_clip(SECONDS, SAMPLE_RATE, bpm=CLIP_BPM, tonic=CLIP_KEY.split()[0])
    with tempfile.TemporaryDirectory(prefix="bench_metadata_") as tmp:
        import soundfile as sf

        path = Path(tmp) / "clip_16s_32k_stereo.wav"
        sf.write(path, audio.T, SAMPLE_RATE, subtype="PCM_16")
        bench_warm(path, audio, repeats, peer_repeats)
        bench_cold(path, processes)
        bench_import(path, processes)
        bench_header(path, header_calls)


if __name__ == "__main__":
    main()
