"""Tempo and key accuracy of services.audio against librosa and essentia, on four corpora.

    python benchmarks/bench_tempo_key_accuracy.py            # 120 rendered + the extended corpus
    python benchmarks/bench_tempo_key_accuracy.py --quick    # 24 rendered tracks only
    python benchmarks/bench_tempo_key_accuracy.py --tracks 60 --seed 7 --no-peers --no-extended

The corpora (benchmarks/accuracy/): grooves in ten genres and Bach chorales rendered with
FluidSynth; music21 pieces in five more styles; Debian's LMMS demo projects and Hydrogen
demo songs rendered by their own programs; this product's procedural tracks. Renders are
cached in benchmarks/.cache/tempo_key/. Prints Markdown tables (per corpus, held-out
part, per style, calibration of the confidences) and writes per-track results as JSON.
Development used other seeds than the default one, and only the tracks not marked
``holdout``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from accuracy import corpus, scoring  # noqa: E402

DEFAULT_SEED = 2024
CACHE = ROOT / "benchmarks" / ".cache" / "tempo_key"
SYSTEMS = ("ours", "ours+hint", "librosa", "essentia")


def _load(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.T), rate


def _run_track(track: corpus.Track, peers: bool) -> dict:
    from services.audio.key import estimate_key
    from services.audio.tempo import estimate_tempo

    audio, rate = _load(track.path)
    row: dict = {"name": track.name, "kind": track.kind, "style": track.style, "source": track.source,
                 "group": track.group, "holdout": track.holdout, "licence": track.licence,
                 "bpm_ref": track.bpm, "key_ref": track.key, "seconds": audio.shape[1] / rate}
    start = time.perf_counter()
    tempo = estimate_tempo(audio, rate)
    middle = time.perf_counter()
    key = estimate_key(audio, rate)
    row["time_ours"] = [middle - start, time.perf_counter() - middle]
    row["ours"] = {"bpm": tempo.bpm, "bpm_confidence": tempo.confidence, "key": key.key,
                   "key_confidence": key.confidence}
    hinted = estimate_tempo(audio, rate, hint_bpm=track.bpm)
    row["ours+hint"] = {"bpm": hinted.bpm, "key": key.key}
    if peers:
        from accuracy import peers as peer_impl

        mono = audio.mean(axis=0)
        start = time.perf_counter()
        bpm, found = peer_impl.librosa_tempo_key(mono, rate)
        row["time_librosa"] = time.perf_counter() - start
        row["librosa"] = {"bpm": bpm, "key": found}
        start = time.perf_counter()
        bpm, found = peer_impl.essentia_tempo_key(str(track.path))
        row["time_essentia"] = time.perf_counter() - start
        row["essentia"] = {"bpm": bpm, "key": found}
    return row


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def _table(rows: list[dict], systems: list[str], label: str = "") -> str:
    lines = ["| corpus | system | tracks | Acc1 | Acc2 | median abs err (BPM) | p90 abs err (BPM) | MIREX key score | keys exact |",
             "|---|---|---|---|---|---|---|---|---|"]
    keyed = [r for r in rows if r["key_ref"] is not None]
    for system in systems:
        s = scoring.summarize([r["bpm_ref"] for r in rows], [r[system]["bpm"] for r in rows])
        k = (scoring.summarize([r["bpm_ref"] for r in keyed], [r[system]["bpm"] for r in keyed],
                               [r["key_ref"] for r in keyed], [r[system]["key"] for r in keyed]) if keyed
             else {"key_score": float("nan"), "key_exact": float("nan")})
        lines.append(f"| {label} | {system} | {len(rows)} | {_fmt(s['acc1'])} | {_fmt(s['acc2'])} | {_fmt(s['median_err'])} | "
                     f"{_fmt(s['p90_err'])} | {_fmt(k['key_score'])} | {_fmt(k['key_exact'])} |")
    return "\n".join(lines)


def _style_table(rows: list[dict], systems: list[str]) -> str:
    head = "| corpus | style | n | " + " | ".join(f"Acc1 {s}" for s in systems) + " | " + " | ".join(f"key {s}" for s in systems) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(systems))]
    styles = sorted({(r["group"], r["kind"], r["style"]) for r in rows})
    for group_name, kind, style in styles:
        group = [r for r in rows if (r["group"], r["kind"], r["style"]) == (group_name, kind, style)]
        acc = [np.mean([scoring.acc1(r["bpm_ref"], r[s]["bpm"]) for r in group]) for s in systems]
        keyed = [r for r in group if r["key_ref"] is not None]
        keys = [f"{np.mean([scoring.key_score(r['key_ref'], r[s]['key']) for r in keyed]):.2f}" if keyed else "-"
                for s in systems]
        label = f"chorale ({style})" if kind == "chorale" else style
        lines.append(f"| {group_name} | {label} | {len(group)} | " + " | ".join(f"{a:.2f}" for a in acc) + " | "
                     + " | ".join(keys) + " |")
    return "\n".join(lines)


def _calibration_table(rows: list[dict]) -> str:
    """Bins of our reported confidence against the share of right answers in them."""
    edges = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0001)
    lines = ["| confidence | tempo: tracks | mean confidence | Acc1 | key: tracks | mean confidence | exact key |",
             "|---|---|---|---|---|---|---|"]
    tempo = [(r["ours"]["bpm_confidence"], scoring.acc1(r["bpm_ref"], r["ours"]["bpm"]))
             for r in rows if r["ours"]["bpm"] is not None]
    key = [(r["ours"]["key_confidence"], scoring.key_score(r["key_ref"], r["ours"]["key"]) == 1.0)
           for r in rows if r["ours"]["key"] is not None and r["key_ref"] is not None]
    for low, high in zip(edges[:-1], edges[1:]):
        cells = []
        for pairs in (tempo, key):
            inside = [(c, ok) for c, ok in pairs if low <= c < high]
            cells += ([str(len(inside)), f"{np.mean([c for c, _ in inside]):.2f}", f"{np.mean([ok for _, ok in inside]):.2f}"]
                      if inside else ["0", "-", "-"])
        lines.append(f"| {low:.1f}-{min(high, 1.0):.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 rendered tracks, no extended corpus")
    parser.add_argument("--tracks", type=int, default=None, help="number of rendered tracks (2/3 grooves, 1/3 chorales)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"corpus seed (default {DEFAULT_SEED})")
    parser.add_argument("--no-peers", action="store_true", help="skip librosa and essentia")
    parser.add_argument("--no-extended", action="store_true", help="only the rendered grooves and chorales")
    parser.add_argument("--show-misses", action="store_true", help="list the tracks we get wrong")
    args = parser.parse_args(argv)
    n_tracks = args.tracks or (24 if args.quick else 120)
    if n_tracks < 3:
        parser.error(f"--tracks must be at least 3; got {n_tracks!r}")

    def progress(done: int, total: int | None = None) -> None:
        if sys.stderr.isatty():
            print(f"\rrendering {done}" + (f"/{total}" if total else ""), end="", file=sys.stderr, flush=True)

    tracks = corpus.build(n_tracks, args.seed, CACHE, progress)
    missing: list[str] = []
    if not (args.quick or args.no_extended):
        extended, missing = corpus.build_extended(args.seed, CACHE, progress)
        tracks += extended
    if sys.stderr.isatty():
        print(file=sys.stderr)
    peers = not args.no_peers
    if peers:  # warm the peers up so their first-call costs (JIT, imports) are not timed
        from accuracy import peers as peer_impl

        audio, rate = _load(tracks[0].path)
        peer_impl.librosa_tempo_key(audio.mean(axis=0)[: rate * 4], rate)
    rows = []
    for i, track in enumerate(tracks):
        rows.append(_run_track(track, peers))
        if sys.stderr.isatty():
            print(f"\ranalysing {i + 1}/{len(tracks)}", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    systems = list(SYSTEMS if peers else SYSTEMS[:2])
    print(f"## Tempo and key accuracy: {len(rows)} tracks, seed {args.seed}\n")
    groups = [g for g in ("rendered", "music21", "produced", "generator") if any(r["group"] == g for r in rows)]
    tables = [_table([r for r in rows if r["group"] == g], systems, g) for g in groups]
    print("\n".join([tables[0]] + [t.split("\n", 2)[2] for t in tables[1:]]))
    held = [_table([r for r in rows if r["group"] == g and r["holdout"]], systems[:2], f"{g}, held out")
            for g in groups if any(r["group"] == g and not r["holdout"] for r in rows)]
    if held:
        print("\nHeld-out parts (development used only the other tracks of these corpora):\n")
        print("\n".join([held[0]] + [t.split("\n", 2)[2] for t in held[1:]]))
    for line in missing:
        print(f"\nleft out: {line}")
    print("\nAcc1: within 4 % of the label; Acc2: also x2, x3, /2, /3; BPM errors over the Acc1 hits; "
          "key: MIREX weighted score (1 same, 0.5 fifth, 0.3 relative, 0.2 parallel), over the tracks with a key label.\n")
    print(_style_table(rows, systems))
    print("\nCalibration of our confidences, all tracks (no hint):\n")
    print(_calibration_table(rows))
    held_rows = [r for r in rows if r["holdout"]]
    print(f"\nCalibration on the held-out tracks only ({len(held_rows)}):\n")
    print(_calibration_table(held_rows))
    grooves = [r for r in rows if r["kind"] == "groove"]
    if grooves:
        tempo_ms = 1e3 * np.median([r["time_ours"][0] for r in grooves])
        key_ms = 1e3 * np.median([r["time_ours"][1] for r in grooves])
        line = f"\nMedian time per 16 s groove: ours tempo {tempo_ms:.1f} ms + key {key_ms:.1f} ms"
        if peers:
            line += (f"; librosa beat_track + chroma_cqt {1e3 * np.median([r['time_librosa'] for r in grooves]):.0f} ms"
                     f"; essentia (incl. decode and resampling) {1e3 * np.median([r['time_essentia'] for r in grooves]):.0f} ms")
        print(line)
    if args.show_misses:
        print("\nMisses (ours): name | style | bpm ref | ours | hint | key ref | ours")
        for r in rows:
            tempo_ok = scoring.acc1(r["bpm_ref"], r["ours"]["bpm"])
            key_ok = r["key_ref"] is None or scoring.key_score(r["key_ref"], r["ours"]["key"]) == 1.0
            if not (tempo_ok and key_ok and scoring.acc1(r["bpm_ref"], r["ours+hint"]["bpm"])):
                print(f"{r['name']} | {r['style']} | {r['bpm_ref']:.2f} | {r['ours']['bpm']} | "
                      f"{r['ours+hint']['bpm']} | {r['key_ref']} | {r['ours']['key']}")
    out = CACHE / f"results-seed{args.seed}-n{n_tracks}{'' if args.quick or args.no_extended else '-extended'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seed": args.seed, "tracks": rows}, indent=1, default=str))
    print(f"\nper-track results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
