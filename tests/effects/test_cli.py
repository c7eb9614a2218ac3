"""``firebreak effects``: an operator sees what is stuck or failed, per incident."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot import incidents as core
from bot.cli import main
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.effects import store
from bot.effects.models import Effect


def declared(db: Database, policy: Policy, title: str) -> int:
    with db.transaction() as session:
        incident = core.declare_incident(session, policy, title=title, reporter="U0ANA").incident
    assert incident.id is not None
    return incident.id


def test_pending_and_failed_effects_are_listed_per_incident(
    db: Database,
    policy: Policy,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    declared(db, policy, "Checkout down")  # its channel creation is pending (no Slack here)
    assert main(["effects"]) == 0
    out = capsys.readouterr().out
    assert "INC-1" in out and "create the incident channel" in out and "pending" in out

    second = declared(db, policy, "Search slow")
    with db.read() as session:
        effect = session.exec(select(Effect).where(Effect.key == f"channel:{second}")).one()
    with db.transaction() as session:
        [claimed] = store.claim(session, "w", now=utcnow(), ids=[effect.id or 0])
    with db.transaction() as session:
        row = store.lock_claim(session, claimed.id, "w")
        assert row is not None
        store.mark_failed(row, "Slack refused conversations.create (restricted_action).", utcnow())
        session.add(row)
    assert main(["effects", "--failed", "--json"]) == 1  # a failure: exit 1 for alerting
    listed = json.loads(capsys.readouterr().out)
    assert [(e["incident"], e["state"], e["kind"]) for e in listed] == [
        ("INC-2", "failed", "channel.create")
    ]
    assert "restricted_action" in listed[0]["last_error"]
    assert listed[0]["due_in_seconds"] is None  # never due: /incident retry asks for it again
    assert main(["effects", "--failed"]) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("INC-2") and " failed " in line and "restricted_action" in line
    assert "due" not in line  # a failure is due no more: /incident retry asks for it again
