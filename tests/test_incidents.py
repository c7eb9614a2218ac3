from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlmodel import Session, func, select

from bot import incidents as core
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import InvalidInput, InvalidTransition, NotFound
from bot.export import export_incident
from bot.models import EventKind, Incident, TimelineEvent

T0 = datetime(2026, 3, 4, 2, 55, tzinfo=UTC)


def declare(db: Database, policy: Policy, **kwargs: Any) -> Incident:
    kwargs.setdefault("title", "Checkout returns 500s")
    kwargs.setdefault("reporter", "U1")
    with db.transaction() as session:
        return core.declare_incident(session, policy, **kwargs).incident


def events(db: Database, incident: Incident, **kwargs: Any) -> list[TimelineEvent]:
    assert incident.id is not None
    with db.transaction() as session:
        return core.timeline(session, incident.id, **kwargs)


def count_rows(db: Database, model: Any) -> int:
    with db.transaction() as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


# --------------------------------------------------------------------------------------------
# Declare


def test_declare_numbers_incidents_and_records_the_declaration(
    db: Database, policy: Policy
) -> None:
    with freeze_time(T0):
        first = declare(db, policy, title="Payments down", severity="sev1", service="payments")
        second = declare(db, policy, title="Search slow")
    assert (first.ref, second.ref) == ("INC-1", "INC-2")
    assert first.severity == "SEV1"
    assert first.status == "triage"
    assert first.declared_at == T0 and first.declared_at.tzinfo is not None
    assert second.severity == policy.default_severity
    [event] = events(db, first)
    assert event.kind == EventKind.DECLARED
    assert event.actor_id == "U1"
    assert "Payments down" in event.text
    assert event.occurred_at == T0


def test_declare_with_the_same_key_returns_the_same_incident(db: Database, policy: Policy) -> None:
    with db.transaction() as session:
        first = core.declare_incident(session, policy, title="A", reporter="U1", key="trigger-1")
    with db.transaction() as session:
        again = core.declare_incident(session, policy, title="A", reporter="U1", key="trigger-1")
    assert first.changed and not again.changed
    assert again.incident.id == first.incident.id
    assert count_rows(db, Incident) == 1
    assert count_rows(db, TimelineEvent) == 1


def test_long_keys_that_share_a_beginning_stay_different_requests(
    db: Database, policy: Policy
) -> None:
    """Keys longer than the database holds (a long alert group key, say) are stored as a hash of
    the whole key: two requests differing only at the end are two requests, and each repeats."""
    stem = "alertmanager:" + "x" * 300
    made = []
    for key in (stem + ":a", stem + ":b", stem + ":a", "y" * 255):
        with db.transaction() as session:
            change = core.declare_incident(session, policy, title="A", reporter="U1", key=key)
            assert change.incident.id is not None
            for _ in range(2):
                core.add_note(session, policy, change.incident.id, "seen", actor="U1", key=key)
            made.append(change.incident)
    assert [i.number for i in made] == [1, 2, 1, 3]
    assert count_rows(db, Incident) == 3
    for incident in made:
        assert [e.kind for e in events(db, incident)] == [EventKind.DECLARED, EventKind.NOTE]


def test_a_failed_declare_gives_its_number_back(db: Database, policy: Policy) -> None:
    with pytest.raises(RuntimeError), db.transaction() as session:
        core.declare_incident(session, policy, title="doomed", reporter="U1")
        raise RuntimeError("crash after the insert, before the commit")
    assert declare(db, policy).number == 1


@pytest.mark.parametrize(
    "title",
    [
        "🔥 Checkout on fire 🔥",
        "خدمة الدفع متوقفة",  # right-to-left
        "'; DROP TABLE incidents; --",
        "100% of requests fail for users with \\ and % and _ in names",
        "支付服务中断",
    ],
)
def test_titles_are_stored_exactly(db: Database, policy: Policy, title: str) -> None:
    incident = declare(db, policy, title=title)
    with db.transaction() as session:
        stored = core.find_incident(session, incident.ref)
    assert stored.title == title
    assert count_rows(db, Incident) == 1


@pytest.mark.parametrize(
    "title",
    ["", "   ", "\x00\x01", "\u200b", "\u200d \u2060", "\ufeff", "\u200f\u200e"],
    ids=["empty", "spaces", "controls", "zero-width-space", "joiners", "bom", "direction-marks"],
)
def test_an_empty_title_is_refused(db: Database, policy: Policy, title: str) -> None:
    with pytest.raises(InvalidInput, match="title is empty"):
        declare(db, policy, title=title)
    assert count_rows(db, Incident) == 0


def test_a_ten_thousand_character_title_is_refused_and_nothing_is_written(
    db: Database, policy: Policy
) -> None:
    with pytest.raises(InvalidInput, match="10,000 characters"):
        declare(db, policy, title="x" * 10_000)
    assert count_rows(db, Incident) == 0
    assert count_rows(db, TimelineEvent) == 0
    assert declare(db, policy).number == 1  # the number was not used up


def test_control_characters_are_removed_from_titles(db: Database, policy: Policy) -> None:
    incident = declare(db, policy, title="DB\x00 down\nagain")
    assert incident.title == "DB down again"


def test_half_an_emoji_is_stored_as_a_replacement_character(db: Database, policy: Policy) -> None:
    incident = declare(db, policy, title="Disk \ud83d full \ud83d\ude00")
    assert incident.title == "Disk \ufffd full \U0001f600"


def test_unknown_severity_lists_the_choices(db: Database, policy: Policy) -> None:
    with pytest.raises(InvalidInput, match=r"Unknown severity 'SEV9'.*SEV1, SEV2, SEV3, SEV4"):
        declare(db, policy, severity="SEV9")
    assert count_rows(db, Incident) == 0


def test_impact_in_the_future_is_refused(db: Database, policy: Policy) -> None:
    with freeze_time(T0), pytest.raises(InvalidInput, match="future"):
        declare(db, policy, impact_started_at=T0 + timedelta(minutes=5))


def test_naive_times_are_refused(db: Database, policy: Policy) -> None:
    with pytest.raises(ValueError, match="naive"):
        declare(db, policy, impact_started_at=datetime(2026, 1, 1))


# --------------------------------------------------------------------------------------------
# Severity and status


def test_severity_changes_are_recorded_and_repeats_are_not(db: Database, policy: Policy) -> None:
    incident = declare(db, policy, severity="SEV3")
    assert incident.id is not None
    with db.transaction() as session:
        change = core.change_severity(session, policy, incident.id, "1", actor="U2")
    assert change.changed and change.incident.severity == "SEV1"
    with db.transaction() as session:
        again = core.change_severity(session, policy, incident.id, "SEV1", actor="U3")
    assert not again.changed
    kinds = [e.kind for e in events(db, incident)]
    assert kinds == [EventKind.DECLARED, EventKind.SEVERITY_CHANGED]
    assert events(db, incident)[-1].data == {"from": "SEV3", "to": "SEV1"}


def test_status_follows_the_allowed_transitions(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        core.change_status(session, policy, incident.id, "investigating", actor="U1")
    with (
        pytest.raises(InvalidTransition, match="cannot move to closed") as info,
        db.transaction() as session,
    ):
        core.change_status(session, policy, incident.id, "closed", actor="U1")
    assert "identified, monitoring, resolved" in str(info.value)
    with db.transaction() as session:
        assert core.get_incident(session, incident.id).status == "investigating"
    with pytest.raises(InvalidInput, match="Unknown status"), db.transaction() as session:
        core.change_status(session, policy, incident.id, "fixed-ish", actor="U1")


def test_milestones_are_stamped_once_and_metrics_follow(db: Database, policy: Policy) -> None:
    impact = T0 - timedelta(minutes=20)
    with freeze_time(T0):
        incident = declare(
            db, policy, impact_started_at=impact, detected_at=T0 - timedelta(minutes=5)
        )
    assert incident.id is not None
    with freeze_time(T0 + timedelta(minutes=3)), db.transaction() as session:
        core.acknowledge_incident(session, policy, incident.id, actor="U2")
    with freeze_time(T0 + timedelta(minutes=30)), db.transaction() as session:
        core.mitigate_incident(session, policy, incident.id, actor="U2")
    with freeze_time(T0 + timedelta(minutes=40)), db.transaction() as session:
        core.change_status(session, policy, incident.id, "investigating", actor="U2")
    with freeze_time(T0 + timedelta(minutes=50)), db.transaction() as session:
        core.change_status(session, policy, incident.id, "monitoring", actor="U2")
    with freeze_time(T0 + timedelta(hours=1)), db.transaction() as session:
        core.resolve_incident(session, policy, incident.id, actor="U2")
    with freeze_time(T0 + timedelta(days=1)), db.transaction() as session:
        closed = core.close_incident(session, policy, incident.id, actor="U2").incident
    assert closed.mitigated_at == T0 + timedelta(minutes=30)  # the first mitigation counts
    metrics = core.incident_metrics(closed)
    assert metrics.time_to_detect == timedelta(minutes=15)
    assert metrics.time_to_acknowledge == timedelta(minutes=3)
    assert metrics.time_to_mitigate == timedelta(minutes=50)
    assert metrics.time_to_resolve == timedelta(minutes=80)
    assert metrics.duration == timedelta(days=1, minutes=20)
    assert core.humanize_duration(metrics.time_to_resolve) == "1h 20m"


def time_to_mitigate_after_a_premature_resolve(
    db: Database, policy: Policy, *, mitigated_first: bool
) -> float | None:
    """Declared 23:30 UTC, resolved too soon at +10 min (after a mitigation at +5 min, when
    ``mitigated_first``), reopened at +20 min, mitigated at +60 min and resolved at +90 min:
    time to mitigate as ``firebreak export`` shows it, in seconds."""
    start = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    changes = [
        (10, core.resolve_incident),
        (20, core.reopen_incident),
        (60, core.mitigate_incident),
        (90, core.resolve_incident),
    ]
    if mitigated_first:
        changes.insert(0, (5, core.mitigate_incident))
    with freeze_time(start) as clock:
        incident = declare(db, policy)
        assert incident.id is not None
        for minutes, change in changes:
            clock.move_to(start + timedelta(minutes=minutes))
            with db.transaction() as session:
                change(session, policy, incident.id, actor="U1")
    with db.transaction() as session:
        seconds = export_incident(session, policy, incident.ref)["metrics_seconds"]
    return seconds["time_to_mitigate"]  # type: ignore[no-any-return]


def test_a_reopen_undoes_the_mitigation_only_its_resolve_implied(
    db: Database, policy: Policy
) -> None:
    """A resolve stamps the mitigation too when nobody mitigated first. The reopen says the
    impact is back, so that stamp goes with the resolution (time to mitigate was 10 min, the
    premature resolve, not the real mitigation an hour in); a real earlier mitigation stays."""
    implied = time_to_mitigate_after_a_premature_resolve(db, policy, mitigated_first=False)
    assert implied == timedelta(minutes=60).total_seconds()
    real = time_to_mitigate_after_a_premature_resolve(db, policy, mitigated_first=True)
    assert real == timedelta(minutes=5).total_seconds()


def test_metrics_without_milestones_are_unknown_not_zero(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    metrics = core.incident_metrics(incident)
    assert metrics.time_to_detect is None
    assert metrics.time_to_acknowledge is None
    assert metrics.time_to_resolve is None
    assert core.humanize_duration(metrics.time_to_resolve) == "unknown"


def test_reopen_clears_resolution_and_keeps_history(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident.id, actor="U1")
    with db.transaction() as session:
        core.close_incident(session, policy, incident.id, actor="U1")
    with db.transaction() as session:
        change = core.reopen_incident(session, policy, incident.id, actor="U2", text="came back")
    assert change.incident.status == "investigating"
    assert change.incident.resolved_at is None and change.incident.closed_at is None
    assert change.event is not None and change.event.data["reopened"] is True
    assert "came back" in change.event.text
    statuses = [
        e.data.get("to") for e in events(db, incident) if e.kind == EventKind.STATUS_CHANGED
    ]
    assert statuses == ["resolved", "closed", "investigating"]


def test_a_closed_incident_takes_notes_and_action_items_and_refuses_other_changes(
    db: Database, policy: Policy
) -> None:
    """Nothing follows a closed incident (reminders, escalations, the summary's buttons), so
    an update, a severity or a role given to it would be seen by nobody: refused, saying to
    reopen it. Notes and action items (the review's own work) are still taken, and a request
    accepted before the close is still answered as it was."""
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        core.post_status_update(session, policy, incident.id, "rolled back", actor="U1", key="u1")
        core.resolve_incident(session, policy, incident.id, actor="U1")
        core.close_incident(session, policy, incident.id, actor="U1")
    incident_id = incident.id
    refusals: dict[str, Callable[[Session], core.Change]] = {
        "change its severity": lambda s: core.change_severity(
            s, policy, incident_id, "SEV1", actor="U2"
        ),
        "post an update": lambda s: core.post_status_update(
            s, policy, incident_id, "errors are back", actor="U2"
        ),
        "change who holds its roles": lambda s: core.assign_role(
            s, policy, incident_id, "commander", "U2", actor="U2"
        ),
    }
    before = len(events(db, incident))
    for doing, change in refusals.items():
        with pytest.raises(InvalidTransition) as refused, db.transaction() as session:
            change(session)
        assert str(refused.value) == (
            f"INC-1 is closed: reopen it (`/incident INC-1 reopen`) before you {doing}."
        )
    with db.transaction() as session:
        with pytest.raises(InvalidTransition):
            core.unassign_role(session, policy, incident.id, "commander", actor="U2")
        # The update accepted before the close, sent again (a Slack retry): the same answer.
        again = core.post_status_update(session, policy, incident.id, "x", actor="U1", key="u1")
        assert again.event is None and again.incident.ref == "INC-1"
    assert len(events(db, incident)) == before
    with db.transaction() as session:
        assert core.add_note(session, policy, incident.id, "for the review", actor="U3").event
        core.add_action_item(session, policy, incident.id, "Add an alert", actor="U3")
        core.reopen_incident(session, policy, incident.id, actor="U2", text="errors are back")
    with db.transaction() as session:
        assert core.change_severity(session, policy, incident.id, "SEV1", actor="U2").event


def test_resolving_twice_writes_one_event(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        first = core.resolve_incident(session, policy, incident.id, actor="U1")
    with db.transaction() as session:
        second = core.resolve_incident(session, policy, incident.id, actor="U2")
    assert first.changed and not second.changed
    assert len(events(db, incident)) == 2


def test_a_repeated_request_key_is_applied_once(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    assert incident.id is not None
    for _ in range(3):
        with db.transaction() as session:
            core.add_note(
                session,
                policy,
                incident.id,
                "Rolled back deploy 123",
                actor="U1",
                key="slack:trigger:42",
            )
    notes = [e for e in events(db, incident) if e.kind == EventKind.NOTE]
    assert len(notes) == 1


def test_unknown_incident_is_not_found(db: Database, policy: Policy) -> None:
    with db.transaction() as session:
        with pytest.raises(NotFound, match="INC-99"):
            core.find_incident(session, "INC-99")
        with pytest.raises(InvalidInput, match="incident number"):
            core.find_incident(session, "'; select 1")
        with pytest.raises(NotFound):
            core.change_severity(session, policy, 12345, "SEV1", actor="U1")


# --------------------------------------------------------------------------------------------
# Roles


def test_roles_are_assigned_replaced_and_kept_in_history(db: Database, policy: Policy) -> None:
    with freeze_time(T0):
        incident = declare(db, policy)
    assert incident.id is not None
    with freeze_time(T0 + timedelta(minutes=2)), db.transaction() as session:
        change = core.assign_role(session, policy, incident.id, "ic", "U2", actor="U1")
    assert change.incident.acknowledged_at == T0 + timedelta(minutes=2)
    with db.transaction() as session:
        core.assign_role(session, policy, incident.id, "Incident Commander", "U3", actor="U2")
        core.assign_role(session, policy, incident.id, "comms", "U4", actor="U3")
    with db.transaction() as session:
        assert not core.assign_role(session, policy, incident.id, "comms", "U4", actor="U3").changed
        assert core.current_roles(session, incident.id) == {"commander": "U3", "comms": "U4"}
        history = core.role_history(session, incident.id)
    assert [(h.role, h.user_id, h.unassigned_at is None) for h in history] == [
        ("commander", "U2", False),
        ("commander", "U3", True),
        ("comms", "U4", True),
    ]
    with db.transaction() as session:
        assert core.unassign_role(session, policy, incident.id, "comms", actor="U4").changed
        assert core.current_roles(session, incident.id) == {"commander": "U3"}


def test_role_changes_are_stored_in_slack_markup_with_the_role_name_escaped(
    db: Database,
) -> None:
    """The entry holds mentions (Slack markup), so the role's name from the policy is escaped
    in it: ``R&D <liaison>`` must not become a link or vanish where it is shown."""
    policy = policy_from_dict(
        {"roles": [{"key": "commander", "name": "Commander"}, {"key": "rd", "name": "R&D <x>"}]}
    )
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        core.assign_role(session, policy, incident.id, "rd", "U2", actor="U1")
        core.unassign_role(session, policy, incident.id, "rd", actor="U2")
        texts = [
            e.text
            for e in core.timeline(session, incident.id)
            if e.kind in (EventKind.ROLE_ASSIGNED, EventKind.ROLE_UNASSIGNED)
        ]
    assert texts == ["R&amp;D &lt;x&gt;: <@U2>", "R&amp;D &lt;x&gt;: <@U2> stepped down"]


def test_unknown_role_is_refused(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    assert incident.id is not None
    with (
        pytest.raises(InvalidInput, match=r"Unknown role 'janitor'.*commander"),
        db.transaction() as session,
    ):
        core.assign_role(session, policy, incident.id, "janitor", "U2", actor="U1")
    assert len(events(db, incident)) == 1


# --------------------------------------------------------------------------------------------
# Timeline capture and retraction


@freeze_time(T0)
def test_a_message_is_captured_once_and_can_be_withdrawn(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    assert incident.id is not None
    said_at = T0 - timedelta(minutes=1)
    for captured_by in ("U2", "U3"):
        with db.transaction() as session:
            core.capture_message(
                session,
                policy,
                incident.id,
                source_ref="slack:C1:1.000100",
                text="error rate back to 0.1%",
                author="U5",
                occurred_at=said_at,
                captured_by=captured_by,
                source_url="https://example.slack.com/archives/C1/p1000100",
            )
    visible = [e for e in events(db, incident) if e.kind == EventKind.MESSAGE]
    assert len(visible) == 1
    assert visible[0].occurred_at == said_at and visible[0].actor_id == "U5"
    with db.transaction() as session:
        assert core.withdraw_capture(
            session, policy, incident.id, "slack:C1:1.000100", actor="U2"
        ).changed
    assert [e.kind for e in events(db, incident)] == [EventKind.DECLARED]
    audit = events(db, incident, include_retracted=True)
    assert [e.kind for e in audit] == [EventKind.MESSAGE, EventKind.DECLARED, EventKind.RETRACTION]
    # captured again after the withdrawal: visible again, as a new row
    with db.transaction() as session:
        assert core.capture_message(
            session,
            policy,
            incident.id,
            source_ref="slack:C1:1.000100",
            text="error rate back to 0.1%",
            author="U5",
            occurred_at=said_at,
            captured_by="U2",
        ).changed
    assert len([e for e in events(db, incident) if e.kind == EventKind.MESSAGE]) == 1


def test_external_events_keep_their_own_time(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    assert incident.id is not None
    with freeze_time(T0), db.transaction() as session:
        change = core.record_timeline_event(
            session,
            policy,
            incident.id,
            kind="deploy",
            text="api v2.3.1 rolled out",
            occurred_at=T0 - timedelta(hours=1),
            data={"version": "2.3.1"},
            key="deploy:981",
        )
    assert change.event is not None
    assert change.event.occurred_at == T0 - timedelta(hours=1)
    assert change.event.recorded_at == T0
    assert [e.kind for e in events(db, incident)] == ["deploy", EventKind.DECLARED]


# --------------------------------------------------------------------------------------------
# Action items


def test_action_items_are_numbered_and_completed(db: Database, policy: Policy) -> None:
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        core.add_action_item(
            session,
            policy,
            incident.id,
            "Alert on connection pool saturation",
            actor="U1",
            owner="U2",
            due_on=date(2026, 4, 1),
        )
        core.add_action_item(session, policy, incident.id, "Add a canary stage", actor="U1")
    with db.transaction() as session:
        assert core.complete_action_item(session, policy, incident.id, 2, actor="U2").changed
        assert not core.complete_action_item(session, policy, incident.id, 2, actor="U2").changed
        items = core.list_action_items(session, incident.id)
        with pytest.raises(NotFound, match="no action item 7"):
            core.complete_action_item(session, policy, incident.id, 7, actor="U2")
    assert [(i.number, i.status, i.owner_id) for i in items] == [
        (1, "open", "U2"),
        (2, "done", None),
    ]
    assert items[0].due_on == date(2026, 4, 1)


def test_listing_leaves_out_closed_incidents(db: Database, policy: Policy) -> None:
    open_one = declare(db, policy, title="open")
    closed = declare(db, policy, title="closed")
    assert closed.id is not None
    with db.transaction() as session:
        core.close_incident(session, policy, closed.id, actor="U1")
    with db.transaction() as session:
        assert [i.id for i in core.list_incidents(session, policy)] == [open_one.id]
        assert len(core.list_incidents(session, policy, phases=None)) == 2


def test_a_stale_severity_choice_names_the_day_of_a_change_made_before_today(
    db: Database, policy: Policy
) -> None:
    """Refused because someone changed the severity late last night: "at 23:50 UTC" alone would
    read as tonight. The day is said once it has turned."""
    with freeze_time("2026-11-29T23:40:00Z"), db.transaction() as session:
        incident_id = (
            core.declare_incident(session, policy, title="Ledger lag", reporter="U1").incident.id
            or 0
        )
    with freeze_time("2026-11-29T23:50:00Z"), db.transaction() as session:
        core.change_severity(session, policy, incident_id, "SEV1", actor="U1")
    with (
        freeze_time("2026-11-30T00:10:00Z"),
        db.transaction() as session,
        pytest.raises(InvalidTransition) as refused,
    ):
        core.change_severity(session, policy, incident_id, "SEV2", actor="U2", seen="SEV3")
    assert "(changed by <@U1> on 2026-11-29 at 23:50 UTC)" in str(refused.value)
    with (
        freeze_time("2026-11-29T23:55:00Z"),
        db.transaction() as session,
        pytest.raises(InvalidTransition) as refused,
    ):
        core.change_severity(session, policy, incident_id, "SEV2", actor="U2", seen="SEV3")
    assert "(changed by <@U1> at 23:50 UTC)" in str(refused.value)


def test_a_status_the_policy_no_longer_has_is_named_on_the_timeline_when_left(
    db: Database, policy: Policy
) -> None:
    """The policy was edited while an incident stood at a status it dropped: the change away
    from it says where it was, as stored (the tamper-evident record said "?" and None)."""
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        core.change_status(session, policy, incident.id, "investigating", actor="U1")
    edited = policy_from_dict(
        {
            "statuses": [
                {"key": "triage", "next": ["fixing", "resolved"]},
                {"key": "fixing", "next": ["resolved"]},
                {"key": "resolved", "phase": "resolved", "next": ["closed"]},
                {"key": "closed", "phase": "closed"},
            ]
        }
    )
    with db.transaction() as session:
        change = core.change_status(session, edited, incident.id, "fixing", actor="U1")
    assert change.event is not None
    assert change.event.text == "INC-1 status changed: investigating → fixing"
    assert change.event.data["from"] == "investigating"


REVIEW_POLICY = {
    "statuses": [
        {"key": "investigating", "next": ["fixing", "resolved"]},
        {"key": "fixing", "next": ["resolved"]},
        {"key": "resolved", "phase": "resolved", "next": ["in_review", "investigating"]},
        {"key": "in_review", "phase": "resolved", "next": ["closed", "investigating"]},
        {"key": "closed", "phase": "closed", "next": ["in_review", "investigating"]},
    ]
}


def test_a_close_the_policy_forbids_says_where_the_incident_really_stands(db: Database) -> None:
    """Resolved incidents go to review before closing: a close from Fixing resolved it, then
    failed, and the refusal (rolled back with the resolve) said it "is resolved"."""
    policy = policy_from_dict(REVIEW_POLICY)
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        core.change_status(session, policy, incident.id, "fixing", actor="U1")
    with pytest.raises(InvalidTransition) as refused, db.transaction() as session:
        core.close_incident(session, policy, incident.id, actor="U1")
    assert str(refused.value) == (
        "INC-1 is fixing; it cannot be closed from there. From fixing it can move to: resolved."
    )
    assert events(db, incident)[-1].text == "INC-1 status changed: investigating → fixing"


def test_a_move_that_reopens_or_unclose_is_decided_under_the_lock(db: Database) -> None:
    """Whether a status change reopens the incident is known only under its lock: refused
    there for someone [access] reopen does not name. Leaving the closed status for a review
    one is an un-close: refused the same way, and when allowed it clears the closed time."""
    policy = policy_from_dict(REVIEW_POLICY)
    incident = declare(db, policy)
    assert incident.id is not None
    for status in ("resolved", "in_review", "closed"):
        with db.transaction() as session:
            core.change_status(session, policy, incident.id, status, actor="U1")
    for status in ("investigating", "in_review"):
        with pytest.raises(core.ReopenRefused), db.transaction() as session:
            core.change_status(session, policy, incident.id, status, actor="U2", may_reopen=False)
    with db.transaction() as session:
        moved = core.change_status(session, policy, incident.id, "in_review", actor="U1")
        assert (moved.incident.status, moved.incident.closed_at) == ("in_review", None)


@pytest.mark.parametrize("typed", ["SEV-1", "sev 1", "SEV1 - Critical", "sev1", "1"])
def test_a_severity_is_found_however_it_is_written(
    db: Database, policy: Policy, typed: str
) -> None:
    """``/incident sev SEV1 - Critical``, as the summary shows it, or ``SEV-1`` as many teams
    write it: the severity, not "Unknown severity"."""
    incident = declare(db, policy)
    assert incident.id is not None
    with db.transaction() as session:
        change = core.change_severity(session, policy, incident.id, typed, actor="U1")
    assert change.incident.severity == "SEV1"
