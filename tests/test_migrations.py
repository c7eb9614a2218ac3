from __future__ import annotations

from collections.abc import Callable

import pytest
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


# SQLAlchemy cannot reflect SQLite's indexes on an expression (the alerts' label lookups), and
# Alembic leaves expression indexes out of the comparison on every backend: the lookups' own
# test (tests/alerts/test_label_lookups.py) checks that they exist and are used.
@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"
)
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
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
