"""Steps the audit tests share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import text

from bot import incidents as core
from bot.audit import guard
from bot.config import Policy
from bot.db import Database
from bot.models import TimelineEvent

T0 = datetime(2026, 3, 4, 2, 55, tzinfo=UTC)


def declare_with_notes(db: Database, policy: Policy, notes: int, title: str = "Checkout") -> int:
    """An incident declared at ``T0`` with ``notes`` notes: its chain has ``notes + 1`` events."""
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(session, policy, title=title, reporter="U1").incident
        assert incident.id is not None
        for n in range(notes):
            core.add_note(session, policy, incident.id, f"note {n}", actor="U2")
        return incident.id


def timeline_rows(db: Database, incident_id: int) -> list[TimelineEvent]:
    with db.read() as session:
        return core.timeline(session, incident_id, include_retracted=True)


def tamper(db: Database, *statements: str, **params: object) -> None:
    """What an attacker with database access who knows how to lift the guard would run."""
    with db.transaction() as session:
        guard.lift(session, "attack")
        for sql in statements:
            session.execute(text(sql), params)
        guard.restore(session)


def project_with_dot_env(
    monkeypatch: pytest.MonkeyPatch, directory: Path, database_url: str, signing_key: str
) -> None:
    """Run the CLI from ``directory``, whose ``.env`` (not the environment) holds the signing
    key, as an operator who keeps their settings there does."""
    monkeypatch.chdir(directory)
    monkeypatch.delenv("FIREBREAK_AUDIT_SIGNING_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    (directory / ".env").write_text(f"FIREBREAK_AUDIT_SIGNING_KEY={signing_key}\n")


def forged_note(incident_id: int, at: datetime) -> dict[str, Any]:
    """The values of a note an attacker writes straight into the database, around Firebreak."""
    return {
        "incident_id": incident_id,
        "occurred_at": at,
        "recorded_at": at,
        "kind": "note",
        "actor_id": "U9",
        "text": "IC approved the rollback",
        "data": {},
        "source_url": None,
        "source_ref": None,
        "idempotency_key": "forged",
    }
