"""Defects a probe found (round 3), each as a responder sees it: the incident's severity, the
number of incidents, how many alerts fire, the timeline, and ``firebreak alerts replay`` agreeing
with what the receiver does live."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

import bot.cli
from bot.alerts.intake import Outcome, ingest
from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertGroup, AlertNotice, AlertRecord
from bot.alerts.replay import Rehearsal
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.models import Incident, TimelineEvent
from tests.alerts.conftest import NOW, message

Replay = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def replay(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Replay:
    """``replay(source, body, ...)``: the bodies written to files and played by
    ``firebreak alerts replay --json``; its steps."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FIREBREAK_POLICY_FILE", raising=False)

    def invoke(source: str, *bodies: dict[str, Any]) -> list[dict[str, Any]]:
        files = []
        for number, body in enumerate(bodies):
            path = tmp_path / f"{number}.json"
            path.write_text(json.dumps(body), encoding="utf-8")
            files.append(str(path))
        code = bot.cli.main(["alerts", "replay", *files, "--source", source, "--json"])
        out = capsys.readouterr()
        assert (code, out.err) == (0, "")
        steps: list[dict[str, Any]] = json.loads(out.out)
        return steps

    return invoke


def live(db: Database, policy: Policy, source: str, *bodies: dict[str, Any]) -> list[Outcome]:
    outcomes = []
    for minute, body in enumerate(bodies):
        with db.transaction() as session:
            msg = parse(source, body, now=NOW)
            outcomes.append(ingest(session, policy, msg, now=NOW + timedelta(minutes=minute)))
    return outcomes


def incidents(db: Database) -> list[tuple[str, str, str, str | None]]:
    with db.read() as session:
        rows = session.exec(select(Incident).order_by(col(Incident.number))).all()
        return [(i.ref, i.title, i.severity, i.service) for i in rows]


def timeline(db: Database, number: int = 1) -> list[str]:
    with db.read() as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        events = session.exec(
            select(TimelineEvent)
            .where(
                TimelineEvent.incident_id == incident.id,
                col(TimelineEvent.kind).like("alert_%"),
            )
            .order_by(col(TimelineEvent.id))
        ).all()
        return [e.text for e in events]


def am_alert(
    fingerprint: str | None,
    status: str,
    *,
    starts: str = "2025-06-01T10:00:00Z",
    ends: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": status,
        "labels": labels,
        "annotations": {},
        "startsAt": starts,
        "endsAt": ends,
    }
    if fingerprint is not None:
        alert["fingerprint"] = fingerprint
    return alert


def am(status: str, alerts: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": "firebreak",
        "status": status,
        "groupKey": '{}:{alertname="Sev"}',
        "groupLabels": {"alertname": "Sev"},
        "alerts": alerts,
        **top,
    }


# -- D1: the severity (and service) come from what fires -----------------------------------------


def test_a_resolved_critical_alert_never_makes_the_incident_sev1(
    db: Database, policy: Policy, replay: Replay
) -> None:
    body = am(
        "firing",
        [
            am_alert(
                "f1",
                "resolved",
                ends="2025-06-01T10:20:00Z",
                alertname="Sev",
                severity="critical",
                service="db",
            ),
            am_alert("f2", "firing", alertname="Sev", severity="warning", service="api"),
        ],
    )
    [outcome] = live(db, policy, "alertmanager", body)
    assert (outcome.declared, outcome.severity, outcome.firing) == (True, "SEV3", 1)
    assert incidents(db) == [("INC-1", "Sev", "SEV3", "api")]
    [step] = replay("alertmanager", body)
    assert (step["action"], step["severity"], step["service"]) == ("declare", "SEV3", "api")


# -- D2: replay orders events as the receiver does -----------------------------------------------


def test_replay_skips_a_late_alertmanager_firing_as_the_receiver_does(
    db: Database, policy: Policy, replay: Replay
) -> None:
    resolved = am(
        "resolved",
        [am_alert("o1", "resolved", ends="2025-06-01T10:30:00Z", alertname="Order1")],
    )
    late = am("firing", [am_alert("o1", "firing", alertname="Order1")])
    assert [o.firing for o in live(db, policy, "alertmanager", resolved, late)] == [0, 0]
    assert incidents(db) == []
    steps = replay("alertmanager", resolved, late)
    assert [(s["action"], s["incident"], s["firing"]) for s in steps] == [
        ("store", None, 0),
        ("store", None, 0),
    ]


def pagerduty(event_type: str, at: str, state: str = "triggered", **data: Any) -> dict[str, Any]:
    """A PagerDuty v3 event about incident PD1; ``data`` replaces the incident (a note)."""
    incident = {"id": "PD1", "type": "incident", "status": state, "title": "Checkout down"}
    return {
        "event": {
            "id": f"{event_type}:{at}",
            "event_type": f"incident.{event_type}",
            "occurred_at": at,
            "agent": {"summary": "Ana"},
            "data": data or incident,
        }
    }


def test_replay_skips_a_late_pagerduty_acknowledgement_as_the_receiver_does(
    db: Database, policy: Policy, replay: Replay
) -> None:
    bodies = (
        pagerduty("triggered", "2025-06-01T10:00:00Z"),
        pagerduty("resolved", "2025-06-01T10:10:00Z", "resolved"),
        pagerduty("acknowledged", "2025-06-01T10:02:00Z", "acknowledged"),
    )
    outcomes = live(db, policy, "pagerduty", *bodies)
    assert [(o.incident_ref, o.firing) for o in outcomes] == [
        ("INC-1", 1),
        ("INC-1", 0),
        ("INC-1", 0),
    ]
    steps = replay("pagerduty", *bodies)
    assert [(s["action"], s["incident"], s["firing"]) for s in steps] == [
        ("declare", "new incident #1", 1),
        ("attach", "new incident #1", 0),
        ("attach", "new incident #1", 0),
    ]


# -- D3: Alertmanager without a groupKey ---------------------------------------------------------


def nokey(status: str, *instances: str, **top: Any) -> dict[str, Any]:
    ends = "2025-06-01T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
    alerts = [
        am_alert(None, status, ends=ends, alertname="NoKey", instance=i, job="api")
        for i in instances
    ]
    body = {
        "version": "4",
        "receiver": "hook",
        "status": status,
        "groupKey": "",
        "groupLabels": None,
        "commonLabels": None,
        "commonAnnotations": None,
        "alerts": alerts,
    }
    return {**body, **top}


@pytest.mark.parametrize(
    "shapes",
    [
        pytest.param((nokey("firing", "a"), nokey("firing", "a", "b")), id="no-labels-at-all"),
        pytest.param(
            (
                nokey("firing", "a", groupLabels={}, commonLabels={"instance": "a", "job": "api"}),
                nokey("firing", "a", "b", groupLabels={}, commonLabels={"job": "api"}),
            ),
            id="shrinking-common-labels",
        ),
    ],
)
def test_without_a_group_key_a_growing_group_is_one_incident_and_resolves(
    db: Database, policy: Policy, shapes: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    outcomes = live(db, policy, "alertmanager", *shapes, nokey("resolved", "a", "b"))
    assert [(o.incident_ref, o.declared, o.firing) for o in outcomes] == [
        ("INC-1", True, 1),
        ("INC-1", False, 2),
        ("INC-1", False, 0),
    ]
    assert len(incidents(db)) == 1
    assert timeline(db) == [
        "Alert firing: NoKey (1 of 1 firing in this group)",
        "Alert firing: NoKey (2 of 2 firing in this group)",
        "2 alerts resolved: NoKey ×2 (0 of 2 firing in this group)",
    ]
    with db.read() as session:
        assert [r.status for r in session.exec(select(AlertRecord))] == ["resolved"] * 2
        assert [g.status for g in session.exec(select(AlertGroup))] == ["resolved"]
        assert (
            len(session.exec(select(AlertNotice).where(AlertNotice.kind == "all_resolved")).all())
            == 1
        )


def test_without_a_group_key_the_receiver_and_group_labels_are_the_group() -> None:
    kubegems = message("alertmanager/kubegems-null-everything-empty-version")
    assert kubegems.group_key == "myreceiver:groupLabels:cbf29ce484222325"
    grouped = parse(
        "alertmanager", nokey("firing", "a", groupLabels={"alertname": "NoKey"}), now=NOW
    )
    other = parse("alertmanager", nokey("firing", "b", groupLabels={"job": "api"}), now=NOW)
    assert grouped.group_key.startswith("hook:groupLabels:")
    assert len({kubegems.group_key, grouped.group_key, other.group_key}) == 3


# -- D5: Grafana legacy states that are not firing -----------------------------------------------


def legacy(state: str, rule: int = 7) -> dict[str, Any]:
    return {
        "evalMatches": [{"value": 1, "metric": "Count", "tags": {}}],
        "message": "Notification Message",
        "ruleId": rule,
        "ruleName": "Panel Title alert",
        "state": state,
        "title": f"[{state.capitalize()}] Panel Title alert",
    }


def test_grafana_legacy_paused_pending_and_unknown_states_never_fire(
    db: Database, policy: Policy
) -> None:
    states = ("alerting", "ok", "paused", "pending", "unheard_of")
    outcomes = live(db, policy, "grafana", *(legacy(s) for s in states))
    assert [(o.incident_ref, o.firing) for o in outcomes] == [
        ("INC-1", 1),
        ("INC-1", 0),
        ("INC-1", 0),
        ("INC-1", 0),
        ("INC-1", 0),
    ]
    assert timeline(db) == [
        "Alert firing: Panel Title alert (1 of 1 firing in this group)",
        "Alert resolved: Panel Title alert (0 of 1 firing in this group)",
        "Grafana: Panel Title alert: state paused, not firing (the alert is left as it was)",
        "Grafana: Panel Title alert: state pending, not firing (the alert is left as it was)",
        "Grafana: Panel Title alert: state unheard_of, not firing (the alert is left as it was)",
    ]
    others = live(db, policy, "grafana", legacy("paused", 8), legacy("pending", 9))
    assert [(o.incident_ref, o.firing) for o in others] == [(None, 0), (None, 0)]
    assert len(incidents(db)) == 1


# -- D6: Go templates' "<no value>" ------------------------------------------------------------


def test_no_value_annotations_count_as_absent(db: Database, policy: Policy) -> None:
    alert = am_alert("c1", "firing", alertname="KubePodCrashLooping", severity="critical")
    alert["annotations"] = {
        "summary": "<no value>",
        "title": "  ",
        "description": "Pod <no value> is crashlooping",
        "runbook_url": "<no value>",
    }
    body = am("firing", [alert], commonAnnotations={"summary": "<no value>"})
    body["groupLabels"] = {"alertname": "KubePodCrashLooping"}
    live(db, policy, "alertmanager", body)
    assert incidents(db) == [("INC-1", "KubePodCrashLooping", "SEV1", None)]
    assert parse("alertmanager", body, now=NOW).alerts[0].runbook_url is None
    with db.read() as session:
        row = session.exec(select(AlertRecord)).one()
        assert (row.title, row.description) == (
            "KubePodCrashLooping",
            "Pod <no value> is crashlooping",
        )


# -- D7: replay reports the group's severity for notes, as live does ----------------------------


def test_replay_reports_the_groups_severity_for_notes_as_the_receiver_does(
    db: Database, policy: Policy, replay: Replay
) -> None:
    note: dict[str, Any] = {"incident": {"id": "PD1"}, "type": "incident_note"}
    bodies = (
        pagerduty("triggered", "2025-06-01T10:00:00Z"),
        pagerduty(
            "priority_updated",
            "2025-06-01T10:01:00Z",
            id="PD1",
            type="incident",
            status="triggered",
            title="Checkout down",
            priority={"summary": "P1"},
        ),
        pagerduty("annotated", "2025-06-01T10:02:00Z", content="restarted it", **note),
    )
    expected = ["SEV3", "SEV1", "SEV1"]
    assert [o.severity for o in live(db, policy, "pagerduty", *bodies)] == expected
    assert [s["severity"] for s in replay("pagerduty", *bodies)] == expected


def test_replay_reports_the_groups_severity_for_opsgenie_notes(
    db: Database, policy: Policy
) -> None:
    def opsgenie(action: str, minute: int) -> AlertMessage:
        alert = {
            "alias": "pay",
            "alertId": "id-1",
            "message": "Payments latency high",
            "priority": "P1",
            "updatedAt": 1748772000000 + minute * 60_000,
            "note": "restarted the primary",
        }
        return parse("opsgenie", {"action": action, "alert": alert}, now=NOW)

    messages = [opsgenie(a, m) for m, a in enumerate(("Create", "Acknowledge", "AddNote"))]
    outcomes = []
    for msg in messages:
        with db.transaction() as session:
            outcomes.append(ingest(session, policy, msg, now=NOW))
    rehearsal = Rehearsal(policy, None)
    steps = [rehearsal.play(msg, NOW) for msg in messages]
    assert [o.severity for o in outcomes] == [s.severity for s in steps] == ["SEV1"] * 3


# -- firebreak alerts list --limit -------------------------------------------------------------


def test_list_with_a_negative_limit_is_a_usage_error(
    db: Database,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("FIREBREAK_POLICY_FILE", raising=False)
    for limit in ("-1", "0"):
        with pytest.raises(SystemExit) as info:
            bot.cli.main(["alerts", "list", "--limit", limit])
        out = capsys.readouterr()
        assert (info.value.code, out.out) == (2, "")
        assert out.err.endswith(f"error: argument --limit: {limit} is not 1 or more\n")
