"""Defects a probe with two replicas found (round 8), each as a responder sees it: the severity
an incident opens with when Opsgenie delivers a priority change before the alert's Create, and
a Datadog renotification of a warning taken for a change of state, and a triage request that
went on offering a decision on alerts long resolved, or beside a newer request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlmodel import col, select

from bot.alerts.models import AlertNotice
from bot.alerts.replay import Rehearsal
from bot.alerts.sources import parse
from bot.alerts.triage import triage_declare
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.effects import kinds
from bot.effects.models import Effect
from bot.models import TimelineEvent
from tests.alerts.conftest import NOW, datadog_cycle
from tests.alerts.test_probe_round5 import TRIAGE, deliver, incident_row, texts

CREATED_MS = int((NOW - timedelta(minutes=10)).timestamp() * 1000)


def opsgenie(action: str, priority: str, *, updated_s: int | None) -> dict[str, Any]:
    """An Opsgenie webhook body: ``createdAt`` in milliseconds, ``updatedAt`` in nanoseconds
    (as Opsgenie's alert action data shows them), ``updated_s`` seconds after the creation."""
    alert: dict[str, Any] = {
        "alias": "queue-backlog",
        "alertId": "og-1",
        "message": "Queue backlog",
        "priority": priority,
        "username": "ana",
        "createdAt": CREATED_MS,
    }
    if updated_s is not None:
        alert["updatedAt"] = (CREATED_MS + updated_s * 1000) * 1_000_000
    return {"action": action, "alert": alert}


RAISED = opsgenie("UpdatePriority", "P1", updated_s=60)
CREATED = opsgenie("Create", "P4", updated_s=0)


def test_a_priority_change_delivered_before_its_create_is_the_severity_the_incident_opens_with(
    db: Database, policy: Policy
) -> None:
    """Raised to P1 a minute after the alert was created at P4, but delivered first: the
    incident opens SEV1, as the timeline's entry says. Before, the Create's older P4 declared
    SEV3 while the entry claimed "(severity SEV1)"."""
    raised = deliver(db, policy, "opsgenie", RAISED, 0)
    assert (raised.incident_ref, raised.severity) == (None, "SEV1")
    opened = deliver(db, policy, "opsgenie", CREATED, 1)
    assert (opened.incident_ref, opened.severity) == ("INC-1", "SEV1")
    assert incident_row(db).severity == "SEV1"
    assert texts(db, like="alert_note") == [
        "Opsgenie: UpdatePriority by ana: priority P1 (severity SEV1)"
    ]
    rehearsal = Rehearsal(policy, None)
    played = [rehearsal.play(parse("opsgenie", b, now=NOW), NOW) for b in (RAISED, CREATED)]
    assert [(step.action, step.severity) for step in played] == [
        ("store", "SEV1"),
        ("declare", "SEV1"),
    ]


def test_a_declare_from_triage_opens_with_the_newer_priority_too(db: Database) -> None:
    policy = policy_from_dict(TRIAGE)
    deliver(db, policy, "opsgenie", RAISED, 0)
    waiting = deliver(db, policy, "opsgenie", CREATED, 1)
    assert (waiting.disposition, waiting.severity) == ("triage", "SEV1")
    with freeze_time(NOW + timedelta(minutes=2)), db.transaction() as session:
        assert triage_declare(session, policy, waiting.group_id, actor="U1").severity == "SEV1"


@pytest.mark.parametrize("changed_s", [30, None])
def test_a_priority_change_older_than_the_create_or_undated_is_said_not_applied(
    db: Database, policy: Policy, changed_s: int | None
) -> None:
    """A change the alert's own priority is newer than (dated before the Create's update, or
    with no date: events without one apply in the order they come) does not set the severity,
    and its entry says so instead of claiming a severity the incident never had."""
    deliver(db, policy, "opsgenie", opsgenie("UpdatePriority", "P1", updated_s=changed_s), 0)
    opened = deliver(db, policy, "opsgenie", opsgenie("Create", "P4", updated_s=120), 1)
    assert (opened.incident_ref, opened.severity) == ("INC-1", "SEV3")
    assert incident_row(db).severity == "SEV3"
    assert texts(db, like="alert_note") == [
        "Opsgenie: UpdatePriority by ana: priority P1 "
        "(severity SEV1 not applied: older than the latest change)"
    ]


@pytest.mark.parametrize("renotified", ["Re-Warn", "Re-Warned", "re-warn"])
def test_a_datadog_warning_renotified_is_no_change_of_state(
    db: Database, policy: Policy, renotified: str
) -> None:
    """Datadog renotifies a monitor still warning (``Re-Warn``): the timeline says nothing, as
    for ``Re-Triggered``. Before, ``Re-Warned`` went on it as the change "Warn → Warned". A
    real change (Warn, then Triggered) still does."""
    deliver(db, policy, "datadog", datadog_cycle("Warn", "c1", 0), 0)
    deliver(db, policy, "datadog", datadog_cycle(renotified, "c1", 5), 5)
    assert texts(db, like="alert_note") == []
    deliver(db, policy, "datadog", datadog_cycle("Triggered", "c1", 10), 10)
    assert texts(db, like="alert_note") == ["Datadog: CPU high on web: Warn → Triggered"]


# -- a triage request says what its alerts do while it waits; one live request per group ---------


def triage_edits(db: Database) -> list[tuple[str, str, Any]]:
    """The edits of triage requests written so far: (what they edit, the notice type, firing)."""
    with db.read() as session:
        rows = session.exec(
            select(Effect)
            .where(Effect.kind == kinds.UPDATE, col(Effect.lane).like("alerts:group:%"))
            .order_by(col(Effect.id))
        ).all()
        return [
            (r.data["post"], r.data["notice"]["type"], r.data["notice"].get("firing")) for r in rows
        ]


def live_requests(db: Database, group_id: int) -> list[str]:
    with db.read() as session:
        waiting = select(AlertNotice).where(
            AlertNotice.kind == "triage",
            AlertNotice.group_id == group_id,
            AlertNotice.state == "queued",
        )
        return [n.dedupe_key for n in session.exec(waiting)]


def test_a_triage_request_is_edited_when_its_alerts_resolve_and_fire_again(db: Database) -> None:
    """Opsgenie closes the alert while the request waits: the request is edited to 0 firing
    (buttons kept, rendered from the same notice); the alert comes back within the flap window:
    it says 1 firing again. One edit, the latest count wins; a retried Close edits nothing."""
    policy = policy_from_dict(TRIAGE)
    first = deliver(db, policy, "opsgenie", opsgenie("Create", "P3", updated_s=0), 0)
    assert (first.disposition, triage_edits(db)) == ("triage", [])
    closed = opsgenie("Close", "P3", updated_s=60)
    deliver(db, policy, "opsgenie", closed, 1)
    post = f"alerts:triage:{first.group_id}:1"
    assert triage_edits(db) == [(post, "alerts.triage", 0)]
    deliver(db, policy, "opsgenie", closed, 2)  # retried
    assert triage_edits(db) == [(post, "alerts.triage", 0)]
    deliver(db, policy, "opsgenie", opsgenie("Create", "P3", updated_s=180), 3)
    assert triage_edits(db) == [(post, "alerts.triage", 1)]
    assert live_requests(db, first.group_id) == [f"triage:{first.group_id}:1"]


def test_a_new_episode_supersedes_the_request_still_waiting(db: Database) -> None:
    """The alert resolves, nobody decides, and it fires again after the flap window: the new
    request is posted and the earlier one is edited to say so, without buttons: never two
    live requests for one group. A Declare then answers the new one."""
    policy = policy_from_dict(TRIAGE)
    first = deliver(db, policy, "opsgenie", opsgenie("Create", "P3", updated_s=0), 0)
    deliver(db, policy, "opsgenie", opsgenie("Close", "P3", updated_s=60), 1)
    later = 1 + 31  # past the flap window
    deliver(db, policy, "opsgenie", opsgenie("Create", "P3", updated_s=later * 60), later)
    group = first.group_id
    assert live_requests(db, group) == [f"triage:{group}:2"]
    earlier = f"alerts:triage:{group}:1"
    assert triage_edits(db) == [(earlier, "alerts.triage", 0), (earlier, "alerts.answered", None)]
    with db.read() as session:
        answered = session.exec(
            select(Effect).where(Effect.key == f"alerts:answer:triage:{group}:1")
        ).one()
    assert answered.data["notice"]["outcome"].startswith("Superseded: these alerts fired again")
    with freeze_time(NOW + timedelta(minutes=later + 1)), db.transaction() as session:
        triage_declare(session, policy, group, actor="U1")
    assert live_requests(db, group) == []


def test_a_datadog_warning_escalating_while_in_triage_is_on_the_incident_declared_for_it(
    db: Database,
) -> None:
    """Warn, then Triggered, while the group waits in triage: the escalation is held on the
    group, and is on the timeline of the incident a Declare then opens, dated when it came."""
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    group = deliver(db, policy, "datadog", datadog_cycle("Warn", "c1", 0), 0).group_id
    deliver(db, policy, "datadog", datadog_cycle("Triggered", "c1", 10), 10)
    with db.read() as session:  # no incident yet: held on the group
        assert session.exec(select(TimelineEvent.id)).all() == []
    at = NOW + timedelta(minutes=15)
    with freeze_time(at), db.transaction() as session:
        triage_declare(session, policy, group, actor="U1", now=at)
    assert texts(db, like="alert_note") == ["Datadog: CPU high on web: Warn → Triggered"]
    with db.read() as session:
        note = session.exec(
            select(TimelineEvent).where(col(TimelineEvent.kind) == "alert_note")
        ).one()
    assert note.occurred_at == NOW + timedelta(minutes=10)
