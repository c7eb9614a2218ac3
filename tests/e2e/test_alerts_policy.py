"""The alert receiver of the running bot follows the policy the bot was given, as
``firebreak serve``'s does: here every alert of a group resolving mitigates by itself."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import select

from bot.alerts.policy import AlertsPolicy
from bot.config import Policy, PostmortemPolicy, SlackPolicy
from bot.db import Database
from bot.models import Incident
from bot.sandbox import FakeSlack
from tests.e2e.conftest import RunningBot

TOKEN = "alerts-token-for-the-e2e-policy-test"


@pytest.fixture
def e2e_policy(fake: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Policy:
    monkeypatch.setenv("FIREBREAK_ALERTS_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)  # no firebreak.toml here: only the policy given can apply
    return Policy(
        slack=SlackPolicy(announcements_channel=fake.channel_id("incidents")),
        postmortem=PostmortemPolicy(output_dir=tmp_path / "postmortems"),
        alerts=AlertsPolicy(on_all_resolved="mitigate"),
    )


def send(bot: RunningBot, status: str) -> int:
    body = {"title": "Checkout 5xx", "dedupe_key": "checkout-5xx", "status": status}
    request = urllib.request.Request(
        f"{bot.url}/alerts/generic",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def test_the_alert_receiver_follows_the_policy_the_bot_was_given(
    bot: RunningBot, db: Database
) -> None:
    assert send(bot, "firing") == 200
    bot.settle()
    assert send(bot, "resolved") == 200
    bot.settle()
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
    assert incident.status == "monitoring"  # mitigated by itself, nobody asked
