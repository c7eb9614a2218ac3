"""alerts: indexes on the labels intake looks alerts up by

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 14:00:00

An Opsgenie delivery that names its alert only by ``alertId`` (an Escalate), and a Datadog alert
cycle looking for the incident of the monitor's previous cycle (``monitor_key``), find the alert
by one of its labels (``bot.alerts.models.LOOKUP_LABELS``). Without an index that read every
alert of the source, on every such delivery. Each label gets an index on its value, written as
the query writes it (``bot.alerts.models.label_value``) so the planner matches the two.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEXES = {"ix_alerts_label_alertid": "alertId", "ix_alerts_label_monitor_key": "monitor_key"}


def _value(dialect: str, label: str) -> str:
    if dialect == "postgresql":
        return f"CAST(labels ->> '{label}' AS VARCHAR)"
    return f"CAST(JSON_EXTRACT(labels, '$.\"{label}\"') AS VARCHAR)"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, label in _INDEXES.items():
        op.create_index(name, "alerts", [sa.text(_value(dialect, label))])


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="alerts")
