"""Every stored row that belongs to an incident, found from the schema itself.

A table belongs to incidents when it has an ``incident_id`` foreign key to ``incidents.id``
(timeline, roles, action items, runbook runs, reminders, postmortems, alert groups, ...), or a
foreign key to such a table (runbook step states, alerts). Other packages' tables are therefore
exported and removed with the incident without this package knowing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, or_, select
from sqlmodel import Session

from bot.schema import metadata

INCIDENTS = "incidents"
TIMELINE = "timeline_events"


@dataclass(frozen=True)
class Related:
    table: Table
    parent: Table | None
    """For a table two steps away: the incident-level table it points at."""
    column: str
    """The column holding the incident id (or the parent's id)."""


def related_tables() -> list[Related]:
    """Tables whose rows belong to an incident: direct ones first, then their children."""
    direct: list[Related] = []
    for table in metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == INCIDENTS and fk.parent.name == "incident_id":
                direct.append(Related(table, None, "incident_id"))
                break
    parents = {r.table.name: r.table for r in direct}
    children: list[Related] = []
    for table in metadata.sorted_tables:
        if table.name in parents or table.name == INCIDENTS:
            continue
        for fk in table.foreign_keys:
            parent = parents.get(fk.column.table.name)
            if parent is not None:
                children.append(Related(table, parent, fk.parent.name))
                break
    return direct + children


def still_referenced(table: Table) -> Any:
    """For a table whose rows other tables point at (``alert_groups``: its alerts and notices),
    a condition true of the rows some row points at; ``None`` when no table points at it or
    its ``incident_id`` cannot be emptied."""
    column = table.c.get("incident_id")
    if column is None or not column.nullable:
        return None
    pointers = [
        fk.parent
        for other in metadata.sorted_tables
        if other is not table
        for fk in other.foreign_keys
        if fk.column.table is table
    ]
    if not pointers:
        return None
    return or_(*(table.c.id.in_(select(p).where(p.is_not(None))) for p in pointers))


def _query(related: Related, incident_id: int) -> Any:
    table = related.table
    if related.parent is None:
        return select(table).where(table.c[related.column] == incident_id)
    parent = related.parent
    ids = select(parent.c.id).where(parent.c.incident_id == incident_id)
    return select(table).where(table.c[related.column].in_(ids))


def rows_of(session: Session, related: Related, incident_id: int) -> list[dict[str, Any]]:
    table = related.table
    order = [table.c.id] if "id" in table.c else list(table.primary_key.columns)
    result = session.execute(_query(related, incident_id).order_by(*order)).mappings()
    return [dict(row) for row in result]


def incident_row(session: Session, incident_id: int) -> dict[str, Any] | None:
    table = metadata.tables[INCIDENTS]
    row = session.execute(select(table).where(table.c.id == incident_id)).mappings().first()
    return dict(row) if row is not None else None


def iter_related(session: Session, incident_id: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for related in related_tables():
        yield related.table.name, rows_of(session, related, incident_id)


def jsonable(value: Any) -> Any:
    """Database values as JSON: times in ISO 8601 (UTC), everything else as stored."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value
