"""Status-update nudges: cadence per severity, reset by an update, snooze and stop, silence
once the incident is resolved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory

from bot import incidents as core
from bot import reminders
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.errors import InvalidInput
from bot.models import EventKind
from bot.reminders import actions as reminder_actions

from .conftest import FakeNotifier, at, declare, events_of, make_worker, reminder

NUDGE = ":alarm_clock:"


def _commanded(db: Database, policy: Policy, severity: str = "SEV2") -> int:
    incident_id = declare(db, policy, severity=severity)
    with db.transaction() as session:
        core.assign_role(session, policy, incident_id, "commander", "U0IC", actor="U0IC")
    return incident_id


def test_the_commander_is_nudged_at_the_severity_cadence(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)  # SEV2: an update every 30m
    worker = make_worker(db, policy, notifier)

    at(clock, timedelta(minutes=29))
    worker.tick()
    assert notifier.posts == []

    at(clock, timedelta(minutes=30))
    worker.tick()
    [nudge] = notifier.posts
    assert nudge.channel == "C0INC1"
    assert "<@U0IC>" in nudge.body and "status update" in nudge.body
    row = reminder(db, reminders.update_key(incident_id))
    assert nudge.action_ids == [
        f"reminder:update:{incident_id}",
        f"reminder:snooze:{row.id}:15:1",  # the reminder's first message
        f"reminder:snooze:{row.id}:30:1",
        f"reminder:snooze:{row.id}:60:1",
        f"reminder:stop:{row.id}:1",
    ]

    at(clock, timedelta(minutes=59))
    worker.tick()
    assert len(notifier.posts) == 1
    at(clock, timedelta(minutes=60))
    worker.tick()
    assert len(notifier.posts) == 2
    sent = events_of(db, incident_id, EventKind.REMINDER_SENT)
    assert len(sent) == 2 and sent[0].data["channels"] == ["C0INC1"]


def test_without_a_commander_the_channel_is_nudged(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV2")
    with db.transaction() as session:
        core.acknowledge_incident(session, policy, incident_id, actor="U0ONCALL")
    at(clock, timedelta(minutes=30))
    make_worker(db, policy, notifier).tick()
    [nudge] = notifier.containing(NUDGE)
    assert "<!channel>" in nudge.body


def test_posting_an_update_resets_the_timer(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=20))
    with db.transaction() as session:
        core.post_status_update(session, policy, incident_id, "Rolled back", actor="U0IC")
    at(clock, timedelta(minutes=30))
    worker.tick()
    at(clock, timedelta(minutes=49, seconds=59))
    worker.tick()
    assert notifier.posts == []
    at(clock, timedelta(minutes=50))
    worker.tick()
    [nudge] = notifier.posts
    assert "The last one was 30m ago" in nudge.body


def test_an_update_posted_after_the_claim_means_no_nudge(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    with db.transaction() as session:
        [claimed] = reminders.claim_due_reminders(session, worker.worker_id, now=utcnow())
    with db.transaction() as session:
        core.post_status_update(session, policy, incident_id, "Still rolling back", actor="U0IC")
    worker.process(claimed)
    assert notifier.posts == []
    row = reminder(db, reminders.update_key(incident_id))
    assert (row.state, row.due_at, row.claimed_by) == (
        "pending",
        utcnow() + timedelta(minutes=30),
        None,
    )


def test_a_severity_change_changes_the_cadence(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy, severity="SEV3")  # hourly
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=10))
    with db.transaction() as session:
        core.change_severity(session, policy, incident_id, "SEV1", actor="U0IC")  # every 15m
    for minutes, expected in ((14, 0), (15, 1), (29, 1), (30, 2)):
        at(clock, timedelta(minutes=minutes))
        worker.tick()
        assert len(notifier.posts) == expected, minutes

    at(clock, timedelta(minutes=31))
    with db.transaction() as session:
        core.change_severity(session, policy, incident_id, "SEV4", actor="U0IC")  # every 4h
    at(clock, timedelta(hours=4, minutes=29))
    worker.tick()
    assert len(notifier.posts) == 2
    at(clock, timedelta(hours=4, minutes=30))
    worker.tick()
    assert len(notifier.posts) == 3


def test_snoozing_postpones_the_next_nudge_and_is_recorded(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()
    row_id = reminder(db, reminders.update_key(incident_id)).id
    assert row_id is not None

    at(clock, timedelta(minutes=31))
    for _ in range(2):  # a Slack retry of the same click
        with db.transaction() as session:
            change = reminder_actions.snooze_reminder(
                session, policy, row_id, timedelta(minutes=60), actor="U0IC", key="click-1"
            )
    assert not change.changed
    assert reminder(db, reminders.update_key(incident_id)).due_at == utcnow() + timedelta(hours=1)
    [snoozed] = events_of(db, incident_id, EventKind.REMINDER_SNOOZED)
    assert snoozed.actor_id == "U0IC" and "1h" in snoozed.text

    at(clock, timedelta(minutes=90))
    worker.tick()
    assert len(notifier.posts) == 1
    at(clock, timedelta(minutes=91))
    worker.tick()
    assert len(notifier.posts) == 2


def test_snooze_only_offers_the_policy_choices_and_not_for_escalations(
    db: Database, policy: Policy, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV1")
    update_id = reminder(db, reminders.update_key(incident_id)).id
    ack_id = reminder(db, reminders.ack_key(incident_id)).id
    assert update_id is not None and ack_id is not None
    with pytest.raises(InvalidInput, match="one of: 15m, 30m, 1h"), db.transaction() as session:
        reminder_actions.snooze_reminder(
            session, policy, update_id, timedelta(days=30), actor="U0IC"
        )
    with pytest.raises(InvalidInput, match="acknowledge INC-1"), db.transaction() as session:
        reminder_actions.snooze_reminder(
            session, policy, ack_id, timedelta(minutes=15), actor="U0IC"
        )
    assert reminder(db, reminders.update_key(incident_id)).due_at == utcnow() + timedelta(
        minutes=15
    )


def test_stop_ends_the_nudges_until_the_incident_is_reopened(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()
    row_id = reminder(db, reminders.update_key(incident_id)).id
    assert row_id is not None
    for _ in range(2):  # a double click records one stop
        with db.transaction() as session:
            reminder_actions.stop_reminder(session, policy, row_id, actor="U0IC")
    assert len(events_of(db, incident_id, EventKind.REMINDER_STOPPED)) == 1

    at(clock, timedelta(minutes=40))
    with db.transaction() as session:  # an update does not switch a stopped reminder back on
        core.post_status_update(session, policy, incident_id, "Fixed", actor="U0IC")
    for hours in (1, 2, 5):
        at(clock, timedelta(hours=hours))
        worker.tick()
    assert len(notifier.posts) == 1

    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U0IC")
        core.reopen_incident(session, policy, incident_id, actor="U0IC")
    at(clock, timedelta(hours=5, minutes=30))
    worker.tick()
    assert len(notifier.containing(NUDGE)) == 2
    assert "none since it was reopened 30m ago" in notifier.posts[-1].body


def test_a_resolved_incident_gets_no_more_update_nudges(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    worker.tick()
    at(clock, timedelta(minutes=45))
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U0IC")
    for hours in (1, 2, 6, 12):
        at(clock, timedelta(hours=hours))
        worker.tick()
    assert len(notifier.containing(NUDGE)) == 1
    with pytest.raises(InvalidInput, match="no longer active"), db.transaction() as session:
        row_id = reminder(db, reminders.update_key(incident_id)).id
        assert row_id is not None
        reminder_actions.snooze_reminder(
            session, policy, row_id, timedelta(minutes=15), actor="U0IC"
        )


def test_a_claimed_nudge_for_an_incident_resolved_meanwhile_is_not_sent(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    with db.transaction() as session:
        [claimed] = reminders.claim_due_reminders(session, worker.worker_id, now=utcnow())
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U0IC")
    worker.process(claimed)
    assert notifier.posts == []
    assert reminder(db, reminders.update_key(incident_id)).state == "cancelled"


def test_a_severity_change_while_a_nudge_is_on_its_way_sends_it_once(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy, severity="SEV3")  # hourly
    worker = make_worker(db, policy, notifier)

    def raise_severity() -> None:
        notifier.on_post = None
        with db.transaction() as session:
            core.change_severity(session, policy, incident_id, "SEV1", actor="U0IC")

    notifier.on_post = raise_severity
    at(clock, timedelta(hours=1))
    worker.tick()
    assert len(notifier.posts) == 1
    row = reminder(db, reminders.update_key(incident_id))
    assert (row.state, row.due_at) == ("pending", utcnow() + timedelta(minutes=15))
    at(clock, timedelta(hours=1, minutes=14))
    worker.tick()
    assert len(notifier.posts) == 1
    at(clock, timedelta(hours=1, minutes=15))
    worker.tick()
    assert len(notifier.posts) == 2


def test_stop_on_a_stopped_or_finished_reminder_says_why(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Before, Stop answered nothing: a second person's click on a reminder already stopped,
    or a click after the incident resolved, left them wondering whether it worked."""
    incident_id = _commanded(db, policy)
    resolved = _commanded(db, policy)
    at(clock, timedelta(minutes=30))
    make_worker(db, policy, notifier).tick()  # each nudged: their Stop buttons are out
    row_id = reminder(db, reminders.update_key(incident_id)).id
    assert row_id is not None
    with db.transaction() as session:
        reminder_actions.stop_reminder(session, policy, row_id, actor="U0IC")
    with db.transaction() as session:  # a double click of the same person: nothing more
        reminder_actions.stop_reminder(session, policy, row_id, actor="U0IC")
    with db.transaction() as session, pytest.raises(InvalidInput) as refused:
        reminder_actions.stop_reminder(session, policy, row_id, actor="U0OTHER")
    assert str(refused.value) == (
        "These reminders were stopped by <@U0IC>; reopening INC-1 starts them again."
    )

    with db.transaction() as session:
        core.resolve_incident(session, policy, resolved, actor="U0IC")
    row_id = reminder(db, reminders.update_key(resolved)).id
    assert row_id is not None
    with db.transaction() as session, pytest.raises(InvalidInput) as refused:
        reminder_actions.stop_reminder(session, policy, row_id, actor="U0IC")
    assert str(refused.value) == "This reminder is no longer active: INC-2 is resolved."
    assert len(events_of(db, incident_id, EventKind.REMINDER_STOPPED)) == 1
    assert events_of(db, resolved, EventKind.REMINDER_STOPPED) == []
