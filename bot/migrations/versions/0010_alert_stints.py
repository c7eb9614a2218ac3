"""alert_stints: an alert's time in an incident it has left

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 19:50:00

An alert that fires again under another incident (a new episode of its group) moves to it;
the incident it leaves keeps a row here (what the alert was, when it started and resolved
there), so that incident's page and its evidence still show it. The row stands alone: the
alert's own row goes when retention removes the later incident.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_stints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("severity", sa.String(length=64), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_alert_stints_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_stints")),
    )
    with op.batch_alter_table("alert_stints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_stints_incident_id"), ["incident_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_stints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_stints_incident_id"))
    op.drop_table("alert_stints")
