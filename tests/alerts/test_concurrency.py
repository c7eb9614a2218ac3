"""Exactly once under concurrency: the same deliveries from many threads and two "replicas"
(two Database objects, i.e. two connection pools) end in one incident per group and one
timeline entry per change. Run on PostgreSQL for real row locks; on SQLite the write lock
serialises the same way. On PostgreSQL a group whose webhook found the incident counter taken
is declared by an effect after the webhook (``bot.alerts.declaring``), run here by both
replicas at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, select

from bot.alerts import declaring
from bot.alerts.intake import ingest
from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertGroup, AlertRecord
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.effects import kinds
from bot.effects.models import Effect
from bot.models import Incident, TimelineEvent
from tests.alerts.conftest import NOW, message


def race(workers: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` on ``workers`` threads released together; re-raise the first failure."""
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[0]


def deliver(databases: list[Database], policy: Policy, messages: list[AlertMessage]) -> None:
    def work(i: int) -> None:
        db = databases[i % len(databases)]
        for attempt in range(5):
            try:
                with db.transaction() as session:
                    ingest(session, policy, messages[i % len(messages)], now=NOW)
                return
            except (OperationalError, IntegrityError):
                # The receiver retries a deadlock or a lost unique race the same way.
                if attempt == 4:
                    raise

    race(len(messages) * 4, work)
    finish_waiting_declares(databases, policy)


def finish_waiting_declares(databases: list[Database], policy: Policy) -> None:
    """What the replicas' effect runners do with the declares webhooks left to them (a group
    whose first webhook found the incident counter taken by another declare): here every
    replica runs every one at once, the worst race two claim loops could make."""
    with databases[0].read() as session:
        waiting = session.exec(select(Effect).where(Effect.kind == kinds.ALERTS_DECLARE)).all()
    jobs = [(db, effect) for effect in waiting for db in databases]

    def work(i: int) -> None:
        db, effect = jobs[i]
        since = datetime.fromisoformat(str(effect.data["since"]))
        args = (policy, int(effect.data["group"]), int(effect.data["episode"]))
        for attempt in range(5):
            try:
                with db.transaction() as session:
                    declaring.declare_waiting(session, *args, since=since, now=NOW)
                return
            except (OperationalError, IntegrityError):
                if attempt == 4:
                    raise

    if jobs:
        race(len(jobs), work)


def test_the_same_message_from_many_threads_and_two_replicas_is_stored_once(
    db: Database, database_url: str, policy: Policy
) -> None:
    replica = Database(database_url, pool_size=25)
    try:
        msg = message("alertmanager/kubenotifyplus-rke2-3-alerts-runbook-url-regex-route")
        deliver([db, replica], policy, [msg] * 4)
    finally:
        replica.dispose()
    with db.read() as session:
        assert len(session.exec(select(Incident)).all()) == 1
        assert len(session.exec(select(AlertGroup)).all()) == 1
        assert len(session.exec(select(AlertRecord)).all()) == 3
        kinds = [e.kind for e in session.exec(select(TimelineEvent)).all()]
        assert kinds.count("declared") == 1 and kinds.count("alert_firing") == 1


def test_many_groups_at_once_make_one_incident_each_with_gap_free_numbers(
    db: Database, database_url: str, policy: Policy
) -> None:
    replica = Database(database_url, pool_size=25)
    messages = [
        parse(
            "alertmanager",
            {
                "groupKey": f"group-{g}",
                "status": "firing",
                "alerts": [
                    {"status": "firing", "labels": {"alertname": f"A{g}", "pod": f"p{i}"}}
                    for i in range(20)
                ],
            },
            now=NOW,
        )
        for g in range(6)
    ]
    try:
        deliver([db, replica], policy, messages)
    finally:
        replica.dispose()
    with db.read() as session:
        numbers = sorted(i.number for i in session.exec(select(Incident)).all())
        assert numbers == [1, 2, 3, 4, 5, 6]
        assert len(session.exec(select(AlertRecord)).all()) == 120
        firing = session.exec(
            select(TimelineEvent).where(col(TimelineEvent.kind) == "alert_firing")
        ).all()
        assert len(firing) == 6
        groups = session.exec(select(AlertGroup)).all()
        assert sorted(g.firing_count for g in groups) == [20] * 6
