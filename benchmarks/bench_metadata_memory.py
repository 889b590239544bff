"""Peak memory of AudioMetadataExtractor on long files: bounded, whatever the duration.

    python benchmarks/bench_metadata_memory.py            # 10 min and 60 min, stereo 48 kHz
    python benchmarks/bench_metadata_memory.py --quick    # 2 min and 10 min

Each file (an 8-bar stereo 48 kHz music-like loop from ``_synth_clip.py``, repeated so the
beat grid runs on across the joins; 16-bit WAV) is written once into
``benchmarks/.cache/metadata/`` and reused. Every measurement
runs in a fresh process: it imports the package and analyses a short clip first (so the
modules and their one-off allocations are in place), resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), extracts every field (statistics, loudness, BPM, key) of the
long file, and reports the peak RSS above the resident size before the call. The whole
file decoded at once as float32 would take the size in the "one array" column.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from _common import ROOT, machine, table
from _synth_clip import music_clip

CACHE = ROOT / "benchmarks" / ".cache" / "metadata"
SAMPLE_RATE = 48000
CLIP_BPM, CLIP_TONIC = 123.4, "A"
LOOP_BEATS = 32  # 8 bars of 4/4: the loop ends on a downbeat

CHILD = r"""
import json, sys, time
from services.audio import AudioMetadataExtractor

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)

extractor = AudioMetadataExtractor(extract_bpm=True, extract_key=True)
extractor.extract_metadata(sys.argv[2])  # warm-up: imports, caches, first-call allocations
baseline = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current RSS
    reset = True
except OSError:
    reset = False
start = time.perf_counter()
result = extractor.extract_metadata(sys.argv[1])
elapsed = time.perf_counter() - start
print(json.dumps({"baseline": baseline, "peak": status("VmHWM"), "reset": reset,
                  "elapsed": elapsed, "result": result}))
"""


def make_file(minutes: float) -> Path:
    """A cached ``minutes``-long stereo 48 kHz 16-bit WAV, written block by block."""
    import soundfile as sf

    frames = int(round(minutes * 60 * SAMPLE_RATE))
    path = CACHE / f"music_{minutes:g}min_48k_stereo.wav"
    if path.exists():
        try:
            if sf.info(str(path)).frames == frames:
                return path
        except RuntimeError:
            pass
    CACHE.mkdir(parents=True, exist_ok=True)
    loop_frames = int(round(LOOP_BEATS * 60.0 / CLIP_BPM * SAMPLE_RATE))
    clip = music_clip(loop_frames / SAMPLE_RATE, SAMPLE_RATE, bpm=CLIP_BPM, tonic=CLIP_TONIC).T
    partial = path.with_suffix(".partial.wav")
    with sf.SoundFile(partial, "w", SAMPLE_RATE, 2, subtype="PCM_16") as out:
        written = 0
        while written < frames:
            chunk = clip[: frames - written]
            out.write(chunk)
            written += len(chunk)
    os.replace(partial, path)
    return path


def measure(path: Path, warm_path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(warm_path)], capture_output=True,
        text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed:\n{done.stderr}")
    return json.loads(done.stdout)


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f}"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 and 10 minutes instead of 10 and 60"
    )
    args = parser.parse_args(argv)
    durations = (2, 10) if args.quick else (10, 60)
    print(f"## AudioMetadataExtractor memory ({'quick' if args.quick else 'full'} run)\n")
    print(f"{machine()}; all fields (stats, loudness, BPM, key), stereo 48 kHz 16-bit WAV, "
          f"{CLIP_BPM} BPM, {CLIP_TONIC} minor\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        import soundfile as sf

        warm_path = Path(tmp) / "warm.wav"
        sf.write(warm_path, music_clip(20.0, SAMPLE_RATE).T, SAMPLE_RATE, subtype="PCM_16")
        for minutes in durations:
            path = make_file(minutes)
            info = sf.info(str(path))
            outcome = measure(path, warm_path)
            result = outcome["result"]
            growth = outcome["peak"] - outcome["baseline"]
            whole = info.frames * info.channels * 4
            rows.append([
                f"{minutes} min", mib(path.stat().st_size), mib(whole), mib(growth),
                f"{outcome['elapsed']:.1f}", f"{info.duration / outcome['elapsed']:.0f}x",
                f"{result['bpm']:.2f}" if result["bpm"] is not None else "None",
                result["key"], f"{result['loudness_lufs']:.2f}",
            ])
            if not outcome["reset"]:
                print("note: /proc/self/clear_refs not writable; peak includes the warm-up")
    header = ["audio", "file MiB", "one array MiB (float32)", "peak RSS growth MiB",
              "wall s", "x realtime", "BPM", "key", "LUFS"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
