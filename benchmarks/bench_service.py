"""The service under load: queue overhead, worker throughput, API latency at 100,000 records.

Every figure comes from a real ``dgx-music serve`` (uvicorn) in its own process, driven
over HTTP from this one (httpx); the PostgreSQL rows need ``--postgres-url`` (for example
``--postgres-url "$TEST_POSTGRES_URL"`` after ``scripts/postgres-test-server.sh start``).

1. Queue overhead: one 8 s generation through the API (POST to the ``completed`` event of
   its stream) beside ``generate_track`` called directly in this process, same prompt and
   seed, alternating; goal: at most 5 % + 50 ms more (medians).
2. Throughput: 24 jobs of 8 s, 2 workers beside 1 (``serve --workers N`` on SQLite; N
   ``dgx-music worker`` processes on PostgreSQL), median of 3 batches; goal: >= 1.7x.
   Beside it, the machine's own ceiling: the same jobs in 1 and 2 plain processes.
3. Latency with 100,000 recorded generations: list (newest first) and search (key + BPM
   range), 16 concurrent clients in a closed loop, p99 < 50 ms; status polling of random
   records at a fixed 500 requests/s (open loop: latency counted from the planned send
   time, so a stall is not hidden), p99 < 20 ms.

    python benchmarks/bench_service.py [--quick] [--postgres-url URL] [--only overhead,throughput,latency]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine, table  # noqa: E402
from tests.postgres import fresh_postgres_schema  # noqa: E402
from tests.service import dgx_process, running_service, wait_for  # noqa: E402
from tests.service import service_env as _test_env  # noqa: E402

PROMPT = "techno in A minor at 128 BPM"
KEYS = ([f"{tonic} major" for tonic in ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")]
        + [f"{tonic} minor" for tonic in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")])
GENRES = ["techno", "house", "ambient", "drum and bass", "lofi hip hop", "trance", "dubstep", "jazz", "funk", "disco"]
MOODS = ["dark", "uplifting", "chill", "aggressive", "dreamy", "melancholic", "groovy", "epic"]


def service_env(folder: Path, database_url: str) -> dict:
    """The tests' service environment with the product's default lease (30 s): the tests
    shorten it to see recovery in seconds, which multiplies heartbeats and sweeps by 5."""
    return _test_env(folder, database_url, DGX_MUSIC_LEASE_SECONDS="30")


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# --------------------------------------------------------------------------- 1. overhead


def follow_to_end(client, generation_id: str) -> str:
    with client.stream("GET", f"/api/v1/generations/{generation_id}/events", timeout=300) as response:
        status = None
        for line in response.iter_lines():
            if line.startswith("data:"):
                status = json.loads(line[5:])["status"]
                if status in ("completed", "failed", "cancelled"):
                    return status
    return status


def bench_overhead(work: Path, rounds: int) -> list:
    from services.pipeline import generate_track
    from services.storage import dispose_engines

    direct_env = {"AUDIO_OUTPUT_DIR": str(work / "direct" / "outputs"),
                  "DATABASE_URL": f"sqlite:///{work / 'direct' / 'history.db'}"}
    os.environ.update(direct_env)
    dispose_engines()
    env = service_env(work, f"sqlite:///{work / 'history.db'}")
    api_times, direct_times = [], []
    with running_service(work, env) as service:
        def through_api() -> float:
            start = time.perf_counter()
            accepted = service.submit(PROMPT, duration=8, seed=7)
            assert follow_to_end(service.client, accepted["id"]) == "completed"
            return time.perf_counter() - start

        def direct() -> float:
            start = time.perf_counter()
            generate_track(PROMPT, duration=8, seed=7)
            return time.perf_counter() - start

        through_api(), direct()  # warm-up: imports, first engine, caches
        for _ in range(rounds):
            api_times.append(through_api())
            direct_times.append(direct())
    api, plain = statistics.median(api_times), statistics.median(direct_times)
    budget = plain * 1.05 + 0.050
    return [["queue overhead: 8 s generation", f"{plain * 1000:.0f} ms direct", f"{api * 1000:.0f} ms via API",
             f"+{(api - plain) * 1000:.0f} ms ({api / plain:.3f}x)", f"<= {budget * 1000:.0f} ms",
             "met" if api <= budget else "NOT met"]]


# --------------------------------------------------------------------------- 2. throughput


def run_batch(service, jobs: int, duration: float) -> float:
    start = time.perf_counter()
    ids = [service.submit(f"{GENRES[n % len(GENRES)]} at 124 BPM", duration=duration, seed=n)["id"]
           for n in range(jobs)]

    def none_left() -> bool:  # two one-row queries: the poll must not load the server it measures
        return all(not service.client.get("/api/v1/generations", params={"status": status, "limit": 1}).json()["items"]
                   for status in ("pending", "processing"))

    wait_for(none_left, 600, interval=0.05, what=f"{jobs} jobs")
    elapsed = time.perf_counter() - start
    statuses = {service.record(generation_id)["status"] for generation_id in ids}
    assert statuses == {"completed"}, statuses
    return elapsed


def bench_throughput_local(work: Path, jobs: int, duration: float, rounds: int) -> list:
    seconds = {}
    for workers in (1, 2):
        folder = work / f"local-{workers}"
        folder.mkdir()
        env = service_env(folder, f"sqlite:///{folder / 'history.db'}")
        with running_service(folder, env, "--workers", str(workers)) as service:
            run_batch(service, 2 * workers, duration)  # warm-up
            seconds[workers] = statistics.median(run_batch(service, jobs, duration) for _ in range(rounds))
    return [_throughput_row("SQLite, serve --workers N (worker processes)", jobs, duration, seconds, rounds)]


def bench_throughput_queue(work: Path, postgres_url: str, jobs: int, duration: float, rounds: int) -> list:
    seconds = {}
    for workers in (1, 2):
        folder = work / f"queue-{workers}"
        folder.mkdir()
        with fresh_postgres_schema(postgres_url, prefix="dgx_bench") as url:
            env = service_env(folder, url)
            with running_service(folder, env, "--workers", "0") as service, contextlib.ExitStack() as stack:
                processes = [stack.enter_context(dgx_process(folder, env, "worker", name=f"worker{n}"))
                             for n in range(workers)]
                for process in processes:
                    wait_for(lambda p=process: "queue worker" in p.output(), 60, what="a worker")
                run_batch(service, 2 * workers, duration)  # warm-up
                seconds[workers] = statistics.median(run_batch(service, jobs, duration) for _ in range(rounds))
    return [_throughput_row("PostgreSQL, N x dgx-music worker (Procrastinate)", jobs, duration, seconds, rounds)]


def _ceiling_worker(folder: str, jobs: int, duration: float, start, done) -> None:
    """One plain process: ``generate_track`` ``jobs`` times on its own history, no service."""
    os.environ.update({"AUDIO_OUTPUT_DIR": f"{folder}/outputs", "DATABASE_URL": f"sqlite:///{folder}/history.db"})
    from services.audio._blas import single_threaded_blas
    from services.pipeline import generate_track

    with single_threaded_blas():
        generate_track(PROMPT, duration=duration, seed=0)  # warm-up
        done.put("ready")
        start.wait()
        for n in range(jobs):
            generate_track(f"{GENRES[n % len(GENRES)]} at 124 BPM", duration=duration, seed=n)


def bench_ceiling(work: Path, jobs: int, duration: float, rounds: int) -> list:
    """The machine's own ceiling: the same jobs in 1 and in 2 plain processes, no service,
    no shared database. A service cannot scale better than this."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    seconds = {1: [], 2: []}
    for _ in range(rounds):
        for processes in (1, 2):
            start, done = context.Event(), context.Queue()
            folders = [work / f"ceiling-{processes}-{n}-{time.monotonic_ns()}" for n in range(processes)]
            workers = [context.Process(target=_ceiling_worker, args=(str(folder), jobs // processes, duration,
                                                                     start, done)) for folder in folders]
            for worker in workers:
                worker.start()
            for _ in workers:
                done.get(timeout=120)
            began = time.perf_counter()
            start.set()
            for worker in workers:
                worker.join()
            seconds[processes].append(time.perf_counter() - began)
    medians = {n: statistics.median(values) for n, values in seconds.items()}
    return [_throughput_row("this machine's ceiling: plain processes, no service", jobs, duration, medians,
                            rounds, goal=False)]


def _throughput_row(label: str, jobs: int, duration: float, seconds: dict, rounds: int, goal: bool = True) -> list:
    speedup = seconds[1] / seconds[2]
    verdict = ("met" if speedup >= 1.7 else "NOT met") if goal else "(reference)"
    return [f"throughput: {jobs} jobs of {duration:g} s (median of {rounds} batches), {label}",
            f"{seconds[1]:.2f} s with 1", f"{seconds[2]:.2f} s with 2", f"{speedup:.2f}x",
            ">= 1.70x" if goal else "", verdict]


# --------------------------------------------------------------------------- 3. latency


def populate(url: str, count: int) -> list:
    """Record ``count`` completed generations (bulk insert, one transaction per 5,000);
    returns their ids."""
    from sqlalchemy import insert

    from services.storage import Generation, get_engine, init_db

    init_db(url)
    engine = get_engine(url)
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = []
    with engine.begin() as connection:
        batch = []
        for n in range(count):
            key = rng.choice(KEYS)
            bpm = round(rng.uniform(60, 180), 2)
            created = start + timedelta(seconds=n * 60)
            generation_id = str(uuid.UUID(int=rng.getrandbits(128)))
            ids.append(generation_id)
            job_id = f"gen_{n:08x}"
            prompt = f"{rng.choice(MOODS)} {rng.choice(GENRES)} in {key} at {round(bpm)} BPM"
            batch.append({
                "id": generation_id, "prompt": prompt, "model_name": "procedural", "duration_seconds": 16.0,
                "sample_rate": 32000, "channels": 2, "file_path": f"data/outputs/2026/01/01/{job_id}.wav",
                "file_size_bytes": 2_048_044, "status": "completed", "created_at": created,
                "completed_at": created + timedelta(seconds=2), "started_at": created,
                "generation_time_seconds": 0.4, "job_id": job_id, "runner": "local", "attempts": 1,
                "request": {"duration": 16.0, "seed": n, "bit_depth": "PCM_16"}, "bpm": bpm, "musical_key": key,
                "loudness_lufs": round(rng.uniform(-16.5, -15.5), 2), "true_peak_dbtp": round(rng.uniform(-3, -1), 2),
                "metadata": {"bpm": bpm, "key": key, "loudness_lufs": -16.0, "true_peak_dbtp": -1.5,
                             "duration_seconds": 16.0, "peak_amplitude": 0.8},
            })
            if len(batch) == 5000:
                connection.execute(insert(Generation), batch)
                batch = []
        if batch:
            connection.execute(insert(Generation), batch)
    # After a bulk load, do what PostgreSQL's autovacuum does within a minute of it (here,
    # before the measurement rather than during it): statistics and the visibility map.
    # SQLite keeps no statistics until ANALYZE runs.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE generations" if engine.dialect.name == "postgresql" else "ANALYZE")
    return ids


def latency_rows(label: str, service, ids: list, seconds: float) -> list:
    from urllib.parse import urlencode

    from benchmarks._http_load import closed_loop, open_loop

    def listing(rng) -> str:
        return "/api/v1/generations?limit=20"

    def search(rng) -> str:
        low = rng.uniform(60, 160)
        query = {"key": rng.choice(KEYS), "bpm_min": round(low, 1), "bpm_max": round(low + 20, 1), "limit": 20}
        return f"/api/v1/generations?{urlencode(query)}"

    def status(rng) -> str:
        return f"/api/v1/generations/{rng.choice(ids)}"

    host, port = "127.0.0.1", service.port
    asyncio.run(closed_loop(host, port, search, 4, 1.0))  # warm-up
    rows = []
    for name, make_path in (("list, newest first", listing), ("search: key + BPM range", search)):
        values = asyncio.run(closed_loop(host, port, make_path, 16, seconds))
        p99 = percentile(values, 99)
        rows.append([f"{label}: {name}, 16 clients", f"{len(values) / seconds:.0f} req/s",
                     f"p50 {percentile(values, 50) * 1000:.1f} ms", f"p99 {p99 * 1000:.1f} ms", "p99 < 50 ms",
                     "met" if p99 < 0.050 else "NOT met"])
    values, achieved = asyncio.run(open_loop(host, port, status, 500, seconds))
    p99 = percentile(values, 99)
    rows.append([f"{label}: status polling, 500 req/s planned", f"{achieved:.0f} req/s",
                 f"p50 {percentile(values, 50) * 1000:.1f} ms", f"p99 {p99 * 1000:.1f} ms", "p99 < 20 ms",
                 "met" if p99 < 0.020 else "NOT met"])
    return rows


def bench_latency(work: Path, postgres_url, count: int, seconds: float) -> list:
    rows = []
    folder = work / "latency-sqlite"
    folder.mkdir()
    url = f"sqlite:///{folder / 'history.db'}"
    ids = populate(url, count)
    with running_service(folder, service_env(folder, url), "--workers", "0") as service:
        rows += latency_rows(f"SQLite, {count:,} records", service, ids, seconds)
    if postgres_url:
        folder = work / "latency-postgres"
        folder.mkdir()
        with fresh_postgres_schema(postgres_url, prefix="dgx_bench") as url:
            ids = populate(url, count)
            with running_service(folder, service_env(folder, url), "--workers", "0") as service:
                rows += latency_rows(f"PostgreSQL, {count:,} records", service, ids, seconds)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, jobs, records and seconds")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="a PostgreSQL server for the queue and latency rows (default: TEST_POSTGRES_URL)")
    parser.add_argument("--only", default="overhead,throughput,latency")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    rows = []
    with tempfile.TemporaryDirectory(prefix="dgx-bench-service-") as temporary:
        work = Path(temporary)
        if "overhead" in parts:
            (work / "overhead").mkdir()
            rows += bench_overhead(work / "overhead", rounds=3 if args.quick else 9)
        if "throughput" in parts:
            jobs, rounds = (8, 1) if args.quick else (24, 3)
            rows += bench_ceiling(work, jobs, 8.0, rounds)
            rows += bench_throughput_local(work, jobs, 8.0, rounds)
            if args.postgres_url:
                rows += bench_throughput_queue(work, args.postgres_url, jobs, 8.0, rounds)
        if "latency" in parts:
            rows += bench_latency(work, args.postgres_url, 10_000 if args.quick else 100_000,
                                  3.0 if args.quick else 10.0)
    print(f"Machine: {machine()}")
    print(table(["measure", "A", "B", "result", "goal", ""], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
