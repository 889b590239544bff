"""Speed and memory of the full loudness report, beside libebur128 and pyloudnorm.

    python benchmarks/bench_loudness.py            # 16 s, 60 s and 10 min
    python benchmarks/bench_loudness.py --quick    # 16 s and 60 s
    python benchmarks/bench_loudness.py --inner-loops numpy   # without the C extension

Ours computes all six figures (integrated, LRA, true peak, sample peak, max momentary,
max short-term); libebur128 (pyebur128) computes integrated + LRA + true peak + sample
peak; pyloudnorm computes integrated loudness only. All read the same stereo 32 kHz
float32 arrays. Goals (issue 2): >= 2x faster than libebur128 and no slower than
pyloudnorm at every length; extra memory for 10 min at most the input's size.
"""

from __future__ import annotations

import argparse
import math
import tracemalloc

import numpy as np

from _common import add_inner_loops_option, machine, median_seconds, ms, ratio, table, use_inner_loops

from services.audio.loudness import measure_loudness  # noqa: E402
from tests.signals import music_like  # noqa: E402

SR = 32000


def libebur128_full(audio: np.ndarray):
    import pyebur128

    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(
        audio.shape[0], SR, mode.MODE_I | mode.MODE_LRA | mode.MODE_TRUE_PEAK | mode.MODE_SAMPLE_PEAK
    )
    state.add_frames(np.ascontiguousarray(audio.T).ravel(), audio.shape[1])
    return (
        pyebur128.get_loudness_global(state),
        pyebur128.get_loudness_range(state),
        max(pyebur128.get_true_peak(state, c) for c in range(audio.shape[0])),
        max(pyebur128.get_sample_peak(state, c) for c in range(audio.shape[0])),
    )


def pyloudnorm_integrated(audio: np.ndarray) -> float:
    import pyloudnorm

    return pyloudnorm.Meter(SR).integrated_loudness(audio.T)


def extra_memory_bytes(audio: np.ndarray) -> int:
    """Peak memory allocated while measuring, beyond the input (tracemalloc sees numpy)."""
    tracemalloc.start()
    measure_loudness(audio, SR)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10-minute case")
    parser.add_argument("--signal", choices=["music", "noise"], default="music")
    add_inner_loops_option(parser)
    args = parser.parse_args()
    inner_loops = use_inner_loops(args.inner_loops)
    lengths = [(16, 7), (60, 5)] + ([] if args.quick else [(600, 3)])

    rows, memory_rows = [], []
    for seconds, repeats in lengths:
        if args.signal == "music":
            audio = music_like(seconds, SR, seed=seconds)
        else:
            audio = (0.2 * np.random.default_rng(seconds).standard_normal((2, seconds * SR))).astype(np.float32)
        ours = median_seconds(lambda: measure_loudness(audio, SR), repeats)
        ebur = median_seconds(lambda: libebur128_full(audio), repeats)
        pyln = median_seconds(lambda: pyloudnorm_integrated(audio), repeats)
        report = measure_loudness(audio, SR)
        reference = libebur128_full(audio)
        rows.append([
            f"{seconds} s", ms(ours), ms(ebur), ms(pyln), ratio(ebur, ours), ratio(pyln, ours),
            f"{report.integrated_lufs - reference[0]:+.4f} LU",
            f"{report.true_peak_dbtp - 20 * math.log10(reference[2]):+.4f} dB",
        ])
        if seconds == lengths[-1][0]:
            extra = extra_memory_bytes(audio)
            memory_rows.append([f"{seconds} s", f"{audio.nbytes / 2**20:.1f} MiB", f"{extra / 2**20:.1f} MiB",
                                f"{extra / audio.nbytes:.2f}"])

    print(f"Loudness report, stereo 32 kHz float32 {args.signal}, {inner_loops} inner loops; {machine()}\n")
    print(table(
        ["length", "ours (6 figures)", "libebur128 (I+LRA+TP+SP)", "pyloudnorm (I only)",
         "ours vs libebur128", "ours vs pyloudnorm", "I diff vs libebur128", "TP diff vs libebur128"],
        rows,
    ))
    print()
    print(table(["length", "input", "extra memory (peak)", "extra / input"], memory_rows))


if __name__ == "__main__":
    main()
