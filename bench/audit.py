"""Benchmark ``firebreak audit verify``: seconds to recompute the hash chains of 100,000 events.

    python bench/audit.py                      # SQLite (temporary file) and PostgreSQL
    python bench/audit.py --sqlite-only
    python bench/audit.py --events 1000000

The events (1,000 incidents of 100 events each, with realistic text and data) are written in
bulk with their chain hashes computed by ``bot.audit.chain``, exactly as the core writes them;
then ``verify_chains`` reads and checks all of them, as the command does.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from scratch import scratch_database
from sqlalchemy import insert, update
from sqlmodel import col

from bot import migrations
from bot.audit.chain import GENESIS, event_hash
from bot.audit.verify import verify_chains
from bot.db import Database
from bot.models import Incident, TimelineEvent

PER_INCIDENT = 100
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def populate(db: Database, events: int) -> None:
    incidents = max(events // PER_INCIDENT, 1)
    with db.transaction() as session:
        session.execute(
            insert(Incident),
            [
                {
                    "number": n + 1,
                    "title": f"Incident {n + 1}",
                    "summary": "",
                    "severity": "SEV2",
                    "status": "closed",
                    "private": False,
                    "reporter_id": "U1",
                    "declared_at": T0,
                    "updated_at": T0,
                    "slack_state": {},
                }
                for n in range(incidents)
            ],
        )
    for n in range(incidents):
        rows: list[dict[str, Any]] = []
        prev = GENESIS
        for i in range(PER_INCIDENT):
            at = T0 + timedelta(minutes=i)
            row: dict[str, Any] = {
                "incident_id": n + 1,
                "occurred_at": at,
                "recorded_at": at,
                "kind": "note" if i else "declared",
                "actor_id": f"U{i % 7}",
                "text": f"Step {i}: checked the dashboards, error rate {i % 13}% on checkout",
                "data": {"n": i, "labels": {"service": "checkout"}},
                "source_url": None,
                "source_ref": None,
                "idempotency_key": f"bench:{n}:{i}",
            }
            row["prev_hash"] = prev
            row["hash"] = prev = event_hash(row, prev)
            rows.append(row)
        with db.transaction() as session:
            session.execute(insert(TimelineEvent), rows)
            session.execute(  # the head the core keeps on the incident row
                update(Incident)
                .where(col(Incident.id) == n + 1)
                .values(chain_head=prev, chain_events=PER_INCIDENT)
            )


def run(label: str, url: str, events: int) -> None:
    migrations.upgrade(url)
    db = Database(url)
    try:
        populate(db, events)
        for attempt in (1, 2):
            began = time.perf_counter()
            with db.read() as session:
                report = verify_chains(session)
            elapsed = time.perf_counter() - began
            assert report.ok, report.breaks[:1]
            print(
                f"{label:<10} verify {report.events:,} events of {report.incidents:,} incidents: "
                f"{elapsed:.2f} s ({report.events / elapsed:,.0f} events/s, run {attempt})"
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
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with scratch_database(None) as url:
        run("sqlite", url, args.events)
    if not args.sqlite_only:
        with scratch_database(args.database_url, script="bench/audit.py") as url:
            run("postgresql", url, args.events)


if __name__ == "__main__":
    main()
