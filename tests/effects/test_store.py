"""The effect rows on both databases: written once, claimed once, in lane order, coalesced,
retried with a sane backoff, ended for good with the commander told, released at shutdown."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

from freezegun import freeze_time
from sqlmodel import col, select

from bot import incidents as core
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.effects import store
from bot.effects.failures import on_effect_failed
from bot.effects.models import Effect
from bot.effects.runner import Done, EffectRunner, PermanentError, TransientError, backoff
from bot.effects.store import Claimed
from bot.models import EventKind


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
            assert store.start(session, taken.id, "dead")  # the attempt began, then it died
        assert claim(db, "alive") == []
        clock.tick(store.DEFAULT_LEASE + timedelta(seconds=1))
        [again] = claim(db, "alive")
        with db.transaction() as session:
            assert not store.start(session, taken.id, "dead")  # its claim is gone
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
            store.start(session, first.id, "dead")  # died during the first; never began "b"
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
        raise TransientError("Slack is rate limiting", retry_after=None, reason="ratelimited")

    runner = EffectRunner(db, {"test.thing": failing}, worker_id="w", threads=0, max_attempts=3)
    with freeze_time(utcnow()) as clock:
        for expected in ("retry", "retry", "failed"):
            [item] = claim(db, "w")
            assert runner.execute(item) == expected
            clock.tick(timedelta(minutes=10))
    [row] = rows(db)
    assert row.state == "failed" and "gave up after 3 attempts" in (row.last_error or "")


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


def test_shutdown_releases_claims_for_another_replica_at_once(db: Database) -> None:
    enqueue(db, "post:a")
    enqueue(db, "post:b")
    assert len(claim(db, "leaving")) == 2
    with db.transaction() as session:
        assert store.release(session, "leaving", now=utcnow()) == 2
    assert sorted(c.key for c in claim(db, "other")) == ["post:a", "post:b"]
