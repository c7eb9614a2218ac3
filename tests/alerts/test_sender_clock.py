"""A sender whose clock runs ahead of Firebreak's: its events keep their order."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

from bot.alerts.intake import Outcome, ingest
from bot.alerts.models import AlertRecord
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.models import EventKind, TimelineEvent
from tests.alerts.conftest import NOW

AHEAD = timedelta(minutes=3)
"""The sender's clock, ahead of Firebreak's."""


def delivered(db: Database, policy: Policy, status: str, starts: datetime, at: datetime) -> Outcome:
    """An Alertmanager message dated by the sender's clock, received at ``at`` by Firebreak's."""
    alert = {
        "status": status,
        "labels": {"alertname": "DiskFull"},
        "startsAt": starts.isoformat(),
        "endsAt": (at + AHEAD - timedelta(seconds=10)).isoformat()
        if status == "resolved"
        else "0001-01-01T00:00:00Z",
        "fingerprint": "fp-disk",
    }
    body = {"version": "4", "groupKey": "disk", "status": status, "alerts": [alert]}
    with db.transaction() as session:
        return ingest(session, policy, parse("alertmanager", body, now=at), now=at)


def test_a_late_copy_of_a_firing_stays_older_than_its_resolve(db: Database, policy: Policy) -> None:
    started = NOW + AHEAD - timedelta(seconds=60)  # by the sender's clock: in our future
    fired = delivered(db, policy, "firing", started, NOW)
    resolved = delivered(db, policy, "resolved", started, NOW + timedelta(minutes=1))
    late = delivered(db, policy, "firing", started, NOW + timedelta(minutes=2))

    assert (fired.firing, resolved.firing, late.firing) == (1, 0, 0)
    with db.read() as session:
        assert session.exec(select(AlertRecord)).one().status == "resolved"
        entries = session.exec(
            select(TimelineEvent.kind).where(
                TimelineEvent.kind.in_([EventKind.ALERT_FIRING, EventKind.ALERT_RESOLVED])  # type: ignore[attr-defined]
            )
        ).all()
    assert entries == [EventKind.ALERT_FIRING, EventKind.ALERT_RESOLVED]


def test_a_resolve_ends_an_alert_whose_start_is_dated_ahead_of_its_end(
    db: Database, policy: Policy
) -> None:
    """Two Prometheus replicas with clocks apart: the start from the one ahead, the end from
    the other. The resolve comes later, so it is newer, whatever the dates say."""
    started = NOW + timedelta(minutes=10)
    body = {
        "version": "4",
        "groupKey": "disk",
        "status": "resolved",
        "alerts": [
            {
                "status": "resolved",
                "labels": {"alertname": "DiskFull"},
                "startsAt": started.isoformat(),
                "endsAt": (NOW + timedelta(minutes=2)).isoformat(),
                "fingerprint": "fp-disk",
            }
        ],
    }
    assert delivered(db, policy, "firing", started, NOW).firing == 1
    at = NOW + timedelta(minutes=2)
    with db.transaction() as session:
        resolved = ingest(session, policy, parse("alertmanager", body, now=at), now=at)
    assert resolved.firing == 0
    with db.read() as session:
        assert session.exec(select(AlertRecord)).one().status == "resolved"


def alert_entries(db: Database) -> list[str]:
    with db.read() as session:
        return list(
            session.exec(
                select(TimelineEvent.text)
                .where(TimelineEvent.kind == EventKind.ALERT_FIRING)
                .order_by(TimelineEvent.id)  # type: ignore[arg-type]
            ).all()
        )


def test_copies_of_one_occurrence_from_a_clock_ahead_are_one_entry(
    db: Database, policy: Policy
) -> None:
    """Alertmanager repeats a firing alert (``repeat_interval``, a second HA peer) with the
    same ``startsAt``; dated in Firebreak's future, each copy used to read as a new occurrence,
    and the timeline said "Alert firing" once per copy. A later start is still a new one."""
    started = NOW + AHEAD - timedelta(seconds=60)
    for minutes in (0, 1, 2):
        delivered(db, policy, "firing", started, NOW + timedelta(minutes=minutes))
    assert len(alert_entries(db)) == 1
    again = delivered(
        db, policy, "firing", started + timedelta(minutes=5), NOW + timedelta(minutes=6)
    )
    assert again.firing == 1
    assert len(alert_entries(db)) == 2
