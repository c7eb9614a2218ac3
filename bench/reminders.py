"""Benchmark the reminder loop: the cost of an idle tick, and how late reminders go out.

    python bench/reminders.py                       # SQLite (temporary file)
    python bench/reminders.py --database-url postgresql://postgres@127.0.0.1:5432/test

For PostgreSQL a throwaway database is created next to the one given and dropped afterwards.

1. Idle tick: with 10,000 pending reminders of which none is due, one claim-and-send tick
   (a transaction with the claiming UPDATE) -- p50 and p99 over many ticks. This is what every
   replica pays every 2 seconds, all day.
2. Lateness: the real ``ReminderScheduler`` (APScheduler, 2 s interval) runs while reminders
   fall due over the next half minute; lateness is the time the fake Slack call starts minus the
   reminder's due time (max and p99). Slack calls take ``--slack-latency-ms`` each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from scratch import percentile, scratch_database
from sqlalchemy import insert
from sqlmodel import col, select

from bot import migrations
from bot import reminders as rem
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.models import Incident, Reminder
from bot.scheduler import ReminderScheduler


class RecordingNotifier:
    """Stands in for Slack: records when each message was handed over, then waits a little."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.sent: dict[str, datetime] = {}
        self.duplicates = 0
        self._lock = threading.Lock()

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        started = utcnow()
        with self._lock:
            if channel in self.sent:
                self.duplicates += 1
            else:
                self.sent[channel] = started
        if self.latency:
            time.sleep(self.latency)
        return f"{started.timestamp():.6f}"

    def user_groups(self) -> Mapping[str, str]:
        return {}


def add_incidents(db: Database, count: int, *, first: int, now: datetime) -> list[int]:
    rows = [
        {
            "number": first + n,
            "title": f"bench incident {first + n}",
            "summary": "",
            "severity": "SEV4",
            "status": "triage",
            "private": False,
            "reporter_id": "U0BENCH",
            "slack_channel_id": f"C{first + n:08d}",
            "declared_at": now,
            "updated_at": now,
            "slack_state": {},
        }
        for n in range(count)
    ]
    with db.transaction() as session:
        session.exec(insert(Incident), params=rows)
        found = session.exec(
            select(Incident.id)
            .where(Incident.number >= first, Incident.number < first + count)
            .order_by(col(Incident.number))
        ).all()
    return [int(i) for i in found if i is not None]


def add_update_reminders(
    db: Database, incident_ids: list[int], dues: list[datetime], *, now: datetime
) -> None:
    """Status-update nudges (SEV4: every 4h) due at ``dues``, as ``on_timeline_event`` makes."""
    every = timedelta(hours=4)
    rows = [
        {
            "dedupe_key": rem.update_key(incident_id),
            "kind": rem.UPDATE,
            "incident_id": incident_id,
            "due_at": due,
            "state": rem.PENDING,
            "data": {"since": (due - every).isoformat()},
            "attempts": 0,
            "sent_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        for incident_id, due in zip(incident_ids, dues, strict=True)
    ]
    with db.transaction() as session:
        session.exec(insert(Reminder), params=rows)


def bench_idle_tick(db: Database, policy: Policy, pending: int, ticks: int) -> list[float]:
    now = utcnow()
    ids = add_incidents(db, pending, first=1, now=now - timedelta(hours=1))
    rng = random.Random(1)
    dues = [now + timedelta(minutes=rng.uniform(10, 600)) for _ in ids]
    add_update_reminders(db, ids, dues, now=now)
    worker = rem.ReminderWorker(db, policy, RecordingNotifier(0), worker_id="bench-idle")
    worker.tick()  # warm the pool and the statement cache
    timings = []
    for _ in range(ticks):
        began = time.perf_counter()
        report = worker.tick()
        timings.append((time.perf_counter() - began) * 1000)
        assert report.claimed == 0
    return timings


def bench_lateness(
    db: Database,
    policy: Policy,
    count: int,
    spread: float,
    latency: float,
    replicas: int,
    interval: float,
) -> tuple[list[float], int, int]:
    now = utcnow()
    ids = add_incidents(db, count, first=1_000_000, now=now - timedelta(hours=5))
    rng = random.Random(2)
    dues = [now + timedelta(seconds=2 + rng.uniform(0, spread)) for _ in ids]
    add_update_reminders(db, ids, dues, now=now)
    due_by_channel = {f"C{1_000_000 + n:08d}": due for n, due in enumerate(dues)}
    notifier = RecordingNotifier(latency)
    schedulers = [
        ReminderScheduler(db, policy, notifier, interval=interval) for _ in range(replicas)
    ]
    for scheduler in schedulers:
        scheduler.start()
    deadline = time.monotonic() + spread + 60
    while len(notifier.sent) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    for scheduler in schedulers:
        scheduler.shutdown()
    lateness = [
        (notifier.sent[channel] - due).total_seconds()
        for channel, due in due_by_channel.items()
        if channel in notifier.sent
    ]
    return lateness, count - len(lateness), notifier.duplicates


def run(url: str | None, args: argparse.Namespace) -> None:
    with scratch_database(url) as database_url:
        migrations.upgrade(database_url)
        db = Database(database_url)
        policy = Policy()
        try:
            backend = db.backend
            idle = bench_idle_tick(db, policy, args.pending, args.ticks)
            print(
                f"[{backend}] idle tick with {args.pending:,} pending reminders "
                f"({args.ticks} ticks): p50 {statistics.median(idle):.2f} ms, "
                f"p99 {percentile(idle, 0.99):.2f} ms, max {max(idle):.2f} ms"
            )
            late, missing, duplicates = bench_lateness(
                db,
                policy,
                args.due,
                args.spread,
                args.slack_latency_ms / 1000,
                args.replicas,
                args.interval,
            )
            print(
                f"[{backend}] {args.due} reminders due over {args.spread:.0f} s, "
                f"{args.replicas} replica(s), {args.interval} s interval, "
                f"{args.slack_latency_ms} ms per Slack call: lateness "
                f"p50 {statistics.median(late):.2f} s, p99 {percentile(late, 0.99):.2f} s, "
                f"max {max(late):.2f} s; missing {missing}, sent twice {duplicates}"
            )
        finally:
            db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server (default: SQLite temp file)")
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--due", type=int, default=300, help="reminders falling due")
    parser.add_argument("--spread", type=float, default=30.0, help="seconds they fall due over")
    parser.add_argument("--slack-latency-ms", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    run(args.database_url, args)


if __name__ == "__main__":
    main()
