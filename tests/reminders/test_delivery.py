"""Sent once: through Slack errors, missing channels, crashed workers, restarts and two
replicas ticking at the same time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from threading import Barrier

from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlmodel import col, select

from bot import incidents as core
from bot import reminders
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.effects.models import Effect
from bot.models import EventKind
from bot.scheduler import ReminderScheduler

from . import crash_worker
from .conftest import (
    T0,
    FakeNotifier,
    at,
    declare,
    events_of,
    make_worker,
    reminder,
    set_channel,
)

ROOT = Path(__file__).resolve().parents[2]


def _commanded(db: Database, policy: Policy, channel: str | None = "C0INC1") -> int:
    incident_id = declare(db, policy, severity="SEV2", channel=channel)
    with db.transaction() as session:
        core.assign_role(session, policy, incident_id, "commander", "U0IC", actor="U0IC")
    return incident_id


def _messages(db: Database) -> list[Effect]:
    """The reminder messages queued as effects, oldest first."""
    with db.read() as session:
        return [
            e
            for e in session.exec(select(Effect).order_by(col(Effect.id))).all()
            if e.key.startswith("reminder:")
        ]


def test_a_slack_error_is_retried_and_the_reminder_sent_once(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)
    worker = make_worker(db, policy, notifier)
    notifier.failing = True
    at(clock, timedelta(minutes=30))
    report = worker.tick()
    assert (report.claimed, report.sent) == (1, 1)  # evaluated, its message queued
    assert notifier.posts == []
    [message] = _messages(db)
    assert (message.state, message.attempts, message.last_error) == ("pending", 1, "ratelimited")
    assert message.due_at == utcnow() + timedelta(seconds=1)

    worker.tick()  # not due again yet: no hammering
    assert _messages(db)[0].attempts == 1
    at(clock, timedelta(minutes=30, seconds=1))
    worker.tick()  # still failing: the backoff doubles
    assert _messages(db)[0].due_at == utcnow() + timedelta(seconds=2)

    notifier.failing = False
    at(clock, timedelta(minutes=30, seconds=3))
    worker.tick()
    worker.tick()
    assert len(notifier.posts) == 1
    assert [m.state for m in _messages(db)] == ["done"]
    assert len(events_of(db, incident_id, EventKind.REMINDER_SENT)) == 1
    row = reminder(db, reminders.update_key(incident_id))
    assert (row.attempts, row.last_error, row.sent_count) == (0, None, 1)
    assert row.due_at == T0 + timedelta(minutes=60)


def test_slack_retry_after_is_respected(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    _commanded(db, policy)
    notifier.failing, notifier.retry_after = True, 120.0
    at(clock, timedelta(minutes=30))
    make_worker(db, policy, notifier).tick()
    [message] = _messages(db)
    assert message.due_at == utcnow() + timedelta(seconds=120)


def test_a_partly_failed_escalation_sends_only_the_missing_message(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, team_policy, severity="SEV1")
    worker = make_worker(db, team_policy, notifier)
    notifier.fail_channels = {"C0ESCALATE"}
    at(clock, timedelta(minutes=5))
    worker.tick()
    assert [p.channel for p in notifier.containing(":rotating_light:")] == ["C0INC1"]
    [escalated] = events_of(db, incident_id, EventKind.ESCALATED)
    assert escalated.data["channels"] == ["C0ESCALATE", "C0INC1"]

    notifier.fail_channels = set()
    at(clock, timedelta(minutes=6))
    worker.tick()
    assert [p.channel for p in notifier.containing(":rotating_light:")] == [
        "C0INC1",
        "C0ESCALATE",
    ]
    assert len(events_of(db, incident_id, EventKind.ESCALATED)) == 1
    assert reminder(db, reminders.ack_key(incident_id)).data["tier"] == 2


def test_a_reminder_waits_for_the_incident_channel(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy, channel=None)
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=30))
    assert worker.tick().deferred == 1
    row = reminder(db, reminders.update_key(incident_id))
    assert row.state == "pending" and "no Slack channel" in (row.last_error or "")
    set_channel(db, incident_id, "C0LATE")
    at(clock, timedelta(minutes=30, seconds=30))
    worker.tick()
    worker.tick()
    assert [p.channel for p in notifier.posts] == ["C0LATE"]


def test_a_worker_that_died_after_claiming_loses_nothing(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = _commanded(db, policy)
    dead = make_worker(db, policy, notifier, name="dead")
    survivor = make_worker(db, policy, notifier, name="survivor")
    at(clock, timedelta(minutes=30))
    with db.transaction() as session:
        [claimed] = reminders.claim_due_reminders(
            session, dead.worker_id, now=utcnow(), lease=reminders.schedule.DEFAULT_LEASE
        )
    # ... and the process dies here, before sending anything.

    assert survivor.tick().claimed == 0  # the lease still holds
    clock.tick(timedelta(seconds=14))
    assert survivor.tick().claimed == 0
    clock.tick(timedelta(seconds=1))  # 15 s at most: another incident's page is not held long
    assert survivor.tick().sent == 1
    survivor.tick()
    assert len(notifier.posts) == 1
    assert dead.process(claimed) == "lost"  # a late wake-up of the "dead" one sends nothing
    assert len(notifier.posts) == 1
    assert len(events_of(db, incident_id, EventKind.REMINDER_SENT)) == 1


def test_a_worker_killed_while_sending_loses_nothing(
    db: Database, database_url: str, policy: Policy, notifier: FakeNotifier
) -> None:
    """A real process claims the reminder and is SIGKILLed inside the Slack call."""
    incident_id = _commanded(db, policy)  # declared now: the nudge is due in 30m
    with db.transaction() as session:  # make it due now, in real time
        row = reminders.get_reminder(session, reminders.update_key(incident_id))
        assert row is not None
        row.due_at = utcnow() - timedelta(minutes=1)
        row.data = {"since": (utcnow() - timedelta(minutes=31)).isoformat()}
        session.add(row)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-m", "tests.reminders.crash_worker", database_url],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "sending"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL

    # The reminder was evaluated and its message queued; the message is claimed by the dead
    # process, inside its Slack call.
    assert reminder(db, reminders.update_key(incident_id)).sent_count == 1
    [message] = _messages(db)
    # Claimed by one of the dead worker's batches (``<worker id>#<n>``).
    assert message.state == "claimed"
    assert (message.claimed_by or "").startswith(f"{crash_worker.WORKER_ID}#")
    assert message.claimed_until is not None
    survivor = make_worker(db, policy, notifier, name="survivor")
    with freeze_time(message.claimed_until - timedelta(seconds=1)):
        survivor.tick()
        assert notifier.posts == []  # the lease still holds
    with freeze_time(message.claimed_until):
        survivor.tick()
        survivor.tick()
    assert len(notifier.posts) == 1
    assert len(events_of(db, incident_id, EventKind.REMINDER_SENT)) == 1


def test_missed_occurrences_are_sent_once_at_start_up(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Every replica was down for four hours: eight missed SEV2 nudges become one."""
    incident_id = _commanded(db, policy)
    at(clock, timedelta(hours=4, minutes=5))
    worker = make_worker(db, policy, notifier)
    for _ in range(3):
        worker.tick()
    [nudge] = notifier.posts
    assert "none since it was declared 4h 5m ago" in nudge.body
    row = reminder(db, reminders.update_key(incident_id))
    assert row.due_at == T0 + timedelta(hours=4, minutes=35)


def test_two_workers_ticking_together_send_each_reminder_once(
    database_url: str, db: Database, policy: Policy, notifier: FakeNotifier
) -> None:
    """Two schedulers with their own engines, ticking at the same moments from two threads."""
    incidents = 24
    with freeze_time(T0):
        ids = [declare(db, policy, severity="SEV2", channel=f"C0INC{n}") for n in range(incidents)]
    replicas = [Database(database_url, pool_size=5) for _ in range(2)]
    schedulers = [ReminderScheduler(r, policy, batch_size=5) for r in replicas]
    try:
        with freeze_time(T0 + timedelta(minutes=30)):
            for _ in range(20):
                barrier = Barrier(2)

                def tick(n: int, barrier: Barrier = barrier) -> int:
                    barrier.wait()
                    report = schedulers[n].tick()
                    assert report is not None
                    return report.claimed

                with ThreadPoolExecutor(2) as pool:
                    claimed = sum(pool.map(tick, range(2)))
                if claimed == 0:
                    break
            # Both replicas' effect runners post what the reminders queued, at the same time.
            posters = [
                make_worker(r, policy, notifier, name=f"poster-{n}") for n, r in enumerate(replicas)
            ]
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda poster: poster.runner.run_until_idle(), posters))
    finally:
        for replica in replicas:
            replica.dispose()
    escalations = sorted(p.channel for p in notifier.containing(":rotating_light:"))
    nudges = sorted(p.channel for p in notifier.containing(":alarm_clock:"))
    expected = sorted(f"C0INC{n}" for n in range(incidents))
    assert escalations == expected and nudges == expected
    for incident_id in ids:
        assert len(events_of(db, incident_id, EventKind.ESCALATED)) == 1
        assert len(events_of(db, incident_id, EventKind.REMINDER_SENT)) == 1
