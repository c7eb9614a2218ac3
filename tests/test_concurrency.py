"""Concurrent use of the core, as with several Slack requests or replicas at once."""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier, Event

import pytest
from sqlmodel import Session, select

from bot import incidents as core
from bot.config import Policy
from bot.db import Database
from bot.errors import InvalidTransition
from bot.models import EventKind, Incident, TimelineEvent

THREADS = 20
# The module, not the package's ``timeline`` query of the same name.
timeline = importlib.import_module("bot.incidents.timeline")


def test_twenty_threads_declaring_at_once_get_consecutive_numbers(
    db: Database, policy: Policy
) -> None:
    barrier = Barrier(THREADS)

    def declare(i: int) -> int:
        barrier.wait()
        with db.transaction() as session:
            return core.declare_incident(
                session, policy, title=f"incident {i}", reporter=f"U{i}"
            ).incident.number

    with ThreadPoolExecutor(THREADS) as pool:
        numbers = list(pool.map(declare, range(THREADS)))

    assert sorted(numbers) == list(range(1, THREADS + 1))
    with db.transaction() as session:
        stored = session.exec(select(Incident)).all()
        declared = session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == EventKind.DECLARED)
        ).all()
    assert sorted(i.number for i in stored) == list(range(1, THREADS + 1))
    assert sorted(e.incident_id for e in declared) == sorted(i.id or 0 for i in stored)


def test_the_same_declaration_sent_by_twenty_threads_makes_one_incident(
    db: Database, policy: Policy
) -> None:
    barrier = Barrier(THREADS)

    def declare(_: int) -> int:
        barrier.wait()
        with db.transaction() as session:
            change = core.declare_incident(
                session, policy, title="Same", reporter="U1", key="view:V123"
            )
            return change.incident.number

    with ThreadPoolExecutor(THREADS) as pool:
        numbers = set(pool.map(declare, range(THREADS)))

    assert numbers == {1}
    with db.transaction() as session:
        assert len(session.exec(select(Incident)).all()) == 1
        assert len(session.exec(select(TimelineEvent)).all()) == 1
        assert (
            core.declare_incident(session, policy, title="next", reporter="U1").incident.number == 2
        )


def test_two_people_resolving_at_once_resolve_it_once(db: Database, policy: Policy) -> None:
    with db.transaction() as session:
        incident = core.declare_incident(session, policy, title="x", reporter="U1").incident
    assert incident.id is not None
    incident_id = incident.id
    barrier = Barrier(2)

    def resolve(user: str) -> bool:
        barrier.wait()
        with db.transaction() as session:
            return core.resolve_incident(session, policy, incident_id, actor=user).changed

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(resolve, ["U1", "U2"]))

    assert sorted(results) == [False, True]
    with db.transaction() as session:
        changes = [
            e for e in core.timeline(session, incident_id) if e.kind == EventKind.STATUS_CHANGED
        ]
    assert len(changes) == 1


def test_concurrent_transitions_never_break_the_policy(db: Database, policy: Policy) -> None:
    """Closing and reopening race: whatever wins, every recorded step is an allowed one."""
    with db.transaction() as session:
        incident = core.declare_incident(session, policy, title="x", reporter="U1").incident
        assert incident.id is not None
        core.resolve_incident(session, policy, incident.id, actor="U1")
    incident_id = incident.id
    barrier = Barrier(8)

    def act(i: int) -> None:
        barrier.wait()
        with db.transaction() as session:
            try:
                if i % 2:
                    core.close_incident(session, policy, incident_id, actor=f"U{i}")
                else:
                    core.reopen_incident(session, policy, incident_id, actor=f"U{i}")
            except InvalidTransition:
                pass

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(act, range(8)))
    with db.transaction() as session:
        steps = [
            (e.data["from"], e.data["to"])
            for e in core.timeline(session, incident_id)
            if e.kind == EventKind.STATUS_CHANGED
        ]
    for before, after in steps:
        assert after in policy.status(before).next
    for (_, after), (before, _) in itertools.pairwise(steps):
        assert after == before


def test_a_change_that_waited_for_another_is_stamped_after_it(
    db: Database, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two people change one incident at once. The one who waited for the other's lock is
    recorded after it in time as well as in order, so the timeline (read by time) tells the
    changes in the order they were made."""
    with db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title="x", reporter="U1", severity="SEV3"
        ).incident
    assert incident.id is not None
    incident_id = incident.id
    reached = Event()
    lock: Callable[[Session, int], Incident] = timeline.lock_incident

    def lock_and_tell(session: Session, wanted: int) -> Incident:
        reached.set()
        return lock(session, wanted)

    def second_change() -> None:
        with db.transaction() as second:
            core.change_severity(second, policy, incident_id, "SEV1", actor="U2")

    with ThreadPoolExecutor(1) as pool:
        with db.transaction() as first:
            core.lock_incident(first, incident_id)
            monkeypatch.setattr(timeline, "lock_incident", lock_and_tell)
            waiting = pool.submit(second_change)
            # On PostgreSQL the second change now waits for the incident's row lock; on SQLite
            # it waits for the database's writer and never gets this far while we hold it.
            reached.wait(timeout=1)
            core.change_severity(first, policy, incident_id, "SEV2", actor="U1")
        waiting.result(timeout=30)
    with db.transaction() as session:
        changes = [
            (e.data["from"], e.data["to"])
            for e in core.timeline(session, incident_id)
            if e.kind == EventKind.SEVERITY_CHANGED
        ]
        assert changes == [("SEV3", "SEV2"), ("SEV2", "SEV1")]
        assert core.get_incident(session, incident_id).severity == "SEV1"
