"""alerts: entries held until the group has an incident; the incident each alert fired under

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 17:40:00

``alert_groups.held``: a note or acknowledgement that arrives before the event that opens the
incident (senders do not deliver in order) is kept on its group, the latest few, and recorded
on the incident's timeline when the group is declared or attached.

``alerts.incident_id`` (indexed: an incident's page lists its alerts by it): the latest
incident each alert fired under, so an alert of an earlier
episode of its group is listed with its own incident, not the group's current one. Alerts
stored before are given their group's incident, which is what the list showed for them.

``alert_notices.sent_at`` is dropped: nothing ever set it (a notice's delivery is its effect's
row), and an empty "sent at" read as "never sent".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_LABEL_INDEXES = {
    "ix_alerts_label_alertid": "alertId",
    "ix_alerts_label_monitor_key": "monitor_key",
}


@contextmanager
def _altering_alerts() -> Iterator[None]:
    """Alter ``alerts``; on SQLite (a copy of the table) the label indexes are made again."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        yield
    _restore_label_indexes()


def _restore_label_indexes() -> None:
    """SQLite alters a table by copying it, and the copy loses the expression indexes of
    0008 (SQLAlchemy cannot reflect them): make them again. PostgreSQL alters in place."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, label in _LABEL_INDEXES.items():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON alerts"
            f" (CAST(JSON_EXTRACT(labels, '$.\"{label}\"') AS VARCHAR))"
        )


def upgrade() -> None:
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.alter_column("held", server_default=None)
    with _altering_alerts(), op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_incident_id_incidents"), "incidents", ["incident_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_alerts_incident_id"), ["incident_id"], unique=False)
    with op.batch_alter_table("alert_notices", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
    op.execute(
        "UPDATE alerts SET incident_id ="
        " (SELECT alert_groups.incident_id FROM alert_groups"
        " WHERE alert_groups.id = alerts.group_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("alert_notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    with _altering_alerts(), op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_incident_id"))
        batch_op.drop_constraint(batch_op.f("fk_alerts_incident_id_incidents"), type_="foreignkey")
        batch_op.drop_column("incident_id")
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.drop_column("held")
