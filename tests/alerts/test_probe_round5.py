"""Defects a probe with two replicas found (round 5), each as a responder sees it: the severity
the incident opens or stands at after priority changes delivered late or twice, the "alerts
firing again" notice of a Datadog monitor's next alert cycle, what a Declare from triage says
when its alerts all resolved while it waited, and an Opsgenie escalation delivered before its
alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun import freeze_time
from sqlmodel import col, select

from bot import incidents as core
from bot.alerts.intake import Outcome, ingest
from bot.alerts.models import AlertNotice
from bot.alerts.sources import parse
from bot.alerts.triage import triage_declare
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.models import Incident, TimelineEvent
from tests.alerts.conftest import NOW, datadog_cycle

TRIAGE = {"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}}
T0 = "2026-11-30T11:00:00Z"


def deliver(
    db: Database, policy: Policy, source: str, body: dict[str, Any], minute: float
) -> Outcome:
    """One webhook, received ``minute`` minutes after NOW (the clock frozen there)."""
    at = NOW + timedelta(minutes=minute)
    with freeze_time(at), db.transaction() as session:
        return ingest(session, policy, parse(source, body, now=at), now=at)


def pagerduty(event_type: str, event_id: str, at: str, priority: str) -> dict[str, Any]:
    incident = {
        "id": "PD1",
        "type": "incident",
        "status": "triggered",
        "title": "Checkout down",
        "priority": {"summary": priority},
    }
    return {
        "event": {
            "id": event_id,
            "event_type": f"incident.{event_type}",
            "occurred_at": at,
            "agent": {"summary": "Ana"},
            "data": incident,
        }
    }


TRIGGERED = pagerduty("triggered", "E0", "2026-11-30T11:00:00Z", "P3")
TO_P1 = pagerduty("priority_updated", "E1", "2026-11-30T11:02:00Z", "P1")
TO_P2 = pagerduty("priority_updated", "E2", "2026-11-30T11:04:00Z", "P2")


def incident_row(db: Database, number: int = 1) -> Incident:
    with db.read() as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def texts(db: Database, number: int = 1, like: str = "%") -> list[str]:
    with db.read() as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        return [
            e.text
            for e in session.exec(
                select(TimelineEvent)
                .where(
                    TimelineEvent.incident_id == incident.id,
                    col(TimelineEvent.kind).like(like),
                )
                .order_by(col(TimelineEvent.id))
            )
        ]


def notices(db: Database, kind: str) -> list[AlertNotice]:
    with db.read() as session:
        return list(
            session.exec(
                select(AlertNotice).where(AlertNotice.kind == kind).order_by(col(AlertNotice.id))
            )
        )


# -- 2. a Datadog monitor's next alert cycle fires again on a mitigated incident -------------------


def test_a_new_datadog_cycle_on_a_mitigated_incident_says_the_alerts_fire_again_once(
    db: Database, policy: Policy
) -> None:
    """Cycle 1 opens INC-1 and recovers; people mark it mitigated. Cycle 2 of the same monitor
    and scope fires 5 minutes later: it joins INC-1 and the channel is told, once (a retry of
    its delivery says nothing more), as for the other sources; cycle 3 after cycle 2 recovers
    is told again. Before, a new cycle said nothing."""
    first = deliver(db, policy, "datadog", datadog_cycle("Triggered", "c1", 0), 0)
    deliver(db, policy, "datadog", datadog_cycle("Recovered", "c1", 5), 5)
    with freeze_time(NOW + timedelta(minutes=6)), db.transaction() as session:
        core.mitigate_incident(session, policy, first.incident_id or 0, actor="U1")
    again = deliver(db, policy, "datadog", datadog_cycle("Triggered", "c2", 10), 10)
    assert (again.incident_ref, again.declared) == ("INC-1", False)
    deliver(db, policy, "datadog", datadog_cycle("Triggered", "c2", 10), 11)  # retried
    told = notices(db, "firing_again")
    assert [(n.incident_id, n.payload["status"], n.payload["firing"]) for n in told] == [
        (first.incident_id, "Monitoring", 1)
    ]
    assert incident_row(db).status == "monitoring"  # not reopened: people decide
    deliver(db, policy, "datadog", datadog_cycle("Recovered", "c2", 15), 15)
    deliver(db, policy, "datadog", datadog_cycle("Triggered", "c3", 20), 20)
    assert len(notices(db, "firing_again")) == 2


def test_a_new_datadog_cycle_on_an_incident_under_investigation_says_nothing_more(
    db: Database, policy: Policy
) -> None:
    """The notice is for people who said the impact was over: while they investigate, the
    timeline's firing entry is enough."""
    deliver(db, policy, "datadog", datadog_cycle("Triggered", "c1", 0), 0)
    deliver(db, policy, "datadog", datadog_cycle("Recovered", "c1", 5), 5)
    assert deliver(
        db, policy, "datadog", datadog_cycle("Triggered", "c2", 10), 10
    ).incident_ref == ("INC-1")
    assert notices(db, "firing_again") == []


# -- 3. Declare from triage after every alert resolved ---------------------------------------------


def resolved_in_triage(db: Database, policy: Policy) -> int:
    body = pagerduty("triggered", "E0", T0, "P3")
    group = deliver(db, policy, "pagerduty", body, 0).group_id
    body["event"].update(id="E9", event_type="incident.resolved", occurred_at=T0[:-4] + "5:00Z")
    body["event"]["data"]["status"] = "resolved"
    assert deliver(db, policy, "pagerduty", body, 5).firing == 0
    with freeze_time(NOW + timedelta(minutes=10)), db.transaction() as session:
        triage_declare(session, policy, group, actor="U1")
    return group


def test_a_declare_after_the_alerts_resolved_says_so_and_asks_to_mitigate(db: Database) -> None:
    """The announcement says the alert resolved (not "0 alert(s) firing"), and the commander is
    asked "All alerts resolved: mitigate?" as for an incident whose alerts resolve after it
    was declared. Before, nothing was asked."""
    policy = policy_from_dict(TRIAGE)
    group = resolved_in_triage(db, policy)
    [links] = notices(db, "links")
    assert (links.payload["firing"], links.payload["resolved"]) == (0, 1)
    [asked] = notices(db, "all_resolved")
    assert (asked.incident_id, asked.group_id, asked.state) == (1, group, "queued")
    assert asked.payload["resolved"] == 1
    assert not policy.impact_mitigated(incident_row(db).status)  # asked, not done


def test_a_declare_after_the_alerts_resolved_mitigates_when_the_policy_says_so(
    db: Database,
) -> None:
    policy = policy_from_dict({"alerts": {**TRIAGE["alerts"], "on_all_resolved": "mitigate"}})
    resolved_in_triage(db, policy)
    assert incident_row(db).status == "monitoring"
    assert notices(db, "all_resolved") == []
