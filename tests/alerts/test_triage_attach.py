"""Attach to INC-n from triage, as an on-call engineer sees it: firing alerts attached to an
incident are alerts firing in it (its "All alerts resolved: mitigate?" question is moot, and a
mitigated or resolved incident is told they fire again), a stale button never reuses a closed
incident; and a priority change on a declared incident says what it changed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import col, select

from bot import incidents as core
from bot.alerts.models import AlertGroup, AlertNotice, AlertRecord
from bot.alerts.triage import triage_attach, triage_declare
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import InvalidInput
from bot.models import TimelineEvent
from tests.alerts.conftest import NOW
from tests.alerts.test_probe_round5 import TO_P1, TRIGGERED, deliver, texts

TRIAGE = {"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}}


def fire(db: Database, policy: Policy, title: str, status: str, minute: float) -> int:
    """A generic alert ``title`` (its own group), ``status`` at ``minute``; its group id."""
    body = {"title": title, "dedupe_key": title.lower(), "status": status}
    return deliver(db, policy, "generic", body, minute).group_id


def notices(db: Database, kind: str) -> list[AlertNotice]:
    with db.read() as session:
        query = select(AlertNotice).where(AlertNotice.kind == kind)
        return list(session.exec(query.order_by(col(AlertNotice.id))).all())


def attach(db: Database, policy: Policy, group_id: int, ref: str, minute: float) -> None:
    at = NOW + timedelta(minutes=minute)
    with freeze_time(at), db.transaction() as session:
        triage_attach(session, policy, group_id, ref, actor="U2", now=at)


def declared_then_resolved(db: Database, policy: Policy) -> None:
    """Disk full fires, is declared INC-1 from triage, and resolves: INC-1 is asked."""
    first = fire(db, policy, "Disk full", "firing", 0)
    with freeze_time(NOW), db.transaction() as session:
        triage_declare(session, policy, first, actor="U1", now=NOW + timedelta(minutes=1))
    fire(db, policy, "Disk full", "resolved", 3)
    assert [n.state for n in notices(db, "all_resolved")] == ["queued"]


def test_attaching_firing_alerts_answers_the_open_all_resolved_question(db: Database) -> None:
    """As when the incident's own alerts fire again: the question and its "Mark mitigated"
    button go, the message saying alerts fired again."""
    policy = policy_from_dict(TRIAGE)
    declared_then_resolved(db, policy)
    latency = fire(db, policy, "High latency", "firing", 5)
    attach(db, policy, latency, "INC-1", 6)
    asked = notices(db, "all_resolved")
    assert [n.state for n in asked] == ["answered"]
    assert notices(db, "firing_again") == []  # INC-1 is not mitigated: nothing to tell


@pytest.mark.parametrize("status", ["Monitoring", "Resolved"])
def test_attaching_firing_alerts_to_a_mitigated_or_resolved_incident_says_they_fire_again(
    db: Database, status: str
) -> None:
    """A resolved incident is not closed: people chose it, as a group firing again within its
    flap window attaches to its resolved incident, and they are told, as then."""
    policy = policy_from_dict(TRIAGE)
    declared_then_resolved(db, policy)
    change = core.mitigate_incident if status == "Monitoring" else core.resolve_incident
    with freeze_time(NOW + timedelta(minutes=4)), db.transaction() as session:
        change(session, policy, 1, actor="U1")
    latency = fire(db, policy, "High latency", "firing", 5)
    attach(db, policy, latency, "INC-1", 6)
    again = notices(db, "firing_again")
    assert [(n.incident_id, n.payload["names"], n.payload["status"]) for n in again] == [
        (1, "High latency", status)
    ]
    with db.read() as session:
        group = session.get(AlertGroup, latency)
        assert group is not None and group.incident_id == 1


def test_attaching_alerts_that_all_resolved_in_triage_changes_no_question(db: Database) -> None:
    """Nothing fires in what is attached: the open question still stands."""
    policy = policy_from_dict(TRIAGE)
    declared_then_resolved(db, policy)
    latency = fire(db, policy, "High latency", "firing", 5)
    fire(db, policy, "High latency", "resolved", 6)
    attach(db, policy, latency, "INC-1", 7)
    assert [n.state for n in notices(db, "all_resolved")] == ["queued"]
    assert notices(db, "firing_again") == []


def test_a_stale_attach_button_never_reuses_a_closed_incident(db: Database) -> None:
    """Refused, saying to declare instead; nothing written, and the triage question stays
    undecided: Declare (a new incident) still works."""
    policy = policy_from_dict(TRIAGE)
    declared_then_resolved(db, policy)
    with freeze_time(NOW + timedelta(minutes=4)), db.transaction() as session:
        core.resolve_incident(session, policy, 1, actor="U1")
        core.close_incident(session, policy, 1, actor="U1")
    latency = fire(db, policy, "High latency", "firing", 5)
    with db.read() as session:
        before = len(session.exec(select(TimelineEvent)).all())
    with pytest.raises(InvalidInput, match=r"INC-1 is closed.*Declare"):
        attach(db, policy, latency, "INC-1", 6)
    with db.read() as session:
        group = session.get(AlertGroup, latency)
        assert group is not None
        assert (group.incident_id, group.disposition) == (None, "triage")
        assert len(session.exec(select(TimelineEvent)).all()) == before
        alert = session.exec(select(AlertRecord).where(AlertRecord.group_id == latency)).one()
        assert alert.incident_id is None
    assert [n.state for n in notices(db, "triage")][-1] == "queued"
    at = NOW + timedelta(minutes=7)
    with freeze_time(at), db.transaction() as session:
        assert triage_declare(session, policy, latency, actor="U2", now=at).ref == "INC-2"


def test_a_priority_change_on_a_declared_incident_says_its_severity_stays(
    db: Database, policy: Policy
) -> None:
    """Declared SEV3 at P3; PagerDuty raises it to P1: the incident stays SEV3 (people set its
    severity), and its timeline says so rather than "severity SEV1"."""
    deliver(db, policy, "pagerduty", TRIGGERED, 0)
    deliver(db, policy, "pagerduty", TO_P1, 2)
    assert texts(db, like="alert_note") == [
        "PagerDuty: priority updated by Ana: P1 (maps to SEV1; INC-1 stays SEV3: "
        "change it with /incident sev)"
    ]
