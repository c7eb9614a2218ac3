"""A snooze outlives a change of cadence, and a reminder meant for working hours waits for
them even when it comes due while nobody runs Firebreak."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory

from bot import incidents as core
from bot import reminders
from bot.config import Policy
from bot.db import Database
from bot.errors import InvalidInput
from bot.models import EventKind
from bot.reminders import actions
from tests.reminders.conftest import (
    T0,
    FakeNotifier,
    at,
    declare,
    events_of,
    make_worker,
    reminder,
)


def commanded(db: Database, policy: Policy, severity: str) -> int:
    incident_id = declare(db, policy, severity=severity)
    with db.transaction() as session:
        core.assign_role(session, policy, incident_id, "commander", "U0IC", actor="U0IC")
    return incident_id


def test_a_severity_change_keeps_the_update_nudge_snoozed(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """SEV2 nudges every 30 min. Nudged at +30, snoozed for an hour at +31, raised to SEV1
    (every 15 min) at +35: nothing until the snooze ends at +91, then SEV1's cadence."""
    incident_id = commanded(db, policy, "SEV2")
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()
    row = reminder(db, reminders.update_key(incident_id))
    assert row.id is not None
    at(clock, timedelta(minutes=31))
    with db.transaction() as session:
        actions.snooze_reminder(session, policy, row.id, timedelta(minutes=60), actor="U0IC")
    at(clock, timedelta(minutes=35))
    with db.transaction() as session:
        core.change_severity(session, policy, incident_id, "SEV1", actor="U0IC")
    for minute in range(36, 108):
        at(clock, timedelta(minutes=minute))
        worker.tick()
    sent = [
        e.occurred_at.replace(tzinfo=UTC) - T0
        for e in events_of(db, incident_id, EventKind.REMINDER_SENT)
    ]
    assert sent == [timedelta(minutes=m) for m in (30, 91, 106)]


def test_a_posted_update_ends_the_snooze(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = commanded(db, policy, "SEV2")
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()
    row = reminder(db, reminders.update_key(incident_id))
    assert row.id is not None
    with db.transaction() as session:
        actions.snooze_reminder(session, policy, row.id, timedelta(minutes=60), actor="U0IC")
    at(clock, timedelta(minutes=40))
    with db.transaction() as session:
        core.post_status_update(session, policy, incident_id, "Rolled back", actor="U0IC")
    assert reminder(db, reminders.update_key(incident_id)).due_at.replace(
        tzinfo=UTC
    ) == T0 + timedelta(minutes=70)


def test_a_close_reminder_due_while_nobody_ran_waits_for_working_hours(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Resolved on Monday 10:10 (09:00-17:00 on weekdays): the close reminder is due Tuesday
    10:10, but no replica runs until Tuesday 20:00. It goes out Wednesday at 09:00."""
    incident_id = commanded(db, policy, "SEV2")
    at(clock, timedelta(minutes=10))
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U0IC")
    worker = make_worker(db, policy, notifier)
    clock.move_to(datetime(2026, 3, 3, 20, 0, tzinfo=UTC))
    worker.tick()
    assert notifier.containing("close it") == []
    clock.move_to(datetime(2026, 3, 4, 8, 59, tzinfo=UTC))
    worker.tick()
    assert notifier.containing("close it") == []
    clock.move_to(datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
    worker.tick()
    assert len(notifier.containing("close it")) == 1


def test_a_stop_clicked_on_a_nudge_from_before_a_reopen_does_not_silence_the_new_cycle(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = commanded(db, policy, "SEV2")
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()  # the nudge with Snooze and Stop
    row = reminder(db, reminders.update_key(incident_id))
    assert row.id is not None
    at(clock, timedelta(minutes=40))
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U0IC")
    at(clock, timedelta(minutes=50))
    with db.transaction() as session:
        core.reopen_incident(session, policy, incident_id, actor="U0IC")
    at(clock, timedelta(minutes=55))
    for click in (actions.stop_reminder, actions.snooze_reminder):
        with db.transaction() as session, pytest.raises(InvalidInput, match="earlier reminder"):
            if click is actions.stop_reminder:
                actions.stop_reminder(session, policy, row.id, actor="U0OTHER")
            else:
                actions.snooze_reminder(
                    session, policy, row.id, timedelta(minutes=60), actor="U0OTHER"
                )
    for minute in range(56, 112):
        at(clock, timedelta(minutes=minute))
        worker.tick()
    sent = [
        e.occurred_at.replace(tzinfo=UTC) - T0
        for e in events_of(db, incident_id, EventKind.REMINDER_SENT)
    ]
    assert sent == [timedelta(minutes=m) for m in (30, 80, 110)]
    # The new cycle's own buttons work.
    with db.transaction() as session:
        assert actions.stop_reminder(session, policy, row.id, actor="U0IC").changed


def test_the_same_snooze_clicked_again_moments_later_is_one_snooze(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Snooze 30m on nudge 1 at +31:00 and again at +31:06 (a double click: two Slack actions,
    two keys): one timeline row, the second told until when. Another duration, or the same
    one a while later, is a new snooze."""
    incident_id = commanded(db, policy, "SEV2")
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()
    row = reminder(db, reminders.update_key(incident_id))
    assert row.id is not None

    def snooze(minutes: int, key: str) -> actions.ReminderChange:
        with db.transaction() as session:
            return actions.snooze_reminder(
                session,
                policy,
                row.id or 0,
                timedelta(minutes=minutes),
                actor="U0IC",
                key=key,
                seq=1,
            )

    at(clock, timedelta(minutes=31))
    assert snooze(30, "click-1").changed
    at(clock, timedelta(minutes=31, seconds=6))
    again = snooze(30, "click-2")
    assert not again.changed
    assert again.note == "Already snoozed until 11:01 UTC."  # T0 is 10:00 UTC
    assert len(events_of(db, incident_id, EventKind.REMINDER_SNOOZED)) == 1
    assert reminder(db, reminders.update_key(incident_id)).due_at.replace(
        tzinfo=UTC
    ) == T0 + timedelta(minutes=61)

    at(clock, timedelta(minutes=31, seconds=20))
    assert snooze(60, "click-3").changed  # another duration: a new snooze
    at(clock, timedelta(minutes=40))
    assert snooze(60, "click-4").changed  # the same, minutes later: snoozed again from now
    assert len(events_of(db, incident_id, EventKind.REMINDER_SNOOZED)) == 3
