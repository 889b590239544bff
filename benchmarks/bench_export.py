"""Speed of a normalized export, beside the obvious pyloudnorm + soundfile pipeline.

    python benchmarks/bench_export.py [--quick] [--inner-loops numpy]

Single: a 16 s stereo 32 kHz clip to -16 LUFS PCM_16. Ours measures (BS.1770-5 with
true peak), applies one gain capped at -1 dBTP, and writes atomically (temp file, fsync,
rename). The peer measures with pyloudnorm, applies ``pyloudnorm.normalize.loudness``
(no true-peak ceiling) and writes with ``soundfile.write``. Goal: >= 1.3x.
Batch: 16 such clips through ``export_wav_batch`` vs ``export_wav`` one by one. Goal: >= 1.6x.
The line under the table says which inner loops ran (the compiled extension or NumPy).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import add_inner_loops_option, interleaved_medians, machine, median_seconds, ms, ratio, table, use_inner_loops

from services.audio import AudioExporter  # noqa: E402
from tests.signals import music_like  # noqa: E402

SR = 32000


def pyloudnorm_export(audio, path: Path) -> None:
    import pyloudnorm
    import soundfile

    loudness = pyloudnorm.Meter(SR).integrated_loudness(audio.T)
    normalized = pyloudnorm.normalize.loudness(audio.T, loudness, -16.0)
    soundfile.write(path, normalized, SR, subtype="PCM_16")


def _spin(_: int) -> int:
    total = 0
    for i in range(2_000_000):
        total += i
    return total


def parallel_ceiling(workers: int) -> float:
    """Speed-up of pure-Python work on ``workers`` forked processes: what this machine allows."""
    import multiprocessing

    jobs = range(4 * workers)
    serial = median_seconds(lambda: [_spin(j) for j in jobs], 3)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parallel = median_seconds(lambda: pool.map(_spin, jobs), 3)
    return serial / parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    add_inner_loops_option(parser)
    args = parser.parse_args()
    inner_loops = use_inner_loops(args.inner_loops)
    repeats = 3 if args.quick else 9
    clips = [music_like(16.0, SR, seed=i, bpm=90.0 + 5 * i) * 0.3 for i in range(16)]
    exporter = AudioExporter(target_lufs=-16.0)

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        paths = [out / f"batch_{i}.wav" for i in range(len(clips))]
        # Timed in alternation, so the load of this shared machine weighs on both sides alike.
        single = interleaved_medians(
            {"ours": lambda: exporter.export_wav(clips[0], out / "ours.wav"),
             "peer": lambda: pyloudnorm_export(clips[0], out / "peer.wav")},
            repeats,
        )
        batches = interleaved_medians(
            {"one_by_one": lambda: [exporter.export_wav(c, p) for c, p in zip(clips, paths)],
             "batch": lambda: exporter.export_wav_batch(clips, paths)},
            repeats,
        )
        ours, peer = single["ours"], single["peer"]
        one_by_one, batch = batches["one_by_one"], batches["batch"]

    ceiling = parallel_ceiling(exporter.max_workers)
    print(f"Normalized export, 16 s stereo 32 kHz to -16 LUFS PCM_16; {machine()}\n")
    print(table(
        ["case", "ours", "peer", "speed-up"],
        [
            ["single export", ms(ours), f"{ms(peer)} (pyloudnorm + soundfile, no ceiling)", ratio(peer, ours)],
            ["batch of 16", ms(batch), f"{ms(one_by_one)} (export_wav one by one)", ratio(one_by_one, batch)],
        ],
    ))
    print(f"\nInner loops: {inner_loops}.")
    print(f"Machine scaling: pure-Python work on {exporter.max_workers} processes runs {ceiling:.2f}x "
          f"faster than on one (how well this machine's {exporter.max_workers} cores share CPU work; "
          "the batch also overlaps waiting for the disk with computing).")


if __name__ == "__main__":
    main()
