"""A runbook an alert starts (``[alerts] start_runbook``) is posted in the incident channel
with its buttons, as one a person starts: its steps can be ticked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bot.alerts.policy import AlertsPolicy
from bot.config import Policy, SlackPolicy
from bot.db import Database
from bot.models import Incident, RunbookRun
from bot.sandbox import FakeSlack
from bot.sandbox.records import Message
from tests.e2e.conftest import RunningBot, send_alert

TOKEN = "alerts-token-for-the-runbook-test"


@pytest.fixture
def e2e_policy(fake: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Policy:
    monkeypatch.setenv("FIREBREAK_ALERTS_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return Policy(
        slack=SlackPolicy(announcements_channel=fake.channel_id("incidents")),
        alerts=AlertsPolicy(start_runbook=True),
    )


def buttons(message: Message) -> list[str]:
    return [
        element["action_id"]
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements") or []
        if element.get("type") == "button"
    ]


def test_a_runbook_an_alert_starts_is_posted_with_its_buttons(
    bot: RunningBot, fake: FakeSlack, db: Database
) -> None:
    body = {
        "title": "Disk almost full on db-1",
        "dedupe_key": "disk-db-1",
        "status": "firing",
        "runbook_url": "https://git.example.com/ops/runbooks/disk-full.md",
    }
    send_alert(bot, "generic", body, TOKEN)
    bot.settle()
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        [run] = session.exec(select(RunbookRun)).all()
    assert run.runbook_id == "disk-full"
    assert run.slack_message_ts is not None
    [posted] = [
        m for m in fake.messages(incident.slack_channel_id or "") if m.ts == run.slack_message_ts
    ]
    assert f"runbook:done:{run.id}:0" in buttons(posted)
    # Not also suggested, as if nobody had started it.
    suggested = [m for m in fake.messages(incident.slack_channel_id or "") if "may help" in m.text]
    assert all("disk-full" not in str(m.blocks) for m in suggested)
