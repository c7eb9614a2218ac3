"""Defects a probe with two replicas found (round 8), each as a responder sees it: the severity
an incident opens with when Opsgenie delivers a priority change before the alert's Create, and
a Datadog renotification of a warning taken for a change of state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from bot.alerts.replay import Rehearsal
from bot.alerts.sources import parse
from bot.alerts.triage import triage_declare
from bot.config import Policy, policy_from_dict
from bot.db import Database
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
