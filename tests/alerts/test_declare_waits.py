"""A group's first webhook that finds the incident counter taken by another declare does not
wait for that declare's commit: its alerts are stored, and the incident is declared by the
``alerts.declare`` effect moments later. The incident is the one the webhook would have
declared, once, with what came while it waited."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from bot import incidents as core
from bot.alerts import declaring
from bot.alerts.intake import Outcome, ingest
from bot.alerts.listing import list_alerts
from bot.alerts.model import AlertMessage
from bot.alerts.models import DECLARING, AlertGroup, AlertNotice
from bot.alerts.sources import parse
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.effects import kinds
from bot.effects.failures import on_effect_failed
from bot.effects.models import Effect
from bot.effects.runner import TransientError
from bot.effects.store import Claimed
from bot.incidents.text import INCIDENT_COUNTER
from bot.models import EventKind, Incident, TimelineEvent
from tests.alerts.conftest import NOW, datadog_cycle
from tests.alerts.test_probe_round5 import deliver


@contextmanager
def counter_taken(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Another declare holds the incident counter. On PostgreSQL, for real: another connection
    has its row locked. SQLite has no row locks (a writer holds the whole database, so no
    webhook ever finds the counter taken): the core is told it is taken."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as other:
            other.execute(
                text("SELECT value FROM counters WHERE name = :name FOR UPDATE"),
                {"name": INCIDENT_COUNTER},
            )
            yield
            other.rollback()
    else:
        with monkeypatch.context() as patch:
            patch.setattr(core, "number_free", lambda session: False)
            yield


def alertmanager(
    *alerts: tuple[str, str], minutes: float = 0, starts: str = "2026-11-30T11:50:00Z"
) -> AlertMessage:
    """An Alertmanager webhook of group ``checkout``: (instance, status) per alert."""
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutErrors"}',
        "status": "firing" if any(s == "firing" for _, s in alerts) else "resolved",
        "receiver": "firebreak",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "https://alertmanager.example.com",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "CheckoutErrors", "instance": instance},
                "annotations": {"summary": f"5xx on {instance}"},
                "startsAt": starts,
                "endsAt": "2026-11-30T12:01:00Z" if status == "resolved" else "",
                "fingerprint": f"fp-{instance}",
                "generatorURL": "https://prometheus.example.com/graph",
            }
            for instance, status in alerts
        ],
    }
    return parse("alertmanager", body, now=NOW + timedelta(minutes=minutes))


def store(db: Database, policy: Policy, msg: AlertMessage, minutes: float = 0) -> Outcome:
    with db.transaction() as session:
        return ingest(session, policy, msg, now=NOW + timedelta(minutes=minutes))


def waiting_effects(db: Database) -> list[Effect]:
    with db.read() as session:
        query = select(Effect).where(Effect.kind == kinds.ALERTS_DECLARE)
        return list(session.exec(query.order_by(col(Effect.id))).all())


def run_declare(db: Database, policy: Policy, effect: Effect, minutes: float) -> Incident | None:
    at = NOW + timedelta(minutes=minutes)
    with db.transaction() as session:
        incident = declaring.declare_waiting(
            session,
            policy,
            int(effect.data["group"]),
            int(effect.data["episode"]),
            since=NOW.fromisoformat(str(effect.data["since"])),
            related=tuple(effect.data["related"]) if effect.data.get("related") else None,
            now=at,
        )
        session.expunge_all()
        return incident


def test_the_webhook_stores_the_alerts_and_the_effect_declares_them_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = policy_from_dict({})
    with counter_taken(db, monkeypatch):
        first = store(db, policy, alertmanager(("web-1", "firing")))
    assert (first.disposition, first.incident_ref, first.declared) == (DECLARING, None, False)
    with db.read() as session:
        assert session.exec(select(Incident)).all() == []
    # While it waits, the group grows and one of its alerts resolves: stored on the group.
    second = store(db, policy, alertmanager(("web-1", "firing"), ("web-2", "firing")), 0.2)
    third = store(db, policy, alertmanager(("web-2", "resolved")), 0.4)
    assert (second.disposition, third.disposition) == (DECLARING, DECLARING)
    assert (second.incident_ref, third.incident_ref) == (None, None)
    with db.read() as session:  # `alerts list` says what they wait for
        waiting = {(e.key, e.incident, e.disposition) for e in list_alerts(session)}
    assert waiting == {("fp-web-1", None, DECLARING), ("fp-web-2", None, DECLARING)}

    [effect] = waiting_effects(db)
    incident = run_declare(db, policy, effect, 0.5)
    assert incident is not None and incident.ref == "INC-1"
    assert run_declare(db, policy, effect, 0.6) is None  # processed again: nothing more

    with db.read() as session:
        [declared] = session.exec(select(Incident)).all()
        group = session.exec(select(AlertGroup)).one()
        events = session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == declared.id)
            .order_by(col(TimelineEvent.id))
        ).all()
        listed = {entry.key: entry.incident for entry in list_alerts(session)}
    assert (declared.declare_key, declared.severity) == ("alerts:1:1", policy.default_severity)
    assert declared.detected_at == NOW  # when the first webhook came, not when it was declared
    assert declared.impact_started_at == NOW - timedelta(minutes=10)  # the alerts' startsAt
    assert (group.disposition, group.incident_id) == ("incident", declared.id)
    assert [(e.kind, e.text, e.occurred_at) for e in events] == [
        (
            EventKind.DECLARED,
            f"INC-1 declared as {policy.default_severity}: CheckoutErrors",
            NOW + timedelta(minutes=0.5),
        ),
        # What came while it waited: both fired, dated when the first came; one resolved,
        # dated when it did.
        (
            EventKind.ALERT_FIRING,
            "2 alerts firing: CheckoutErrors ×2 (2 of 2 firing in this group)",
            NOW,
        ),
        (
            EventKind.ALERT_RESOLVED,
            "Alert resolved: CheckoutErrors (1 of 2 firing in this group)",
            NOW + timedelta(minutes=0.4),
        ),
    ]
    assert declared.summary == "Opened by Alertmanager alerts (1 firing).\n\n5xx on web-1"
    assert listed == {"fp-web-1": "INC-1", "fp-web-2": "INC-1"}

    # Later messages attach as to any incident the alerts declared.
    later = store(db, policy, alertmanager(("web-1", "resolved")), 1)
    assert (later.incident_ref, later.declared) == ("INC-1", False)
    with db.read() as session:
        assert len(session.exec(select(Incident)).all()) == 1


def test_alerts_that_all_resolved_while_the_declare_waited_are_asked_about(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = policy_from_dict({})
    with counter_taken(db, monkeypatch):
        store(db, policy, alertmanager(("web-1", "firing")))
    store(db, policy, alertmanager(("web-1", "resolved")), 0.3)
    [effect] = waiting_effects(db)
    incident = run_declare(db, policy, effect, 0.5)
    assert incident is not None
    with db.read() as session:
        asked = session.exec(select(AlertNotice).where(AlertNotice.kind == "all_resolved")).all()
        event = session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == EventKind.ALERT_RESOLVED)
        ).one()
    assert [n.incident_id for n in asked] == [incident.id]
    assert event.text == "Alert resolved: CheckoutErrors (0 of 1 firing in this group)"
    assert event.occurred_at == NOW + timedelta(minutes=0.3)


def test_a_declare_left_behind_by_a_later_episode_does_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The effect waited past the flap window (its replicas were down): the group resolved and
    fired again, a new episode that declared its own incident. The old effect declares none."""
    policy = policy_from_dict({})
    with counter_taken(db, monkeypatch):
        store(db, policy, alertmanager(("web-1", "firing")))
    store(db, policy, alertmanager(("web-1", "resolved")), 1)
    refired = store(
        db,
        policy,
        alertmanager(("web-1", "firing"), minutes=180, starts="2026-11-30T14:59:00Z"),
        180,
    )
    assert (refired.incident_ref, refired.declared) == ("INC-1", True)
    [effect] = waiting_effects(db)
    assert run_declare(db, policy, effect, 181) is None
    with db.read() as session:
        assert [i.declare_key for i in session.exec(select(Incident)).all()] == ["alerts:1:2"]


def test_the_counter_is_free_unless_another_declare_holds_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.transaction() as session:
        assert core.number_free(session)
    if db.engine.dialect.name != "postgresql":
        return  # SQLite: a transaction that writes holds the whole database
    with counter_taken(db, monkeypatch), db.transaction() as session:
        assert not core.number_free(session)


def test_a_monitors_next_cycle_attaches_to_the_incident_its_waiting_cycle_declares(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Datadog monitor's cycle c1 waits for its declare; it recovers and cycle c2 triggers
    before the declare ran. c2 waits too, and joins c1's incident: one incident for one
    flapping monitor, as without the wait."""
    policy = policy_from_dict({})
    with counter_taken(db, monkeypatch):
        first = deliver(db, policy, "datadog", datadog_cycle("Triggered", "c1", 0), 0)
    deliver(db, policy, "datadog", datadog_cycle("Recovered", "c1", 0.1), 0.1)
    second = deliver(db, policy, "datadog", datadog_cycle("Triggered", "c2", 0.2), 0.2)
    assert (first.disposition, second.disposition) == (DECLARING, DECLARING)
    first_effect, second_effect = waiting_effects(db)
    # c2's declare runs first (another replica): it waits for c1's.
    with pytest.raises(declaring.StillWaiting):
        run_declare(db, policy, second_effect, 0.3)
    incident = run_declare(db, policy, first_effect, 0.3)
    assert incident is not None
    attached = run_declare(db, policy, second_effect, 0.4)
    assert attached is not None and attached.id == incident.id
    with db.read() as session:
        assert [i.ref for i in session.exec(select(Incident)).all()] == ["INC-1"]
        groups = session.exec(select(AlertGroup).order_by(col(AlertGroup.id))).all()
    assert [(g.disposition, g.incident_id) for g in groups] == [("incident", incident.id)] * 2


def test_a_declare_that_failed_for_good_is_told_and_the_next_message_declares(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Its retries ran out (the database away for an hour): people are told in the
    announcements channel to declare by hand (a Datadog monitor that stays in alert sends
    nothing more), the log says so as an error, and the group no longer waits: the alerts'
    next message (Alertmanager repeats it) declares the incident."""
    policy = policy_from_dict({"slack": {"announcements_channel": "C0INCIDENTS"}})
    with counter_taken(db, monkeypatch):
        store(db, policy, alertmanager(("web-1", "firing")))
    [effect] = waiting_effects(db)
    with db.transaction() as session:
        row = session.get(Effect, effect.id)
        assert row is not None
        on_effect_failed(session, policy, row, "gave up after 15 attempts: the database.")
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("could not be declared" in message for message in errors)
    with db.read() as session:
        [told] = session.exec(select(Effect).where(Effect.key == "alerts:gave-up:1:1")).all()
    assert told.data["to"] == "C0INCIDENTS"
    assert "Declare it by hand: `/incident CheckoutErrors`" in told.data["notice"]["error"]
    later = store(db, policy, alertmanager(("web-1", "firing"), ("web-2", "firing")), 30)
    assert (later.incident_ref, later.declared) == ("INC-1", True)


def test_a_declare_waits_for_a_held_counter_only_so_long(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction holds the incident counter (a slow declare): the effect gives up
    after its wait and is tried again later, so its runner thread goes on with other
    incidents' Slack work meanwhile (on PostgreSQL; on SQLite nothing holds the counter apart
    from the database, and the declare goes through)."""
    policy = policy_from_dict({})
    run = declaring.handler(db, policy, lambda: None, wait=0.5)
    with counter_taken(db, monkeypatch):
        store(db, policy, alertmanager(("web-1", "firing")))
        [effect] = waiting_effects(db)
        item = Claimed(
            id=effect.id or 0,
            key=effect.key,
            kind=effect.kind,
            incident_id=None,
            data=dict(effect.data),
            result={},
            attempts=1,
            created_at=NOW,
        )
        if db.engine.dialect.name == "postgresql":
            with pytest.raises(TransientError) as busy:
                run(item)
            assert busy.value.reason == "busy"
    assert run(item).result == {"incident": "INC-1"}  # the counter free again
