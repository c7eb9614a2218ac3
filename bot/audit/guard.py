"""The append-only guard on ``timeline_events``: database triggers refuse UPDATE, DELETE (and,
on PostgreSQL, TRUNCATE) unless the guard is lifted inside the same transaction.

Only the retention purge, migrations and the test reset lift it. Lifting is transaction-local
on both databases: ``SET LOCAL firebreak.audit_unlock = 'on'`` on PostgreSQL; on SQLite a row in
``audit_unlock`` that ``restore`` deletes again before the transaction commits (SQLite runs one
writer at a time, so no other transaction can see the row).

The triggers are created by migration 0003; their SQL lives here so migrations and tests share
it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

UNLOCK_SETTING = "firebreak.audit_unlock"
REFUSAL = "timeline_events is append-only"

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER timeline_events_no_{op.lower()}
    BEFORE {op} ON timeline_events
    WHEN NOT EXISTS (SELECT 1 FROM audit_unlock)
    BEGIN
        SELECT RAISE(ABORT, '{REFUSAL}: {op} refused (retractions are new events)');
    END
    """
    for op in ("UPDATE", "DELETE")
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS timeline_events_no_{op}" for op in ("update", "delete")]

POSTGRESQL_TRIGGERS = [
    f"""
    CREATE OR REPLACE FUNCTION firebreak_timeline_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF coalesce(current_setting('{UNLOCK_SETTING}', true), '') = 'on' THEN
            IF TG_OP = 'UPDATE' THEN
                RETURN NEW;
            END IF;
            RETURN OLD;
        END IF;
        RAISE EXCEPTION '{REFUSAL}: % refused (retractions are new events)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER timeline_events_append_only
    BEFORE UPDATE OR DELETE ON timeline_events
    FOR EACH ROW EXECUTE FUNCTION firebreak_timeline_append_only()
    """,
    """
    CREATE TRIGGER timeline_events_no_truncate
    BEFORE TRUNCATE ON timeline_events
    FOR EACH STATEMENT EXECUTE FUNCTION firebreak_timeline_append_only()
    """,
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS timeline_events_no_truncate ON timeline_events",
    "DROP TRIGGER IF EXISTS timeline_events_append_only ON timeline_events",
    "DROP FUNCTION IF EXISTS firebreak_timeline_append_only()",
]


def create_statements(dialect: str) -> list[str]:
    return POSTGRESQL_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS


def drop_statements(dialect: str) -> list[str]:
    return POSTGRESQL_DROP if dialect == "postgresql" else SQLITE_DROP


def lift(connection: Any, reason: str) -> None:
    """Lift the guard for the rest of this transaction (``connection``: a Session or a
    Connection). On SQLite call ``restore`` before committing."""
    if _dialect(connection) == "postgresql":
        connection.execute(text(f"SET LOCAL {UNLOCK_SETTING} = 'on'"))
    else:
        connection.execute(
            text("INSERT INTO audit_unlock (reason) VALUES (:reason)"), {"reason": reason[:200]}
        )


def restore(connection: Any) -> None:
    """Put the guard back before the transaction ends (PostgreSQL: ``SET LOCAL`` ends with the
    transaction anyway; it is reset here too)."""
    if _dialect(connection) == "postgresql":
        connection.execute(text(f"SET LOCAL {UNLOCK_SETTING} = 'off'"))
    else:
        connection.execute(text("DELETE FROM audit_unlock"))


def _dialect(connection: Any) -> str:
    if hasattr(connection, "get_bind"):
        return str(connection.get_bind().dialect.name)
    return str(connection.dialect.name)
