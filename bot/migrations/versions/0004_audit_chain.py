"""timeline hash chain, append-only guard

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 01:00:00

Adds ``prev_hash`` and ``hash`` to ``timeline_events`` (backfilled for existing rows, incident
by incident in id order), the index the chain look-up uses, the ``audit_unlock`` table and the
triggers that refuse UPDATE and DELETE on ``timeline_events`` (see ``bot.audit.guard``).

The canonical form of an event is imported from ``bot.audit.chain`` on purpose: it is versioned
(``firebreak-event/1``) and never changes in place, and the backfill must hash exactly what the
application and the verifier hash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.audit import guard
from bot.audit.chain import GENESIS, event_hash
from bot.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_EVENTS = sa.table(
    "timeline_events",
    sa.column("id", sa.Integer()),
    sa.column("incident_id", sa.Integer()),
    sa.column("occurred_at", UTCDateTime()),
    sa.column("recorded_at", UTCDateTime()),
    sa.column("kind", sa.String()),
    sa.column("actor_id", sa.String()),
    sa.column("text", sa.Text()),
    sa.column("data", sa.JSON()),
    sa.column("source_url", sa.String()),
    sa.column("source_ref", sa.String()),
    sa.column("idempotency_key", sa.String()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


def upgrade() -> None:
    op.create_table(
        "audit_unlock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_unlock")),
    )
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_timeline_events_incident_id_id", ["incident_id", "id"], unique=False
        )
    _backfill()
    bind = op.get_bind()
    for statement in guard.create_statements(bind.dialect.name):
        op.execute(statement)


def _backfill() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_EVENTS).order_by(_EVENTS.c.incident_id, _EVENTS.c.id)).mappings()
    incident: int | None = None
    prev = GENESIS
    updates: list[dict[str, object]] = []
    for row in rows:
        if row["incident_id"] != incident:
            incident, prev = row["incident_id"], GENESIS
        digest = event_hash(dict(row), prev)
        updates.append({"row_id": row["id"], "p": prev, "h": digest})
        prev = digest
    if updates:
        bind.execute(
            sa.update(_EVENTS)
            .where(_EVENTS.c.id == sa.bindparam("row_id"))
            .values(prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")),
            updates,
        )


def downgrade() -> None:
    bind = op.get_bind()
    for statement in guard.drop_statements(bind.dialect.name):
        op.execute(statement)
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_events_incident_id_id")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
    op.drop_table("audit_unlock")
