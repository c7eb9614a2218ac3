"""Steps the audit tests share."""

from __future__ import annotations

from pathlib import Path

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
