"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:44:40.057830
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=True),
        sa.Column("reporter_id", sa.String(length=64), nullable=False),
        sa.Column("declare_key", sa.String(length=255), nullable=True),
        sa.Column("slack_channel_id", sa.String(length=32), nullable=True),
        sa.Column("slack_channel_name", sa.String(length=80), nullable=True),
        sa.Column("summary_message_ts", sa.String(length=32), nullable=True),
        sa.Column("announcement_channel_id", sa.String(length=32), nullable=True),
        sa.Column("announcement_ts", sa.String(length=32), nullable=True),
        sa.Column("impact_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mitigated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("declare_key", name=op.f("uq_incidents_declare_key")),
        sa.UniqueConstraint("number", name=op.f("uq_incidents_number")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incidents_slack_channel_id"), ["slack_channel_id"], unique=False
        )

    op.create_table(
        "action_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_action_items_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_items")),
        sa.UniqueConstraint(
            "incident_id", "number", name=op.f("uq_action_items_incident_id_number")
        ),
    )
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_action_items_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "role_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=False),
        sa.Column("unassigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unassigned_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_role_assignments_incident_id_incidents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_assignments")),
    )
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_role_assignments_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(
            "uq_role_assignments_current",
            ["incident_id", "role"],
            unique=True,
            sqlite_where=sa.text("unassigned_at IS NULL"),
            postgresql_where=sa.text("unassigned_at IS NULL"),
        )

    op.create_table(
        "timeline_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("source_ref", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_timeline_events_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline_events")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_timeline_events_idempotency_key")),
    )
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_timeline_events_incident_occurred", ["incident_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_timeline_events_source_ref"), ["source_ref"], unique=False
        )

    # The gap-free incident number counter starts at 0; the first incident is INC-1.
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.Integer))
    op.bulk_insert(counters, [{"name": "incident_number", "value": 0}])


def downgrade() -> None:
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timeline_events_source_ref"))
        batch_op.drop_index("ix_timeline_events_incident_occurred")

    op.drop_table("timeline_events")
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_role_assignments_current",
            sqlite_where=sa.text("unassigned_at IS NULL"),
            postgresql_where=sa.text("unassigned_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_role_assignments_incident_id"))

    op.drop_table("role_assignments")
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_items_incident_id"))

    op.drop_table("action_items")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_slack_channel_id"))

    op.drop_table("incidents")
    op.drop_table("counters")
