"""Benchmark the incident core: timeline appends per second and declare latency.

    python bench/core.py                      # SQLite (temporary file) and PostgreSQL
    python bench/core.py --database-url postgresql://postgres@127.0.0.1:5432/test

For PostgreSQL a throwaway database is created next to the one given and dropped afterwards.
Each append and each declare is its own transaction, as in production.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from scratch import percentile, scratch_database

from bot import incidents as core
from bot import migrations
from bot.config import Policy
from bot.db import Database

APPENDS = 4000
DECLARES = 400


def bench_appends(db: Database, policy: Policy, threads: int) -> float:
    with db.transaction() as session:
        incident = core.declare_incident(session, policy, title="bench", reporter="U1").incident
    assert incident.id is not None
    incident_id = incident.id
    per_thread = APPENDS // threads
    start = threading.Barrier(threads + 1)

    def work(worker: int) -> None:
        start.wait()
        for i in range(per_thread):
            with db.transaction() as session:
                core.record_timeline_event(
                    session,
                    policy,
                    incident_id,
                    kind="note",
                    text=f"event {worker}-{i}",
                    actor="U1",
                    key=f"bench:{incident_id}:{worker}:{i}",
                )

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(work, w) for w in range(threads)]
        start.wait()
        began = time.perf_counter()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - began
    return per_thread * threads / elapsed


def bench_declares(db: Database, policy: Policy, threads: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = DECLARES // threads

    def work(worker: int) -> None:
        mine = []
        for i in range(per_thread):
            began = time.perf_counter()
            with db.transaction() as session:
                core.declare_incident(
                    session, policy, title=f"incident {worker}-{i}", reporter="U1", severity="SEV2"
                )
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return latencies


def run(label: str, url: str) -> None:
    migrations.upgrade(url)
    db = Database(url, pool_size=10)
    policy = Policy()
    try:
        for threads in (1, 8):
            rate = bench_appends(db, policy, threads)
            latencies = bench_declares(db, policy, threads)
            print(
                f"{label:<10} threads={threads}  timeline appends: {rate:7.0f}/s   "
                f"declare p50 {statistics.median(latencies) * 1000:5.1f} ms  "
                f"p99 {percentile(latencies, 0.99) * 1000:5.1f} ms"
            )
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server to benchmark (default: postgresql://postgres@127.0.0.1:5432/test)",
        default="postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with scratch_database(None) as url:
        run("sqlite", url)
    if not args.sqlite_only:
        with scratch_database(args.database_url) as url:
            run("postgresql", url)


if __name__ == "__main__":
    main()
