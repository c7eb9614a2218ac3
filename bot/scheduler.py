"""The clock that wakes the reminder loop up, and nothing more.

What is due lives in the database (``bot.reminders``). Each replica runs one APScheduler
``BackgroundScheduler`` with a single interval job (every 2 s by default) that claims due
reminders and evaluates them; the claim is atomic, so two replicas never handle the same
reminder, and what a reminder says is queued as effects that the effect runner posts once.

The daily digest and the overdue-action-items chase are *rows* whose next due time comes from
the cron in the policy, not APScheduler cron jobs: a cron job would fire once per replica.

Shutdown stops the job, waits for a tick in flight (telling it to stop after the reminder it is
sending) and releases this worker's claims, so another replica takes them at once instead of
waiting for the lease to run out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, timedelta
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.db_errors import OutageLog
from bot.errors import ConfigError
from bot.observability import REMINDERS_SENT, SCHEDULER_LAG, SCHEDULER_TICKS
from bot.reminders.schedule import DEFAULT_BATCH, DEFAULT_LEASE, seed_recurring_reminders
from bot.reminders.targets import unknown_targets
from bot.reminders.worker import ReminderWorker, TickReport
from bot.runtime import new_worker_id

log = logging.getLogger(__name__)


def _not_an_overlap(record: logging.LogRecord) -> bool:
    """Every job runs one at a time and coalesces (``max_instances=1``): a run skipped because
    the last one is still going (a slow Slack, a database that does not answer) is the design,
    not news. APScheduler warns of each, every interval, for as long as it lasts."""
    return "maximum number of running instances" not in str(record.msg)


logging.getLogger("apscheduler.scheduler").addFilter(_not_an_overlap)

DEFAULT_INTERVAL = 2.0
"""Seconds between ticks: a reminder goes out at most about this long after it is due."""
JOB_ID = "firebreak-reminders"


class UserGroupLookup(Protocol):
    def user_groups(self) -> Mapping[str, str]:
        """The workspace's user groups: handle (without ``@``, lower case) -> id (``S...``).

        Raises ``LookupError`` when they cannot be listed."""
        ...


def validate_targets(
    policy: Policy, lookup: UserGroupLookup, *, source: str = "firebreak.toml"
) -> None:
    """Stop start-up when an escalation target names a user group the workspace lacks.

    Raises ``ConfigError`` with one line naming the key and its line, e.g.
    ``firebreak.toml:12: reminders.escalate_to: unknown user group @sre-oncall``. User ids are
    not checked (Slack would need one call per user). A failure while listing the groups
    propagates as ``LookupError``."""
    groups = None
    for key in ("escalate_to", "escalate_again_to"):
        targets: list[str] = getattr(policy.reminders, key)
        if not any(t.startswith(("@", "S")) for t in targets):
            continue
        if groups is None:
            groups = dict(lookup.user_groups())
        unknown = unknown_targets(targets, groups)
        if unknown:
            noun = "user group" if len(unknown) == 1 else "user groups"
            line = policy.line_of("reminders", key)
            place = f"{source}:{line}" if line else source
            raise ConfigError(f"{place}: reminders.{key}: unknown {noun} {', '.join(unknown)}")


class ReminderScheduler:
    """One per process: ``start()`` after the database is migrated, ``shutdown()`` on exit."""

    def __init__(
        self,
        database: Database,
        policy: Policy,
        *,
        interval: float = DEFAULT_INTERVAL,
        lease: timedelta = DEFAULT_LEASE,
        batch_size: int = DEFAULT_BATCH,
        worker_id: str | None = None,
    ) -> None:
        if interval <= 0:
            raise ConfigError(f"reminder interval must be positive, got {interval!r}")
        self.database = database
        self.policy = policy
        self.interval = interval
        self.worker = ReminderWorker(
            database,
            policy,
            worker_id=worker_id or new_worker_id(),
            lease=lease,
            batch_size=batch_size,
        )
        self._stopping = threading.Event()
        self._outage = OutageLog(log, "reminders")
        self._scheduler = BackgroundScheduler(timezone=UTC)

    @property
    def worker_id(self) -> str:
        return self.worker.worker_id

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        """Seed the cron rows, time the open incidents' reminders by the policy as it is now,
        then tick now and every ``interval`` seconds.

        The first tick runs at once, so reminders that fell due while no replica was running
        go out at start-up (each once)."""
        with self.database.transaction() as session:
            seed_recurring_reminders(session, self.policy, now=utcnow())
        retimed = self.worker.retime_open_incidents()
        log.info("reminders of %d open incidents timed by the current policy", retimed)
        self._stopping.clear()
        self._scheduler.add_job(
            self.tick,
            trigger=IntervalTrigger(seconds=self.interval, timezone=UTC),
            id=JOB_ID,
            name="claim and send due reminders",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=utcnow(),
            replace_existing=True,
        )
        self._scheduler.start()
        log.info("reminder scheduler started (worker %s, every %ss)", self.worker_id, self.interval)

    def every(self, seconds: float, job: Callable[[], object], name: str) -> None:
        """Also run ``job`` every ``seconds`` (housekeeping that is safe on every replica)."""

        outage = OutageLog(log, name)

        def run() -> None:
            if self._stopping.is_set():
                return
            try:
                job()
            except Exception as exc:
                outage.failed(exc, "%s failed; trying again in %ss", name, seconds)
            else:
                outage.ok()

        self._scheduler.add_job(
            run,
            trigger=IntervalTrigger(seconds=seconds, timezone=UTC),
            id=f"firebreak-{name}",
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )

    def tick(self) -> TickReport | None:
        """One claim-and-send round; logs instead of raising (the database may be down)."""
        if self._stopping.is_set():
            return None
        try:
            report = self.worker.tick(should_stop=self._stopping.is_set)
        except Exception as exc:
            SCHEDULER_TICKS.labels(outcome="error").inc()
            self._outage.failed(exc, "reminder tick failed; trying again in %ss", self.interval)
            return None
        self._outage.ok()
        SCHEDULER_TICKS.labels(outcome="busy" if report.claimed else "idle").inc()
        for kind in report.sent_kinds:
            REMINDERS_SENT.labels(kind=kind).inc()
        if report.max_lateness is not None:
            SCHEDULER_LAG.set(report.max_lateness)
        if report.claimed:
            log.info(
                "reminders: %d claimed, %d queued, %d settled, %d deferred, %d failed, %d lost",
                report.claimed,
                report.sent,
                report.settled,
                report.deferred,
                report.failed,
                report.lost,
            )
        return report

    def shutdown(self) -> int:
        """Stop ticking, wait for the tick in flight, release this worker's claims.

        Returns how many claims were released."""
        self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        try:
            released = self.worker.release()
        except Exception:
            log.exception("could not release reminder claims; their leases will run out")
            return 0
        log.info("reminder scheduler stopped; %d claims released", released)
        return released
