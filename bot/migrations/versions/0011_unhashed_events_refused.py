"""timeline events without a hash are refused; schemas of earlier builds brought in line

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 23:10:00

A replica of a version from before the hash chain (0.1.0) that is still serving while a newer
one migrates writes timeline events without ``prev_hash`` and ``hash``: a chain broken for
good, since the timeline is append-only. A trigger now refuses such an insert, so the old
replica's request fails (and is retried by Slack against a new replica) instead.

Two revisions were changed after some builds of the development branch had applied them, and
Alembic does not run a revision twice. A database migrated by such a build is brought to what
the revisions now create: ``alert_stints`` gets the columns that let a row stand alone
(source, key, name, title, severity, copied from the alert) and loses its foreign key to
``alerts``; ``alert_notices.sent_at``, which nothing set, is dropped. On any other database
these steps find nothing to do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

REFUSAL = (
    "timeline_events needs prev_hash and hash: this Firebreak is older than its database "
    "schema; stop it and run the version that migrated the database"
)

SQLITE_GUARD = f"""
CREATE TRIGGER timeline_events_hashed
BEFORE INSERT ON timeline_events
WHEN NEW.hash IS NULL OR NEW.prev_hash IS NULL
BEGIN
    SELECT RAISE(ABORT, '{REFUSAL}');
END
"""
POSTGRESQL_GUARD = [
    f"""
    CREATE OR REPLACE FUNCTION firebreak_timeline_hashed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.hash IS NULL OR NEW.prev_hash IS NULL THEN
            RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'not_null_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER timeline_events_hashed
    BEFORE INSERT ON timeline_events
    FOR EACH ROW EXECUTE FUNCTION firebreak_timeline_hashed()
    """,
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in POSTGRESQL_GUARD:
            op.execute(statement)
    else:
        op.execute(SQLITE_GUARD)
    inspector = sa.inspect(bind)
    if "sent_at" in {c["name"] for c in inspector.get_columns("alert_notices")}:
        with op.batch_alter_table("alert_notices", schema=None) as batch_op:
            batch_op.drop_column("sent_at")
    if "source" not in {c["name"] for c in inspector.get_columns("alert_stints")}:
        _stints_stand_alone()


def _stints_stand_alone() -> None:
    """The first form of ``alert_stints`` (alert_id, incident_id, starts_at, resolved_at, with
    a foreign key to ``alerts``) brought to the form 0010 now creates, the rows kept."""
    copied = {"source": 32, "key": 255, "name": 300, "title": 300}
    with op.batch_alter_table("alert_stints", schema=None) as batch_op:
        for column, length in copied.items():
            batch_op.add_column(sa.Column(column, sa.String(length=length), nullable=True))
        batch_op.add_column(sa.Column("severity", sa.String(length=64), nullable=True))
    alert = "FROM alerts a WHERE a.id = alert_stints.alert_id"
    op.execute(
        "UPDATE alert_stints SET"
        " source = (SELECT g.source FROM alerts a JOIN alert_groups g ON g.id = a.group_id"
        " WHERE a.id = alert_stints.alert_id),"
        f" key = (SELECT a.key {alert}), name = (SELECT a.name {alert}),"
        f" title = (SELECT a.title {alert}), severity = (SELECT a.severity {alert})"
    )
    with op.batch_alter_table("alert_stints", schema=None) as batch_op:
        for column, length in copied.items():
            batch_op.alter_column(column, existing_type=sa.String(length=length), nullable=False)
        batch_op.drop_constraint(batch_op.f("fk_alert_stints_alert_id_alerts"), type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS timeline_events_hashed ON timeline_events")
        op.execute("DROP FUNCTION IF EXISTS firebreak_timeline_hashed()")
    else:
        op.execute("DROP TRIGGER IF EXISTS timeline_events_hashed")
