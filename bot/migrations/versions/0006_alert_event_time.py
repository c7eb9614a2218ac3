"""alerts.event_at: the newest event applied to each alert

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 08:10:00

Senders do not deliver in order (PagerDuty, Opsgenie, Alertmanager's retries): each alert keeps
the time of the newest event applied to it, so a late, older status is stored but not applied.
Nullable: alerts stored before, and sources that date nothing, are applied in arrival order.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("event_at")
