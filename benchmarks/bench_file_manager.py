"""AudioFileManager on a big dated tree, beside a straightforward Path.rglob version and find/du.

    python benchmarks/bench_file_manager.py [--quick] [--files N] [--days D] [--repeat R] [--tree DIR]

Generates ``--files`` small files (default 100,000; ``--quick``: 10,000) spread evenly
over ``--days`` day folders (default 365) ending today, in a temporary folder (removed
afterwards) or in ``--tree DIR`` (kept and reused). Then, for each query, it times
``AudioFileManager`` (os.scandir walk pruned by folder date, newest first, stats through
the folder descriptors), ``RglobFileManager`` below (the same answers from
``Path.rglob("*")``, the obvious implementation) and a ``find``/``du`` command doing the
same file-system work, in one run, rounds interleaved, warm page cache, best of
``--repeat``. It checks that ours and the rglob version give identical answers.

Goals (issue 4): ``list_files(limit=10)`` < 20 ms; statistics, dry-run cleanup and a
one-week listing >= 3x faster than rglob; statistics within 2x of ``du -s``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from _common import machine, table

from services.audio.files import AudioFileManager  # noqa: E402

EXTENSIONS = (".wav",) * 9 + (".flac",)
MANIFEST = ".bench-tree"


class RglobFileManager:
    """The straightforward implementation of the same queries, for comparison.

    It walks everything with ``Path.rglob("*")``, keeps regular files (``lstat`` once:
    no links, no folders; no dot-files) at ``YYYY/MM/DD/<name>`` with the date read from
    the path, then filters and sorts in Python: the same answers as ours.
    """

    def __init__(self, base_dir: str) -> None:
        self.base_dir = Path(base_dir)

    def _files(self):
        """(date, path, lstat) of every file of the dated tree."""
        for path in self.base_dir.rglob("*"):
            parts = path.relative_to(self.base_dir).parts
            if len(parts) != 4 or path.name.startswith("."):
                continue
            year, month, day = parts[:3]
            if (len(year), len(month), len(day)) != (4, 2, 2) or not (year + month + day).isdigit():
                continue
            try:
                date = dt.date(int(year), int(month), int(day))
            except ValueError:
                continue
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                yield date, path, info

    @staticmethod
    def _newest_first(items) -> List[Path]:
        ordered = sorted(items, key=lambda item: (item[0], item[2].st_mtime_ns, item[1].name), reverse=True)
        return [path for _, path, _ in ordered]

    def list_files(self, start_date=None, end_date=None, limit=None, extension=None) -> List[Path]:
        items = [
            item
            for item in self._files()
            if (start_date is None or item[0] >= start_date)
            and (end_date is None or item[0] <= end_date)
            and (extension is None or item[1].suffix.lower() == extension)
        ]
        return self._newest_first(items)[:limit]

    def cleanup_old_files(self, days_old: int = 30, dry_run: bool = True) -> int:
        cutoff = dt.date.today() - dt.timedelta(days=days_old)
        return sum(1 for date, _, _ in self._files() if date < cutoff)

    def get_storage_stats(self) -> Dict[str, object]:
        items = list(self._files())
        size = sum(info.st_size for _, _, info in items)
        ordered = self._newest_first(items)
        types = Counter(path.suffix.lower() for _, path, _ in items)
        return {
            "total_files": len(items),
            "total_size_bytes": size,
            "total_size_gb": size / float(1 << 30),
            "oldest_file": str(ordered[-1]) if ordered else None,
            "newest_file": str(ordered[0]) if ordered else None,
            "file_types": dict(sorted(types.items(), key=lambda item: (-item[1], item[0]))),
        }


def day_folder(base: str, day: dt.date) -> str:
    return os.path.join(base, f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}")


def build_tree(base: str, files: int, days: int, last_day: dt.date, progress: bool) -> None:
    """``files`` files of 100-3,099 bytes over ``days`` folders ending ``last_day``; mtimes within the day."""
    payload = os.urandom(3100)
    per_day, extra = divmod(files, days)
    index = 0
    for k in range(days):
        day = last_day - dt.timedelta(days=days - 1 - k)
        folder = day_folder(base, day)
        os.makedirs(folder, exist_ok=True)
        noon = dt.datetime(day.year, day.month, day.day, 12).timestamp()
        for j in range(per_day + (k < extra)):
            name = f"gen_{index:08x}{EXTENSIONS[index % len(EXTENSIONS)]}"
            path = os.path.join(folder, name)
            with open(path, "wb") as handle:
                handle.write(payload[: 100 + (index * 7919) % 3000])
            stamp = noon + (j * 37) % 36000 - 18000
            os.utime(path, (stamp, stamp))
            index += 1
        if progress and (k % 10 == 0 or k == days - 1):
            print(f"\rbuilding tree: {index:,}/{files:,} files", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)


def prepare_tree(tree: Optional[str], files: int, days: int, progress: bool) -> tuple:
    """(base, last_day); a ``--tree`` folder is reused when its manifest matches."""
    today = dt.date.today()
    if tree is None:
        base = tempfile.mkdtemp(prefix="bench-file-manager-")
    else:
        base = tree
        manifest = os.path.join(base, MANIFEST)
        if os.path.exists(manifest):
            with open(manifest) as handle:
                stored_files, stored_days, stored_last = handle.read().split()
            if (int(stored_files), int(stored_days)) == (files, days):
                return base, dt.date.fromisoformat(stored_last)
            raise SystemExit(
                f"{base} holds another tree ({stored_files} files, {stored_days} days); pick another --tree"
            )
        if os.path.exists(base) and os.listdir(base):
            raise SystemExit(f"--tree {base!r} exists and is not a benchmark tree")
    build_tree(base, files, days, today, progress)
    if tree is not None:
        with open(os.path.join(base, MANIFEST), "w") as handle:
            handle.write(f"{files} {days} {today.isoformat()}\n")
    return base, today


def run(command: Sequence[str]) -> Callable[[], int]:
    def call() -> int:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        return done.stdout.count(b"\n")

    return call


def best_times(functions: Sequence[Callable[[], object]], repeat: int) -> List[float]:
    """Best wall time (seconds) of each function; rounds interleave them, after one warm-up."""
    for function in functions:
        function()
    best = [float("inf")] * len(functions)
    for _ in range(repeat):
        for i, function in enumerate(functions):
            start = time.perf_counter()
            function()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def check_same(name: str, ours: object, theirs: object) -> None:
    if ours != theirs:
        raise SystemExit(f"{name}: ours and the rglob version disagree:\n  ours:  {ours!r}\n  rglob: {theirs!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 files, 3 rounds")
    parser.add_argument("--files", type=int, help="number of files (default 100,000)")
    parser.add_argument("--days", type=int, default=365, help="number of day folders (default 365)")
    parser.add_argument("--repeat", type=int, help="timed rounds, best kept (default 5; 3 with --quick)")
    parser.add_argument("--tree", help="build (or reuse) the tree here and keep it, e.g. benchmarks/.cache/tree")
    args = parser.parse_args()
    files = args.files or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (3 if args.quick else 5)
    if files < 1 or args.days < 8 or repeat < 1:
        parser.error("need --files >= 1, --days >= 8 and --repeat >= 1")
    for tool in ("find", "du"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found")

    base, last_day = prepare_tree(args.tree, files, args.days, sys.stderr.isatty())
    try:
        ours, rglob = AudioFileManager(base), RglobFileManager(base)
        first_day = last_day - dt.timedelta(days=args.days - 1)
        week_end = last_day - dt.timedelta(days=args.days // 2)
        week_start = week_end - dt.timedelta(days=6)
        days_old = (dt.date.today() - first_day).days // 2  # about half the tree is old
        cutoff = dt.date.today() - dt.timedelta(days=days_old)
        every_day = [first_day + dt.timedelta(days=k) for k in range(args.days)]
        old_folders = [day_folder(base, d) for d in every_day if d < cutoff]
        week_folders = [day_folder(base, d) for d in every_day if week_start <= d <= week_end]
        newest_folder = [day_folder(base, last_day)]
        with_mtime = ["-maxdepth", "1", "-type", "f", "-printf", "%T@ %p\n"]

        cases = [
            (
                "`list_files(limit=10)`",
                lambda: ours.list_files(limit=10),
                lambda: rglob.list_files(limit=10),
                "`find` newest folder, mtimes",
                run(["find", *newest_folder, *with_mtime]),
                "< 20 ms",
            ),
            (
                "`get_storage_stats()`",
                ours.get_storage_stats,
                rglob.get_storage_stats,
                "`du -s`",
                run(["du", "-s", base]),
                ">= 3x rglob, <= 2x du",
            ),
            (
                f"`cleanup_old_files({days_old}, dry_run=True)`",
                lambda: ours.cleanup_old_files(days_old, dry_run=True),
                lambda: rglob.cleanup_old_files(days_old, dry_run=True),
                "`find` old folders, names",
                run(["find", *old_folders, "-maxdepth", "1", "-type", "f"]),
                ">= 3x rglob",
            ),
            (
                "`list_files(start_date, end_date)`, 7 days",
                lambda: ours.list_files(start_date=week_start, end_date=week_end),
                lambda: rglob.list_files(start_date=week_start, end_date=week_end),
                "`find` 7 folders, mtimes",
                run(["find", *week_folders, *with_mtime]),
                ">= 3x rglob",
            ),
        ]
        rows = []
        verdicts = []
        for label, mine, theirs, floor_name, floor, goal in cases:
            check_same(label, mine(), theirs())
            t_ours, t_rglob, t_floor = best_times([mine, theirs, floor], repeat)
            speedup = t_rglob / t_ours
            if "limit=10" in label:
                met = t_ours < 0.020
            elif "stats" in label:
                met = speedup >= 3 and t_ours <= 2 * t_floor
            else:
                met = speedup >= 3
            verdicts.append(met)
            rows.append([
                label, f"{t_ours * 1e3:.1f}", f"{t_rglob * 1e3:.1f}", f"{speedup:.1f}x",
                floor_name, f"{t_floor * 1e3:.1f}", f"{t_ours / t_floor:.2f}", goal, "yes" if met else "**no**",
            ])
    finally:
        if args.tree is None:
            shutil.rmtree(base, ignore_errors=True)

    print(f"AudioFileManager, {files:,} files in {args.days} day folders; best of {repeat}, warm cache; {machine()}\n")
    headers = ["query", "ours ms", "rglob ms", "ours vs rglob", "floor", "floor ms", "ours / floor", "goal", "met"]
    print(table(headers, rows))
    print("\nfloor times include starting the command (about 1-3 ms).")
    sys.exit(0 if all(verdicts) else 1)


if __name__ == "__main__":
    main()
