from __future__ import annotations

from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import bot.schema  # noqa: F401
from bot import migrations
from bot.db import Database


def test_upgrade_an_empty_database_and_downgrade_back(new_database_url: Callable[[], str]) -> None:
    url = new_database_url()
    migrations.upgrade(url)
    db = Database(url)
    try:
        tables = set(inspect(db.engine).get_table_names())
        assert {
            "incidents",
            "timeline_events",
            "role_assignments",
            "action_items",
            "counters",
        } <= tables
        assert migrations.is_at_head(db.engine)
        migrations.downgrade(url, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        assert migrations.current_revision(db.engine) is None
        migrations.upgrade(url)
        assert migrations.is_at_head(db.engine)
    finally:
        db.dispose()


def test_models_and_migrations_agree(new_database_url: Callable[[], str]) -> None:
    """If this fails, a model changed without a migration: run
    `firebreak db revision -m '...'` (autogenerate) and review the result."""
    url = new_database_url()
    migrations.upgrade(url)
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        db.dispose()
    assert diff == []


def test_sqlite_pragmas_are_set(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/x.db")
    try:
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        db.dispose()


def test_replicas_migrating_at_once_all_succeed(new_database_url: Callable[[], str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = new_database_url()
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: migrations.upgrade(url), range(3)))
    db = Database(url)
    try:
        assert migrations.is_at_head(db.engine)
    finally:
        db.dispose()


def test_sqlite_writers_are_served_in_arrival_order() -> None:
    import threading
    import time

    from bot.db import FairLock

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
            while len(lock._waiters) < n + 1 and time.monotonic() < deadline:
                time.sleep(0.001)
        arrived.set()
    for thread in threads:
        thread.join(5)
    assert order == list(range(8))
    assert not overlap


def test_reads_do_not_wait_for_writers(db: Database, policy: object) -> None:
    import threading

    from sqlmodel import select

    from bot import incidents as core
    from bot.config import Policy
    from bot.models import Incident

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
