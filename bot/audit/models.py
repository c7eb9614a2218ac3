"""The audit package's tables."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class AuditUnlock(SQLModel, table=True):
    """Lifts the append-only guard on ``timeline_events`` on SQLite.

    The SQLite triggers refuse UPDATE and DELETE while this table is empty. The retention purge
    (and a migration that must rewrite rows) inserts one row, does its work and deletes the row,
    all in one transaction, so no other writer ever sees the guard lifted. PostgreSQL uses the
    transaction-local setting ``firebreak.audit_unlock`` instead; the table exists there too,
    unused, so both databases have one schema."""

    __tablename__ = "audit_unlock"

    id: int | None = Field(default=None, primary_key=True)
    reason: str = Field(max_length=200)
