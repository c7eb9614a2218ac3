"""The lookups alert intake makes by an alert's label (an Opsgenie Escalate naming only the
alertId, a Datadog monitor's next alert cycle) use an index, on SQLite and PostgreSQL: a
delivery does not read every alert its source ever sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from bot.alerts.intake import ingest
from bot.alerts.model import AlertMessage
from bot.config import Policy
from bot.db import Database
from tests.alerts.conftest import NOW, message


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
