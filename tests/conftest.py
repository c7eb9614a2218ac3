"""Test fixtures. The whole suite runs against one backend per run:

* SQLite (default): a fresh database file per session, migrated with Alembic.
* PostgreSQL: set ``FIREBREAK_TEST_DATABASE_URL`` (e.g. postgresql://postgres@127.0.0.1:5432/test).
  A throwaway database is created next to it for the run and dropped afterwards. If the server
  cannot be reached the run fails; it never skips.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import bot.cli
from bot import migrations, observability
from bot.audit import guard as audit_guard
from bot.config import Policy, normalise_database_url
from bot.db import Database
from bot.incidents import INCIDENT_COUNTER
from bot.models import Counter
from bot.schema import metadata
from bot.testing.harness import SERVER_THREAD

PG_ENV = "FIREBREAK_TEST_DATABASE_URL"


def _pg_admin_url() -> str | None:
    value = os.environ.get(PG_ENV, "").strip()
    return normalise_database_url(value) if value else None


@pytest.fixture(autouse=True)
def no_server_outlives_its_test() -> Iterator[None]:
    """An HTTP server thread left running would tick through the next tests' frozen clocks:
    freezegun patches time for the whole process and is not safe against a thread reading the
    clock while a freeze ends. Every server a test starts is stopped by the end of that test."""
    yield
    left = [t.name for t in threading.enumerate() if t.name == SERVER_THREAD and t.is_alive()]
    assert not left, f"{len(left)} HTTP server thread(s) still running after the test"


def _slack_calls_in_transaction() -> float:
    return sum(
        sample.value
        for metric in observability.SLACK_CALLS_IN_TRANSACTION.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


@pytest.fixture(autouse=True)
def no_slack_call_inside_a_transaction() -> Iterator[None]:
    """A Slack call made while holding a database transaction makes every writer (on SQLite
    every acknowledgement) wait for Slack: no path of the product may do it."""
    before = _slack_calls_in_transaction()
    yield
    made = _slack_calls_in_transaction() - before
    assert not made, f"{made:.0f} Slack call(s) made inside a database transaction"


class DatabaseFactory:
    """Creates empty databases on the backend under test and removes them at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.admin_url = _pg_admin_url()
        self.created: list[str] = []

    @property
    def backend(self) -> str:
        return "postgresql" if self.admin_url else "sqlite"

    def create(self) -> str:
        name = f"firebreak_test_{uuid.uuid4().hex[:12]}"
        if self.admin_url is None:
            return f"sqlite:///{self.tmp / (name + '.db')}"
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self.admin_url is None or not self.created:
            return
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                for name in self.created:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def database_url(database_factory: DatabaseFactory) -> str:
    """One migrated database for the session; each test starts from empty tables."""
    url = database_factory.create()
    migrations.upgrade(url)
    return url


def reset_database(database: Database) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    tables.sort(key=lambda name: name == "audit_unlock")  # emptied last: it lifts the guard
    with database.transaction() as session:
        audit_guard.lift(session, "test reset")  # timeline_events refuses DELETE otherwise
        if database.backend == "postgresql":
            session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                session.execute(text(f"DELETE FROM {table}"))
        session.add(Counter(name=INCIDENT_COUNTER, value=0))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, pool_size=25)
    reset_database(database)
    yield database
    database.dispose()


@pytest.fixture
def policy() -> Policy:
    return Policy()


@pytest.fixture
def new_database_url(database_factory: DatabaseFactory) -> Callable[[], str]:
    """Factory for an extra, empty (unmigrated) database on the backend under test."""
    return database_factory.create


Run = Callable[..., tuple[int, str, str]]
"""``firebreak ...`` with these arguments: exit code, stdout, stderr."""


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Run:
    """``firebreak ...`` in an empty directory, without a policy file from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FIREBREAK_POLICY_FILE", raising=False)

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = bot.cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke
