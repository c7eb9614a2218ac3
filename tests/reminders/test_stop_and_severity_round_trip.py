"""Reminders that must not come back: a Snooze clicked after Stop leaves the nudges stopped, and
a severity lowered and raised again continues the escalation instead of paging tier 1 twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory

from bot import incidents as core
from bot import reminders
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import InvalidInput
from bot.models import EventKind
from bot.reminders import actions as reminder_actions

from .conftest import (
    T0,
    TEAM_POLICY,
    FakeNotifier,
    at,
    declare,
    events_of,
    make_worker,
    reminder,
)

NUDGE = ":alarm_clock:"
SIREN = ":rotating_light:"


def _tiers(db: Database, incident_id: int) -> list[int]:
    return [e.data["tier"] for e in events_of(db, incident_id, EventKind.ESCALATED)]


def second_tier_sent_once(
    db: Database,
    incident_id: int,
    worker: Any,
    notifier: FakeNotifier,
    clock: FrozenDateTimeFactory,
    *,
    due: timedelta,
) -> None:
    """Nothing until ``due`` (after T0); then the second tier once, to the incident and the
    escalation channel, naming the managers and not the on-call group; nothing more after."""
    at(clock, due - timedelta(seconds=1))
    worker.tick()
    assert len(notifier.containing(SIREN)) == 2
    at(clock, due)
    worker.tick()
    second = notifier.containing(SIREN)[2:]
    assert [p.channel for p in second] == ["C0INC1", "C0ESCALATE"]
    assert all("<!subteam^S0MANAGERS>" in p.body for p in second)
    assert all("<!subteam^S0SRE>" not in p.body for p in second)
    at(clock, timedelta(hours=3))
    worker.tick()
    assert len(notifier.containing(SIREN)) == 4
    assert _tiers(db, incident_id) == [1, 2]
    assert reminder(db, reminders.ack_key(incident_id)).state == "sent"


def escalated_once_at_p2(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> tuple[int, Any]:
    """A P2 incident nobody acknowledged: its one escalation tier went out at T0 + 10m."""
    incident_id = declare(db, policy, severity="P2")
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=10))
    worker.tick()
    return incident_id, worker


def test_a_snooze_clicked_after_stop_leaves_the_nudges_stopped(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV2")  # a status update every 30m
    with db.transaction() as session:
        core.assign_role(session, policy, incident_id, "commander", "U0IC", actor="U0IC")
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()
    row_id = reminder(db, reminders.update_key(incident_id)).id
    assert row_id is not None
    with db.transaction() as session:
        reminder_actions.stop_reminder(session, policy, row_id, actor="U0IC", key="click-stop")

    at(clock, timedelta(minutes=31))  # a colleague clicks Snooze 15 on the same message
    with pytest.raises(InvalidInput) as refused, db.transaction() as session:
        reminder_actions.snooze_reminder(
            session, policy, row_id, timedelta(minutes=15), actor="U0OTHER", key="click-snooze"
        )
    assert str(refused.value) == (
        "These reminders were stopped by <@U0IC>; reopening INC-1 starts them again."
    )
    assert reminder(db, reminders.update_key(incident_id)).state == "stopped"
    assert events_of(db, incident_id, EventKind.REMINDER_SNOOZED) == []

    for minutes in (46, 80, 120):
        at(clock, timedelta(minutes=minutes))
        worker.tick()
    nudges = notifier.containing(NUDGE)
    assert [p.channel for p in nudges] == ["C0INC1"]
    assert "<@U0IC>" in nudges[0].body
    assert len(events_of(db, incident_id, EventKind.REMINDER_SENT)) == 1


def test_lowering_and_raising_the_severity_continues_with_the_second_tier(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, team_policy, severity="SEV3")  # escalate after 30m, again 1h later
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()
    assert [p.channel for p in notifier.containing(SIREN)] == ["C0INC1", "C0ESCALATE"]

    with db.transaction() as session:  # SEV4 has no ack_within: the escalation is cancelled
        core.change_severity(session, team_policy, incident_id, "SEV4", actor="U1")
    assert reminder(db, reminders.ack_key(incident_id)).state == "cancelled"
    at(clock, timedelta(minutes=31))
    with db.transaction() as session:  # SEV2: the second tier 15m after the first
        core.change_severity(session, team_policy, incident_id, "SEV2", actor="U1")
    worker.tick()
    assert len(notifier.containing(SIREN)) == 2
    assert _tiers(db, incident_id) == [1]
    row = reminder(db, reminders.ack_key(incident_id))
    assert (row.state, row.data["tier"], row.due_at) == ("pending", 2, T0 + timedelta(minutes=45))

    second_tier_sent_once(db, incident_id, worker, notifier, clock, due=timedelta(minutes=45))


def test_reopening_restarts_from_tier_one_and_a_round_trip_then_continues(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Reopening is a genuine restart (tier 1 again, timed from the reopen); a severity change
    afterwards re-times the tier the reopened incident is on."""
    incident_id = declare(db, team_policy, severity="SEV2")  # 10m, then 15m more
    worker = make_worker(db, team_policy, notifier)
    for minutes in (10, 25):
        at(clock, timedelta(minutes=minutes))
        worker.tick()
    assert _tiers(db, incident_id) == [1, 2]

    at(clock, timedelta(minutes=30))
    with db.transaction() as session:
        core.resolve_incident(session, team_policy, incident_id, actor="U1")
    at(clock, timedelta(minutes=40))
    with db.transaction() as session:
        core.reopen_incident(session, team_policy, incident_id, actor="U1")
    at(clock, timedelta(minutes=49, seconds=59))
    worker.tick()
    assert _tiers(db, incident_id) == [1, 2]
    at(clock, timedelta(minutes=50))
    worker.tick()
    assert _tiers(db, incident_id) == [1, 2, 1]

    at(clock, timedelta(minutes=51))
    with db.transaction() as session:
        core.change_severity(session, team_policy, incident_id, "SEV4", actor="U1")
    at(clock, timedelta(minutes=52))
    with db.transaction() as session:
        core.change_severity(session, team_policy, incident_id, "SEV2", actor="U1")
    worker.tick()
    assert _tiers(db, incident_id) == [1, 2, 1]
    at(clock, timedelta(minutes=65))
    worker.tick()
    at(clock, timedelta(hours=3))
    worker.tick()
    assert _tiers(db, incident_id) == [1, 2, 1, 2]
    assert len(notifier.containing(SIREN)) == 8


@pytest.fixture
def one_tier_policy() -> Policy:
    """P1 escalates twice (5m, then 10m more); P2 and P3 escalate once (10m, 30m) and stop."""
    return policy_from_dict(
        {
            **TEAM_POLICY,
            "default_severity": "P2",
            "severities": [
                {"key": "P1", "ack_within": "5m", "escalate_again_after": "10m"},
                {"key": "P2", "ack_within": "10m"},
                {"key": "P3", "ack_within": "30m"},
            ],
        }
    )


def test_raising_to_a_severity_with_a_second_tier_after_a_one_tier_escalation_sends_it(
    db: Database, one_tier_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Tier 1 went out under P2 (no second tier); raised to P1, the second tier follows 10m
    after the first, once, and tier 1 is not paged again."""
    incident_id, worker = escalated_once_at_p2(db, one_tier_policy, notifier, clock)
    assert _tiers(db, incident_id) == [1]
    assert reminder(db, reminders.ack_key(incident_id)).state == "sent"

    at(clock, timedelta(minutes=12))
    with db.transaction() as session:
        core.change_severity(session, one_tier_policy, incident_id, "P1", actor="U1")
    worker.tick()
    assert _tiers(db, incident_id) == [1]
    row = reminder(db, reminders.ack_key(incident_id))
    assert (row.state, row.data["tier"], row.due_at) == ("pending", 2, T0 + timedelta(minutes=20))
    assert (row.sent_count, row.last_sent_at) == (1, T0 + timedelta(minutes=10))

    second_tier_sent_once(db, incident_id, worker, notifier, clock, due=timedelta(minutes=20))


def test_a_second_tier_already_overdue_when_the_severity_is_raised_is_sent_at_once(
    db: Database, one_tier_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id, worker = escalated_once_at_p2(db, one_tier_policy, notifier, clock)
    at(clock, timedelta(minutes=40))  # 10m after tier 1 was 20m ago
    with db.transaction() as session:
        core.change_severity(session, one_tier_policy, incident_id, "P1", actor="U1")
    assert reminder(db, reminders.ack_key(incident_id)).due_at == T0 + timedelta(minutes=40)
    worker.tick()
    assert _tiers(db, incident_id) == [1, 2]
    at(clock, timedelta(hours=3))
    worker.tick()
    assert _tiers(db, incident_id) == [1, 2]
    assert len(notifier.containing(SIREN)) == 4


def test_acknowledging_after_the_raise_cancels_the_second_tier(
    db: Database, one_tier_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id, worker = escalated_once_at_p2(db, one_tier_policy, notifier, clock)
    at(clock, timedelta(minutes=12))
    with db.transaction() as session:
        core.change_severity(session, one_tier_policy, incident_id, "P1", actor="U1")
    at(clock, timedelta(minutes=15))
    with db.transaction() as session:
        core.acknowledge_incident(session, one_tier_policy, incident_id, actor="U0ONCALL")
    assert reminder(db, reminders.ack_key(incident_id)).state == "cancelled"
    at(clock, timedelta(hours=3))
    worker.tick()
    assert _tiers(db, incident_id) == [1]
    assert len(notifier.containing(SIREN)) == 2


def test_a_severity_without_a_second_tier_sends_nothing_more_after_the_first(
    db: Database, one_tier_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """P2 -> P3 (neither has a second tier) leaves the sent row alone; so does going to P1 once
    both tiers are out and back."""
    incident_id, worker = escalated_once_at_p2(db, one_tier_policy, notifier, clock)
    at(clock, timedelta(minutes=12))
    with db.transaction() as session:
        core.change_severity(session, one_tier_policy, incident_id, "P3", actor="U1")
    row = reminder(db, reminders.ack_key(incident_id))
    assert (row.state, row.data["tier"]) == ("sent", 1)
    at(clock, timedelta(hours=3))
    worker.tick()
    assert _tiers(db, incident_id) == [1]

    with db.transaction() as session:  # the second tier, overdue: sent once
        core.change_severity(session, one_tier_policy, incident_id, "P1", actor="U1")
    worker.tick()
    assert _tiers(db, incident_id) == [1, 2]
    for severity, minutes in (("P2", 181), ("P1", 182)):
        at(clock, timedelta(minutes=minutes))
        with db.transaction() as session:
            core.change_severity(session, one_tier_policy, incident_id, severity, actor="U1")
        worker.tick()
    at(clock, timedelta(hours=6))
    worker.tick()
    assert _tiers(db, incident_id) == [1, 2]
    assert len(notifier.containing(SIREN)) == 4
    assert reminder(db, reminders.ack_key(incident_id)).state == "sent"
