"""Claiming due reminders and turning each into timeline events and Slack effects, once.

1. *Claim*: ``schedule.claim_due_reminders`` moves due rows (and rows whose lease ran out because
   their worker died) to ``claimed`` for this worker, in one statement.
2. *Evaluate and record*, in one transaction: lock the incident, then the row; check the claim is
   still ours and re-check the condition (an update posted meanwhile means no nudge). If the
   reminder still has something to say, record its timeline event (``REMINDER_SENT`` /
   ``ESCALATED``), queue each message as a Slack effect keyed by reminder, occurrence and target,
   and schedule the next occurrence. Nothing is sent from here: the effect runner posts each
   message once, checking Slack before any repeat, so a process killed after Slack accepted a
   message never makes it post twice.

A recurring reminder that missed many occurrences while no worker ran is evaluated once and then
scheduled from now (coalesced), never replayed as a burst; and when a regular occurrence comes
later on the day the missed one would go out, the missed one waits for it (one chase, one
digest that day: ``evaluate._recurring_at``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.effects import kinds, store
from bot.errors import NotFound
from bot.incidents.timeline import lock_incident, record_timeline_event
from bot.models import Incident, Reminder
from bot.reminders.evaluate import EVALUATORS, Context, Outcome, Send, Settle
from bot.reminders.schedule import (
    CANCELLED,
    CLAIMED,
    DEFAULT_BATCH,
    DEFAULT_LEASE,
    PENDING,
    SENT,
    ClaimedReminder,
    _lock_reminder,
    claim_due_reminders,
    release_claims,
    retime,
)

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=15)


@dataclass
class TickReport:
    """What one tick did (for logs, metrics and the benchmark)."""

    claimed: int = 0
    sent: int = 0
    """Reminders that queued their messages (the effect runner posts them)."""
    settled: int = 0
    """Cancelled or re-timed without a message (condition met meanwhile, or nothing to say)."""
    deferred: int = 0
    failed: int = 0
    lost: int = 0
    """Claims another actor took back (a snooze, a reschedule) before this worker got to them."""
    outcomes: dict[int, str] = field(default_factory=dict)
    sent_kinds: list[str] = field(default_factory=list)
    max_lateness: float | None = None
    """Seconds between due time and queueing, for the latest reminder of the tick."""


def _lock_incident(session: Session, incident_id: int) -> Incident | None:
    try:
        return lock_incident(session, incident_id)
    except NotFound:
        return None


def _retry_delay(attempts: int) -> timedelta:
    return min(RETRY_BASE * (1 << min(max(attempts - 1, 0), 16)), RETRY_MAX)


class ReminderWorker:
    """Evaluates due reminders for one process. Safe to run in several replicas at once."""

    def __init__(
        self,
        database: Database,
        policy: Policy,
        *,
        worker_id: str,
        lease: timedelta = DEFAULT_LEASE,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self.database = database
        self.policy = policy
        self.worker_id = worker_id[:128]
        self.lease = lease
        self.batch_size = batch_size

    def retime_open_incidents(self) -> int:
        """At start-up: the open incidents' ack and update reminders timed by the policy as it
        is now. A policy edited while they were open (``ack_within`` shortened or added,
        ``update_every`` changed) would otherwise apply only from their next change. One
        transaction per incident, its lock first, as every change to it. Returns how many."""
        with self.database.read() as session:
            found = session.exec(select(Incident.id, Incident.status)).all()
        retimed = 0
        for incident_id, status in found:
            if incident_id is None or self.policy.phase_of(status) != "active":
                continue
            with self.database.transaction() as session:
                incident = _lock_incident(session, incident_id)
                if incident is not None and self.policy.phase_of(incident.status) == "active":
                    retime(session, self.policy, incident, now=utcnow(), start_up=True)
                    retimed += 1
        return retimed

    def tick(self, *, should_stop: Callable[[], bool] | None = None) -> TickReport:
        """Claim what is due and evaluate it. Never raises for a single bad reminder."""
        with self.database.transaction() as session:
            claimed = claim_due_reminders(
                session, self.worker_id, now=utcnow(), lease=self.lease, limit=self.batch_size
            )
        report = TickReport(claimed=len(claimed))
        for item in claimed:
            if should_stop is not None and should_stop():
                break  # the remaining claims are released by the caller at shutdown
            outcome = self.process(item)
            report.outcomes[item.id] = outcome
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome == "sent":
                report.sent_kinds.append(item.kind)
                late = max((utcnow() - item.due_at).total_seconds(), 0.0)
                report.max_lateness = max(report.max_lateness or 0.0, late)
        return report

    def release(self) -> int:
        """Release every claim this worker holds (at shutdown)."""
        with self.database.transaction() as session:
            return release_claims(session, self.worker_id, now=utcnow())

    def process(self, item: ClaimedReminder) -> str:
        """Evaluate one claimed reminder and record the result; returns the outcome name."""
        try:
            with self.database.transaction() as session:
                return self._process(session, item)
        except Exception as exc:  # a bug or a database error must not stop the other reminders
            log.exception("reminder %s (%s) failed", item.id, item.kind)
            self._release_quietly(item, f"{type(exc).__name__}: {exc}")
            return "failed"

    def _process(self, session: Session, item: ClaimedReminder) -> str:
        incident = None
        if item.incident_id is not None:
            incident = _lock_incident(session, item.incident_id)  # incident first, like the core
        row = _lock_reminder(session, item.id)
        now = utcnow()  # once locked: stamped in lock order
        if row is None or row.state != CLAIMED or row.claimed_by != self.worker_id:
            return "lost"
        evaluate = EVALUATORS.get(row.kind)
        outcome: Outcome
        if evaluate is None or (row.incident_id is not None and incident is None):
            outcome = Settle(f"unknown reminder kind {row.kind!r}")
        else:
            outcome = evaluate(Context(session, self.policy, row, incident, now))
        if isinstance(outcome, Settle):
            self._settle(row, outcome, now)
            session.add(row)
            log.info("reminder %s (%s) not sent: %s", row.dedupe_key, row.kind, outcome.reason)
            return "deferred" if outcome.retry else "settled"
        self._record(session, row, incident, outcome, now)
        return "sent"

    def _record(
        self, session: Session, row: Reminder, incident: Incident | None, plan: Send, now: datetime
    ) -> None:
        """The timeline events and the messages of one occurrence, and the next occurrence."""
        assert row.id is not None
        for entry in plan.entries:
            channels = sorted(m.channel for m in plan.messages if m.ref in entry.refs)
            record_timeline_event(
                session,
                self.policy,
                entry.incident_id,
                kind=entry.kind,
                text=entry.text,
                data={**entry.data, "channels": channels},
                key=f"reminder:{row.id}:{plan.seq}:{entry.incident_id}",
                now=now,
            )
        for message in plan.messages:
            about = next((e.incident_id for e in plan.entries if message.ref in e.refs), None)
            about = about if about is not None else row.incident_id
            store.enqueue(
                session,
                kind=kinds.POST,
                key=f"reminder:{row.id}:{plan.seq}:{message.ref}",
                data={"to": message.channel, "notice": message.notice, store.MOMENT: True},
                incident_id=about,
                lane=store.incident_lane(about) if about is not None else None,
                now=now,
            )
        row.sent_count = max(row.sent_count, plan.seq)
        row.last_sent_at = now
        next_due, next_data = plan.after(incident, now)
        if next_due is None:
            row.state = SENT
        else:
            row.state = PENDING
            row.due_at = next_due
        if next_data is not None:
            row.data = next_data
        row.attempts = 0
        row.last_error = None
        row.claimed_by = None
        row.claimed_until = None
        row.updated_at = now
        session.add(row)
        log.info("reminder %s (%s) queued", row.dedupe_key, row.kind)

    @staticmethod
    def _settle(row: Reminder, outcome: Settle, now: datetime) -> None:
        if outcome.due is None:
            row.state = CANCELLED
        else:
            row.state = PENDING
            row.due_at = outcome.due
            if outcome.data is not None:
                row.data = outcome.data
        row.last_error = outcome.reason if outcome.retry else None
        row.claimed_by = None
        row.claimed_until = None
        row.updated_at = now

    def _release_quietly(self, item: ClaimedReminder, error: str) -> None:
        try:
            with self.database.transaction() as session:
                row = _lock_reminder(session, item.id)
                if row is None or row.state != CLAIMED or row.claimed_by != self.worker_id:
                    return
                now = utcnow()
                row.attempts += 1
                row.state = PENDING
                row.due_at = now + _retry_delay(row.attempts)
                row.last_error = error[:2000]
                row.claimed_by = None
                row.claimed_until = None
                row.updated_at = now
                session.add(row)
        except Exception:
            log.exception("could not release reminder %s; its lease will run out", item.id)
