"""Alembic migrations, run through ``firebreak db upgrade`` (no alembic.ini needed).

The schema is only ever created and changed here; tests run the same migrations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.db import create_db_engine

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    # Passwords in URLs contain '%'; ConfigParser would read them as interpolation.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# Replicas starting together all run `firebreak serve --migrate`: on PostgreSQL a transaction
# advisory lock lets one migrate while the others wait and then find nothing to do. SQLite
# transactions already hold the database's write lock.
_MIGRATION_LOCK = 0x46697265  # "Fire"


def _run(url: str, action: Callable[[Config], None]) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            config = alembic_config(url)
            config.attributes["connection"] = connection
            action(config)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    _run(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> None:
    _run(url, lambda config: command.downgrade(config, revision))


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
