"""The effect rows on both databases: written once, claimed once, in lane order, coalesced,
retried with a sane backoff, ended for good with the commander told, released at shutdown."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier, Event

import pytest
from freezegun import freeze_time
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from bot import incidents as core
from bot.clock import utcnow
from bot.config import COMMANDER, Policy
from bot.db import Database
from bot.db_errors import OutageLog, database_unavailable
from bot.effects import kinds, store
from bot.effects.failures import on_effect_failed
from bot.effects.models import Effect
from bot.effects.runner import (
    RATE_LIMITED,
    Done,
    EffectRunner,
    PermanentError,
    TransientError,
    backoff,
)
from bot.effects.store import Claimed
from bot.models import EventKind
from bot.scheduler import ReminderScheduler
from tests.ports import free_port


def incident(db: Database, policy: Policy) -> int:
    with db.transaction() as session:
        found = core.declare_incident(session, policy, title="Queue stuck", reporter="U0ANA")
    assert found.incident.id is not None
    return found.incident.id


def enqueue(
    db: Database, key: str, *, lane: str | None = None, incident_id: int | None = None
) -> bool:
    with db.transaction() as session:
        return store.enqueue(
            session, kind="test.thing", key=key, lane=lane, incident_id=incident_id, now=utcnow()
        )


def claim(db: Database, worker: str, limit: int = 50) -> list[Claimed]:
    with db.transaction() as session:
        return [
            c
            for c in store.claim(session, worker, now=utcnow(), limit=limit)
            if c.kind == "test.thing"
        ]


def begin(session: Session, effect_id: int, worker: str) -> bool:
    """``store.start`` with the default lease, from now."""
    return store.start(session, effect_id, worker, until=utcnow() + store.DEFAULT_LEASE)


def rows(db: Database) -> list[Effect]:
    with db.read() as session:
        return [
            e
            for e in session.exec(select(Effect).order_by(col(Effect.id))).all()
            if e.kind == "test.thing"
        ]


def test_the_same_key_is_written_once(db: Database) -> None:
    assert enqueue(db, "post:1")
    assert not enqueue(db, "post:1")
    assert [r.key for r in rows(db)] == ["post:1"]


def test_a_lane_runs_in_order_and_other_lanes_in_parallel(db: Database) -> None:
    for n in range(3):
        enqueue(db, f"a:{n}", lane="incident:1")
    enqueue(db, "b:0", lane="incident:2")
    enqueue(db, "free")
    first = claim(db, "w1")
    assert sorted(c.key for c in first) == ["a:0", "b:0", "free"]  # only each lane's head
    assert claim(db, "w2") == []  # a:1 waits for a:0, even on another worker
    runner = EffectRunner(db, {"test.thing": lambda item: Done()}, worker_id="w1", threads=0)
    runner.execute(next(c for c in first if c.key == "a:0"))
    assert [c.key for c in claim(db, "w2")] == ["a:1"]


def test_two_workers_claiming_at_once_never_share_an_effect(
    database_url: str, db: Database
) -> None:
    for n in range(60):
        enqueue(db, f"p:{n}", lane=f"incident:{n % 7}" if n % 2 else None)
    replicas = [Database(database_url, pool_size=4) for _ in range(2)]
    barrier = Barrier(2)
    seen: list[list[str]] = [[], []]

    def drain(n: int) -> None:
        runner = EffectRunner(
            replicas[n], {"test.thing": lambda item: Done()}, worker_id=f"w{n}", threads=0
        )
        barrier.wait()
        while True:
            with replicas[n].transaction() as session:
                got = store.claim(session, f"w{n}", now=utcnow(), limit=5)
            if not got:
                return
            for item in got:
                seen[n].append(item.key)
                runner.execute(item)

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(drain, range(2)))
    finally:
        for replica in replicas:
            replica.dispose()
    assert sorted(seen[0] + seen[1]) == sorted(f"p:{n}" for n in range(60))
    assert not set(seen[0]) & set(seen[1])
    assert {r.state for r in rows(db)} == {"done"}


def test_a_dead_workers_claim_is_taken_after_its_lease_and_marked_as_a_repeat(
    db: Database,
) -> None:
    enqueue(db, "post:dead")
    with freeze_time(utcnow()) as clock:
        [taken] = claim(db, "dead")
        with db.transaction() as session:
            assert begin(session, taken.id, "dead")  # the attempt began, then it died
        assert claim(db, "alive") == []
        clock.tick(store.DEFAULT_LEASE + timedelta(seconds=1))
        [again] = claim(db, "alive")
        with db.transaction() as session:
            assert not begin(session, taken.id, "dead")  # its claim is gone
    # One attempt began before: the next one checks before doing the work again.
    assert again.key == "post:dead" and again.attempts == 1
    seen: list[bool] = []

    def record(item: Claimed) -> Done:
        seen.append(item.repeat)
        return Done()

    runner = EffectRunner(db, {"test.thing": record}, worker_id="alive", threads=0)
    assert runner.execute(again) == "done" and seen == [True]


def test_an_effect_claimed_but_never_started_is_no_repeat(db: Database) -> None:
    enqueue(db, "post:a")
    enqueue(db, "post:b")
    with freeze_time(utcnow()) as clock:
        first, _never_started = claim(db, "dead", limit=2)
        with db.transaction() as session:
            begin(session, first.id, "dead")  # died during the first; never began "b"
        clock.tick(store.DEFAULT_LEASE + timedelta(seconds=1))
        again = {c.key: c for c in claim(db, "alive", limit=2)}
    assert again["post:a"].attempts == 1 and again["post:b"].attempts == 0
    seen: dict[str, bool] = {}

    def record(item: Claimed) -> Done:
        seen[item.key] = item.repeat
        return Done()

    runner = EffectRunner(db, {"test.thing": record}, worker_id="alive", threads=0)
    for item in again.values():
        runner.execute(item)
    assert seen == {"post:a": True, "post:b": False}


def test_arming_a_running_effect_runs_it_once_more_with_the_latest_state(db: Database) -> None:
    with db.transaction() as session:
        store.arm(session, kind="test.thing", key="refresh:1", now=utcnow())
        store.arm(session, kind="test.thing", key="refresh:1", now=utcnow())  # coalesced
    [running] = claim(db, "w")
    with db.transaction() as session:
        store.arm(session, kind="test.thing", key="refresh:1", now=utcnow())  # changed meanwhile
    runner = EffectRunner(db, {"test.thing": lambda item: Done()}, worker_id="w", threads=0)
    assert runner.execute(running) == "done"
    [row] = rows(db)
    assert row.state == "pending"  # once more
    [again] = claim(db, "w")
    runner.execute(again)
    assert [r.state for r in rows(db)] == ["done"]


def test_transient_errors_back_off_and_give_up_in_the_end(db: Database) -> None:
    enqueue(db, "post:flaky")

    def failing(item: Claimed) -> Done:
        raise TransientError("Slack answered 500", retry_after=None, reason="internal_error")

    runner = EffectRunner(db, {"test.thing": failing}, worker_id="w", threads=0, max_attempts=3)
    with freeze_time(utcnow()) as clock:
        for expected in ("retry", "retry", "failed"):
            [item] = claim(db, "w")
            assert runner.execute(item) == expected
            clock.tick(timedelta(minutes=10))
    [row] = rows(db)
    assert row.state == "failed" and "gave up after 3 attempts" in (row.last_error or "")


def test_a_summary_armed_again_hours_into_an_incident_survives_one_slack_error(
    db: Database,
) -> None:
    """The summary's row is written at the declare and armed again at every change. Three
    hours in, one change meets one 500: that is new work, retried, not an hour-old effect
    given up (which left the pinned summary stale for good)."""
    errors = iter([TransientError("Slack answered 500", retry_after=None, reason="internal_error")])

    def flaky(item: Claimed) -> Done:
        error = next(errors, None)
        if error is not None:
            raise error
        return Done()

    runner = EffectRunner(db, {"test.thing": flaky}, worker_id="w", threads=0)
    with freeze_time(utcnow()) as clock:
        with db.transaction() as session:
            store.arm(session, kind="test.thing", key="refresh:7", now=utcnow())
        [first] = claim(db, "w")
        errors = iter([])
        assert runner.execute(first) == "done"
        clock.tick(timedelta(hours=3))
        errors = iter(
            [TransientError("Slack answered 500", retry_after=None, reason="internal_error")]
        )
        with db.transaction() as session:
            store.arm(session, kind="test.thing", key="refresh:7", now=utcnow())
        [changed] = claim(db, "w")
        assert runner.execute(changed) == "retry"
        clock.tick(timedelta(minutes=1))
        [again] = claim(db, "w")
        assert runner.execute(again) == "done"
    assert [r.state for r in rows(db)] == ["done"]


def test_a_replica_whose_clock_runs_ahead_does_not_end_fresh_work_at_its_first_error(
    db: Database,
) -> None:
    """Another replica wrote the effect a moment ago; this one's clock is two hours ahead, so
    the effect looks two hours old. One 500 is retried, not taken for an hour of failures."""
    enqueue(db, "channel.create:1")

    def failing(item: Claimed) -> Done:
        raise TransientError("Slack answered 500", retry_after=None, reason="internal_error")

    runner = EffectRunner(db, {"test.thing": failing}, worker_id="w", threads=0)
    with freeze_time(utcnow() + timedelta(hours=2)):
        [item] = claim(db, "w")
        assert runner.execute(item) == "retry"
    [row] = rows(db)
    assert row.state == "pending"


def test_a_rate_limit_storm_is_waited_out_and_given_up_only_at_max_age(db: Database) -> None:
    """``Retry-After: 1`` twenty times: each attempt was turned away, undone, so the attempts
    do not count; the effect runs when the storm ends. A storm that outlasts max_age fails."""
    enqueue(db, "post:storm")
    enqueue(db, "post:endless")
    storm = {"post:storm": 20}

    def limited(item: Claimed) -> Done:
        if item.key == "post:endless" or storm[item.key]:
            if item.key in storm:
                storm[item.key] -= 1
            raise TransientError("Slack is rate limiting", retry_after=1, reason=RATE_LIMITED)
        return Done()

    runner = EffectRunner(db, {"test.thing": limited}, worker_id="w", threads=0, max_attempts=3)
    with freeze_time(utcnow()) as clock:
        for _ in range(21):
            for item in claim(db, "w"):
                runner.execute(item)
            clock.tick(timedelta(seconds=1))
        assert {r.key: r.state for r in rows(db)} == {
            "post:storm": "done",
            "post:endless": "pending",
        }
        clock.tick(timedelta(hours=1))
        [item] = claim(db, "w")
        assert runner.execute(item) == "failed"
    failed = {r.key: r.last_error or "" for r in rows(db) if r.state == "failed"}
    assert list(failed) == ["post:endless"] and "over 60 min" in failed["post:endless"]


def test_a_failed_effect_run_again_checks_whether_slack_already_did_it(db: Database) -> None:
    """Slack did the work and answered 500, then the effect gave up. Run again (``/incident
    retry``, or re-armed by a later change), its first attempt is a repeat: it looks before
    posting. An effect that finished is re-armed as new."""
    seen: list[tuple[str, bool]] = []

    def handler(item: Claimed) -> Done:
        seen.append((item.key, item.repeat))
        if len(seen) == 1:
            raise PermanentError("gave up after Slack answered 500", reason="internal_error")
        return Done()

    enqueue(db, "post:ambiguous")
    runner = EffectRunner(db, {"test.thing": handler}, worker_id="w", threads=0)
    [item] = claim(db, "w")
    assert runner.execute(item) == "failed"
    with db.transaction() as session:
        store.arm(session, kind="test.thing", key="post:ambiguous", now=utcnow())
    [item] = claim(db, "w")
    assert runner.execute(item) == "done"
    with db.transaction() as session:
        store.arm(session, kind="test.thing", key="post:ambiguous", now=utcnow())
    [item] = claim(db, "w")
    runner.execute(item)
    assert seen == [
        ("post:ambiguous", False),
        ("post:ambiguous", True),
        ("post:ambiguous", False),
    ]


def test_retry_after_is_honoured_only_when_it_is_sane() -> None:
    assert backoff(1, 30) == timedelta(seconds=30)
    assert backoff(3, None) == timedelta(seconds=4)
    for absurd in (0, 86400, float("nan")):
        assert backoff(1, absurd) == timedelta(seconds=1)
    assert backoff(30, None) == timedelta(minutes=5)


def test_a_permanent_failure_lands_on_the_timeline_and_tells_the_commander(
    db: Database, policy: Policy
) -> None:
    incident_id = incident(db, policy)
    with db.transaction() as session:
        core.assign_role(session, policy, incident_id, "commander", "U0DANA", actor="U0DANA")
    enqueue(db, "post:doomed", incident_id=incident_id)

    def archived(item: Claimed) -> Done:
        raise PermanentError("Slack refused chat.postMessage (is_archived).", reason="is_archived")

    runner = EffectRunner(
        db,
        {"test.thing": archived},
        worker_id="w",
        threads=0,
        on_failed=lambda session, row, error: on_effect_failed(session, policy, row, error),
    )
    [item] = claim(db, "w")
    assert runner.execute(item) == "failed"
    with db.read() as session:
        failed = [
            e for e in core.timeline(session, incident_id) if e.kind == EventKind.SLACK_FAILED
        ]
        told = session.exec(select(Effect).where(col(Effect.key).endswith(":notice"))).all()
    assert len(failed) == 1 and "is_archived" in failed[0].text
    assert [(t.data["to"], t.data["notice"]["type"]) for t in told] == [("U0DANA", "failure")]
    assert [r.attempts for r in rows(db)] == [1]  # not retried


def test_the_commander_is_told_once_per_problem_and_the_timeline_gets_every_failure(
    db: Database, policy: Policy
) -> None:
    """Every change to an incident whose channel was archived fails the same way: each
    failure is on the timeline, the commander hears of each problem once."""
    incident_id = incident(db, policy)
    errors = [
        "Slack refused chat.update (is_archived).",
        "Slack refused chat.update (is_archived).",
        "Slack refused chat.update (is_archived).",
        "Slack refused chat.update (not_in_channel).",
    ]
    with db.transaction() as session:
        for number, error in enumerate(errors):
            row = Effect(
                kind=kinds.REFRESH,
                key=f"summary:{number}",
                incident_id=incident_id,
                due_at=utcnow(),
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            session.add(row)
            session.flush()
            on_effect_failed(session, policy, row, error)
    with db.read() as session:
        failed = [
            e.text for e in core.timeline(session, incident_id) if e.kind == EventKind.SLACK_FAILED
        ]
        told = session.exec(select(Effect).where(col(Effect.key).endswith(":notice"))).all()
    assert len(failed) == 4
    assert sorted(t.data["notice"]["error"] for t in told) == sorted(set(errors))


def test_shutdown_releases_claims_for_another_replica_at_once(db: Database) -> None:
    enqueue(db, "post:a")
    enqueue(db, "post:b")
    assert len(claim(db, "leaving")) == 2
    with db.transaction() as session:
        assert store.release(session, "leaving", now=utcnow()) == 2
    assert sorted(c.key for c in claim(db, "other")) == ["post:a", "post:b"]


def claim_keys(db: Database, limit: int) -> list[str]:
    with db.transaction() as session:
        return [c.key for c in store.claim(session, "w", now=utcnow(), limit=limit)]


def put(db: Database, *effects: tuple[str, str, str | None]) -> None:
    """Write (kind, key, lane) effects in one transaction, now."""
    with db.transaction() as session:
        for kind, key, lane in effects:
            store.enqueue(session, kind=kind, key=key, lane=lane, now=utcnow())


def test_what_someone_is_waiting_for_is_claimed_before_older_background_work(
    db: Database,
) -> None:
    with freeze_time("2026-11-30 03:00:00", tz_offset=0) as clock:
        put(db, (kinds.ANNOUNCE, "announce:1", "i:1"), (kinds.POST, "suggest:2", "i:2"))
        clock.tick(timedelta(seconds=1))
        put(db, (kinds.REFRESH, "refresh:3", "i:3"), (kinds.SLACK_REQUEST, "in:4", None))
        # The summary and the request come first, though written after the other two (and a
        # batch is executed in that order); then the rest, oldest first.
        assert claim_keys(db, limit=3) == ["refresh:3", "in:4", "announce:1"]
        assert claim_keys(db, limit=3) == ["suggest:2"]


def test_background_work_that_has_waited_is_not_starved_by_a_stream_of_replies(
    db: Database,
) -> None:
    with freeze_time("2026-11-30 03:00:00", tz_offset=0) as clock:
        put(db, (kinds.POST, "suggest:1", "i:1"))
        clock.tick(store.FIRST_AFTER - timedelta(seconds=1))
        put(db, (kinds.REPLY, "reply:2", None))
        assert claim_keys(db, limit=1) == ["reply:2"]
        clock.tick(timedelta(seconds=1))
        put(db, (kinds.REPLY, "reply:3", None))
        assert claim_keys(db, limit=1) == ["suggest:1"]  # waited FIRST_AFTER: its turn


def test_a_burst_is_shared_between_threads_at_once_not_at_the_next_poll(db: Database) -> None:
    both_running = Barrier(2, timeout=10)
    ran: list[str] = []

    def handler(item: Claimed) -> Done:
        both_running.wait()  # breaks unless a second thread takes work while this one works
        ran.append(item.key)
        return Done()

    runner = EffectRunner(
        db, {"test.thing": handler}, worker_id="w", threads=2, interval=60, batch=2
    )
    runner.start()
    try:
        time.sleep(0.2)  # both threads found nothing and wait for a kick (or 60 s)
        with db.transaction() as session:  # one commit: one kick
            for n in range(4):
                store.enqueue(session, kind="test.thing", key=f"post:{n}", now=utcnow())
        deadline = time.monotonic() + 20
        while len(ran) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        runner.stop(timeout=1)
    assert sorted(ran) == ["post:0", "post:1", "post:2", "post:3"]
    assert [r.state for r in rows(db)] == ["done"] * 4


def test_a_change_to_an_incident_while_its_effect_is_being_started_never_deadlocks(
    db: Database, policy: Policy
) -> None:
    """Starting a claimed effect checks its incident exists (a foreign key); a change holds the
    incident's lock and re-arms the same effect. Each must let the other finish."""
    incident_id = incident(db, policy)
    with db.transaction() as session:
        store.arm(
            session, kind=kinds.REFRESH, key="refresh:x", incident_id=incident_id, now=utcnow()
        )
    (refresh,) = [r.id for r in _all_rows(db) if r.key == "refresh:x"]
    claimed, locked = Event(), Event()
    done: list[str] = []

    def start() -> None:
        with db.transaction() as session:
            (item,) = store.claim(session, "w", now=utcnow(), ids=[refresh or 0])
            claimed.set()
            # Let the change take the incident first (on SQLite it waits for this commit:
            # one writer at a time).
            locked.wait(timeout=2)
            assert begin(session, item.id, "w")
        done.append("started")

    def change() -> None:
        claimed.wait(timeout=10)
        with db.transaction() as session:
            core.lock_incident(session, incident_id)
            locked.set()
            store.arm(
                session, kind=kinds.REFRESH, key="refresh:x", incident_id=incident_id, now=utcnow()
            )
        done.append("changed")

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(start), pool.submit(change)]
        for future in futures:
            future.result(timeout=30)  # a deadlock would raise here (PostgreSQL aborts one)
    assert sorted(done) == ["changed", "started"]
    (row,) = [r for r in _all_rows(db) if r.key == "refresh:x"]
    assert (row.state, row.attempts, row.rerun) == ("claimed", 1, True)  # runs once more


def _all_rows(db: Database) -> list[Effect]:
    with db.read() as session:
        return list(session.exec(select(Effect)).all())


def test_a_new_role_holder_is_invited_before_the_channel_is_told(
    db: Database, policy: Policy
) -> None:
    """In the incident's lane the invite comes first: the person is in the channel when the
    change is said, and an invite (claimed first) never waits behind a post."""
    incident_id = incident(db, policy)
    with db.transaction() as session:
        change = core.assign_role(session, policy, incident_id, COMMANDER, "U0BOB", actor="U0ANA")
    assert change.event is not None
    with db.read() as session:
        lane = [
            e.key
            for e in session.exec(
                select(Effect).where(col(Effect.key).startswith(f"event:{change.event.id}:"))
            ).all()
        ]
    assert sorted(lane, key=lambda key: key.endswith(":said")) == lane
    assert [k.rsplit(":", 1)[1] for k in lane] == ["invite", "said"]


def test_work_written_before_the_clock_stepped_back_is_not_held_behind_new_work(
    db: Database,
) -> None:
    with freeze_time("2026-11-30 03:00:00", tz_offset=0) as clock:
        put(db, (kinds.POST, "suggest:1", "i:1"))
        clock.move_to("2026-11-30 02:00:00")  # an hour back: how long it waited is unknown
        put(db, (kinds.REPLY, "reply:2", None))
        assert claim_keys(db, limit=1) == ["suggest:1"]


def test_a_batch_behind_a_slow_call_keeps_its_claim_from_its_own_start(db: Database) -> None:
    """A runner claims a batch, then spends most of a lease on the first effect (Slack slow):
    the second is held from when it starts, so no other replica takes it while it runs."""
    enqueue(db, "post:slow")
    enqueue(db, "post:next")
    with freeze_time(utcnow()) as clock:
        slow, following = claim(db, "w", limit=2)
        with db.transaction() as session:
            assert begin(session, slow.id, "w")
        clock.tick(store.DEFAULT_LEASE - timedelta(seconds=5))
        with db.transaction() as session:  # the slow one done: the next begins
            assert store.finish(session, slow.id, "w", result={}, now=utcnow())
            assert begin(session, following.id, "w")
        clock.tick(timedelta(seconds=20))  # past the batch's claim, within the attempt's lease
        assert claim(db, "other") == []
        clock.tick(store.DEFAULT_LEASE)
        assert [c.key for c in claim(db, "other")] == ["post:next"]  # now it was abandoned


def test_an_answer_is_written_even_when_the_claim_ran_out_while_it_was_given(
    db: Database,
) -> None:
    """Answers are written with the outcome; a claim lost meanwhile (taken over after its lease)
    must not lose them: the repeat elsewhere writes the same keys, once."""
    enqueue(db, "in:declare")

    def slow_request(item: Claimed) -> Done:
        with db.transaction() as session:  # meanwhile the lease ran out and another took it
            session.execute(
                update(Effect).where(col(Effect.id) == item.id).values(claimed_by="other")
            )

        def said(session: Session) -> None:
            store.enqueue(session, kind=kinds.REPLY, key="reply:in:declare:1", now=utcnow())

        return Done({"replies": 1}, said=said)

    runner = EffectRunner(db, {"test.thing": slow_request}, worker_id="w", threads=0)
    (item,) = claim(db, "w")
    assert runner.execute(item) == "lost"
    with db.read() as session:
        replies = session.exec(select(Effect).where(col(Effect.kind) == kinds.REPLY)).all()
    assert [r.key for r in replies] == ["reply:in:declare:1"]


def test_an_effect_whose_outcome_can_never_be_recorded_fails_instead_of_running_forever(
    db: Database,
) -> None:
    """Each attempt does its work, then saving the outcome fails (a bug in what follows it; a
    process killed by the effect itself looks the same): after max_attempts starts it fails
    for good, without running again, instead of being retried at every lease, forever."""
    enqueue(db, "post:poison")
    ran: list[int] = []

    def handler(item: Claimed) -> Done:
        ran.append(item.attempts)

        def broken(session: Session) -> None:
            raise ValueError("a bug in what follows")

        return Done(then=broken)

    runner = EffectRunner(db, {"test.thing": handler}, worker_id="w", threads=0, max_attempts=3)
    outcomes = []
    with freeze_time(utcnow()) as clock:
        for _ in range(4):
            (item,) = claim(db, "w")
            outcomes.append(runner.execute(item))
            clock.tick(store.DEFAULT_LEASE + timedelta(seconds=1))
        assert claim(db, "w") == []
    assert outcomes == ["unrecorded", "unrecorded", "unrecorded", "failed"]
    assert ran == [1, 2, 3]  # the fourth start did not run it
    (row,) = rows(db)
    assert row.state == "failed" and "never recorded" in (row.last_error or "")


def test_incident_retry_runs_failed_effects_as_repeats(db: Database, policy: Policy) -> None:
    incident_id = incident(db, policy)
    enqueue(db, "post:gave-up", incident_id=incident_id)
    repeats: list[bool] = []

    def handler(item: Claimed) -> Done:
        repeats.append(item.repeat)
        if len(repeats) == 1:
            raise PermanentError("gave up after Slack answered 500", reason="internal_error")
        return Done()

    runner = EffectRunner(db, {"test.thing": handler}, worker_id="w", threads=0)
    [item] = claim(db, "w")
    runner.execute(item)
    with db.transaction() as session:
        assert store.retry_failed(session, incident_id, now=utcnow()) == 1
    [item] = claim(db, "w")
    assert runner.execute(item) == "done"
    assert repeats == [False, True]


def test_a_database_cut_during_an_effect_is_retried_without_a_traceback(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a bug: operators see one warning line, not a stack trace in the logs."""
    enqueue(db, "post:cut-off")

    def cut_off(item: Claimed) -> Done:
        raise OperationalError("SELECT 1", None, Exception("server closed the connection"))

    runner = EffectRunner(db, {"test.thing": cut_off}, worker_id="w", threads=0)
    [item] = claim(db, "w")
    with caplog.at_level(logging.INFO, logger="bot.effects.runner"):
        assert runner.execute(item) == "retry"
    records = [r for r in caplog.records if r.name == "bot.effects.runner"]
    assert [(r.levelname, r.exc_info is None) for r in records] == [("WARNING", True)]
    assert "waits for the database" in records[0].getMessage()
    [row] = rows(db)
    assert row.state == "pending" and row.last_error == "the database was unavailable"


def test_a_database_outage_is_one_warning_and_one_line_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The claim loops (effects, reminders) try every second while the database is gone: one
    warning when it goes, one line when it is back, never a traceback per attempt; a bug is
    still logged whole, every time."""
    port = free_port()  # a port nothing listens on: the server is down
    down = Database(f"postgresql://postgres@127.0.0.1:{port}/firebreak")
    runner = EffectRunner(down, {}, worker_id="w", threads=0, interval=0.01)
    scheduler = ReminderScheduler(down, Policy(), interval=1.0)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            runner._round()
            scheduler.tick()
    records = [r for r in caplog.records if r.name in ("bot.effects.runner", "bot.scheduler")]
    assert [(r.name, r.levelname, r.exc_info) for r in records] == [
        ("bot.effects.runner", "WARNING", None),
        ("bot.scheduler", "WARNING", None),
    ]
    assert all("the database is unavailable (OperationalError" in r.getMessage() for r in records)
    caplog.clear()
    outage = OutageLog(logging.getLogger("bot.effects.runner"), "effects")
    outage.failed(OperationalError("SELECT 1", None, Exception("gone")), "unexpected")
    outage.ok()
    outage.ok()
    try:
        raise ValueError("a bug")
    except ValueError as exc:
        outage.failed(exc, "effect claim failed")
    assert [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        (
            "WARNING",
            "effects: the database is unavailable (OperationalError: gone); trying "
            "again until it is back",
            False,
        ),
        ("WARNING", "effects: the database is available again", False),
        ("ERROR", "effect claim failed", True),
    ]
    down.dispose()


class _Orig(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("x")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "outage"),
    [
        (None, True),  # the connection lost or never made
        ("08006", True),  # connection failure
        ("57P01", True),  # the server shut down
        ("25006", True),  # read-only
        ("53100", True),  # disk full
        ("42P01", True),  # the tables gone: the database dropped and made again empty
        ("40P01", False),  # a deadlock: a problem of the statement, logged whole
        ("57014", False),  # a statement timeout
    ],
)
def test_what_counts_as_the_database_being_unavailable(sqlstate: str | None, outage: bool) -> None:
    assert database_unavailable(OperationalError("SELECT 1", None, _Orig(sqlstate))) is outage


def test_a_batch_that_outlives_its_lease_is_not_also_run_by_another_thread(db: Database) -> None:
    """Slack slow, a batch of 20 takes longer than its 30 s lease: another thread of the same
    process claims the effects not started yet. Before, both threads claimed as the process
    (the same worker id), so both started and ran them: two pinned summaries. Each batch is
    now its own claim; only its holder may start an effect."""
    enqueue(db, "summary:1")
    enqueue(db, "suggest:1")
    seen: list[tuple[str, str]] = []

    def record(item: Claimed) -> Done:
        seen.append((item.by, item.key))
        return Done()

    runner = EffectRunner(
        db,
        {"test.thing": record},
        worker_id="replica-a",
        threads=0,
        lease=timedelta(seconds=30),
    )
    with freeze_time(utcnow()) as clock:
        with db.transaction() as session:
            first = store.claim(session, "replica-a#1", now=utcnow(), limit=20)
        clock.tick(31)  # the batch's lease has run out before its second effect started
        with db.transaction() as session:
            second = store.claim(session, "replica-a#2", now=utcnow(), limit=20)
        assert sorted(c.key for c in second) == ["suggest:1", "summary:1"]
        assert [runner.execute(c) for c in first] == ["lost", "lost"]
        assert [runner.execute(c) for c in second] == ["done", "done"]
    assert sorted(seen) == [("replica-a#2", "suggest:1"), ("replica-a#2", "summary:1")]


def test_a_shutdown_between_two_effects_leaves_the_next_one_unattempted(db: Database) -> None:
    """SIGTERM while the first effect of a batch runs: the next one had been started (its
    attempt counted) with the first's outcome, then the loop stopped. Taken by another replica
    as a possible repeat, an ephemeral reply was skipped (it cannot be looked up): a person
    was never answered. Its attempt is taken back; it is released as never tried."""
    enqueue(db, "reply:1")
    enqueue(db, "reply:2")
    runner: EffectRunner | None = None

    def first_then_sigterm(item: Claimed) -> Done:
        assert runner is not None
        runner._stopping.set()  # what stop() does when SIGTERM comes
        return Done()

    runner = EffectRunner(db, {"test.thing": first_then_sigterm}, worker_id="a", threads=0)
    assert runner.run_once() == 2
    with db.transaction() as session:
        assert store.release(session, "a", now=utcnow()) == 1
    done, left = rows(db)
    assert (done.key, done.state) == ("reply:1", "done")
    assert (left.key, left.state, left.attempts, left.claimed_by) == ("reply:2", "pending", 0, None)
    [taken] = claim(db, "b")
    assert not taken.repeat
