"""Concurrent use of the core, as with several Slack requests or replicas at once."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from sqlmodel import select

from bot import incidents as core
from bot.config import Policy
from bot.db import Database
from bot.errors import InvalidTransition
from bot.models import EventKind, Incident, TimelineEvent

THREADS = 20


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
