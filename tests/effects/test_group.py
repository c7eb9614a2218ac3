"""Group commit: requests recorded at the same moment share one transaction, and each still gets
its own answer (written, or already there), or the error, with nothing of a failed batch kept."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from bot.clock import utcnow
from bot.db import Database
from bot.effects import store
from bot.effects.group import GroupWriter, WriteFailed
from bot.effects.models import Effect
from tests.db_faults import refuse_writes


def keys(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.exec(select(Effect.key).order_by(col(Effect.id))).all())


def record_at_once(writer: GroupWriter, wanted: list[str]) -> list[bool | str]:
    """Each key recorded from its own thread, all released together."""
    answers: list[bool | str] = [False] * len(wanted)
    start = threading.Barrier(len(wanted))

    def one(n: int) -> None:
        start.wait()
        try:
            answers[n] = writer.enqueue(
                kind="test.thing", key=wanted[n], data={"n": n}, lane=None, now=utcnow()
            )
        except WriteFailed as exc:
            answers[n] = str(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(wanted))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_each_request_of_a_burst_is_written_once_and_told_so(db: Database) -> None:
    writer = GroupWriter(db)
    assert writer.enqueue(kind="test.thing", key="in:earlier", data={}, lane=None, now=utcnow())
    wanted = [f"in:{n % 20}" for n in range(40)] + ["in:earlier"]  # each key twice, one old
    answers = record_at_once(writer, wanted)
    assert sorted(keys(db)) == sorted({"in:earlier", *(f"in:{n}" for n in range(20))})
    for key in {f"in:{n}" for n in range(20)}:
        told = [answers[n] for n, k in enumerate(wanted) if k == key]
        assert sorted(told, key=str) == [
            False,
            True,
        ]  # written by one, "already there" to the other
    assert answers[-1] is False


def test_a_batch_that_cannot_be_written_fails_for_everyone_in_it_and_keeps_nothing(
    db: Database,
) -> None:
    writer = GroupWriter(db)
    allow_writes = refuse_writes(db)
    try:
        answers = record_at_once(writer, [f"in:{n}" for n in range(12)])
    finally:
        allow_writes()
    assert all((isinstance(a, str) and "full" in a.lower()) or "space" in str(a) for a in answers)
    assert keys(db) == []
    assert writer.enqueue(kind="test.thing", key="in:0", data={}, lane=None, now=utcnow())


def test_a_lone_request_is_written_at_once(db: Database) -> None:
    writer = GroupWriter(db)
    assert record_at_once(writer, ["in:alone"]) == [True]
    assert keys(db) == ["in:alone"]


def test_a_connection_cut_mid_write_is_replaced_and_the_batch_written_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server drops the writer's connection in the middle of the shared transaction (on
    PostgreSQL the backend is really terminated; SQLite has no server, so its lock timeout
    stands in): the batch rolled back, is written again on a new connection, and every
    request is recorded once, none refused."""
    real = store.enqueue_many
    cuts: list[int] = []

    def cut_once(session: Session, rows: list[dict[str, Any]]) -> list[bool]:
        if not cuts:
            cuts.append(1)
            if db.backend == "postgresql":
                session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            raise OperationalError("INSERT INTO effects", {}, Exception("database is locked"))
        return real(session, rows)

    monkeypatch.setattr(store, "enqueue_many", cut_once)
    answers = record_at_once(GroupWriter(db), [f"in:{n}" for n in range(6)])
    assert cuts == [1]
    assert answers == [True] * 6
    assert sorted(keys(db)) == sorted(f"in:{n}" for n in range(6))
