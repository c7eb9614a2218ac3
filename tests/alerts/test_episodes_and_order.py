"""Entries that come before their incident, and alerts across episodes: a note or an
acknowledgement delivered ahead of the event that opens the incident still reaches its
timeline, once; each alert is listed with the incident it fired in, not its group's latest."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlmodel import col, select

from bot import incidents as core
from bot import migrations
from bot.alerts.held import HELD_MAX, carry_over
from bot.alerts.intake import Outcome, ingest, lock_group
from bot.alerts.listing import list_alerts
from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertGroup, AlertNotice
from bot.alerts.sources import parse
from bot.alerts.triage import triage_attach, triage_declare, triage_ignore
from bot.config import Policy, policy_from_dict
from bot.console.queries import incident_alerts
from bot.db import Database
from bot.models import TimelineEvent
from tests.alerts.conftest import NOW, Server, datadog_cycle, load, send

TRIAGE = {"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}}


def store(db: Database, policy: Policy, msg: AlertMessage, minutes: float = 0) -> Outcome:
    with db.transaction() as session:
        return ingest(session, policy, msg, now=NOW + timedelta(minutes=minutes))


def resolve(db: Database, policy: Policy, incident_id: int, minutes: float) -> None:
    """People resolve the incident: a later firing after the flap window opens a new one."""
    with db.transaction() as session:
        core.resolve_incident(
            session, policy, incident_id, actor="U1", now=NOW + timedelta(minutes=minutes)
        )


def timeline(db: Database, ref: str) -> list[tuple[str, str]]:
    """(kind, text) of the incident's events, in order."""
    with db.read() as session:
        incident = core.find_incident(session, ref)
        events = session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident.id)
            .order_by(col(TimelineEvent.id))
        ).all()
        return [(e.kind, e.text) for e in events]


def held(db: Database) -> list[list[dict[str, Any]]]:
    with db.read() as session:
        return [g.held for g in session.exec(select(AlertGroup).order_by(col(AlertGroup.id)))]


# -- PagerDuty and Opsgenie bodies from the corpus, made into one incident's sequence -------------


def pagerduty_note(incident: str, at: str, event_id: str = "01NOTE") -> dict[str, Any]:
    body = copy.deepcopy(load("pagerduty/zulip-v3-incident-annotated-note-shape"))
    body["event"].update(id=event_id, occurred_at=at)
    body["event"]["data"]["incident"]["id"] = incident
    return dict(body)


def pagerduty_event(
    incident: str, at: str, kind: str = "triggered", event_id: str = "01TRIG"
) -> dict[str, Any]:
    body = copy.deepcopy(load("pagerduty/zulip-v3-incident-triggered-2021"))
    body["event"].update(id=event_id, occurred_at=at, event_type=f"incident.{kind}")
    body["event"]["data"].update(
        id=incident, status="resolved" if kind == "resolved" else "triggered"
    )
    return dict(body)


def pagerduty(body: dict[str, Any]) -> AlertMessage:
    return parse("pagerduty", body, now=NOW)


def opsgenie(name: str, alias: str, updated_ns: int) -> dict[str, Any]:
    body = copy.deepcopy(load(f"opsgenie/{name}"))
    body["alert"].update(alias=alias, updatedAt=updated_ns)
    return dict(body)


# -- A. entries that come before the incident ---------------------------------------------------


def test_a_pagerduty_note_delivered_before_the_trigger_reaches_the_incident_once(
    db: Database, replicas: list[Server]
) -> None:
    early = send(replicas, "pagerduty", pagerduty_note("Q0ORDER1", "2026-11-30T10:00:05.000Z"))
    assert early["incident"] is None
    opened = send(replicas, "pagerduty", pagerduty_event("Q0ORDER1", "2026-11-30T10:00:00.000Z"))
    assert opened["incident"] == "INC-1"
    note = "Running KILL on long-running queries from the reporting-service."
    entries = timeline(db, "INC-1")
    assert [t for k, t in entries if k.startswith("alert_")] == [
        f"PagerDuty: annotated by Harsh Santwani: {note}",
        "Alert firing: Test Incident 3 (1 of 1 firing in this group)",
    ]
    # The same note again (a retry, a redelivery) is not a second entry.
    send(replicas, "pagerduty", pagerduty_note("Q0ORDER1", "2026-11-30T10:00:05.000Z"))
    assert timeline(db, "INC-1") == entries
    assert held(db) == [[]]


def test_opsgenie_note_and_acknowledgement_before_the_create_reach_the_incident(
    db: Database, replicas: list[Server]
) -> None:
    t = 1_764_496_800_000_000_000
    send(replicas, "opsgenie", opsgenie("probe-addnote-note-text", "etcd-leader", t + 2 * 10**9))
    send(replicas, "opsgenie", opsgenie("zulip-acknowledge-aliastest", "etcd-leader", t + 10**9))
    opened = send(
        replicas, "opsgenie", opsgenie("zulip-create-nanosecond-updatedat", "etcd-leader", t)
    )
    assert opened["incident"] == "INC-1" and opened["firing"] == 1
    texts = [t for k, t in timeline(db, "INC-1") if k == "alert_note"]
    assert texts == [
        "Opsgenie: AddNote by fili@ifountain.com: note to test alert: restarted the primary",
        "Opsgenie: Acknowledge by fili@ifountain.com",
    ]
    with db.read() as session:
        events = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "alert_note")).all()
        # Dated when they came, before the Create that opened the incident.
        assert len(events) == 2 and all(e.occurred_at < e.recorded_at for e in events)
    assert held(db) == [[]]


def test_an_entry_held_in_triage_goes_to_the_incident_people_declare_or_attach(
    db: Database,
) -> None:
    policy = policy_from_dict(TRIAGE)
    with db.transaction() as session:
        core.declare_incident(session, policy, title="Checkout down", reporter="U9")
    groups = []
    for pd in ("PDA", "PDB"):
        note = pagerduty_note(pd, "2026-11-30T10:00:05Z", f"N-{pd}")
        groups.append(store(db, policy, pagerduty(note)).group_id)
        trigger = pagerduty_event(pd, "2026-11-30T10:00:00Z", event_id=f"T-{pd}")
        assert store(db, policy, pagerduty(trigger), minutes=1).disposition == "triage"
    assert [len(h) for h in held(db)] == [1, 1]
    with db.transaction() as session:
        assert triage_declare(session, policy, groups[0], actor="U1", now=NOW).ref == "INC-2"
    with db.transaction() as session:
        # What triage_attach does once the group has its incident.
        incident = triage_attach(session, policy, groups[1], "INC-1", actor="U1", now=NOW)
        carry_over(session, policy, lock_group(session, groups[1]), incident, NOW)
    note_text = "PagerDuty: annotated by Harsh Santwani: Running KILL on long-running queries"
    for ref in ("INC-2", "INC-1"):
        notes = [t for k, t in timeline(db, ref) if k == "alert_note"]
        assert [t[: len(note_text)] for t in notes] == [note_text]
    assert held(db) == [[], []]
    with db.read() as session:
        entries = sorted(list_alerts(session), key=lambda e: e.group)
    assert [(e.group, e.incident) for e in entries] == [("PDA", "INC-2"), ("PDB", "INC-1")]


def test_held_entries_are_bounded_and_each_recorded_once(db: Database, policy: Policy) -> None:
    for n in range(HELD_MAX + 5):
        body = pagerduty_note("PDX", "2026-11-30T10:00:05Z", f"N{n:02}")
        body["event"]["data"]["content"] = f"note {n}"
        store(db, policy, pagerduty(body))
        store(db, policy, pagerduty(body))  # a retry holds nothing new
    [kept] = held(db)
    assert [e["key"] for e in kept] == [f"pagerduty:N{n:02}" for n in range(5, HELD_MAX + 5)]
    store(db, policy, pagerduty(pagerduty_event("PDX", "2026-11-30T10:00:00Z")))
    notes = [t for k, t in timeline(db, "INC-1") if k == "alert_note"]
    assert notes == [
        f"PagerDuty: annotated by Harsh Santwani: note {n}" for n in range(5, HELD_MAX + 5)
    ]
    assert held(db) == [[]]


def test_a_new_episode_keeps_only_the_entries_that_came_after_the_group_resolved(
    db: Database,
) -> None:
    policy = policy_from_dict(TRIAGE)
    opened = store(db, policy, pagerduty(pagerduty_event("PDY", "2026-11-30T11:00:00Z")))
    with db.transaction() as session:
        triage_ignore(session, opened.group_id, actor="U1")

    def note(event_id: str, content: str, minutes: float) -> None:
        body = pagerduty_note("PDY", "2026-11-30T11:00:30Z", event_id)
        body["event"]["data"]["content"] = content
        store(db, policy, pagerduty(body), minutes=minutes)

    note("N-OLD", "about the ignored alert", 0.5)
    resolved = pagerduty_event("PDY", "2026-11-30T11:01:00Z", "resolved", "R1")
    store(db, policy, pagerduty(resolved), minutes=1)
    note("N-NEW", "it is back", 40)
    again = pagerduty_event("PDY", "2026-11-30T11:45:00Z", "reopened", "T2")
    assert store(db, policy, pagerduty(again), minutes=45).disposition == "triage"
    assert [e["key"] for e in held(db)[0]] == ["pagerduty:N-NEW", "pagerduty:T2"]
    with db.transaction() as session:
        assert triage_declare(session, policy, opened.group_id, actor="U1").ref == "INC-1"
    assert [t for k, t in timeline(db, "INC-1") if k == "alert_note"] == [
        "PagerDuty: annotated by Harsh Santwani: it is back",
        "PagerDuty: reopened by PIG 208",
    ]


# -- B. alerts across episodes -------------------------------------------------------------------


def alertmanager(name: str, *, keep: int | None = None, starts: str | None = None) -> AlertMessage:
    body = copy.deepcopy(load(f"alertmanager/{name}"))
    if keep is not None:
        body["alerts"] = body["alerts"][:keep]
    for alert in body["alerts"]:
        alert["startsAt"] = starts or alert["startsAt"]
    return parse("alertmanager", body, now=NOW)


FIRING = "alertmonitor-3-alerts-regex-groupkey-firing"
RESOLVED = "alertmonitor-3-alerts-regex-groupkey-resolved"


INSTANCES = {"4a110cc8dbe76532": ".30", "e92130f1a362a046": ".50", "1e1c2fe4c8293484": ".66"}
"""The fingerprints of the corpus group's alerts, by the instance each one is about."""


def listed(db: Database) -> list[tuple[str, str, str]]:
    """(instance, status, incident) of each alert, as ``firebreak alerts list`` shows them."""
    with db.read() as session:
        entries = list_alerts(session)
    return sorted((INSTANCES[e.key], e.status, e.incident or "-") for e in entries)


def test_alerts_of_an_earlier_episode_stay_listed_with_their_incident(
    db: Database, policy: Policy
) -> None:
    store(db, policy, alertmanager(FIRING))
    store(db, policy, alertmanager(RESOLVED), minutes=5)
    resolve(db, policy, 1, minutes=6)
    again = store(
        db, policy, alertmanager(FIRING, keep=1, starts="2026-11-30T11:45:00Z"), minutes=45
    )
    assert again.declared and again.incident_ref == "INC-2"
    assert listed(db) == [
        (".30", "firing", "INC-2"),
        (".50", "resolved", "INC-1"),
        (".66", "resolved", "INC-1"),
    ]
    firing = [t for k, t in timeline(db, "INC-2") if k == "alert_firing"]
    assert firing == [
        "Alert firing: ICMP ping failed (1 of 3 firing in this group, counting its earlier"
        " episodes)"
    ]
    with db.read() as session:  # the console's incident pages: each alert where it fired
        first = [(a.status, a.resolved_at) for a in incident_alerts(session, 1)]
        second = [(a.status, a.resolved_at) for a in incident_alerts(session, 2)]
    # INC-1 still lists the alert that has since fired again in INC-2, as it was in INC-1.
    resolved = NOW + timedelta(minutes=5)
    assert first == [("resolved", resolved)] * 3
    assert second == [("firing", None)]


def test_an_alert_keeps_each_incident_it_fired_in_once(db: Database, policy: Policy) -> None:
    """Fired in INC-1, again in INC-2 (after the flap window, INC-1 resolved), flapping
    within INC-2, then again in INC-3: each incident's page lists it once, as it was there."""
    for minutes, status, starts, ref in (
        (0, FIRING, "11:30", "INC-1"),
        (5, RESOLVED, "11:30", "INC-1"),
        (45, FIRING, "12:44", "INC-2"),  # after the flap window: a new episode
        (50, RESOLVED, "12:44", "INC-2"),
        (55, FIRING, "12:54", "INC-2"),  # within it: the same incident
        (60, RESOLVED, "12:54", "INC-2"),
        (120, FIRING, "13:59", "INC-3"),
    ):
        if status == FIRING and minutes >= 45 and minutes != 55:
            resolve(db, policy, int(ref.removeprefix("INC-")) - 1, minutes=minutes - 1)
        message = alertmanager(status, keep=1, starts=f"2026-11-30T{starts}:00Z")
        assert store(db, policy, message, minutes).incident_ref == ref
    with db.read() as session:
        pages = [
            [(a.status, a.resolved_at) for a in incident_alerts(session, n)] for n in (1, 2, 3)
        ]
    assert pages == [
        [("resolved", NOW + timedelta(minutes=5))],
        [("resolved", NOW + timedelta(minutes=60))],
        [("firing", None)],
    ]
    assert listed(db) == [(".30", "firing", "INC-3")]


def test_alerts_still_firing_in_a_closed_incident_stay_listed_with_it(
    db: Database, policy: Policy
) -> None:
    store(db, policy, alertmanager(FIRING, keep=2))
    with db.transaction() as session:
        core.close_incident(session, policy, 1, actor="U1")
    later = store(db, policy, alertmanager(FIRING), minutes=1)
    assert later.incident_ref == "INC-2"
    assert listed(db) == [
        (".30", "firing", "INC-1"),
        (".50", "firing", "INC-1"),
        (".66", "firing", "INC-2"),
    ]


# -- the migration -------------------------------------------------------------------------------


@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"
)
def test_migration_0009_gives_stored_alerts_their_group_incident_and_keeps_indexes(
    new_database_url: Callable[[], str],
) -> None:
    url = new_database_url()
    migrations.upgrade(url, "0008")
    db = Database(url)
    policy = Policy()
    now = NOW
    try:
        with db.transaction() as session:
            incident = core.declare_incident(session, policy, title="Old", reporter="U1").incident
            for group_id, incident_id in ((1, incident.id), (2, None)):
                session.execute(
                    text(
                        "INSERT INTO alert_groups (id, source, group_key, incident_id, episode,"
                        " status, disposition, title, firing_count, alert_count, links,"
                        " first_seen_at, last_seen_at) VALUES (:id, 'generic', :key, :incident,"
                        " 1, 'firing', 'incident', 't', 1, 1, '[]', :now, :now)"
                    ),
                    {"id": group_id, "key": f"g{group_id}", "incident": incident_id, "now": now},
                )
                session.execute(
                    text(
                        'INSERT INTO alerts (group_id, "key", status, dropped, name, title,'
                        " description, labels, annotations, links, first_seen_at, last_seen_at,"
                        " transitions) VALUES (:group, 'a', 'firing', false, 'a', 'a', '', '{}',"
                        " '{}', '[]', :now, :now, 1)"
                    ),
                    {"group": group_id, "now": now},
                )
        migrations.upgrade(url)
        with db.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT group_id, incident_id FROM alerts ORDER BY group_id")
            ).all()
            assert [tuple(r) for r in rows] == [(1, incident.id), (2, None)]
            assert [
                r[0] for r in connection.execute(text("SELECT held FROM alert_groups")).all()
            ] in (["[]", "[]"], [[], []])
        notices = {c["name"] for c in inspect(db.engine).get_columns("alert_notices")}
        assert "sent_at" not in notices  # never set by anything: dropped
        indexes = label_indexes(db)
        assert {"ix_alerts_label_alertid", "ix_alerts_label_monitor_key"} <= indexes
        assert "ix_alerts_incident_id" in indexes
        migrations.downgrade(url, "0008")
        assert label_indexes(db) == indexes - {"ix_alerts_incident_id"}
        assert "incident_id" not in {c["name"] for c in inspect(db.engine).get_columns("alerts")}
        migrations.downgrade(url, "0007")
    finally:
        db.dispose()


def label_indexes(db: Database) -> set[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alerts'"
        if db.backend == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'alerts'"
    )
    with db.engine.connect() as connection:
        return {r[0] for r in connection.execute(text(query)).all()} - {"sqlite_autoindex_alerts_1"}


# -- C. an occurrence whose resolve never came ---------------------------------------------------


def test_a_new_occurrence_without_a_resolve_opens_a_new_incident_after_a_close(
    db: Database, policy: Policy
) -> None:
    """Alertmanager with ``send_resolved: false`` (or a resolve lost on the way): the alert is
    sent firing again with a later ``startsAt``, a new occurrence. After its incident was
    closed it opens a new one, as any alert firing anew would, instead of vanishing."""
    first = store(db, policy, alertmanager(FIRING, keep=1, starts="2026-11-30T09:00:00Z"))
    assert first.incident_ref == "INC-1"
    # Alertmanager's repeat of the same occurrence changes nothing.
    again = store(db, policy, alertmanager(FIRING, keep=1, starts="2026-11-30T09:00:00Z"), 30)
    assert (again.incident_ref, again.fired) == ("INC-1", 0)
    with db.transaction() as session:
        core.close_incident(session, policy, 1, actor="U1")
    later = store(db, policy, alertmanager(FIRING, keep=1, starts="2026-11-30T11:59:00Z"), 60)
    assert (later.declared, later.incident_ref, later.firing) == (True, "INC-2", 1)
    assert [t for k, t in timeline(db, "INC-2") if k == "alert_firing"] == [
        "Alert firing: ICMP ping failed (1 of 1 firing in this group, counting its earlier"
        " episodes)"
    ]
    assert listed(db) == [(".30", "firing", "INC-2")]
    with db.read() as session:  # INC-1 keeps the occurrence it had; when it ended is unknown
        assert [(a.name, a.status, a.resolved_at) for a in incident_alerts(session, 1)] == [
            ("ICMP ping failed", "resolved", None)
        ]


def test_a_new_occurrence_of_an_open_incident_is_on_its_timeline(
    db: Database, policy: Policy
) -> None:
    store(db, policy, alertmanager(FIRING, keep=1, starts="2026-11-30T09:00:00Z"))
    later = store(db, policy, alertmanager(FIRING, keep=1, starts="2026-11-30T11:50:00Z"), 5)
    assert (later.incident_ref, later.fired, later.firing) == ("INC-1", 1, 1)
    assert [t for k, t in timeline(db, "INC-1") if k == "alert_firing"] == [
        "Alert firing: ICMP ping failed (1 of 1 firing in this group)",
        "Alert firing: ICMP ping failed (1 of 1 firing in this group)",
    ]
    # An occurrence older than the one known (a late copy) changes nothing.
    late = store(db, policy, alertmanager(FIRING, keep=1, starts="2026-11-30T09:00:00Z"), 6)
    assert late.fired == 0


def test_a_late_copy_of_an_old_datadog_cycle_does_not_split_the_next_cycle(db: Database) -> None:
    """Cycle 1 of a monitor and scope opens INC-1, recovers, and INC-1 is resolved; two hours
    later cycle 2 opens INC-2 and recovers. A copy of cycle 1's Recovered comes again (Datadog
    retries a delivery it thinks failed), then cycle 3 fires within the flap window of cycle 2:
    it attaches to INC-2. Before, the late copy made cycle 1 the latest cycle of the monitor,
    so cycle 3 opened INC-3 beside INC-2, which was still waiting for an answer."""
    policy = Policy()

    def dd(transition: str, cycle: str, minutes: float) -> AlertMessage:
        body = datadog_cycle(transition, cycle, minutes)
        return parse("datadog", body, now=NOW + timedelta(minutes=minutes))

    first = store(db, policy, dd("Triggered", "c1", 0), 0)
    recovered = dd("Recovered", "c1", 5)
    store(db, policy, recovered, 5)
    resolve(db, policy, first.incident_id or 0, 6)
    second = store(db, policy, dd("Triggered", "c2", 120), 120)
    assert second.incident_ref == "INC-2"
    store(db, policy, dd("Recovered", "c2", 130), 130)
    store(db, policy, recovered, 131)  # the late copy
    third = store(db, policy, dd("Triggered", "c3", 136), 136)
    assert third.incident_ref == "INC-2"


def test_a_group_asked_about_again_leaves_no_live_buttons_behind(db: Database) -> None:
    """A group fired, resolved and fired again hours later while nobody decided: it is asked
    about again, and the earlier request says it was superseded (answered, no buttons). The
    decision answers the newer one; no live buttons stay behind."""
    policy = policy_from_dict(TRIAGE)

    def generic(status: str) -> AlertMessage:
        body = {"title": "Disk full", "dedupe_key": "disk", "status": status}
        return parse("generic", body, now=NOW)

    first = store(db, policy, generic("firing"), 0)
    store(db, policy, generic("resolved"), 5)
    store(db, policy, generic("firing"), 180)
    with db.read() as session:
        asked = session.exec(select(AlertNotice).where(AlertNotice.kind == "triage")).all()
        assert [n.state for n in asked] == ["answered", "queued"]
    with db.transaction() as session:
        triage_declare(session, policy, first.group_id, actor="U1", now=NOW)
    with db.read() as session:
        asked = session.exec(select(AlertNotice).where(AlertNotice.kind == "triage")).all()
        assert [n.state for n in asked] == ["answered", "answered"]
