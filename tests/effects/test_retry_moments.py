"""``/incident retry`` (and an invite back) runs failed effects again, but never those that told
of a moment: reminders, escalations, notices that something failed. Rows written before the
flag existed are recognised by what they are."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from bot import incidents as core
from bot.alerts.models import AlertGroup
from bot.alerts.notices import AlertLinks, AllResolved, FiringAgain, Notice, queue_notice
from bot.config import Policy
from bot.db import Database
from bot.effects import kinds, store
from bot.effects.models import Effect

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def failed(key: str, data: dict[str, object], incident_id: int, kind: str = kinds.POST) -> Effect:
    return Effect(
        key=key,
        kind=kind,
        incident_id=incident_id,
        data=data,
        state=store.FAILED,
        due_at=NOW,
        attempts=15,
        created_at=NOW,
        updated_at=NOW,
    )


def test_old_reminders_and_failure_notices_are_not_run_again(db: Database, policy: Policy) -> None:
    with db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title="Checkout down", reporter="U1", now=NOW
        ).incident
        assert incident.id is not None
        notice = {"type": "failure", "what": "post a message", "error": "token_revoked"}
        session.add_all(
            [
                # As written before the flag: an escalation, a notice of a failure.
                failed(
                    "reminder:7:1:incident",
                    {"to": "C1", "notice": {"type": "escalation"}},
                    incident.id,
                ),
                failed(
                    f"effect-failed:{incident.id}:abc:notice",
                    {"to": "U1", "notice": notice},
                    incident.id,
                ),
                # An update people posted: run again.
                failed(
                    "event:13:update", {"to": "incident", "notice": {"type": "update"}}, incident.id
                ),
                failed("refresh:1", {}, incident.id, kinds.REFRESH),
            ]
        )
        session.flush()
        assert store.retry_failed(session, incident.id, now=NOW) == 2
    with db.read() as session:
        states = {row.key: row.state for row in session.exec(select(Effect)).all()}
    assert states["reminder:7:1:incident"] == store.FAILED
    assert states[f"effect-failed:{incident.id}:abc:notice"] == store.FAILED
    assert states["event:13:update"] == store.PENDING
    assert states["refresh:1"] == store.PENDING


def test_alert_notices_of_a_moment_are_not_run_again(db: Database, policy: Policy) -> None:
    """ "Alerts fire again" and "all alerts resolved: mitigate?" told of a moment; the post of
    the alerts' links and runbook did not, and is tried again."""
    with db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title="Checkout down", reporter="U1", now=NOW
        ).incident
        assert incident.id is not None
        group = AlertGroup(
            source="generic",
            group_key="checkout",
            incident_id=incident.id,
            first_seen_at=NOW,
            last_seen_at=NOW,
        )
        session.add(group)
        session.flush()
        assert group.id is not None
        notices: list[Notice] = [
            AlertLinks(incident.id, group.id, "generic", "Checkout 5xx", 1),
            FiringAgain(incident.id, group.id, "generic", "Checkout 5xx", 1, 1, "Mitigated"),
            AllResolved(incident.id, group.id, "generic", "Checkout 5xx", 1),
        ]
        for n, notice in enumerate(notices):
            queue_notice(session, notice, dedupe_key=f"notice-{n}", now=NOW)
        session.flush()
        for row in session.exec(select(Effect).where(Effect.kind == kinds.POST)).all():
            row.state = store.FAILED
            session.add(row)
        session.flush()
        assert store.retry_failed(session, incident.id, now=NOW) == 1
        [again] = session.exec(
            select(Effect).where(Effect.state == store.PENDING, Effect.kind == kinds.POST)
        ).all()
    assert again.data["notice"]["type"] == "alerts.links"
