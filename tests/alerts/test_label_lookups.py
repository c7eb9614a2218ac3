"""The lookups alert intake makes by an alert's label (an Opsgenie Escalate naming only the
alertId, a Datadog monitor's next alert cycle) use an index, on SQLite and PostgreSQL: a
delivery does not read every alert its source ever sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import select

from bot.alerts.intake import ingest
from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertGroup
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.models import TimelineEvent
from tests.alerts.conftest import NOW, load, message


@contextmanager
def label_lookups(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The statements that look alerts up by a label, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and (
            "labels ->>" in statement or "JSON_EXTRACT(alerts.labels" in statement
        ):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


def plan(db: Database, statement: str, parameters: Any) -> str:
    """The query plan, with sequential scans made the last resort on PostgreSQL (a test's
    tables are so small that reading them whole is always cheapest)."""
    with db.engine.connect() as connection:
        if db.backend == "postgresql":
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
        else:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        connection.rollback()
    return "\n".join(str(row[-1]) for row in rows)


def store(db: Database, policy: Policy, msg: AlertMessage, minutes: int = 0) -> None:
    db.transact(lambda session: ingest(session, policy, msg, now=NOW + timedelta(minutes=minutes)))


def test_opsgenie_and_datadog_lookups_by_label_use_an_index(db: Database, policy: Policy) -> None:
    with label_lookups(db) as seen:
        store(db, policy, message("opsgenie/probe-create-alias-and-alertid-of-escalate"))
        store(db, policy, message("opsgenie/zulip-escalate-alert-only-alertid"))
        store(db, policy, message("datadog/probe-template-cycle-1-triggered"))
        store(db, policy, message("datadog/probe-template-cycle-1-recovered"))
        store(db, policy, message("datadog/probe-template-cycle-2-retriggered"), minutes=10)
    indexes = [
        ("alertId", "ix_alerts_label_alertid"),
        ("monitor_key", "ix_alerts_label_monitor_key"),
    ]
    for label, index in indexes:
        lookups = [(s, p) for s, p in seen if label in s + str(p)]
        assert lookups, f"no lookup by {label}"
        for statement, parameters in lookups:
            assert index in plan(db, statement, parameters), statement


def test_long_non_ascii_lookup_labels_are_stored_and_still_found(
    db: Database, policy: Policy
) -> None:
    """A 3 KB scope or alertId in CJK would overflow PostgreSQL's index row (about 2.7 KB) if
    stored as is: the delivery would fail every retry. Kept as a key, it stores and joins."""
    long_id = "".join(chr(0x4E00 + i * 7) for i in range(1000))  # varied: not compressible
    create = load("opsgenie/probe-create-alias-and-alertid-of-escalate")
    create["alert"]["alertId"] = long_id
    escalate = load("opsgenie/zulip-escalate-alert-only-alertid")
    escalate["alert"]["alertId"] = long_id
    store(db, policy, parse("opsgenie", create, now=NOW))
    store(db, policy, parse("opsgenie", escalate, now=NOW), minutes=1)
    cycle = load("datadog/probe-template-cycle-1-triggered")
    cycle["alert_scope"] = "kube_namespace:" + long_id[::-1]
    store(db, policy, parse("datadog", cycle, now=NOW))
    again = dict(cycle, alert_cycle_key="9999", id="7002")
    store(db, policy, parse("datadog", again, now=NOW), minutes=2)
    with db.read() as session:
        groups = session.exec(select(AlertGroup)).all()
        events = session.exec(select(TimelineEvent)).all()
    incidents = {g.incident_id for g in groups}
    assert len(incidents) == 2  # one per source: the Escalate and the next cycle joined
    escalated = [e.text for e in events if "Escalate" in e.text]
    assert len(escalated) == 1, [e.text for e in events]
