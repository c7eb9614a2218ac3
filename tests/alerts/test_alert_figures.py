"""The figures of incidents alerts open, as managers and auditors read them afterwards: when
the impact started and when it was detected (a Declare from triage included), the declares
counted in ``/metrics`` whoever made them, and those times in the chained timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot import incidents as core
from bot import observability
from bot.alerts.intake import ingest
from bot.alerts.sources import parse
from bot.alerts.triage import triage_declare
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.models import EventKind, Incident, TimelineEvent
from tests.alerts.conftest import NOW

STARTED = NOW - timedelta(minutes=20)


def alert(key: str, minutes: float = 0) -> dict[str, object]:
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{key}"}}',
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": key},
                "annotations": {"summary": f"{key} on web-1"},
                "startsAt": STARTED.isoformat().replace("+00:00", "Z"),
                "fingerprint": f"fp-{key}",
            }
        ],
    }


def deliver(db: Database, policy: Policy, key: str, minutes: float = 0) -> None:
    at = NOW + timedelta(minutes=minutes)
    with freeze_time(at), db.transaction() as session:
        ingest(session, policy, parse("alertmanager", alert(key), now=at), now=at)


def declared_count(severity: str) -> float:
    return float(observability.INCIDENTS_DECLARED.labels(severity=severity)._value.get())


def test_a_declare_from_triage_counts_from_when_the_alerts_came_not_the_click(
    db: Database,
) -> None:
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    deliver(db, policy, "CheckoutErrors")
    click = NOW + timedelta(minutes=20)
    with freeze_time(click), db.transaction() as session:
        triage_declare(session, policy, 1, actor="U1", now=click)
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        declared = session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == EventKind.DECLARED)
        ).one()
    assert incident.impact_started_at == STARTED  # the alert's startsAt
    assert incident.detected_at == NOW  # when it came, not when Declare was clicked
    assert incident.declared_at == click
    assert (declared.data["impact_started_at"], declared.data["detected_at"]) == (
        STARTED.isoformat(),
        NOW.isoformat(),
    )


def test_every_declare_is_counted_once_it_is_committed(db: Database, policy: Policy) -> None:
    severity = policy.default_severity
    before = declared_count(severity)
    with db.transaction() as session:  # a person's
        core.declare_incident(session, policy, title="Checkout down", reporter="U1", now=NOW)
    deliver(db, policy, "CheckoutErrors")  # alerts'
    deliver(db, policy, "CheckoutErrors", 1)  # the same alerts again: no declare
    with pytest.raises(RuntimeError), db.transaction() as session:  # rolled back: not counted
        core.declare_incident(session, policy, title="Never", reporter="U1", now=NOW)
        raise RuntimeError("the transaction fails after the declare")
    assert declared_count(severity) - before == 2
    with db.read() as session:
        assert len(session.exec(select(Incident)).all()) == 2
