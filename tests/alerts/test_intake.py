"""The database side: grouping, attaching, resolving, flapping, exactly once."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import Session, col, select

from bot import incidents as core
from bot.alerts.intake import Outcome, ingest
from bot.alerts.listing import list_alerts
from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertGroup, AlertNotice, AlertRecord
from bot.alerts.routing import route
from bot.alerts.sources import parse
from bot.alerts.triage import triage_attach, triage_declare, triage_ignore
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import InvalidInput
from bot.models import Incident, TimelineEvent
from bot.runbooks.catalog import RunbookCatalog
from tests.alerts.conftest import NOW, load, message


def store(db: Database, policy: Policy, msg: AlertMessage, **kwargs: object) -> Outcome:
    with db.transaction() as session:
        return ingest(session, policy, msg, now=kwargs.pop("now", NOW), **kwargs)  # type: ignore[arg-type]


def count(session: Session, model: type) -> int:
    return len(session.exec(select(model)).all())


def alert_events(session: Session, incident_id: int | None = None) -> list[TimelineEvent]:
    query = select(TimelineEvent).where(col(TimelineEvent.kind).like("alert_%"))
    if incident_id is not None:
        query = query.where(TimelineEvent.incident_id == incident_id)
    return list(session.exec(query.order_by(col(TimelineEvent.id))).all())


def generic(
    key: str, status: str = "firing", alert: str | None = None, **extra: object
) -> AlertMessage:
    body: dict[str, object] = {"title": f"{key} broken", "dedupe_key": key, "status": status}
    if alert is not None:
        body["alert_key"] = alert
    body.update(extra)
    return parse("generic", body, now=NOW)


def dated(name: str, date: str) -> AlertMessage:
    """A Datadog corpus event sent again later (``$DATE`` is when its transition happened)."""
    return parse("datadog", {**load(name), "date": date, "last_updated": date}, now=NOW)


def storm(group: str, alerts: int, status: str = "firing") -> AlertMessage:
    return parse(
        "alertmanager",
        {
            "version": "4",
            "groupKey": group,
            "status": status,
            "alerts": [
                {"status": status, "labels": {"alertname": "HighLatency", "pod": f"pod-{i}"}}
                for i in range(alerts)
            ],
        },
        now=NOW,
    )


def test_a_new_group_declares_one_incident_with_severity_service_and_reporter(
    db: Database, policy: Policy
) -> None:
    outcome = store(
        db, policy, message("alertmanager/kubenotifyplus-rke2-3-alerts-runbook-url-regex-route")
    )
    assert outcome.declared and outcome.incident_ref == "INC-1" and outcome.firing == 3
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert incident.severity == "SEV1"  # severity=critical
        assert incident.service == "rancher-monitoring-kube-state-metrics"
        assert incident.reporter_id == "alerts:alertmanager"
        assert incident.title == "KubePodCrashLooping"
        assert incident.detected_at == NOW
        assert count(session, AlertRecord) == 3
        events = alert_events(session)
        assert [e.text for e in events] == [
            "3 alerts firing: KubePodCrashLooping ×3 (3 of 3 firing in this group)"
        ]
        notices = session.exec(select(AlertNotice)).all()
        assert [n.kind for n in notices] == ["links"]
        assert notices[0].payload["firing"] == 3
        assert [link["kind"] for link in notices[0].payload["links"]] == ["generator"]


def test_a_storm_of_500_alerts_in_one_group_is_one_incident(db: Database, policy: Policy) -> None:
    for start in range(0, 500, 100):
        msg = storm("storm", 500)
        msg = AlertMessage(msg.source, msg.group_key, msg.title, msg.alerts[: start + 100])
        store(db, policy, msg)
    with db.read() as session:
        assert count(session, Incident) == 1
        assert count(session, AlertRecord) == 500
        group = session.exec(select(AlertGroup)).one()
        assert (group.firing_count, group.alert_count) == (500, 500)
        events = alert_events(session)
        assert len(events) == 5  # one per message, never one per alert
        assert events[-1].text == (
            "100 alerts firing: HighLatency ×100 (500 of 500 firing in this group)"
        )


def test_retries_write_nothing_twice(db: Database, policy: Policy) -> None:
    msg = message("grafana/zulip-v9-mixed-firing-resolved")
    first = store(db, policy, msg)
    again = [store(db, policy, msg) for _ in range(3)]
    assert first.declared and not any(o.declared for o in again)
    assert {o.incident_ref for o in again} == {"INC-1"}
    with db.read() as session:
        assert count(session, Incident) == 1
        assert count(session, AlertRecord) == 3
        assert len(alert_events(session)) == 1
        assert len(session.exec(select(TimelineEvent)).all()) == 2  # declared + alerts


def test_mixed_message_growing_partly_resolving_and_resolving(db: Database, policy: Policy) -> None:
    store(db, policy, generic("db", alert="a"))
    store(db, policy, generic("db", alert="b"))
    store(db, policy, generic("db", "resolved", alert="a"))
    last = store(db, policy, generic("db", "resolved", alert="b"))
    assert last.firing == 0
    with db.read() as session:
        texts = [e.text for e in alert_events(session)]
        assert texts == [
            "Alert firing: db broken (1 of 1 firing in this group)",
            "Alert firing: db broken (2 of 2 firing in this group)",
            "Alert resolved: db broken (1 of 2 firing in this group)",
            "Alert resolved: db broken (0 of 2 firing in this group)",
        ]
        notices = session.exec(select(AlertNotice).order_by(col(AlertNotice.id))).all()
        assert [n.kind for n in notices] == ["links", "all_resolved"]
        assert session.exec(select(Incident)).one().status == policy.initial_status.key


def test_all_resolved_mitigates_when_the_policy_says_so(db: Database) -> None:
    policy = policy_from_dict({"alerts": {"on_all_resolved": "mitigate"}})
    store(db, policy, message("alertmanager/alertmanager-bot-firing-future-endsat"))
    store(db, policy, message("alertmanager/alertmanager-bot-resolved-pair"))
    store(db, policy, message("alertmanager/alertmanager-bot-resolved-pair"))
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert incident.status == next(s.key for s in policy.statuses if s.milestone == "mitigated")
        assert incident.mitigated_at == NOW
        kinds = [e.kind for e in core.timeline(session, incident.id or 0)]
        assert kinds == ["declared", "alert_firing", "alert_resolved", "status_changed"]
        assert count(session, AlertNotice) == 1  # the links; no question asked


def test_all_resolved_asks_when_the_policy_has_no_way_from_the_status_to_mitigated(
    db: Database,
) -> None:
    """``on_all_resolved = "mitigate"``, but from where the incident stands the policy's
    ``next`` lists lead to resolved only: people are asked (nothing happened, silently)."""
    policy = policy_from_dict(
        {
            "alerts": {"on_all_resolved": "mitigate"},
            "statuses": [
                {"key": "triage", "next": ["fixing", "resolved"]},
                {"key": "fixing", "next": ["verifying"]},
                {"key": "verifying", "milestone": "mitigated", "next": ["resolved"]},
                {"key": "resolved", "phase": "resolved", "next": ["closed"]},
                {"key": "closed", "phase": "closed"},
            ],
        }
    )
    store(db, policy, generic("x"))
    store(db, policy, generic("x", "resolved"))
    with db.read() as session:
        assert session.exec(select(Incident)).one().status == "triage"
        notices = session.exec(select(AlertNotice).order_by(col(AlertNotice.id))).all()
        assert [n.kind for n in notices] == ["links", "all_resolved"]


def test_all_resolved_does_nothing_when_the_policy_says_nothing(db: Database) -> None:
    policy = policy_from_dict({"alerts": {"on_all_resolved": "nothing"}})
    store(db, policy, generic("x"))
    store(db, policy, generic("x", "resolved"))
    with db.read() as session:
        assert session.exec(select(Incident)).one().status == policy.initial_status.key
        assert [n.kind for n in session.exec(select(AlertNotice)).all()] == ["links"]


def test_flap_window_attaches_and_after_it_a_new_incident_opens(
    db: Database, policy: Policy
) -> None:
    with freeze_time(NOW):
        store(db, policy, message("datadog/keep-p2-warn"), now=NOW)
        store(
            db,
            policy,
            message("datadog/keep-p2-recovered-empty-group-in-title"),
            now=NOW + timedelta(minutes=5),
        )
        flap = store(
            db, policy, message("datadog/keep-p2-triggered"), now=NOW + timedelta(minutes=6)
        )
    assert flap.incident_ref == "INC-1" and not flap.declared
    store(
        db,
        policy,
        dated("datadog/keep-p2-recovered-empty-group-in-title", "1733931000000"),
        now=NOW + timedelta(minutes=7),
    )
    # After the window, but INC-1 is still being worked on: it takes the alert again.
    still_open = store(
        db,
        policy,
        dated("datadog/keep-p2-triggered", "1733933000000"),
        now=NOW + timedelta(minutes=40),
    )
    assert still_open.incident_ref == "INC-1" and not still_open.declared
    store(
        db,
        policy,
        dated("datadog/keep-p2-recovered-empty-group-in-title", "1733934000000"),
        now=NOW + timedelta(minutes=45),
    )
    with db.transaction() as session:
        core.resolve_incident(session, policy, 1, actor="U1", now=NOW + timedelta(minutes=46))
    later = store(
        db,
        policy,
        dated("datadog/keep-p2-triggered", "1733936000000"),
        now=NOW + timedelta(minutes=80),
    )
    assert later.declared and later.incident_ref == "INC-2"
    with db.read() as session:
        assert count(session, Incident) == 2
        group = session.exec(select(AlertGroup)).one()
        assert group.episode == 2 and group.incident_id == 2
        assert [e.incident_id for e in alert_events(session)] == [1, 1, 1, 1, 1, 1, 2]
        assert session.exec(select(Incident).where(Incident.number == 1)).one().severity == "SEV2"


def test_a_closed_incident_is_not_reused(db: Database, policy: Policy) -> None:
    store(db, policy, generic("svc"))
    store(db, policy, generic("svc", "resolved"))
    with db.transaction() as session:
        core.close_incident(session, policy, 1, actor="U1")
    again = store(db, policy, generic("svc"), now=NOW + timedelta(minutes=1))
    assert again.declared and again.incident_ref == "INC-2"


def test_a_resolve_never_seen_is_stored_harmlessly(db: Database, policy: Policy) -> None:
    outcome = store(db, policy, message("alertmanager/zulip-resolved-with-zero-endsat"))
    assert outcome.incident_ref is None and outcome.disposition == "none"
    with db.read() as session:
        assert count(session, Incident) == 0
        entries = list_alerts(session)
        assert [(e.source, e.key, e.status, e.incident) for e in entries] == [
            ("alertmanager", "a1bc48475b20e73d", "resolved", None)
        ]
    # ... and a later firing alert of the same group does open the incident.
    fired = store(db, policy, message("alertmanager/zulip-no-generatorurl"))
    assert fired.declared and fired.firing == 1


def test_info_events_go_to_the_incident_timeline_once(db: Database, policy: Policy) -> None:
    store(db, policy, message("opsgenie/zulip-create-nanosecond-updatedat"))
    store(
        db,
        policy,
        parse(
            "opsgenie",
            {
                "action": "Create",
                "alert": {"alias": "aliastest", "message": "test alert", "priority": "P1"},
            },
            now=NOW,
        ),
    )
    for _ in range(2):
        store(db, policy, message("opsgenie/zulip-acknowledge-aliastest"))
    store(db, policy, message("opsgenie/zulip-close-aliastest"))
    with db.read() as session:
        incident = session.exec(select(Incident).where(Incident.number == 2)).one()
        assert incident.severity == "SEV1"
        texts = [e.text for e in alert_events(session, incident.id)]
        assert texts == [
            "Alert firing: test alert (1 of 1 firing in this group)",
            "Opsgenie: Acknowledge by fili@ifountain.com",
            "Alert resolved: test alert (0 of 1 firing in this group)",
        ]


def test_pagerduty_triggered_acknowledged_resolved(db: Database, policy: Policy) -> None:
    triggered = message("pagerduty/zulip-v3-incident-triggered-2021")
    store(db, policy, triggered)
    body = {
        "event": {
            "id": "01ACK",
            "event_type": "incident.acknowledged",
            "agent": {"summary": "PIG 208"},
            "data": {
                "id": "PFQZPSY",
                "type": "incident",
                "status": "acknowledged",
                "title": "Test Incident 3",
            },
        }
    }
    store(db, policy, parse("pagerduty", body, now=NOW))
    resolved = message("pagerduty/zulip-v3-incident-resolved-no-assignees")
    resolved = AlertMessage(  # the same PagerDuty incident as the trigger, resolved after it
        "pagerduty",
        "PFQZPSY",
        resolved.title,
        tuple(
            type(a)(**{**a.__dict__, "key": "PFQZPSY", "event_at": NOW}) for a in resolved.alerts
        ),
    )
    store(db, policy, resolved)
    with db.read() as session:
        assert count(session, Incident) == 1
        texts = [e.text for e in alert_events(session)]
        assert texts == [
            "Alert firing: Test Incident 3 (1 of 1 firing in this group)",
            "PagerDuty: acknowledged by PIG 208",
            "Alert resolved: Test Incident 3 (0 of 1 firing in this group)",
        ]


def test_drop_rules_store_but_never_open(db: Database) -> None:
    policy = policy_from_dict(
        {"alerts": {"drop": [{"source": "grafana", "labels": {"alertname": "TestAlert"}}]}}
    )
    outcome = store(db, policy, message("grafana/keep-v12-test-alert-relative-generatorurl"))
    assert outcome.disposition == "dropped" and outcome.incident_ref is None
    with db.read() as session:
        assert count(session, Incident) == 0
        assert [e.key for e in list_alerts(session)] == ["c4edaaf9f9f839b0"]
        assert session.exec(select(AlertRecord)).one().dropped


def test_a_drop_rule_matches_true_and_false_labels_as_json_writes_them(db: Database) -> None:
    """Before, a JSON ``false`` became Python's ``"False"``: a rule ``paging = "false"`` never
    matched it, and the alert it was written to silence opened an incident."""
    policy = policy_from_dict({"alerts": {"drop": [{"labels": {"paging": "false"}}]}})
    outcome = store(db, policy, generic("quiet", labels={"paging": False, "replicas": 3}))
    assert outcome.disposition == "dropped" and outcome.incident_ref is None
    outcome = store(db, policy, generic("loud", labels={"paging": True}))
    assert outcome.disposition != "dropped" and outcome.incident_ref is not None
    with db.read() as session:
        labels = {r.key: r.labels for r in session.exec(select(AlertRecord)).all()}
    assert labels["quiet"] == {"paging": "false", "replicas": "3"}
    assert labels["loud"] == {"paging": "true"}


def test_triage_asks_then_declare_attach_or_ignore(db: Database) -> None:
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    first = store(db, policy, generic("one"))
    second = store(db, policy, generic("two"))
    third = store(db, policy, generic("three"))
    assert {first.disposition, second.disposition, third.disposition} == {"triage"}
    with db.read() as session:
        assert count(session, Incident) == 0
        notices = session.exec(select(AlertNotice)).all()
        assert [(n.kind, n.payload["channel"]) for n in notices] == [("triage", "C0TRIAGE")] * 3
    with db.transaction() as session:
        incident = triage_declare(session, policy, first.group_id, actor="U1")
        assert incident.reporter_id == "U1" and incident.ref == "INC-1"
    with db.transaction() as session:
        assert triage_attach(session, policy, second.group_id, "INC-1", actor="U2").ref == "INC-1"
        triage_ignore(session, third.group_id, actor="U3")
    again = store(db, policy, generic("two", alert="more"))
    assert again.incident_ref == "INC-1"
    ignored = store(db, policy, generic("three", alert="more"))
    assert ignored.incident_ref is None and ignored.disposition == "ignored"
    with db.read() as session:
        assert count(session, Incident) == 1
        texts = [e.text for e in alert_events(session)]
        assert texts == [
            "Declared from triage: one broken (1 firing)",  # what was declared, on the record
            "Alerts attached from triage: two broken (1 firing)",
            "Alert firing: two broken (2 of 2 firing in this group)",
        ]


def test_alerts_ignored_in_triage_are_not_declared_from_an_older_copy(db: Database) -> None:
    """Ignore, then Declare on a copy of the triage message from before it was answered:
    before, it opened an incident while the message said "Ignored"."""
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    waiting = store(db, policy, generic("one"))
    with db.transaction() as session:  # INC-1, which a stale Attach button offers
        core.declare_incident(session, policy, title="Checkout down", reporter="U9")
    for _ in range(2):  # a double click, or the click processed again, ignores once
        with db.transaction() as session:
            assert triage_ignore(session, waiting.group_id, actor="U1").disposition == "ignored"
    with db.transaction() as session, pytest.raises(InvalidInput, match="were ignored"):
        triage_declare(session, policy, waiting.group_id, actor="U2")
    with db.transaction() as session, pytest.raises(InvalidInput, match="were ignored"):
        triage_attach(session, policy, waiting.group_id, "INC-1", actor="U2")
    with db.read() as session:
        assert count(session, Incident) == 1
        group = session.get(AlertGroup, waiting.group_id)
        assert group is not None and group.disposition == "ignored"


def test_a_declare_from_triage_processed_again_answers_with_its_incident(db: Database) -> None:
    """The Declare click was applied, then its answer lost (the process died): processed
    again, it is the same incident, said as declared; another person's later click is told
    where the alerts are."""
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    waiting = store(db, policy, generic("one"))
    with db.transaction() as session:
        first = triage_declare(session, policy, waiting.group_id, actor="U1")
    with db.transaction() as session:
        again = triage_declare(session, policy, waiting.group_id, actor="U1")
    assert again.ref == first.ref == "INC-1"
    with db.transaction() as session, pytest.raises(InvalidInput, match="already belong to INC-1"):
        triage_declare(session, policy, waiting.group_id, actor="U2")
    with db.read() as session:
        assert count(session, Incident) == 1
        assert [e.text for e in alert_events(session)] == [
            "Declared from triage: one broken (1 firing)"
        ]


def test_declaring_from_triage_after_every_alert_resolved_says_so_on_the_timeline(
    db: Database,
) -> None:
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    waiting = store(db, policy, generic("disk"))
    store(db, policy, generic("disk", status="resolved"))
    with db.transaction() as session:
        incident = triage_declare(session, policy, waiting.group_id, actor="U1")
        assert [e.text for e in alert_events(session, incident.id)] == [
            "Declared from triage: disk broken (none firing: every alert resolved while it "
            "waited in triage)"
        ]


def test_the_runbook_named_by_the_alert_is_suggested_or_started(
    db: Database, tmp_path: object
) -> None:
    from pathlib import Path

    from bot.runbooks.catalog import RunbookCatalog

    root = Path(str(tmp_path)) / "runbooks"
    (root / "kubernetes").mkdir(parents=True)
    (root / "kubernetes" / "crashloop.md").write_text(
        "---\ntitle: Pod crash looping\nalerts: [KubePodCrashLooping]\n---\n# Pod crash looping\n\n"
        "- [ ] Read the logs\n- [ ] Roll back\n",
        encoding="utf-8",
    )
    (root / "disk.md").write_text("# Disk full\n\n- [ ] Check df\n", encoding="utf-8")
    catalog = RunbookCatalog.load([root])
    policy = policy_from_dict({"alerts": {"start_runbook": True}})
    store(
        db,
        policy,
        message("alertmanager/kubenotifyplus-rke2-3-alerts-runbook-url-regex-route"),
        catalog=catalog,
    )
    store(
        db,
        policy,
        generic("disk", runbook_url="https://git.example.com/ops/runbooks/disk.md"),
        catalog=catalog,
    )
    store(db, policy, generic("evil", runbook_url="../../etc/passwd"), catalog=catalog)
    with db.read() as session:
        groups = session.exec(select(AlertGroup).order_by(col(AlertGroup.id))).all()
        assert [g.runbook_id for g in groups] == ["kubernetes/crashloop", "disk", None]
        notices = session.exec(select(AlertNotice).order_by(col(AlertNotice.id))).all()
        assert [(n.payload["runbook_id"], n.payload["runbook_started"]) for n in notices] == [
            ("kubernetes/crashloop", True),
            ("disk", True),
            (None, False),
        ]
        kinds = [e.kind for e in core.timeline(session, 1)]
        assert "runbook_started" in kinds


def test_an_incident_declared_from_triage_opens_with_the_runbook_its_alerts_named(
    db: Database, tmp_path: Path
) -> None:
    """In triage the alert waits for a person; the runbook it named must not be lost on the
    way: the Declare button opens the incident with it, started when the policy says so."""
    root = tmp_path / "runbooks"
    root.mkdir()
    (root / "disk-full.md").write_text("# Disk full\n\n- [ ] Check df\n", encoding="utf-8")
    catalog = RunbookCatalog.load([root])
    policy = policy_from_dict(
        {"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE", "start_runbook": True}}
    )
    named = generic("disk", runbook_url="https://git.example.com/ops/runbooks/disk-full.md")
    waiting = store(db, policy, named, catalog=catalog)
    assert waiting.disposition == "triage"
    with db.transaction() as session:
        incident = triage_declare(session, policy, waiting.group_id, actor="U1", catalog=catalog)
    with db.read() as session:
        [links] = [n for n in session.exec(select(AlertNotice)).all() if n.kind == "links"]
        assert (links.payload["runbook_id"], links.payload["runbook_started"]) == (
            "disk-full",
            True,
        )
        kinds = [e.kind for e in core.timeline(session, incident.id or 0)]
    assert kinds.count("runbook_started") == 1


def test_list_alerts_one_entry_per_alert(db: Database, policy: Policy) -> None:
    store(db, policy, message("alertmanager/tiamxu-chinese-alertname-escaped-receiver"))
    store(db, policy, message("grafana/zulip-v9-mixed-firing-resolved"))
    with db.read() as session:
        entries = list_alerts(session)
    assert sorted((e.source, e.key, e.status, e.incident) for e in entries) == [
        ("alertmanager", "3407d122c7e8c961", "firing", "INC-1"),
        ("alertmanager", "e069919362a06972", "firing", "INC-1"),
        ("grafana", "6f9cd313db421ef1", "firing", "INC-2"),
        ("grafana", "aaafafe0953f0962", "resolved", "INC-2"),
        ("grafana", "fb31814ac93dbe7d", "resolved", "INC-2"),
    ]


def test_alert_incidents_invite_the_policys_people_and_the_person_who_declared(
    db: Database,
) -> None:
    policy = policy_from_dict({"alerts": {"invite": ["U0ONCALL", "U0LEAD"]}})
    store(db, policy, generic("auto"))
    store(db, policy, generic("auto", alert="second"))
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert incident.slack_state == {"invite": ["U0ONCALL", "U0LEAD"]}
    triage = policy_from_dict(
        {"alerts": {"declare": "triage", "triage_channel": "C0T", "invite": ["U0ONCALL"]}}
    )
    waiting = store(db, triage, generic("manual"))
    with db.transaction() as session:
        declared = triage_declare(session, triage, waiting.group_id, actor="U0ANA")
        assert declared.slack_state == {"invite": ["U0ONCALL", "U0ANA"]}


# -- what the tools really send (the alert-receiver probe, 2026-11-30) ------------------------


def notices_of(session: Session, kind: str) -> list[AlertNotice]:
    return list(session.exec(select(AlertNotice).where(AlertNotice.kind == kind)).all())


def test_truncated_alerts_are_asked_about_never_mitigated_by_themselves(db: Database) -> None:
    """Alertmanager's ``max_alerts`` leaves alerts out of every message of a larger group, the
    last all-resolved one too: once every alert known has resolved, the group has resolved
    (Alertmanager lists any still firing in its next message), and people are asked, even
    under a policy that mitigates by itself, with the number left out."""
    policy = policy_from_dict({"alerts": {"on_all_resolved": "mitigate"}})
    store(db, policy, message("alertmanager/probe-truncated-1-three-firing-two-listed"))
    listed = message("alertmanager/probe-truncated-2-listed-resolved-one-left-out")
    outcome = store(db, policy, listed, now=NOW + timedelta(minutes=1))
    assert outcome.firing == 0
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert incident.mitigated_at is None
        assert incident.status == policy.initial_status.key
        assert [e.text for e in alert_events(session)] == [
            "2 alerts firing: DiskFull ×2 (2 of 2 firing in this group, "
            "1 more not listed by the sender)",
            "2 alerts resolved: DiskFull ×2 (0 of 2 firing in this group, "
            "1 more not listed by the sender)",
        ]
        assert alert_events(session)[-1].data["truncated"] == 1
        group = session.exec(select(AlertGroup)).one()
        assert (group.status, group.resolved_at) == ("resolved", NOW + timedelta(minutes=1))
        [asked] = notices_of(session, "all_resolved")
        assert (asked.state, asked.payload["resolved"], asked.payload["unlisted"]) == (
            "queued",
            2,
            1,
        )
    # The one left out still fires: Alertmanager lists it next, and the question is moot.
    body = load("alertmanager/probe-truncated-1-three-firing-two-listed")
    third = {**body["alerts"][0], "labels": {**body["alerts"][0]["labels"], "instance": "c"}}
    third["fingerprint"] = "1111111111111111"
    still = {**body, "truncatedAlerts": 0, "alerts": [third]}
    again = store(db, policy, parse("alertmanager", still, now=NOW), now=NOW + timedelta(minutes=6))
    assert (again.incident_ref, again.firing) == ("INC-1", 1)
    with db.read() as session:
        assert [n.state for n in notices_of(session, "all_resolved")] == ["answered"]
        assert session.exec(select(Incident)).one().mitigated_at is None


def test_a_complete_resolve_still_mitigates_when_the_policy_says_so(db: Database) -> None:
    policy = policy_from_dict({"alerts": {"on_all_resolved": "mitigate"}})
    store(db, policy, message("alertmanager/probe-truncated-1-three-firing-two-listed"))
    body = load("alertmanager/probe-truncated-2-listed-resolved-one-left-out")
    third = {**body["alerts"][0], "labels": {**body["alerts"][0]["labels"], "instance": "c"}}
    third["fingerprint"] = "1111111111111111"
    complete = {**body, "truncatedAlerts": 0, "alerts": [*body["alerts"], third]}
    store(db, policy, parse("alertmanager", complete, now=NOW), now=NOW + timedelta(minutes=2))
    with db.read() as session:
        assert session.exec(select(Incident)).one().mitigated_at is not None
        assert notices_of(session, "all_resolved") == []


def test_opsgenie_note_text_and_unacknowledge_go_on_the_timeline(
    db: Database, policy: Policy
) -> None:
    create = {**load("opsgenie/probe-unacknowledge"), "action": "Create"}
    store(db, policy, parse("opsgenie", create, now=NOW))
    store(db, policy, message("opsgenie/zulip-acknowledge-aliastest"))
    store(db, policy, message("opsgenie/probe-addnote-note-text"))
    store(db, policy, message("opsgenie/probe-unacknowledge"))
    with db.read() as session:
        assert [e.text for e in alert_events(session)] == [
            "Alert firing: test alert (1 of 1 firing in this group)",
            "Opsgenie: Acknowledge by fili@ifountain.com",
            "Opsgenie: AddNote by fili@ifountain.com: note to test alert: restarted the primary",
            "Opsgenie: UnAcknowledge by fili@ifountain.com",
        ]


def test_opsgenie_escalate_with_only_the_alert_id_joins_the_alias_group(
    db: Database, policy: Policy
) -> None:
    created = store(db, policy, message("opsgenie/probe-create-alias-and-alertid-of-escalate"))
    escalated = store(db, policy, message("opsgenie/zulip-escalate-alert-only-alertid"))
    assert escalated.incident_ref == created.incident_ref == "INC-1"
    assert escalated.group_id == created.group_id
    with db.read() as session:
        assert count(session, AlertGroup) == 1
        assert [e.text for e in alert_events(session)] == [
            "Alert firing: test alert (1 of 1 firing in this group)",
            "Opsgenie: Escalate: escalation test_esc, to test@ifountain.com",
        ]


def test_pagerduty_status_update_responder_and_priority_go_on_the_timeline(
    db: Database, policy: Policy
) -> None:
    declared = store(db, policy, message("pagerduty/probe-triggered-priority-null"))
    assert declared.severity == "SEV3"  # urgency low, no priority yet
    store(db, policy, message("pagerduty/probe-status-update-published"))
    store(db, policy, message("pagerduty/probe-responder-added"))
    updated = store(db, policy, message("pagerduty/pd-docs-v3-priority-updated-uuid-event-id"))
    assert updated.incident_ref == "INC-1" and updated.severity == "SEV1"
    with db.read() as session:
        assert [e.text for e in alert_events(session)] == [
            "Alert firing: A little bump in the road (1 of 1 firing in this group)",
            "PagerDuty: status update published by Tenex Engineer: "
            "A fix for this incident is being developed",
            "PagerDuty: responder added by Tenex Engineer: Maeve: "
            "Please help me make the tests pass",
            "PagerDuty: priority updated by Tenex Engineer: P1 "
            "(maps to SEV1; INC-1 stays SEV3: change it with /incident sev)",
        ]
        assert session.exec(select(AlertGroup)).one().severity == "SEV1"


def test_datadog_new_alert_cycle_of_a_monitor_flapping_attaches_to_its_incident(
    db: Database, policy: Policy
) -> None:
    store(db, policy, message("datadog/probe-template-cycle-1-triggered"))
    store(db, policy, message("datadog/probe-template-cycle-1-recovered"), now=NOW)
    flap = store(
        db,
        policy,
        message("datadog/probe-template-cycle-2-retriggered"),
        now=NOW + timedelta(minutes=10),
    )
    assert flap.incident_ref == "INC-1" and not flap.declared
    with db.read() as session:
        assert count(session, Incident) == 1
        assert count(session, AlertGroup) == 2  # one group per alert cycle, as documented
        assert [e.incident_id for e in alert_events(session)] == [1, 1, 1]


def test_datadog_new_alert_cycle_after_the_flap_window_attaches_only_while_worked_on(
    db: Database, policy: Policy
) -> None:
    """After the window, a new cycle joins INC-1 while people still work on it (a second
    incident for the same monitor beside an open one splits them); once INC-1 is resolved,
    it opens a new one."""
    store(db, policy, message("datadog/probe-template-cycle-1-triggered"))
    store(db, policy, message("datadog/probe-template-cycle-1-recovered"))
    still_open = store(
        db,
        policy,
        message("datadog/probe-template-cycle-2-retriggered"),
        now=NOW + timedelta(minutes=31),
    )
    assert still_open.incident_ref == "INC-1" and not still_open.declared


def test_datadog_new_alert_cycle_after_the_flap_window_of_a_resolved_incident_opens_one(
    db: Database, policy: Policy
) -> None:
    store(db, policy, message("datadog/probe-template-cycle-1-triggered"))
    store(db, policy, message("datadog/probe-template-cycle-1-recovered"))
    with db.transaction() as session:
        core.resolve_incident(session, policy, 1, actor="U1", now=NOW + timedelta(minutes=1))
    later = store(
        db,
        policy,
        message("datadog/probe-template-cycle-2-retriggered"),
        now=NOW + timedelta(minutes=31),
    )
    assert later.declared and later.incident_ref == "INC-2"


def test_datadog_default_payload_keeps_each_scope_apart(db: Database, policy: Policy) -> None:
    web1 = store(db, policy, message("datadog/probe-default-title-scope-web-1-triggered"))
    web2 = store(db, policy, message("datadog/probe-default-title-scope-web-2-triggered"))
    store(db, policy, message("datadog/probe-default-title-scope-web-2-recovered"))
    assert web1.incident_id != web2.incident_id
    with db.read() as session:
        alerts = session.exec(select(AlertRecord)).all()
        assert {a.labels["scope"]: a.status for a in alerts} == {
            "host:web-1": "firing",
            "host:web-2": "resolved",
        }
        asked = notices_of(session, "all_resolved")
        assert [n.incident_id for n in asked] == [web2.incident_id]
        web1_group = session.exec(select(AlertGroup).where(AlertGroup.id == web1.group_id)).one()
        assert web1_group.firing_count == 1


def test_a_datadog_warn_escalating_to_triggered_is_on_the_timeline(
    db: Database, policy: Policy
) -> None:
    """Datadog's ``$ALERT_TRANSITION`` says more than firing: a Warn that becomes Triggered is
    worse news for the same alert. Renotifications (Re-Triggered, Renotify) say nothing new."""
    store(db, policy, message("datadog/keep-p2-warn"))
    store(db, policy, message("datadog/keep-p2-triggered"), now=NOW + timedelta(minutes=6))
    later = load("datadog/keep-p2-triggered")
    for minutes, transition in ((10, "Re-Triggered"), (20, "Renotify"), (30, "No Data")):
        body = {**later, "alert_transition": transition, "date": str(1733930738000 + minutes)}
        store(db, policy, parse("datadog", body, now=NOW), now=NOW + timedelta(minutes=minutes))
    store(db, policy, message("datadog/keep-p2-triggered"), now=NOW + timedelta(minutes=40))
    with db.read() as session:
        assert [(e.kind, e.text) for e in alert_events(session)] == [
            (
                "alert_firing",
                "Alert firing: Unauthorized access to API keep-api (1 of 1 firing in this group)",
            ),
            ("alert_note", "Datadog: Unauthorized access to API keep-api: Warn → Triggered"),
            ("alert_note", "Datadog: Unauthorized access to API keep-api: Triggered → No Data"),
        ]


def test_an_opsgenie_priority_update_says_the_priority_and_sets_the_severity(
    db: Database, policy: Policy
) -> None:
    create = {**load("opsgenie/probe-unacknowledge"), "action": "Create"}
    store(db, policy, parse("opsgenie", create, now=NOW))
    body = load("opsgenie/probe-unacknowledge")
    raised = {**body, "action": "UpdatePriority", "alert": {**body["alert"], "priority": "P1"}}
    store(db, policy, parse("opsgenie", raised, now=NOW), now=NOW + timedelta(minutes=1))
    with db.read() as session:
        assert alert_events(session)[-1].text == (
            "Opsgenie: UpdatePriority by fili@ifountain.com: priority P1 (severity SEV1)"
        )
        assert session.exec(select(AlertGroup)).one().severity == "SEV1"


def test_a_runbook_that_only_shares_words_with_the_alert_is_never_started_for_it(
    db: Database, tmp_path: object
) -> None:
    """``start_runbook`` starts the runbook the alert names. "High CPU usage on node" shares
    words with *Disk full* ("usage", "node"): starting that, or offering it as the runbook
    "named by the alert", sends a responder down the wrong path at 3 a.m."""
    from pathlib import Path

    from bot.runbooks.catalog import RunbookCatalog

    root = Path(str(tmp_path)) / "runbooks"
    root.mkdir()
    (root / "disk-full.md").write_text(
        "# Disk full\n\nDisk usage on a node above 90%.\n\n1. Check df on the node\n"
        "2. Free space\n",
        encoding="utf-8",
    )
    catalog = RunbookCatalog.load([root])
    policy = policy_from_dict({"alerts": {"start_runbook": True}})
    msg = generic("cpu", title="High CPU usage on node web-3")
    assert route(policy, catalog, msg).runbook_reason == (
        "none named by the alert; closest by words: disk-full"
    )
    store(db, policy, msg, catalog=catalog)
    with db.read() as session:
        assert session.exec(select(AlertGroup)).one().runbook_id is None
        [notice] = session.exec(select(AlertNotice)).all()
        assert (notice.payload["runbook_id"], notice.payload["runbook_started"]) == (None, False)
        assert "runbook_started" not in [e.kind for e in core.timeline(session, 1)]


def test_a_pagerduty_incident_merged_away_is_not_taken_for_the_impact_ending(
    db: Database,
) -> None:
    """PagerDuty resolves an incident merged into another (``merge_resolve_reason``): its
    alerts are resolved, but the outage goes on in the other one. The timeline says where
    it went; nobody is asked to mitigate and, with ``on_all_resolved = "mitigate"``, nothing
    is mitigated. A plain resolve still is."""
    policy = policy_from_dict({"alerts": {"on_all_resolved": "mitigate"}})
    triggered = load("pagerduty/zulip-v3-incident-triggered-2021")
    resolved = json.loads(json.dumps(triggered))
    resolved["event"].update(id="01MERGE", event_type="incident.resolved")
    resolved["event"]["data"].update(
        status="resolved",
        resolve_reason={
            "type": "merge_resolve_reason",
            "incident": {"id": "Q2KMC9", "summary": "[#88] Payments API down", "type": "x"},
        },
    )
    opened = store(db, policy, parse("pagerduty", triggered, now=NOW))
    store(db, policy, parse("pagerduty", resolved, now=NOW + timedelta(minutes=5)))
    with db.read() as session:
        incident = core.find_incident(session, opened.incident_ref or "")
        assert incident.status == "triage"  # not mitigated for it
        texts = [e.text for e in alert_events(session, incident.id)]
        assert any(
            "merged into [#88] Payments API down" in t and "the impact goes on there" in t
            for t in texts
        ), texts
        asked = session.exec(select(AlertNotice).where(AlertNotice.kind == "all_resolved"))
        assert asked.all() == []  # no "mitigate?" either


@pytest.mark.parametrize(
    ("severity", "declared"),
    [("P1 - Critical", "SEV1"), ("SEV-1", "SEV1"), ("sev 2", "SEV2"), ("P2 (high)", "SEV2")],
)
def test_a_level_named_with_its_description_maps_as_its_short_form(
    db: Database, policy: Policy, severity: str, declared: str
) -> None:
    """PagerDuty accounts rename their priorities ("P1 - Critical", "SEV-1"): the level still
    maps, instead of every incident opening at the default severity."""
    outcome = store(db, policy, generic("db", severity=severity))
    assert outcome.declared and outcome.severity == declared


def test_a_generic_alert_names_its_rule_by_the_alertname_label(tmp_path: Path) -> None:
    """A script that posts the generic shape with Prometheus' ``alertname`` label gets the
    runbook that lists that alert, as Alertmanager's alerts do."""
    root = tmp_path / "runbooks"
    root.mkdir()
    (root / "disk.md").write_text(
        "---\nalerts: [NodeFilesystemAlmostOutOfSpace]\n---\n# Disk full\n\n- [ ] Check df\n",
        encoding="utf-8",
    )
    catalog = RunbookCatalog.load([root])
    labelled = generic("db-1", labels={"alertname": "NodeFilesystemAlmostOutOfSpace"})
    plan = route(Policy(), catalog, labelled)
    assert plan.runbook is not None and plan.runbook.id == "disk"
    assert labelled.alerts[0].name == "db-1 broken"  # the timeline still reads the title
    assert route(Policy(), catalog, generic("db-1")).runbook is None


def test_an_ignore_on_a_copy_that_showed_fewer_alerts_firing_is_refused(db: Database) -> None:
    """The request said "0 firing: every alert resolved while it waited"; the alerts fired
    again before the click reached Firebreak. Ignoring them would leave a firing alert with
    no incident and nobody having seen it fire: refused, saying so. On a copy showing what
    fires, the Ignore applies."""
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    waiting = store(db, policy, generic("db"))
    store(db, policy, generic("db", "resolved"))
    store(db, policy, generic("db"))  # fired again, within the flap window
    with db.transaction() as session, pytest.raises(InvalidInput, match="fired again since"):
        triage_ignore(session, waiting.group_id, actor="U1", seen_firing=0)
    with db.read() as session:
        group = session.get(AlertGroup, waiting.group_id)
        assert group is not None and group.disposition == "triage"
    with db.transaction() as session:
        ignored = triage_ignore(session, waiting.group_id, actor="U1", seen_firing=1)
        assert ignored.disposition == "ignored"
