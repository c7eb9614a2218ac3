"""Late deliveries, closed incidents, flaps on mitigated incidents and triage decisions: the
newest event wins, a closed incident is never reused, people are told when alerts fire again,
and a question once answered is edited into its answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot import incidents as core
from bot.alerts.intake import ingest
from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertGroup, AlertNotice, AlertRecord
from bot.alerts.notices import answer_all_resolved
from bot.alerts.sources import parse
from bot.alerts.triage import triage_attach, triage_declare, triage_ignore
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.effects.models import Effect
from bot.errors import InvalidInput
from bot.models import Incident, TimelineEvent
from tests.alerts.conftest import NOW

TRIAGE = {"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}}


def store(db: Database, policy: Policy, msg: AlertMessage, minutes: float = 0) -> Any:
    with db.transaction() as session:
        return ingest(session, policy, msg, now=NOW + timedelta(minutes=minutes))


def pagerduty(event_type: str, status: str, at: str, incident: str = "PD1") -> AlertMessage:
    body = {
        "event": {
            "id": f"{event_type}:{at}",
            "event_type": f"incident.{event_type}",
            "occurred_at": at,
            "agent": {"summary": "Ana"},
            "data": {"id": incident, "type": "incident", "status": status, "title": "Errors"},
        }
    }
    return parse("pagerduty", body, now=NOW)


def opsgenie(action: str, updated_ms: int) -> AlertMessage:
    alert = {"alias": "db", "alertId": "id-1", "message": "db down", "updatedAt": updated_ms}
    return parse("opsgenie", {"action": action, "alert": alert}, now=NOW)


def alertmanager(status: str, starts: str, ends: str = "0001-01-01T00:00:00Z") -> AlertMessage:
    alert = {
        "status": status,
        "labels": {"alertname": "Disk"},
        "startsAt": starts,
        "endsAt": ends,
        "fingerprint": "fp1",
    }
    body = {"version": "4", "groupKey": "g", "status": status, "alerts": [alert]}
    return parse("alertmanager", body, now=NOW)


def generic(key: str, status: str = "firing", alert: str | None = None) -> AlertMessage:
    body = {"title": f"{key} broken", "dedupe_key": key, "status": status}
    if alert:
        body["alert_key"] = alert
    return parse("generic", body, now=NOW)


def counts(db: Database) -> dict[str, int]:
    with db.read() as session:
        notices = session.exec(select(AlertNotice)).all()
        effects = session.exec(select(Effect)).all()
        return {
            "incidents": len(session.exec(select(Incident)).all()),
            "alert_entries": len(
                session.exec(
                    select(TimelineEvent).where(col(TimelineEvent.kind).like("alert_%"))
                ).all()
            ),
            **{f"notice:{k}": sum(n.kind == k for n in notices) for k in _KINDS},
            "open_questions": sum(
                n.state == "queued" and n.kind in ("triage", "all_resolved") for n in notices
            ),
            "updates": sum(e.kind == "message.update" for e in effects),
        }


_KINDS = ("triage", "all_resolved", "firing_again")


def alert_status(db: Database) -> list[str]:
    with db.read() as session:
        return [r.status for r in session.exec(select(AlertRecord).order_by(col(AlertRecord.id)))]


# -- 1. the newest event wins --------------------------------------------------------------------


def test_a_late_pagerduty_acknowledgement_never_fires_a_resolved_incident_again(
    db: Database, policy: Policy
) -> None:
    store(db, policy, pagerduty("triggered", "triggered", "2026-11-30T10:00:00Z"))
    store(db, policy, pagerduty("resolved", "resolved", "2026-11-30T10:20:00Z"))
    late = store(db, policy, pagerduty("acknowledged", "acknowledged", "2026-11-30T10:05:00Z"))
    assert late.firing == 0 and late.fired == 0
    assert alert_status(db) == ["resolved"]
    with db.read() as session:
        texts = [
            e.text
            for e in session.exec(
                select(TimelineEvent).where(col(TimelineEvent.kind).like("alert_%"))
            )
        ]
    # The acknowledgement is history and recorded; its status is not applied.
    assert texts == [
        "Alert firing: Errors (1 of 1 firing in this group)",
        "Alert resolved: Errors (0 of 1 firing in this group)",
        "PagerDuty: acknowledged by Ana",
    ]


def test_a_late_pagerduty_resolve_never_resolves_a_reopened_incident(
    db: Database, policy: Policy
) -> None:
    store(db, policy, pagerduty("triggered", "triggered", "2026-11-30T10:00:00Z"))
    store(db, policy, pagerduty("reopened", "triggered", "2026-11-30T10:30:00Z"))
    late = store(db, policy, pagerduty("resolved", "resolved", "2026-11-30T10:20:00Z"))
    assert late.firing == 1 and late.resolved == 0
    assert alert_status(db) == ["firing"]
    assert counts(db)["notice:all_resolved"] == 0


def test_opsgenie_close_before_its_create_leaves_nothing_firing(
    db: Database, policy: Policy
) -> None:
    store(db, policy, opsgenie("Close", 1764496900000))
    late = store(db, policy, opsgenie("Create", 1764496800000))
    assert late.firing == 0 and late.incident_ref is None
    assert alert_status(db) == ["resolved"]
    assert counts(db)["incidents"] == 0


def test_alertmanager_late_firing_of_a_resolved_alert_is_stale_and_a_new_start_is_not(
    db: Database, policy: Policy
) -> None:
    store(db, policy, alertmanager("firing", "2026-11-30T10:00:00Z"))
    store(db, policy, alertmanager("resolved", "2026-11-30T10:00:00Z", "2026-11-30T10:05:00Z"))
    late = store(db, policy, alertmanager("firing", "2026-11-30T10:00:00Z"), minutes=1)
    assert late.firing == 0 and counts(db)["alert_entries"] == 2
    again = store(db, policy, alertmanager("firing", "2026-11-30T10:10:00Z"), minutes=2)
    assert again.firing == 1 and again.incident_ref == "INC-1"
    assert counts(db)["incidents"] == 1 and counts(db)["alert_entries"] == 3
    with db.read() as session:
        row = session.exec(select(AlertRecord)).one()
        assert row.event_at is not None and row.event_at.isoformat() == "2026-11-30T10:10:00+00:00"


# -- 2. a closed incident is never reused -------------------------------------------------------


def test_a_new_alert_in_a_group_whose_incident_is_closed_opens_a_new_incident(
    db: Database, policy: Policy
) -> None:
    store(db, policy, generic("svc", alert="a"))
    with db.transaction() as session:
        core.close_incident(session, policy, 1, actor="U1")
    later = store(db, policy, generic("svc", alert="b"), minutes=1)
    assert later.declared and later.incident_ref == "INC-2" and later.firing == 2
    with db.read() as session:
        assert session.exec(select(AlertGroup)).one().episode == 2
    assert counts(db)["incidents"] == 2


# -- 3. firing again on a mitigated incident ----------------------------------------------------


def test_firing_again_on_a_mitigated_incident_tells_people_and_asks_again_later(
    db: Database, policy: Policy
) -> None:
    store(db, policy, generic("svc"))
    store(db, policy, generic("svc", "resolved"), minutes=1)
    with db.transaction() as session:  # "Mark mitigated"
        core.mitigate_incident(session, policy, 1, actor="U1")
        answer_all_resolved(session, 1, outcome="Marked mitigated", actor="U1")
    flap = store(db, policy, generic("svc"), minutes=5)
    assert flap.incident_ref == "INC-1" and not flap.declared
    with db.read() as session:
        again = session.exec(select(AlertNotice).where(AlertNotice.kind == "firing_again")).one()
        assert again.payload["names"] == "svc broken" and again.payload["status"] == "Monitoring"
        assert session.exec(select(Incident)).one().status == "monitoring"  # not reopened
    store(db, policy, generic("svc", "resolved"), minutes=6)  # still mitigated: nothing asked
    assert counts(db)["notice:all_resolved"] == 1
    with db.transaction() as session:
        core.change_status(session, policy, 1, "investigating", actor="U1")
    store(db, policy, generic("svc"), minutes=7)
    store(db, policy, generic("svc", "resolved"), minutes=8)
    assert counts(db) == {
        "incidents": 1,
        "alert_entries": 6,
        "notice:triage": 0,
        "notice:all_resolved": 2,
        "notice:firing_again": 1,  # the refire at minute 7 is on an incident under investigation
        "open_questions": 1,
        "updates": 1,
    }


# -- 7. one open "all resolved" question per incident --------------------------------------------


def test_a_flapping_group_keeps_one_open_all_resolved_question(
    db: Database, policy: Policy
) -> None:
    store(db, policy, generic("svc"))
    for minute in range(1, 4):
        store(db, policy, generic("svc", "resolved"), minutes=2 * minute)
        store(db, policy, generic("svc"), minutes=2 * minute + 1)
    store(db, policy, generic("svc", "resolved"), minutes=10)
    with db.read() as session:
        questions = session.exec(
            select(AlertNotice).where(AlertNotice.kind == "all_resolved")
        ).all()
        assert [q.state for q in questions] == ["answered"] * 3 + ["queued"]
        updates = session.exec(select(Effect).where(Effect.kind == "message.update")).all()
        assert [u.data["notice"]["outcome"] for u in updates] == ["Alerts fired again"] * 3
        assert all(u.lane == "incident:1" for u in updates)


# -- 4. triage decisions -------------------------------------------------------------------------


def test_triage_decisions_edit_the_request_and_a_late_click_says_what_is(db: Database) -> None:
    policy = policy_from_dict(TRIAGE)
    with db.transaction() as session:
        core.declare_incident(session, policy, title="Checkout down", reporter="U9")
    first = store(db, policy, generic("one"))
    with db.transaction() as session:
        assert triage_declare(session, policy, first.group_id, actor="U1").ref == "INC-2"
    for late in (
        lambda s: triage_ignore(s, first.group_id, actor="U2"),
        lambda s: triage_declare(s, policy, first.group_id, actor="U2"),
        lambda s: triage_attach(s, policy, first.group_id, "INC-1", actor="U2"),
    ):
        with (
            pytest.raises(InvalidInput, match=r"^These alerts already belong to INC-2\.$"),
            db.transaction() as session,
        ):
            late(session)
    with db.read() as session:
        group = session.get(AlertGroup, first.group_id)
        assert group is not None and group.disposition == "incident" and group.incident_id == 2
        [update] = session.exec(select(Effect).where(Effect.kind == "message.update")).all()
        assert update.data["post"] == f"alerts:triage:{first.group_id}:1"
        assert update.lane == f"alerts:group:{first.group_id}" and update.incident_id is None
        assert (update.data["notice"]["outcome"], update.data["notice"]["actor"]) == (
            "Declared INC-2",
            "U1",
        )
    assert counts(db)["open_questions"] == 0


# -- 5. an ignored group stays ignored within its flap window ------------------------------------


def test_an_ignored_group_is_asked_about_again_only_after_its_flap_window(db: Database) -> None:
    policy = policy_from_dict(TRIAGE)
    first = store(db, policy, generic("one"))
    with db.transaction() as session:
        triage_ignore(session, first.group_id, actor="U1")
    for minute in (1, 3, 5):
        store(db, policy, generic("one", "resolved"), minutes=minute)
        flap = store(db, policy, generic("one"), minutes=minute + 1)
        assert flap.disposition == "ignored"
    assert counts(db)["notice:triage"] == 1
    store(db, policy, generic("one", "resolved"), minutes=10)
    later = store(db, policy, generic("one"), minutes=45)
    assert later.disposition == "triage"
    assert counts(db)["notice:triage"] == 2 and counts(db)["incidents"] == 0
