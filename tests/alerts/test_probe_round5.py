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
from bot.alerts.models import AlertGroup, AlertNotice
from bot.alerts.replay import Rehearsal
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


# -- 1. the newest priority wins; a retry changes nothing ------------------------------------


def test_a_retried_older_priority_never_overrides_the_newest_before_a_triage_declare(
    db: Database,
) -> None:
    """P3, then P1 at +2m, then P2 at +4m, then PagerDuty retries the P1 event: the group stays
    SEV2, and the incident people declare from triage opens SEV2, as the last priority entry on
    its timeline says. Before, the retry made it SEV1."""
    policy = policy_from_dict(TRIAGE)
    bodies = (TRIGGERED, TO_P1, TO_P2, TO_P1)
    outcomes = [deliver(db, policy, "pagerduty", b, m) for m, b in enumerate(bodies)]
    assert [o.severity for o in outcomes] == ["SEV3", "SEV1", "SEV2", "SEV2"]
    rehearsal = Rehearsal(policy, None)
    played = [rehearsal.play(parse("pagerduty", b, now=NOW), NOW).severity for b in bodies]
    assert played == ["SEV3", "SEV1", "SEV2", "SEV2"]  # replay agrees with the receiver
    with freeze_time(NOW + timedelta(minutes=5)), db.transaction() as session:
        incident = triage_declare(session, policy, outcomes[0].group_id, actor="U1")
        assert incident.severity == "SEV2"
    assert incident_row(db).severity == "SEV2"
    assert texts(db, like="alert_note") == [
        "PagerDuty: priority updated by Ana: P1 (severity SEV1)",
        "PagerDuty: priority updated by Ana: P2 (severity SEV2)",
    ]


def test_a_late_priority_change_is_recorded_and_never_overrides_the_newest(
    db: Database, policy: Policy
) -> None:
    """Auto-declared at P3; P2 (+4m) arrives before the older P1 (+2m): the group takes SEV2 and
    keeps it, and the late P1 is on the timeline saying it was not applied. The incident's own
    severity stays with people (it can start regulatory clocks): the entries tell them."""
    first = deliver(db, policy, "pagerduty", TRIGGERED, 0)
    assert (first.incident_ref, incident_row(db).severity) == ("INC-1", "SEV3")
    assert deliver(db, policy, "pagerduty", TO_P2, 1).severity == "SEV2"
    assert deliver(db, policy, "pagerduty", TO_P1, 2).severity == "SEV2"
    assert deliver(db, policy, "pagerduty", TO_P2, 4).severity == "SEV2"  # retried
    assert incident_row(db).severity == "SEV3"
    assert texts(db, like="severity%") == []
    assert texts(db, like="alert_note") == [
        "PagerDuty: priority updated by Ana: P2 "
        "(maps to SEV2; INC-1 stays SEV3: change it with /incident sev)",
        "PagerDuty: priority updated by Ana: P1 (severity SEV1 not applied: older than the "
        "latest change)",
    ]
    rehearsal = Rehearsal(policy, None)
    bodies = (TRIGGERED, TO_P2, TO_P1, TO_P2)
    played = [rehearsal.play(parse("pagerduty", b, now=NOW), NOW).severity for b in bodies]
    assert played == ["SEV3", "SEV2", "SEV2", "SEV2"]


def test_a_retried_opsgenie_priority_update_changes_nothing(db: Database, policy: Policy) -> None:
    """Opsgenie sends no event id: the body is the delivery. Create at P3, UpdatePriority to P1,
    then to P2, then the P1 delivery again: the incident stays SEV2."""
    alert = {"alias": "db", "alertId": "id-1", "message": "db down", "priority": "P3"}

    def body(action: str, priority: str, minute: int) -> dict[str, Any]:
        updated = 1796036400000 + minute * 60_000
        return {"action": action, "alert": {**alert, "priority": priority, "updatedAt": updated}}

    deliver(db, policy, "opsgenie", body("Create", "P3", 0), 0)
    raised = body("UpdatePriority", "P1", 1)
    deliver(db, policy, "opsgenie", raised, 1)
    lowered = deliver(db, policy, "opsgenie", body("UpdatePriority", "P2", 2), 2)
    assert (lowered.severity, incident_row(db).severity) == ("SEV2", "SEV3")
    retried = deliver(db, policy, "opsgenie", raised, 3)
    assert (retried.severity, incident_row(db).severity) == ("SEV2", "SEV3")
    assert len(texts(db, like="alert_note")) == 2  # the retry added no entry


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


# -- 4. an Opsgenie Escalate before its Create -----------------------------------------------------


def test_an_escalation_delivered_before_its_alert_goes_on_the_incidents_timeline(
    db: Database, policy: Policy
) -> None:
    """The Escalate names only the alertId; the Create that comes after carries the alias and
    that alertId. The escalation is on the incident's timeline, once, and no group of its own
    is left behind to catch the next escalation. Before, it stayed on a stray group."""
    alert = {"alias": "orders-db", "alertId": "ID-7", "message": "Orders DB down"}
    escalate = {"action": "Escalate", "escalationName": "dba", "alert": {"alertId": "ID-7"}}
    create = {"action": "Create", "alert": {**alert, "updatedAt": 1796036400000}}
    held = deliver(db, policy, "opsgenie", escalate, 0)
    assert held.incident_ref is None
    deliver(db, policy, "opsgenie", escalate, 1)  # retried
    opened = deliver(db, policy, "opsgenie", create, 2)
    assert opened.incident_ref == "INC-1"
    assert texts(db, like="alert_note") == ["Opsgenie: Escalate: escalation dba"]
    again = {**escalate, "escalationName": "dba-2"}
    assert deliver(db, policy, "opsgenie", again, 3).incident_ref == "INC-1"
    assert texts(db, like="alert_note") == [
        "Opsgenie: Escalate: escalation dba",
        "Opsgenie: Escalate: escalation dba-2",
    ]
    with db.read() as session:
        assert [g.group_key for g in session.exec(select(AlertGroup))] == ["orders-db"]
        assert len(session.exec(select(Incident)).all()) == 1
