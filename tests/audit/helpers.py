"""Steps the audit tests share."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest


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
