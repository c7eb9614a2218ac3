"""The APScheduler wiring: start-up, shutdown that hands claims over, and target validation."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from bot import incidents as core
from bot import reminders
from bot.clock import utcnow
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import ConfigError
from bot.models import EventKind
from bot.runtime import new_worker_id
from bot.scheduler import ReminderScheduler, validate_targets

from .conftest import TEAM_POLICY, FakeNotifier, declare, events_of, make_worker, reminder


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _overdue_nudge(db: Database, policy: Policy) -> int:
    incident_id = declare(db, policy, severity="SEV4", now=utcnow() - timedelta(hours=5))
    return incident_id


def test_start_sends_what_fell_due_while_down_then_shutdown_stops(
    db: Database, team_policy: Policy, notifier: FakeNotifier
) -> None:
    incident_id = _overdue_nudge(db, team_policy)
    sent_before = _metric("firebreak_reminders_sent_total", kind="update")
    scheduler = ReminderScheduler(db, team_policy, interval=3600)
    scheduler.start()
    try:
        assert scheduler.running
        # The first tick runs at start-up, not an interval later.
        deadline = time.monotonic() + 60
        while not events_of(db, incident_id, EventKind.REMINDER_SENT):
            assert time.monotonic() < deadline, "the nudge was not queued at start-up"
            time.sleep(0.05)
    finally:
        scheduler.shutdown()
    assert not scheduler.running
    make_worker(db, team_policy, notifier).runner.run_until_idle()  # the effect runner posts it
    assert len(notifier.posts) == 1
    assert len(events_of(db, incident_id, EventKind.REMINDER_SENT)) == 1
    assert _metric("firebreak_reminders_sent_total", kind="update") == sent_before + 1
    assert _metric("firebreak_scheduler_lag_seconds") >= 3600  # due an hour before start-up
    assert reminder(db, "digest").state == "pending"  # crons are seeded as rows
    assert reminder(db, "actions").state == "pending"


def test_shutdown_releases_claims_for_another_replica_at_once(
    db: Database, policy: Policy, notifier: FakeNotifier
) -> None:
    incident_id = _overdue_nudge(db, policy)
    leaving = ReminderScheduler(db, policy)
    with db.transaction() as session:
        claimed = reminders.claim_due_reminders(session, leaving.worker_id, now=utcnow())
    assert [c.incident_id for c in claimed] == [incident_id]

    assert leaving.shutdown() == 1
    row = reminder(db, reminders.update_key(incident_id))
    assert (row.state, row.claimed_by, row.claimed_until) == ("pending", None, None)
    other = make_worker(db, policy, notifier, name="other-replica")
    assert other.tick().sent == 1  # no waiting for the lease to run out
    assert len(notifier.posts) == 1


def test_worker_ids_are_unique_per_scheduler(db: Database, policy: Policy) -> None:
    ids = {new_worker_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(f":{os.getpid()}:" in i for i in ids)
    first = ReminderScheduler(db, policy)
    second = ReminderScheduler(db, policy)
    assert first.worker_id != second.worker_id


class Groups:
    def __init__(self, groups: Mapping[str, str]) -> None:
        self.groups = groups
        self.calls = 0

    def user_groups(self) -> Mapping[str, str]:
        self.calls += 1
        return self.groups


def test_known_user_groups_pass_validation() -> None:
    lookup = Groups({"sre-oncall": "S0SRE", "managers": "S0MANAGERS"})
    validate_targets(policy_from_dict(TEAM_POLICY), lookup)
    assert lookup.calls == 1


@pytest.mark.parametrize(
    ("reminders_policy", "message"),
    [
        (
            {"escalate_to": ["@sre-oncall", "U0LEAD"]},
            "firebreak.toml: reminders.escalate_to: unknown user group @sre-oncall",
        ),
        (
            {"escalate_to": ["@managers"], "escalate_again_to": ["S0GONE", "@nope"]},
            "firebreak.toml: reminders.escalate_again_to: unknown user groups S0GONE, @nope",
        ),
    ],
)
def test_an_unknown_user_group_stops_start_up_naming_the_key(
    reminders_policy: dict[str, list[str]], message: str
) -> None:
    policy = policy_from_dict({"reminders": reminders_policy})
    with pytest.raises(ConfigError) as raised:
        validate_targets(policy, Groups({"managers": "S0MANAGERS"}))
    assert str(raised.value) == message


def test_user_ids_alone_need_no_lookup() -> None:
    lookup = Groups({})
    validate_targets(policy_from_dict({"reminders": {"escalate_to": ["U0LEAD"]}}), lookup)
    assert lookup.calls == 0


def test_a_non_positive_interval_is_refused(db: Database, policy: Policy) -> None:
    with pytest.raises(ConfigError, match="interval must be positive"):
        ReminderScheduler(db, policy, interval=0)


def test_housekeeping_during_a_database_outage_logs_one_warning_not_one_per_run(
    db: Database, policy: Policy, caplog: pytest.LogCaptureFixture
) -> None:
    """A job that fails while the database is down, and hangs past its interval, logs one
    warning when the outage starts and one line when it ends: no traceback per run, and no
    warning for each run skipped because the last one is still going."""
    calls = 0
    done = threading.Event()

    def job() -> None:
        nonlocal calls
        calls += 1
        if calls <= 6:
            time.sleep(0.12)  # longer than the interval: runs are skipped meanwhile
            raise OperationalError("SELECT 1", None, Exception("connection refused"))
        done.set()

    scheduler = ReminderScheduler(db, policy, interval=3600)
    scheduler.start()
    caplog.set_level(logging.INFO)
    try:
        scheduler.every(0.03, job, "refresh-summaries")
        assert done.wait(30)
    finally:
        scheduler.shutdown()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [
        "refresh-summaries: the database is unavailable (OperationalError: connection "
        "refused); trying again until it is back",
        "refresh-summaries: the database is available again",
    ]
    assert not any(r.exc_info for r in caplog.records)


def _severities(sev3: Mapping[str, str], sev4: Mapping[str, str]) -> Policy:
    return policy_from_dict(
        {
            **TEAM_POLICY,
            "default_severity": "SEV3",
            "severities": [
                {"key": "SEV3", "name": "Minor", "update_every": "1h", **sev3},
                {"key": "SEV4", "name": "Low", "update_every": "4h", **sev4},
            ],
        }
    )


def test_start_times_open_incidents_reminders_by_the_policy_as_edited(db: Database) -> None:
    """Before, reminders were timed only when something happened to an incident: a policy
    edited while incidents were open (an escalation made faster, an acknowledgement deadline
    added, updates asked for more often) applied to them only at their next change, so the bot
    restarted with it waited out the old deadline, or never escalated at all."""
    old = _severities({"ack_within": "30m"}, {})
    now = utcnow()
    faster = declare(db, old, severity="SEV3", now=now - timedelta(minutes=6))
    fresh = declare(db, old, severity="SEV3", now=now - timedelta(minutes=2))
    quiet = declare(db, old, severity="SEV3", now=now - timedelta(minutes=20))
    with db.transaction() as session:
        core.acknowledge_incident(
            session, old, quiet, actor="U0IC", now=now - timedelta(minutes=19)
        )
    unwatched = declare(db, old, severity="SEV4", now=now - timedelta(minutes=31))
    with db.read() as session:  # SEV4 had no acknowledgement deadline: nothing armed
        assert reminders.get_reminder(session, reminders.ack_key(unwatched)) is None

    edited = _severities({"ack_within": "5m", "update_every": "10m"}, {"ack_within": "30m"})
    scheduler = ReminderScheduler(db, edited, interval=3600)
    scheduler.start()
    wanted = [(faster, EventKind.ESCALATED), (unwatched, EventKind.ESCALATED)]
    wanted.append((quiet, EventKind.REMINDER_SENT))
    try:
        deadline = time.monotonic() + 60
        while not all(events_of(db, incident, kind) for incident, kind in wanted):
            assert time.monotonic() < deadline, "the edited policy's reminders did not go out"
            time.sleep(0.05)
    finally:
        scheduler.shutdown()

    for incident, kind in wanted:
        assert len(events_of(db, incident, kind)) == 1, (incident, kind)
    assert events_of(db, fresh, EventKind.ESCALATED) == []  # its 5 minutes are not up
    due = reminder(db, reminders.ack_key(fresh)).due_at
    assert due == now - timedelta(minutes=2) + timedelta(minutes=5)
