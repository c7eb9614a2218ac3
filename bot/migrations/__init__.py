"""Alembic migrations, run through ``firebreak db upgrade`` (no alembic.ini needed).

The schema is only ever created and changed here; tests run the same migrations.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError as AlembicError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from bot import __version__
from bot.db import create_db_engine
from bot.errors import ConfigError, FirebreakError

HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    # Passwords in URLs contain '%'; ConfigParser would read them as interpolation.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# Replicas starting together all run `firebreak serve`, which migrates first: on PostgreSQL a
# transaction advisory lock lets one migrate while the others wait and then find nothing to do.
# SQLite transactions already hold the database's write lock.
MIGRATION_LOCK = 0x46697265  # "Fire"


def _run(url: str, action: Callable[[Config], None]) -> None:
    engine = create_db_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as connection:
            if sqlite:
                # Batch operations rebuild a table (copy, drop, rename); with foreign keys on,
                # dropping a table that others reference fails. SQLite's documented way: turn
                # the checks off outside the transaction, then verify them all before commit.
                connection.connection.driver_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA foreign_keys=OFF"
                )
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    free = connection.execute(
                        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    ).scalar()
                    if not free:
                        # Said, not silent: one stuck session would otherwise hold every
                        # replica at start-up with nothing in its log.
                        log.warning(
                            "waiting for another process's migration of this database "
                            "(PostgreSQL advisory lock %s)",
                            MIGRATION_LOCK,
                        )
                        connection.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                        )
                check_known_revision(connection)
                config = alembic_config(url)
                config.attributes["connection"] = connection
                action(config)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise FirebreakError(
                            f"database: the migration would leave {len(broken)} rows pointing "
                            f"at rows that no longer exist (first in table {broken[0][0]}); "
                            "nothing was changed"
                        )
                # A database that cannot be written must not look migrated: an upgrade with
                # nothing to do would otherwise report success on a read-only file or replica.
                connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    _run(url, lambda config: _migrate(command.upgrade, config, revision))


CHAIN_REVISION = "0004"
"""The migration that hash-chains the timeline and makes it append-only."""


def downgrade(url: str, revision: str) -> None:
    """Migrate back to ``revision``; refused below ``CHAIN_REVISION`` while the timeline holds
    events: it would drop their hashes and the triggers that keep the timeline append-only, and
    the next upgrade would chain whatever was changed meanwhile as if it had always been so."""

    def action(config: Config) -> None:
        connection: Connection = config.attributes["connection"]
        if not _keeps_the_chain(connection, revision):
            events = connection.execute(text("SELECT count(*) FROM timeline_events")).scalar()
            if events:
                raise ConfigError(
                    f"database: refusing to migrate back to {revision[:40]!r}: the timeline "
                    f"holds {events} events, and below revision {CHAIN_REVISION} their hash "
                    "chain and append-only guard are dropped. Keep this database (export what "
                    "you need with `firebreak audit export`) and start an older Firebreak on "
                    "a new one"
                )
        _migrate(command.downgrade, config, revision)

    _run(url, action)


def _keeps_the_chain(connection: Connection, revision: str) -> bool:
    """Whether migrating back to ``revision`` (an id, ``base`` or ``-N``) keeps the timeline's
    hash chain; an unknown revision is left to ``_migrate`` to report."""
    script = _scripts()
    target: str | None = MigrationContext.configure(connection).get_current_revision()
    try:
        if revision == "base":
            target = None
        elif re.fullmatch(r"-\d{1,4}", revision):
            for _ in range(int(revision[1:])):
                found = script.get_revision(target) if target else None
                target = str(found.down_revision) if found and found.down_revision else None
        else:
            found = script.get_revision(revision)
            if found is None:
                return True
            target = found.revision
    except AlembicError:
        return True
    if target is None:
        return False
    return any(s.revision == CHAIN_REVISION for s in script.iterate_revisions(target, "base"))


def _migrate(action: Callable[[Config, str], None], config: Config, revision: str) -> None:
    """Run an alembic command; a revision it cannot find or reach (``9999``, ``foo``, ``-100``)
    is the operator's typo, so one line and exit 2, not alembic's traceback."""
    try:
        action(config, revision)
    except AlembicError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"database: cannot migrate to {revision[:40]!r}: {detail}; revisions run from "
            f"base to {head_revision()} (`firebreak db current` shows the database's)"
        ) from None


@cache
def _scripts() -> ScriptDirectory:
    """The migrations this Firebreak has (read once: ``/readyz`` asks every few seconds)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def check_known_revision(connection: Connection) -> None:
    """Refuse a database migrated by a newer Firebreak: this code cannot know its schema."""
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and not is_known(current):
        raise ConfigError(
            f"database: the schema is at revision {current}, which this Firebreak "
            f"({__version__}, latest revision {head_revision()}) does not know: a newer "
            "version migrated it; run that version, or downgrade the database with it"
        )


def is_known(revision: str) -> bool:
    """Whether this Firebreak has the migration ``revision``: not when a newer one made it."""
    try:
        return _scripts().get_revision(revision) is not None
    except AlembicError:
        return False


def head_revision() -> str:
    heads = _scripts().get_heads()
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def schema_state(engine: Engine) -> str:
    """``current``; ``behind`` (not migrated to this version's schema: it cannot work); or
    ``ahead`` (a newer version migrated it, as the first replica of a rolling upgrade does:
    this one keeps serving until it is replaced). Read without Alembic's context, which logs
    two lines each time: ``/readyz`` asks every few seconds."""
    with engine.connect() as connection:  # a connection that fails raises: not "behind"
        if not inspect(connection).has_table("alembic_version"):
            return "behind"  # no schema yet
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if revision == head_revision():
        return "current"
    return "behind" if revision is None or is_known(str(revision)) else "ahead"
