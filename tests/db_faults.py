"""Making the database refuse writes, as a full disk or a read-only file or role does: a
trigger that fails every insert (or update) of a table, on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.db import Database

FULL_SQLITE = "database or disk is full"
FULL_POSTGRES = "could not extend file: No space left on device"


def refuse_writes(
    db: Database, *, table: str = "effects", on: str = "INSERT", when: str | None = None
) -> Callable[[], None]:
    """From now on, every ``on`` (INSERT or UPDATE) of ``table`` fails (only the rows for which
    ``when``, an SQL condition on ``NEW``, holds). Returns the call that lifts it (safe to call
    twice)."""
    name = f"refuse_{on.lower()}_{table}"
    sqlite = db.engine.dialect.name == "sqlite"
    only = f"WHEN ({when}) " if when else ""
    statements = (
        [
            f"CREATE TRIGGER {name} BEFORE {on} ON {table} FOR EACH ROW {only}"
            f"BEGIN SELECT RAISE(ABORT, '{FULL_SQLITE}'); END"
        ]
        if sqlite
        else [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{FULL_POSTGRES}'; END $$",
            f"CREATE TRIGGER {name} BEFORE {on} ON {table} FOR EACH ROW {only}"
            f"EXECUTE FUNCTION {name}()",
        ]
    )
    with db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))

    def allow_writes() -> None:
        with db.engine.begin() as connection:
            connection.execute(
                text(f"DROP TRIGGER IF EXISTS {name}" + ("" if sqlite else f" ON {table}"))
            )
            if not sqlite:
                connection.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))

    return allow_writes


def hold_writer(database_url: str, *, table: str) -> Callable[[], None]:
    """Another connection takes the writer now, as a backup or a ``firebreak`` CLI run does
    (SQLite), or an exclusive lock on ``table``, as a migration does (PostgreSQL). Returns the
    call that lets go."""
    url = make_url(database_url)
    other: sqlite3.Connection | psycopg.Connection[tuple[object, ...]]
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(url.database or "", isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
    else:
        other = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
        other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    def let_go() -> None:
        other.rollback()
        other.close()

    return let_go
