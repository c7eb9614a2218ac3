"""The database layer: SQLite's pragmas, its writers served first come first served
(``FairLock``, a request's write before background work), and reads that never wait for a
writer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from itertools import pairwise

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select
from starlette.testclient import TestClient

from bot import incidents as core
from bot import migrations, priority
from bot.config import Policy
from bot.db import URGENT_IN_A_ROW, Database, FairLock, create_db_engine
from bot.models import Incident
from bot.web import create_web_app


def test_sqlite_pragmas_are_set(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/x.db")
    try:
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        db.dispose()


def test_sqlite_writers_are_served_in_arrival_order() -> None:
    lock = FairLock()
    order: list[int] = []
    inside = 0
    overlap = False
    arrived = threading.Event()

    def writer(n: int) -> None:
        nonlocal inside, overlap
        with lock:
            inside += 1
            overlap = overlap or inside > 1
            order.append(n)
            with lock:  # re-entrant: a nested transaction in the same thread does not deadlock
                pass
            time.sleep(0.002)
            inside -= 1

    with lock:
        threads = []
        for n in range(8):
            thread = threading.Thread(target=writer, args=(n,))
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 5
            while lock.waiting < n + 1 and time.monotonic() < deadline:
                time.sleep(0.001)
        arrived.set()
    for thread in threads:
        thread.join(5)
    assert order == list(range(8))
    assert not overlap


def _queue_behind(lock: FairLock, jobs: list[Callable[[], None]]) -> list[threading.Thread]:
    """Start ``jobs`` one by one while the caller holds ``lock``, each queued before the next."""
    threads = []
    for n, job in enumerate(jobs):
        thread = threading.Thread(target=job)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while lock.waiting < n + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert lock.waiting == n + 1
    return threads


def test_urgent_writers_go_before_background_ones_without_starving_them() -> None:
    lock = FairLock()
    order: list[str] = []

    def writer(name: str, *, urgent: bool) -> Callable[[], None]:
        def write() -> None:
            assert lock.acquire(urgent=urgent)
            try:
                order.append(name)
            finally:
                lock.release()

        return write

    jobs = [writer("background 1", urgent=False), writer("background 2", urgent=False)]
    jobs += [writer(f"urgent {n}", urgent=True) for n in range(1, URGENT_IN_A_ROW + 3)]
    lock.acquire()
    threads = _queue_behind(lock, jobs)
    lock.release()
    for thread in threads:
        thread.join(5)
    urgent = [f"urgent {n}" for n in range(1, URGENT_IN_A_ROW + 3)]
    # Each kind in its order of arrival; the background waiter gets its turn after
    # URGENT_IN_A_ROW urgent ones, however many more are queued.
    assert order == [
        *urgent[:URGENT_IN_A_ROW],
        "background 1",
        *urgent[URGENT_IN_A_ROW:],
        "background 2",
    ]


def test_a_requests_write_is_not_queued_behind_background_work(tmp_path: object) -> None:
    """The write a Slack request or an alert must finish before it is answered goes to SQLite's
    writer before background work (the effect runner) that was waiting for it already."""
    url = f"sqlite:///{tmp_path}/x.db"
    migrations.upgrade(url)
    db = Database(url)
    order: list[str] = []

    def write(name: str, *, background: bool) -> Callable[[], None]:
        def run() -> None:
            if background:
                priority.run_in_background()
            with db.transaction() as session:
                session.execute(text("SELECT 1"))
                order.append(name)

        return run

    writer = db._writer
    assert writer is not None
    try:
        writer.acquire()
        threads = _queue_behind(
            writer, [write("effect", background=True), write("request", background=False)]
        )
        writer.release()
        for thread in threads:
            thread.join(5)
    finally:
        db.dispose()
    assert order == ["request", "effect"]


def test_reads_do_not_wait_for_writers(db: Database, policy: object) -> None:

    assert isinstance(policy, Policy)
    with db.transaction() as session:
        core.declare_incident(session, policy, title="first", reporter="U1")
    writing = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with db.transaction() as session:
            core.declare_incident(session, policy, title="second", reporter="U1")
            writing.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert writing.wait(10)
    try:
        with db.read() as session:  # while the writer holds the write lock
            titles = [i.title for i in session.exec(select(Incident)).all()]
    finally:
        release.set()
        thread.join(10)
    assert titles == ["first"]
    with db.read() as session:
        assert sorted(i.title for i in session.exec(select(Incident)).all()) == ["first", "second"]


def test_readyz_refuses_traffic_when_the_database_cannot_be_written(tmp_path: object) -> None:
    """A replica that can read but not write would acknowledge what it cannot record."""
    path = f"{tmp_path}/ro.db"
    migrations.upgrade(f"sqlite:///{path}")
    writable = Database(f"sqlite:///{path}")
    read_only = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with TestClient(create_web_app(None, writable)) as client:
            answer = client.get("/readyz")
            assert (answer.status_code, answer.json()["detail"]) == (200, "ok")
        with TestClient(create_web_app(None, read_only)) as client:
            answer = client.get("/readyz")
            assert answer.status_code == 503
            assert answer.json()["detail"] == "database not writable: OperationalError"
            assert client.get("/healthz").status_code == 200  # alive, only not ready
    finally:
        writable.dispose()
        read_only.dispose()


def test_a_database_that_never_answers_is_given_up_on_not_waited_for() -> None:
    """A blackholed PostgreSQL (a partition, a firewall dropping packets): libpq waited for
    the kernel's two minutes of connection retries, so requests, readiness and shutdown hung.
    The connection attempt now ends at its connect timeout, saying so."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):  # a full accept queue: the server's kernel drops further SYNs
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        engine = create_db_engine(f"postgresql://firebreak@127.0.0.1:{port}/firebreak")
        try:
            with pytest.raises(OperationalError) as failed, engine.connect():
                pass
        finally:
            engine.dispose()
            for filler in fillers:
                filler.close()
    assert "timeout expired" in str(failed.value.orig)


def _unreachable_for(seconds: float) -> tuple[list[float], Callable[[Session], str]]:
    """A transaction's work that finds the database unreachable (a failover, a restart) for
    ``seconds`` from its first try, then writes; and the times it was tried."""
    tried: list[float] = []

    def work(session: Session) -> str:
        tried.append(time.monotonic())
        if tried[-1] - tried[0] < seconds:
            raise OperationalError("BEGIN", None, Exception("connection refused"))
        return "written"

    return tried, work


def test_a_write_with_a_deadline_waits_out_a_database_gone_for_a_moment(db: Database) -> None:
    """Before, three attempts back to back, a few milliseconds apart: a database gone for half
    a second (a failover) refused every Slack request of that half second, though Slack waits
    3 seconds for the answer and the request may take 2 to be saved."""
    tried, work = _unreachable_for(0.5)
    started = time.monotonic()
    assert db.transact(work, until=started + 2.0) == "written"
    assert tried[-1] - started >= 0.5
    assert len(tried) > 3
    # Spaced out, not spinning: a growing pause between attempts.
    gaps = [later - earlier for earlier, later in pairwise(tried)]
    assert all(gap >= 0.04 for gap in gaps), gaps

    # What the deadline does not allow is refused by it, not sooner and not much later.
    tried, work = _unreachable_for(60)
    started = time.monotonic()
    with pytest.raises(OperationalError):
        db.transact(work, until=started + 1.0)
    assert 0.6 <= tried[-1] - started <= 1.0


def test_a_write_without_a_deadline_gives_up_after_its_attempts(db: Database) -> None:
    tried, work = _unreachable_for(60)
    with pytest.raises(OperationalError):
        db.transact(work)
    assert len(tried) == 3
