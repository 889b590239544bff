"""Several processes writing the generation history at once: lost records, errors, speed.

Each process creates and completes generations, one transaction per step (the
pipeline's pattern), on a fresh database whose schema exists before they start.
Side by side:

* ``SQLAlchemy defaults``: the same tables and CRUD functions on a plain
  ``create_engine("sqlite:///...")`` (rollback journal, the sqlite3 module's implicit
  BEGIN, 5 s timeout), the peer a first implementation gets;
* ``services.storage (SQLite)``: WAL, ``BEGIN IMMEDIATE``, 30 s busy timeout;
* ``services.storage (PostgreSQL)`` when ``--postgres-url`` is given (for example
  ``--postgres-url "$TEST_POSTGRES_URL"`` after ``scripts/postgres-test-server.sh start``).

Prints a Markdown table; ``--quick`` runs 2 processes x 50 generations.

    python benchmarks/bench_storage_concurrency.py [--quick] [--processes 4] [--per-process 200]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.postgres import fresh_postgres_schema  # noqa: E402

PEER = "SQLAlchemy defaults (SQLite)"
OURS_SQLITE = "services.storage (SQLite)"
OURS_POSTGRES = "services.storage (PostgreSQL)"


def _plain_session_factory(url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from services.storage.models import Base

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    return lambda: Session(engine, expire_on_commit=False)


def _ours_session_factory(url: str):
    from services.storage import get_session, init_db

    init_db(url)
    return get_session


def _transaction(factory, plain: bool, work):
    if not plain:
        with factory() as session:
            return work(session)
    session = factory()
    try:
        result = work(session)
        session.commit()
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _worker(config: str, url: str, worker: int, count: int, first_use: bool, barrier, results) -> None:
    from services.storage import complete_generation, create_generation

    plain = config == PEER
    ok, errors, first_error = 0, 0, None
    if first_use:  # open the fresh database all at once
        barrier.wait(timeout=300)
    try:
        factory = _plain_session_factory(url) if plain else _ours_session_factory(url)
    except Exception as exc:  # the schema itself could not be opened
        if not first_use:
            barrier.wait(timeout=300)
        results.put((0, count, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
        return
    if not first_use:
        barrier.wait(timeout=300)
    for index in range(count):
        try:
            generation = _transaction(
                factory,
                plain,
                lambda s: create_generation(
                    session=s, prompt=f"bench prompt {index % 10}", model_name="procedural",
                    duration_seconds=8.0, sample_rate=32000, channels=2, file_path=f"{worker}/{index}.wav",
                ),
            )
            ok += 1
            _transaction(factory, plain, lambda s: complete_generation(s, generation.id, 0.5, 1000))
            ok += 1
        except Exception as exc:  # count it and go on, as a service would
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    results.put((ok, errors, first_error))


def _count_completed(url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from services.storage.models import Generation, GenerationStatus

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    select(func.count())
                    .select_from(Generation)
                    .where(Generation.status == GenerationStatus.COMPLETED)
                )
            )
    finally:
        engine.dispose()


def run(config: str, url: str, processes: int, per_process: int, first_use: bool) -> dict:
    """``first_use``: the workers open a fresh database themselves, all at once;
    else the schema is made here first and the workers measure write contention only."""
    if not first_use and config == PEER:
        _plain_session_factory(url)
    elif not first_use:
        from services.storage import dispose_engines, init_db

        init_db(url)
        dispose_engines()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes + 1), context.Queue()
    workers = [
        context.Process(
            target=_worker, args=(config, url, worker, per_process, first_use, barrier, results)
        )
        for worker in range(processes)
    ]
    for process in workers:
        process.start()
    barrier.wait(timeout=300)  # every worker has its engine and schema: start the clock
    start = time.perf_counter()
    reports = [results.get(timeout=600) for _ in workers]
    wall = time.perf_counter() - start
    for process in workers:
        process.join(timeout=60)
    committed = sum(ok for ok, _, _ in reports)
    completed = _count_completed(url)
    return {
        "config": config,
        "scenario": "first use, all at once" if first_use else "schema ready",
        "transactions": committed,
        "errors": sum(errors for _, errors, _ in reports),
        "completed_rows": completed,
        "expected_rows": processes * per_process,
        "wall": wall,
        "first_error": next((error for _, _, error in reports if error), None),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--per-process", type=int, default=200)
    parser.add_argument("--postgres-url", default=None, help="also run on this PostgreSQL database")
    parser.add_argument("--quick", action="store_true", help="2 processes x 50 generations")
    args = parser.parse_args(argv)
    processes, per_process = (2, 50) if args.quick else (args.processes, args.per_process)

    rows = []
    for first_use in (True, False):
        with tempfile.TemporaryDirectory(prefix="bench-storage-") as folder:
            for config, name in ((PEER, "peer.db"), (OURS_SQLITE, "ours.db")):
                rows.append(run(config, f"sqlite:///{Path(folder) / name}", processes, per_process, first_use))
        if args.postgres_url:
            with fresh_postgres_schema(args.postgres_url, prefix="dgx_bench") as url:
                rows.append(run(OURS_POSTGRES, url, processes, per_process, first_use))

    print(f"{processes} processes x {per_process} generations (create + complete = 2 transactions each)\n")
    print(
        "| scenario | configuration | committed transactions | errors | completed rows / expected "
        "| wall s | transactions/s | vs peer |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    peer_rate = None
    for row in rows:
        rate = row["transactions"] / row["wall"]
        if row["config"] == PEER:
            peer_rate = rate
        ratio = f"{rate / peer_rate:.2f}x" if peer_rate else "n/a"
        print(
            f"| {row['scenario']} | {row['config']} | {row['transactions']} | {row['errors']} | "
            f"{row['completed_rows']} / {row['expected_rows']} | {row['wall']:.2f} | {rate:.0f} | {ratio} |"
        )
    for row in rows:
        if row["first_error"]:
            print(f"\nfirst error of {row['config']} ({row['scenario']}): {row['first_error']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
