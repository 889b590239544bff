"""The field's tempo and key measures (MIREX / mir_eval conventions)."""

from __future__ import annotations

import numpy as np

_NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
TEMPO_TOLERANCE = 0.04
OCTAVE_FACTORS = (1.0, 2.0, 3.0, 1.0 / 2.0, 1.0 / 3.0)


def parse_key(text: str | None) -> tuple[int, str] | None:
    """'F# minor' / 'Bb major' -> (pitch class, mode); None stays None."""
    if text is None:
        return None
    tonic, mode = text.split()
    pc = _NATURAL[tonic[0].upper()]
    for accidental in tonic[1:]:
        pc += {"#": 1, "b": -1}[accidental]
    if mode not in ("major", "minor"):
        raise ValueError(f"unknown mode in {text!r}")
    return pc % 12, mode


def key_score(reference: str, estimate: str | None) -> float:
    """MIREX weighted key score: 1 same, 0.5 fifth above (same mode), 0.3 relative, 0.2 parallel.

    As in mir_eval's default, only an estimate a perfect fifth *above* the reference earns
    the fifth credit. A missing estimate scores 0.
    """
    ref = parse_key(reference)
    est = parse_key(estimate)
    if est is None:
        return 0.0
    (rt, rm), (et, em) = ref, est
    if (rt, rm) == (et, em):
        return 1.0
    if rm == em and (et - rt) % 12 == 7:
        return 0.5
    if rm == "major" and em == "minor" and (et - rt) % 12 == 9:
        return 0.3
    if rm == "minor" and em == "major" and (et - rt) % 12 == 3:
        return 0.3
    if rt == et:
        return 0.2
    return 0.0


def acc1(reference: float, estimate: float | None) -> bool:
    """Within 4 % of the reference tempo."""
    return estimate is not None and abs(estimate - reference) <= TEMPO_TOLERANCE * reference


def acc2(reference: float, estimate: float | None) -> bool:
    """Within 4 % of the reference times 1, 2, 3, 1/2 or 1/3."""
    return estimate is not None and any(acc1(reference * f, estimate) for f in OCTAVE_FACTORS)


def summarize(references: list[float], estimates: list[float | None], keys_ref: list[str] | None = None,
              keys_est: list[str | None] | None = None) -> dict[str, float]:
    """Acc1, Acc2, median and p90 absolute BPM error over the Acc1 hits, mean key score."""
    hits = [abs(e - r) for r, e in zip(references, estimates) if acc1(r, e)]
    out = {
        "acc1": float(np.mean([acc1(r, e) for r, e in zip(references, estimates)])),
        "acc2": float(np.mean([acc2(r, e) for r, e in zip(references, estimates)])),
        "median_err": float(np.median(hits)) if hits else float("nan"),
        "p90_err": float(np.percentile(hits, 90)) if hits else float("nan"),
    }
    if keys_ref is not None and keys_est is not None:
        out["key_score"] = float(np.mean([key_score(r, e) for r, e in zip(keys_ref, keys_est)]))
        out["key_exact"] = float(np.mean([key_score(r, e) == 1.0 for r, e in zip(keys_ref, keys_est)]))
    return out
