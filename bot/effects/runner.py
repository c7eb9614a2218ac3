"""The claim loop: executes effect rows, on every replica, each once.

Each replica runs one ``EffectRunner`` with a few threads. A thread claims a batch of due effects
(``store.claim``), executes each with the handler registered for its kind, and records the
outcome in a short transaction under the row lock:

* ``Done``: the row is done (and ``then`` runs in the same transaction: record what Slack
  returned, queue what follows, e.g. the summary after the channel exists; ``said`` runs there
  even if the claim was lost meanwhile: answers keyed so a repeat writes them once).
* ``Retry`` / a ``TransientError`` (a rate limit, a 5xx, a timeout, a dropped connection, the
  database briefly gone): back to pending after a backoff that honours ``Retry-After`` within
  sane bounds. After ``max_attempts``, or ``max_age`` after its first attempt (time nobody
  tried, every replica down, does not count), the row fails: nothing retries forever,
  not even an effect whose attempts never record an outcome (one that kills its process). An
  attempt ended by a rate limit (``RATE_LIMITED``: Slack did not do that call) counts toward
  ``max_age`` only: a storm of ``Retry-After: 1`` must not use up fifteen attempts in as many
  seconds.
* ``Fail`` / a ``PermanentError`` (the channel was archived, the bot was removed, the token is
  invalid): the row fails, and ``on_failed`` records it on the incident's timeline and tells
  the commander, in the same transaction.

A transaction that writes effects wakes one idle runner thread of its process when it commits
(a thread that claims a full batch wakes the next), so work starts at once; otherwise each
thread looks for due work every ``interval`` seconds (retries, scheduled effects, and work a
dead replica left behind once its lease runs out).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from bot import leases, observability, priority
from bot.clock import utcnow
from bot.db import Database
from bot.db_errors import OutageLog, database_unavailable
from bot.effects import store
from bot.effects.models import Effect
from bot.effects.store import ENQUEUED, RATE_LIMITED_ATTEMPTS, TRYING_SINCE, Claimed

log = logging.getLogger(__name__)


class TransientError(Exception):
    """The effect could not be done now and may succeed later. ``retry_after``: seconds the
    other side asked us to wait. ``reason`` labels the retry in metrics."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        reason: str = "",
        result: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason or "transient"
        self.result = result or {}
        """What the attempt established, kept for the next one (e.g. "not sent")."""


RATE_LIMITED = "ratelimited"
"""The ``reason`` of a ``TransientError`` for a call the other side turned away, undone, for
its rate limit (Slack's error name for a 429)."""


class PermanentError(Exception):
    """The effect can never succeed as it is (a deleted channel, an invalid token)."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or "permanent"


@dataclass(frozen=True)
class Done:
    result: dict[str, Any] = field(default_factory=dict)
    then: Callable[[Session], None] | None = None
    """Runs in the finishing transaction, after the claim was checked."""
    said: Callable[[Session], None] | None = None
    """Runs in the finishing transaction whatever became of the claim: writes that are keyed so
    a repeat of the effect elsewhere writes them once (answers to the person who asked)."""


@dataclass(frozen=True)
class Retry:
    error: str
    after: timedelta
    result: dict[str, Any] = field(default_factory=dict)


Outcome = Done | Retry
Handler = Callable[[Claimed], Outcome]
FailureHook = Callable[[Session, Effect, str], None]
RecoveryHook = Callable[[Session, Claimed], None]
"""Called in the transaction that records an effect done that had failed for good before."""

RETRY_FIRST = 1.0
RETRY_MAX = 300.0
RETRY_AFTER_MAX = 900.0
"""A ``Retry-After`` above this (or not a number) is treated as a plain backoff."""


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """What the other side asked for (a ``Retry-After`` between 1 s and 15 min); otherwise
    1 s, 2 s, 4 s ... up to 5 minutes. ``Retry-After: 0``, a number of days or not a number
    is a broken header, not a plan: the backoff is used instead."""
    if retry_after is not None and 1 <= retry_after <= RETRY_AFTER_MAX:
        return timedelta(seconds=retry_after)
    return timedelta(seconds=min(RETRY_FIRST * (2 ** max(attempts - 1, 0)), RETRY_MAX))


CALL_GRACE = 15.0
"""After the drain deadline, how long to wait for the effect in hand (one bounded call)."""

_RUNNERS: weakref.WeakSet[EffectRunner] = weakref.WeakSet()


@event.listens_for(Session, "after_commit")
def _wake_runners(session: Session) -> None:
    if session.info.pop(ENQUEUED, False):
        for runner in list(_RUNNERS):
            runner.kick()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(ENQUEUED, None)


class EffectRunner:
    def __init__(
        self,
        database: Database,
        handlers: Mapping[str, Handler],
        *,
        worker_id: str,
        threads: int = 4,
        interval: float = 1.0,
        lease: timedelta = store.DEFAULT_LEASE,
        batch: int = 20,
        max_attempts: int = 15,
        max_age: timedelta = timedelta(hours=1),
        on_failed: FailureHook | None = None,
        on_recovered: RecoveryHook | None = None,
    ) -> None:
        self.database = database
        self.handlers = dict(handlers)
        self.worker_id = worker_id[:100]  # with a batch number, within claimed_by's 128
        self._batches = itertools.count(1)
        self.threads = threads
        self.interval = interval
        self.lease = lease
        self.batch = batch
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.on_failed = on_failed
        self.on_recovered = on_recovered
        self._wake = threading.Condition()
        self._kicked = False
        self._draining = threading.Event()
        self._stopping = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._outage = OutageLog(log, "effects")
        _RUNNERS.add(self)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> EffectRunner:
        self._stopping.clear()
        self._draining.clear()
        for n in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"firebreak-effects-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def kick(self, *, everyone: bool = False) -> None:
        """Look for work now (called when a transaction that wrote effects commits). One idle
        thread is woken: a thread that claims a full batch wakes the next (more may be due),
        and every thread looks again as soon as its batch is done, so no thread claims in vain
        after every commit."""
        with self._wake:
            self._kicked = True
            if everyone:
                self._wake.notify_all()
            else:
                self._wake.notify()

    def _idle(self) -> None:
        """Wait for a kick, or ``interval`` (retries, scheduled work, a dead replica's)."""
        with self._wake:
            if not self._kicked:
                self._wake.wait(self.interval)
            self._kicked = False

    def stop(self, timeout: float = 30.0) -> int:
        """Drain: keep executing what is due until nothing is, for at most ``timeout``
        seconds; then stop after the effect in hand and release the remaining claims, for
        another replica to take at once. Returns how many claims were released."""
        self._draining.set()
        self.kick(everyone=True)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        self._stopping.set()
        self.kick(everyone=True)
        deadline = time.monotonic() + CALL_GRACE  # one grace for all: the calls run at once
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        self._threads.clear()
        _RUNNERS.discard(self)
        try:
            with self.database.transaction() as session:
                return store.release(session, self.worker_id, now=utcnow())
        except Exception as exc:
            self._outage.failed(exc, "could not release effect claims; their leases will run out")
            return 0

    def _loop(self) -> None:
        priority.run_in_background()
        while not self._stopping.is_set():
            if not self._round():
                if self._draining.is_set():
                    return  # drained: nothing due is left
                self._idle()

    def _round(self) -> int:
        """``run_once``, reporting a failure (once per outage if the database is gone) and
        pausing after it. Returns how many effects were claimed."""
        try:
            ran = self.run_once()
        except Exception as exc:
            self._outage.failed(exc, "effect claim failed; trying again shortly")
            self._stopping.wait(self.interval)
            return 0
        self._outage.ok()
        return ran

    @property
    def busy(self) -> bool:
        return self._busy > 0

    # -- one round ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim a batch and execute it. Returns how many effects were claimed."""
        with self._busy_lock:
            self._busy += 1
        try:
            # Each batch is claimed under its own name: when a batch outlives its lease,
            # another thread of this process may claim its effects not started yet, and only
            # the claim's holder may start one (two threads must never both run it).
            claimer = f"{self.worker_id}{store.BATCH_MARK}{next(self._batches)}"
            with self.database.transaction() as session:
                claimed = store.claim(
                    session, claimer, now=utcnow(), lease=self.lease, limit=self.batch
                )
                # An attempt counts once it starts, not when it is claimed: a batch's later
                # effects were never tried if this process dies first, and a repeat (which
                # checks whether Slack already did the work, or does not answer twice) must
                # not be assumed for them. Each start is recorded in the transaction before
                # it: the claim, or the finish of the effect before it.
                started = bool(claimed) and store.start(
                    session, claimed[0].id, claimer, until=self._until()
                )
            if len(claimed) == self.batch:
                self.kick()  # a full batch: more may be due, for another thread
            for n, item in enumerate(claimed):
                if self._stopping.is_set():
                    # The rest is released at stop and taken by another replica; the one
                    # started with the previous effect's outcome was never run.
                    if started:
                        self._unstart(item)
                    break
                priority.pause_point()  # acknowledgements first
                if not started and not self._start(item):
                    continue  # the claim was lost, or the database is unavailable
                following = claimed[n + 1] if n + 1 < len(claimed) else None
                _, started = self._execute(replace(item, attempts=item.attempts + 1), following)
            return len(claimed)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _until(self) -> datetime:
        """The lease of an attempt that starts now: counted from its start, not from the claim
        of its batch, so an effect started late in its batch is not taken over while it runs
        (those not started yet still expire with the batch: a crash holds them no longer)."""
        return utcnow() + self.lease

    def _start(self, item: Claimed) -> bool:
        try:
            with self.database.transaction() as session:
                return store.start(session, item.id, item.by, until=self._until())
        except Exception as exc:
            self._outage.failed(exc, "could not start effect %s; its claim will run out", item.id)
            return False

    def _unstart(self, item: Claimed) -> None:
        try:
            with self.database.transaction() as session:
                store.unstart(session, item.id, item.by)
        except Exception as exc:
            self._outage.failed(exc, "could not take back the start of effect %s", item.id)

    def execute(self, item: Claimed) -> str:
        """Start one claimed effect, run it and record its outcome. Returns done, retry,
        failed, or lost (this worker no longer holds the claim)."""
        if not self._start(item):
            return "lost"
        return self._execute(replace(item, attempts=item.attempts + 1), None)[0]

    def _execute(self, item: Claimed, following: Claimed | None) -> tuple[str, bool]:
        """``execute``; and in the same transaction, start the claimed effect ``following``.
        Returns the state and whether ``following`` was started."""
        started = time.perf_counter()
        began = utcnow()
        handler = self.handlers.get(item.kind)
        outcome: Outcome | None = None
        failure: str | None = None
        reason = "ok"
        limited = int(item.result.get(RATE_LIMITED_ATTEMPTS, 0))
        counted = item.attempts - limited  # attempts that may have done something
        try:
            if handler is None:
                raise PermanentError(f"no handler for effects of kind {item.kind!r}")
            if counted > self.max_attempts:
                # Started this often with no outcome recorded: each attempt killed its process
                # or its outcome could not be saved. Trying again would do the same, forever.
                raise PermanentError(
                    f"gave up after {counted - 1} attempts whose outcome was never "
                    "recorded (the process died during each, or saving it failed)",
                    reason="unrecorded",
                )
            # A call that cannot be repeated is made only while it will be over before another
            # replica may take the effect over (15 s of a 30 s lease: longer than a Slack call).
            margin = min(leases.MARGIN, self.lease / 2)
            with leases.held_until(utcnow() + self.lease - margin):
                outcome = handler(item)
        except leases.LeaseExpired as exc:
            reason = "lease"
            log.warning("effect %s (%s): %s", item.id, item.kind, exc)
            outcome = Retry(str(exc), timedelta(0))
        except TransientError as exc:
            reason = exc.reason
            result = exc.result
            if reason == RATE_LIMITED:
                counted -= 1
                result = {**result, RATE_LIMITED_ATTEMPTS: limited + 1}
            outcome = Retry(str(exc), backoff(item.attempts, exc.retry_after), result)
        except PermanentError as exc:
            reason = exc.reason
            failure = str(exc)
        except Exception as exc:
            if not database_unavailable(exc):  # a bug: retried, counted, traced
                reason = type(exc).__name__
                log.exception("effect %s (%s) failed unexpectedly", item.id, item.kind)
                outcome = Retry(f"unexpected error: {type(exc).__name__}", backoff(item.attempts))
            else:  # the database cut off: not a bug
                reason = "database"
                log.warning(
                    "effect %s (%s) waits for the database: %s",
                    item.id,
                    item.kind,
                    type(exc).__name__,
                )
                outcome = Retry("the database was unavailable", backoff(item.attempts))
        if isinstance(outcome, Retry):
            observability.EFFECT_RETRIES.labels(kind=item.kind, reason=reason[:40]).inc()
            # Measured from the first attempt, not from when the work was asked for: an effect
            # queued before an outage gets its hour of trying when the replicas are back.
            since = store.trying_since(item.result) or began
            age = utcnow() - since
            outcome = replace(outcome, result={**outcome.result, TRYING_SINCE: since.isoformat()})
            # The first attempt may have been stamped by another replica: a clock running
            # ahead must not end, at its first error, work that was just asked for.
            if counted >= self.max_attempts or (age >= self.max_age and item.attempts >= 3):
                failure = (
                    f"gave up after {item.attempts} attempts over "
                    f"{int(age.total_seconds() // 60)} min: {outcome.error}"
                )
        state, next_started = self._finish(item, outcome, failure, following)
        observability.EFFECTS_EXECUTED.labels(kind=item.kind, outcome=state).inc()
        observability.EFFECT_SECONDS.labels(kind=item.kind).observe(time.perf_counter() - started)
        return state, next_started

    def _finish(
        self,
        item: Claimed,
        outcome: Outcome | None,
        failure: str | None,
        following: Claimed | None,
    ) -> tuple[str, bool]:
        next_started = False
        try:
            with self.database.transaction() as session:
                # The incidents first, then the effects: the order every change takes (it
                # locks its incident, then arms effects), so the two never deadlock; two
                # incidents in the order of their ids, so two runners never deadlock either.
                incidents = {item.incident_id, following.incident_id if following else None}
                for incident_id in sorted(i for i in incidents if i is not None):
                    store.lock_incident_row(session, incident_id)
                state = self._record(session, item, outcome, failure)
                if following is not None:
                    next_started = store.start(
                        session, following.id, following.by, until=self._until()
                    )
            return state, next_started
        except Exception as exc:
            # The database is unavailable: the claim runs out and the effect is retried, and a
            # repeat checks before doing the work again.
            self._outage.failed(exc, "could not record the outcome of effect %s", item.id)
            return "unrecorded", False

    def _record(
        self, session: Session, item: Claimed, outcome: Outcome | None, failure: str | None
    ) -> str:
        now = utcnow()
        if failure is None and isinstance(outcome, Retry):
            held = store.finish(
                session,
                item.id,
                item.by,
                result=outcome.result,
                now=now,
                retry=(outcome.error, now + outcome.after),
            )
            return "retry" if held else "lost"
        if failure is None and isinstance(outcome, Done):
            held = store.finish(session, item.id, item.by, result=outcome.result, now=now)
            if outcome.said is not None:
                outcome.said(session)
            if not held:
                return "lost"  # released at shutdown or taken after a lease ran out
            if outcome.then is not None:
                outcome.then(session)
            if self.on_recovered is not None and item.result.get(store.RETRIED):
                self.on_recovered(session, item)
            return "done"
        failure = failure or "no outcome"
        row = store.lock_claim(session, item.id, item.by)
        if row is None:
            return "lost"
        store.mark_failed(row, failure, now)
        session.add(row)
        if self.on_failed is not None:
            self.on_failed(session, row, failure)
        observability.EFFECT_FAILURES.labels(kind=item.kind).inc()
        log.warning("effect %s (%s) failed: %s", item.id, item.kind, failure[:300])
        return "failed"

    # -- for tests and the demo ----------------------------------------------------------------

    def run_until_idle(self, timeout: float = 30.0) -> None:
        """Execute in this thread until nothing is due (no background threads needed)."""
        deadline = time.monotonic() + timeout
        while self.run_once():
            if time.monotonic() > deadline:
                raise RuntimeError(f"effects still due after {timeout:.0f} s")
