from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import bot.schema  # noqa: F401
from bot import incidents as core
from bot import migrations
from bot.alerts.intake import ingest
from bot.alerts.sources import parse
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database


def test_upgrade_an_empty_database_and_downgrade_back(new_database_url: Callable[[], str]) -> None:
    url = new_database_url()
    migrations.upgrade(url)
    db = Database(url)
    try:
        tables = set(inspect(db.engine).get_table_names())
        assert {
            "incidents",
            "timeline_events",
            "role_assignments",
            "action_items",
            "counters",
        } <= tables
        assert migrations.is_at_head(db.engine)
        migrations.downgrade(url, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        assert migrations.current_revision(db.engine) is None
        migrations.upgrade(url)
        assert migrations.is_at_head(db.engine)
    finally:
        db.dispose()


# SQLAlchemy cannot reflect SQLite's indexes on an expression (the alerts' label lookups), and
# Alembic leaves expression indexes out of the comparison on every backend: the lookups' own
# test (tests/alerts/test_label_lookups.py) checks that they exist and are used.
@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"
)
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_models_and_migrations_agree(new_database_url: Callable[[], str]) -> None:
    """If this fails, a model changed without a migration: run
    `firebreak db revision -m '...'` (autogenerate) and review the result."""
    url = new_database_url()
    migrations.upgrade(url)
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        db.dispose()
    assert diff == []


def test_replicas_migrating_at_once_all_succeed(new_database_url: Callable[[], str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = new_database_url()
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: migrations.upgrade(url), range(3)))
    db = Database(url)
    try:
        assert migrations.is_at_head(db.engine)
    finally:
        db.dispose()


def _ingest_one_alert(db: Database) -> None:
    message = parse(
        "alertmanager",
        {
            "version": "4",
            "groupKey": '{}:{alertname="DiskFull"}',
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "fingerprint": "aa11",
                    "labels": {"alertname": "DiskFull", "severity": "critical"},
                    "annotations": {"summary": "Disk full on db-1"},
                    "startsAt": "2026-11-30T10:00:00Z",
                }
            ],
        },
        now=utcnow(),
    )
    db.transact(lambda session: ingest(session, Policy(), message))


@pytest.mark.filterwarnings(  # SQLite: reflecting the alerts table (see above)
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"
)
def test_a_database_migrated_by_an_earlier_form_of_0009_and_0010_is_brought_in_line(
    new_database_url: Callable[[], str],
) -> None:
    """Builds of the development branch applied 0009 and 0010 before they were changed: such a
    database is at 0010 with ``alert_notices.sent_at`` and the first ``alert_stints`` (a
    foreign key to ``alerts``, no copy of the alert). 0011 brings it to what the revisions now
    create, its rows kept, so the models and the schema agree again."""
    url = new_database_url()
    migrations.upgrade(url, "0009")
    db = Database(url)
    try:
        _ingest_one_alert(db)
        metadata = sa.MetaData()
        for referred in ("alerts", "incidents"):
            sa.Table(referred, metadata, sa.Column("id", sa.Integer(), primary_key=True))
        first_form = sa.Table(
            "alert_stints",
            metadata,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("alert_id", sa.Integer(), nullable=False),
            sa.Column("incident_id", sa.Integer(), nullable=False),
            sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(
                ["alert_id"], ["alerts.id"], name="fk_alert_stints_alert_id_alerts"
            ),
            sa.ForeignKeyConstraint(
                ["incident_id"], ["incidents.id"], name="fk_alert_stints_incident_id_incidents"
            ),
            sa.Index("ix_alert_stints_incident_id", "incident_id"),
        )
        with db.engine.begin() as connection:
            first_form.create(connection)
            alert_id, incident_id = connection.execute(
                text("SELECT id, incident_id FROM alerts")
            ).one()
            connection.execute(
                first_form.insert().values(alert_id=alert_id, incident_id=incident_id)
            )
            connection.execute(text("ALTER TABLE alert_notices ADD COLUMN sent_at TIMESTAMP"))
            connection.execute(text("UPDATE alembic_version SET version_num = '0010'"))
        migrations.upgrade(url)
        assert migrations.is_at_head(db.engine)
        schema = inspect(db.engine)
        assert "sent_at" not in {c["name"] for c in schema.get_columns("alert_notices")}
        assert [fk["referred_table"] for fk in schema.get_foreign_keys("alert_stints")] == [
            "incidents"
        ]
        with db.engine.connect() as connection:
            row = connection.execute(
                text("SELECT alert_id, source, key, name, title, severity FROM alert_stints")
            ).one()
        assert tuple(row) == (
            alert_id,
            "alertmanager",
            "aa11",
            "DiskFull",
            "Disk full on db-1",
            "critical",
        )
    finally:
        db.dispose()


def test_a_timeline_event_without_its_hash_is_refused(new_database_url: Callable[[], str]) -> None:
    """An old replica (from before the hash chain) still serving while a newer one migrated
    would write events without a hash, breaking the append-only chain for good: refused."""
    url = new_database_url()
    migrations.upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            incident = core.declare_incident(session, Policy(), title="Disk full", reporter="U1")
            incident_id = incident.incident.id
        insert = text(
            "INSERT INTO timeline_events (incident_id, occurred_at, recorded_at, kind, text, data,"
            " idempotency_key) VALUES (:i, :t, :t, 'note', 'old replica', '{}', 'k1')"
        )
        older = "this Firebreak is older than its database schema"
        with pytest.raises(DBAPIError, match=older), db.engine.begin() as connection:
            connection.execute(insert, {"i": incident_id, "t": utcnow()})
        with db.read() as session:
            assert len(core.timeline(session, incident_id or 0)) == 1
    finally:
        db.dispose()


# A revision that has been applied anywhere is never edited: Alembic does not run it again, so
# a database migrated before the edit would keep the old form for ever. A change is a new
# revision. Add a line here for each new revision, once it is committed.
SHIPPED = {
    "0001_initial_schema.py": "bda7916c57df4697cf452cc9a04e89a2",
    "0002_runbooks_reminders_postmortems.py": "c8071cc630b9288eefc5559fec70014d",
    "0003_alerts.py": "275519ccff1b8b3ae65f74f434e16873",
    "0004_audit_chain.py": "ae7754338401fed5415966d4e3bd9927",
    "0005_effects.py": "eb00ec4930822bbd5a4c5703cf8d83a6",
    "0006_alert_event_time.py": "b80a6ac8de5365df0afe1dd7d7927a4a",
    "0007_chain_head.py": "00e43c1457246721b51296599ac516c7",
    "0008_alert_label_indexes.py": "940d11da754350e43ea9227bccb91675",
    "0009_alert_held_entries_and_incident.py": "94daa0a97568ae7159140797ffe2bc5d",
    "0010_alert_stints.py": "dc34f55bb72e36030fe5329b4ed61464",
    "0011_unhashed_events_refused.py": "c337301675ba33d74b50285961980c26",
}


def test_shipped_revisions_are_never_edited() -> None:
    folder = Path(migrations.__file__).parent / "versions"
    present = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:32] for p in folder.glob("0*.py")
    }
    assert {name: present.get(name) for name in SHIPPED} == SHIPPED
    assert set(present) == set(SHIPPED), "a new revision: add it to SHIPPED"


def test_schema_state_says_behind_only_for_a_database_that_was_never_migrated(
    new_database_url: Callable[[], str], tmp_path: Path
) -> None:
    """/readyz reports what it finds: a database with no schema yet is "behind"; one it cannot
    reach is an error (reported as unreachable), never blamed on the schema."""
    url = new_database_url()
    engine = sa.create_engine(url)
    try:
        assert migrations.schema_state(engine) == "behind"
        migrations.upgrade(url)
        assert migrations.schema_state(engine) == "current"
    finally:
        engine.dispose()
    unreachable = sa.create_engine(
        f"sqlite:///{tmp_path}/missing/firebreak.db"
        if url.startswith("sqlite")
        else "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    )
    with pytest.raises(DBAPIError):
        migrations.schema_state(unreachable)
    unreachable.dispose()
