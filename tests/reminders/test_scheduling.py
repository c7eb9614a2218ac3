"""Reminder rows follow the incident: created on declare, cancelled when the condition is met,
re-timed on severity change or reopen, one row per dedupe key."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun.api import FrozenDateTimeFactory

from bot import incidents as core
from bot import reminders
from bot.config import Policy, policy_from_dict
from bot.cron import next_cron_time
from bot.db import Database
from bot.models import EventKind, Reminder
from bot.runbooks import progress
from bot.runbooks.parser import parse_runbook

from .conftest import T0, at, declare, find_reminder, reminder, reminder_count


def test_declaring_arms_the_escalation_and_the_update_cadence(
    db: Database, policy: Policy, clock: FrozenDateTimeFactory
) -> None:
    sev1 = declare(db, policy, severity="SEV1")
    sev4 = declare(db, policy, severity="SEV4")

    ack = reminder(db, reminders.ack_key(sev1))
    update = reminder(db, reminders.update_key(sev1))
    assert (ack.kind, ack.state, ack.due_at) == ("ack", "pending", T0 + timedelta(minutes=5))
    assert (update.kind, update.due_at) == ("update", T0 + timedelta(minutes=15))
    # SEV4 has no acknowledgement deadline: only the 4-hourly update cadence.
    assert reminder(db, reminders.update_key(sev4)).due_at == T0 + timedelta(hours=4)
    assert find_reminder(db, reminders.ack_key(sev4)) is None


def test_scheduling_the_same_key_twice_keeps_one_row(db: Database) -> None:
    with db.transaction() as session:
        for minutes in (5, 7):
            reminders.schedule_reminder(
                session,
                key="custom:1",
                kind="update",
                incident_id=None,
                due_at=T0 + timedelta(minutes=minutes),
                data={"n": minutes},
                now=T0,
            )
    assert reminder_count(db) == 1
    row = reminder(db, "custom:1")
    assert row.due_at == T0 + timedelta(minutes=7)
    assert row.data == {"n": 7}


@pytest.mark.parametrize("how", ["acknowledge", "commander"])
def test_acknowledging_or_naming_a_commander_cancels_the_escalation(
    db: Database, policy: Policy, clock: FrozenDateTimeFactory, how: str
) -> None:
    incident_id = declare(db, policy, severity="SEV1")
    at(clock, timedelta(minutes=2))
    with db.transaction() as session:
        if how == "acknowledge":
            core.acknowledge_incident(session, policy, incident_id, actor="U0ONCALL")
        else:
            core.assign_role(session, policy, incident_id, "commander", "U0IC", actor="U0ONCALL")
    assert reminder(db, reminders.ack_key(incident_id)).state == "cancelled"
    assert reminder(db, reminders.update_key(incident_id)).state == "pending"


def test_a_status_update_resets_the_cadence(
    db: Database, policy: Policy, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV2")
    at(clock, timedelta(minutes=20))
    with db.transaction() as session:
        core.post_status_update(session, policy, incident_id, "Rolling back", actor="U0IC")
    assert reminder(db, reminders.update_key(incident_id)).due_at == T0 + timedelta(minutes=50)
    assert reminder_count(db) == 2  # still one update row (and the ack row)


def test_a_severity_change_applies_the_new_cadence_and_deadline(
    db: Database, policy: Policy, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV3")  # updates every 1h, ack within 30m
    at(clock, timedelta(minutes=3))
    with db.transaction() as session:
        core.change_severity(session, policy, incident_id, "SEV1", actor="U0IC")
    assert reminder(db, reminders.update_key(incident_id)).due_at == T0 + timedelta(minutes=15)
    assert reminder(db, reminders.ack_key(incident_id)).due_at == T0 + timedelta(minutes=5)

    at(clock, timedelta(minutes=40))  # overdue under SEV2's 30m: due now, not in the past
    with db.transaction() as session:
        core.change_severity(session, policy, incident_id, "SEV2", actor="U0IC")
    assert reminder(db, reminders.update_key(incident_id)).due_at == T0 + timedelta(minutes=40)

    with db.transaction() as session:
        core.change_severity(session, policy, incident_id, "SEV4", actor="U0IC")
    assert reminder(db, reminders.ack_key(incident_id)).state == "cancelled"
    assert reminder(db, reminders.update_key(incident_id)).due_at == T0 + timedelta(hours=4)


def test_resolve_close_and_reopen_keep_the_reminders_in_step(
    db: Database, policy: Policy, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV2")
    with db.transaction() as session:
        core.record_timeline_event(
            session,
            policy,
            incident_id,
            kind=EventKind.RUNBOOK_STEP,
            text="step 1 assigned",
            data=_step(run_id=3, step=0, state="in_progress"),
        )
    at(clock, timedelta(minutes=10))
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U0IC")
    states = {r.dedupe_key: r.state for r in _rows(db, incident_id)}
    assert states == {
        reminders.ack_key(incident_id): "cancelled",
        reminders.update_key(incident_id): "cancelled",
        reminders.step_key(3, 0): "cancelled",
        reminders.close_key(incident_id): "pending",
    }

    at(clock, timedelta(minutes=20))
    with db.transaction() as session:
        core.reopen_incident(session, policy, incident_id, actor="U0IC")
    assert reminder(db, reminders.close_key(incident_id)).state == "cancelled"
    update = reminder(db, reminders.update_key(incident_id))
    assert (update.state, update.due_at) == ("pending", T0 + timedelta(minutes=50))
    ack = reminder(db, reminders.ack_key(incident_id))
    assert (ack.state, ack.due_at) == ("pending", T0 + timedelta(minutes=30))

    with db.transaction() as session:
        core.close_incident(session, policy, incident_id, actor="U0IC")
    assert {r.state for r in _rows(db, incident_id)} == {"cancelled"}


def test_a_runbook_step_in_progress_is_watched_until_it_is_done(
    db: Database, policy: Policy, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV4")
    at(clock, timedelta(minutes=5))
    _record_step(db, policy, incident_id, "in_progress")
    row = reminder(db, reminders.step_key(7, 2))
    assert (row.kind, row.due_at) == ("step", T0 + timedelta(minutes=35))
    assert row.data["assignee"] == "U0OPS"

    _record_step(db, policy, incident_id, "done")
    assert reminder(db, reminders.step_key(7, 2)).state == "cancelled"


def test_seeding_the_crons_is_idempotent_and_keeps_a_missed_digest_due(
    db: Database, policy: Policy, team_policy: Policy
) -> None:
    friday_evening = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
    for _ in range(2):
        with db.transaction() as session:
            reminders.seed_recurring_reminders(session, team_policy, now=friday_evening)
    assert reminder_count(db) == 2
    monday_nine = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert reminder(db, "digest").due_at == monday_nine  # weekdays as cron means them
    assert reminder(db, "actions").due_at == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)

    # Every replica was down on Monday morning: a restart keeps the digest due, not skipped.
    with db.transaction() as session:
        later = monday_nine + timedelta(hours=3)
        reminders.seed_recurring_reminders(session, team_policy, now=later)
    assert reminder(db, "digest").due_at == monday_nine

    changed = policy_from_dict(
        {
            "slack": {"announcements_channel": "C0ANNOUNCE"},
            "reminders": {"digest_cron": "30 8 * * *", "action_items_cron": None},
        }
    )
    with db.transaction() as session:
        reminders.seed_recurring_reminders(session, changed, now=friday_evening)
    assert reminder(db, "digest").due_at == datetime(2026, 3, 7, 8, 30, tzinfo=UTC)
    assert reminder(db, "actions").state == "cancelled"

    # The default policy has no digest channel: no digest.
    with db.transaction() as session:
        reminders.seed_recurring_reminders(session, policy, now=friday_evening)
    assert reminder(db, "digest").state == "cancelled"
    assert reminder(db, "actions").state == "pending"


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 9 * * 1-5", datetime(2026, 3, 6, 9, 0, tzinfo=UTC), datetime(2026, 3, 9, 9, 0)),
        ("0 9 * * 0", datetime(2026, 3, 2, 0, 0, tzinfo=UTC), datetime(2026, 3, 8, 9, 0)),
        ("0 9 * * 7", datetime(2026, 3, 2, 0, 0, tzinfo=UTC), datetime(2026, 3, 8, 9, 0)),
        ("0 9 * * */2", datetime(2026, 3, 2, 10, 0, tzinfo=UTC), datetime(2026, 3, 3, 9, 0)),
        ("0 9 * * mon-fri", datetime(2026, 3, 7, 0, 0, tzinfo=UTC), datetime(2026, 3, 9, 9, 0)),
        ("15 8 * * *", datetime(2026, 3, 2, 8, 15, tzinfo=UTC), datetime(2026, 3, 3, 8, 15)),
        # Both days restricted: either matches, as cron runs it (Monday the 2nd, not the 15th).
        ("0 9 1,15 * 1", datetime(2026, 3, 1, 10, 0, tzinfo=UTC), datetime(2026, 3, 2, 9, 0)),
        ("0 9 1,15 * 1", datetime(2026, 3, 9, 10, 0, tzinfo=UTC), datetime(2026, 3, 15, 9, 0)),
        # A day field starting with "*" restricts nothing: both must match (Tuesday the 31st).
        ("0 9 */15 * 2", datetime(2026, 3, 2, 10, 0, tzinfo=UTC), datetime(2026, 3, 31, 9, 0)),
    ],
)
def test_crons_fire_when_crontab_says_in_the_team_timezone(
    expr: str, after: datetime, expected: datetime
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    fire = next_cron_time(expr, berlin, after.replace(tzinfo=berlin))
    assert fire == expected.replace(tzinfo=berlin).astimezone(UTC)


CLOCK_CHANGES = [
    ("Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC)),  # back: 03:00 -> 02:00
    ("Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC)),  # forward: 02:00 -> 03:00
    ("America/New_York", datetime(2026, 10, 31, 12, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 4, 3, 12, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 4, 3, 12, tzinfo=UTC)),  # back by 30 minutes
]


def fired(expr: str, zone: ZoneInfo, start: datetime, days: int = 3) -> list[datetime]:
    """What a worker that fires each time at its due time sends over ``days``."""
    moments, now = [], start
    while now < start + timedelta(days=days):
        due = next_cron_time(expr, zone, now)
        assert due > now
        moments.append(due)
        now = due
    return moments[:-1]


@pytest.mark.parametrize(("zone_name", "start"), CLOCK_CHANGES)
@pytest.mark.parametrize("expr", ["30 2 * * *", "0 9 * * *", "30 1 * * *"])
def test_a_daily_cron_fires_once_a_day_when_the_clocks_change(
    zone_name: str, start: datetime, expr: str
) -> None:
    zone = ZoneInfo(zone_name)
    moments = fired(expr, zone, start)
    days = [m.astimezone(zone).date() for m in moments]
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))]
    assert len(days) == 3
    # Asked at any minute of those days, the next time is ahead and within a day and an hour.
    for minutes in range(0, 3 * 24 * 60, 7):
        now = start + timedelta(minutes=minutes)
        assert now < next_cron_time(expr, zone, now) <= now + timedelta(hours=25)


@pytest.mark.parametrize(("zone_name", "start"), CLOCK_CHANGES)
def test_a_cron_every_half_hour_keeps_its_pace_when_the_clocks_change(
    zone_name: str, start: datetime
) -> None:
    moments = fired("*/30 * * * *", ZoneInfo(zone_name), start, days=2)
    assert {b - a for a, b in itertools.pairwise(moments)} == {timedelta(minutes=30)}
    assert len(moments) == 2 * 48 - 1


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 3, 4, 11, 30), datetime(2026, 3, 4, 11, 30)),  # inside: unchanged
        (datetime(2026, 3, 4, 7, 0), datetime(2026, 3, 4, 9, 0)),  # before opening
        (datetime(2026, 3, 4, 17, 0), datetime(2026, 3, 5, 9, 0)),  # at closing: next day
        (datetime(2026, 3, 6, 18, 0), datetime(2026, 3, 9, 9, 0)),  # Friday night: Monday
        (datetime(2026, 3, 7, 12, 0), datetime(2026, 3, 9, 9, 0)),  # Saturday: Monday
    ],
)
def test_next_working_time_is_in_the_team_timezone(local: datetime, expected: datetime) -> None:
    policy = policy_from_dict({"timezone": "America/New_York"})
    zone = ZoneInfo("America/New_York")
    result = reminders.next_working_time(policy, local.replace(tzinfo=zone).astimezone(UTC))
    assert result == expected.replace(tzinfo=zone).astimezone(UTC)
    assert result.tzinfo is UTC


def _step(*, run_id: int, step: int, state: str) -> dict[str, object]:
    return {
        "run_id": run_id,
        "runbook_id": "database/failover.md",
        "step": step,
        "step_title": "Promote the replica",
        "state": state,
        "assignee": "U0OPS" if state == "in_progress" else None,
    }


def _record_step(db: Database, policy: Policy, incident_id: int, state: str) -> None:
    with db.transaction() as session:
        core.record_timeline_event(
            session,
            policy,
            incident_id,
            kind=EventKind.RUNBOOK_STEP,
            text=f"step 3 {state}",
            data=_step(run_id=7, step=2, state=state),
        )


def _rows(db: Database, incident_id: int) -> list[Reminder]:
    with db.transaction() as session:
        return reminders.incident_reminders(session, incident_id)


def test_a_step_still_in_progress_is_chased_again_after_a_reopen(
    db: Database, policy: Policy, clock: FrozenDateTimeFactory
) -> None:
    """Resolving cancels the chase of a step left in someone's hands; reopening arms it again,
    from the reopen, for the steps still held (not for those finished meanwhile)."""
    incident_id = declare(db, policy, severity="SEV4")
    runbook = parse_runbook("# Drain\n\n- [ ] Cordon\n- [ ] Drain\n", runbook_id="drain")
    with db.transaction() as session:
        run_id = progress.start_run(session, policy, incident_id, runbook, actor="U0IC").run.id
    at(clock, timedelta(minutes=5))
    for step in (0, 1):
        with db.transaction() as session:
            progress.update_step(
                session, policy, run_id, step, "assign", actor="U0IC", assignee="U0OPS"
            )
    at(clock, timedelta(minutes=10))
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U0IC")
        progress.update_step(session, policy, run_id, 1, "done", actor="U0OPS")
    assert reminder(db, reminders.step_key(run_id, 0)).state == "cancelled"
    at(clock, timedelta(minutes=20))
    with db.transaction() as session:
        core.reopen_incident(session, policy, incident_id, actor="U0IC")
    row = reminder(db, reminders.step_key(run_id, 0))
    assert (row.state, row.due_at) == ("pending", T0 + timedelta(minutes=50))
    assert row.data["assignee"] == "U0OPS" and row.data["step_title"] == "Cordon"
    assert reminder(db, reminders.step_key(run_id, 1)).state == "cancelled"
