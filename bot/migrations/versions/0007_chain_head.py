"""incidents.chain_head, incidents.chain_events: the timeline chain's head kept on the incident

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00

Each append stores the hash of the new event and the event count on the incident row, in the
same transaction (``bot.audit.chain.advance``), so ``audit verify`` can tell that an incident's
latest events were deleted. Existing incidents are backfilled from their stored events (the last
event's hash and the number of events), so a database upgraded from before verifies as it did.
Only ``incidents`` is written: the append-only guard on ``timeline_events`` stays in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BACKFILL = """
UPDATE incidents SET
    chain_head = (
        SELECT e.hash FROM timeline_events e WHERE e.incident_id = incidents.id
        ORDER BY e.id DESC LIMIT 1
    ),
    chain_events = (SELECT count(*) FROM timeline_events e WHERE e.incident_id = incidents.id)
"""


def upgrade() -> None:
    op.add_column("incidents", sa.Column("chain_head", sa.String(length=64), nullable=True))
    op.add_column(
        "incidents",
        sa.Column("chain_events", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.execute(sa.text(_BACKFILL))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("chain_events")
        batch_op.drop_column("chain_head")
