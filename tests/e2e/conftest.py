"""End to end: the real bot (Bolt app, Starlette, uvicorn) over HTTP, signed Slack-shaped
requests from the simulator, and the fake Slack recording every Web API call."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Policy, PostmortemPolicy, Settings, SlackPolicy
from bot.db import Database
from bot.runbooks.catalog import load_catalog
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack, SlackSimulator
from bot.testing.harness import LocalBot

SECRET = "8f14e45fceea167a5a36dedd4bea2543"
ROOT = Path(__file__).resolve().parents[2]


RunningBot = LocalBot


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(seed=7) as running:
        yield running
    assert running.errors == [], "the fake failed on a request:\n" + "\n".join(running.errors)


@pytest.fixture
def e2e_policy(fake: FakeSlack, tmp_path: Path) -> Policy:
    # Drafts written on close go to the test's own directory, not the working directory.
    return Policy(
        slack=SlackPolicy(announcements_channel=fake.channel_id("incidents")),
        postmortem=PostmortemPolicy(output_dir=tmp_path / "postmortems"),
    )


@pytest.fixture
def bot(
    fake: FakeSlack, db: Database, e2e_policy: Policy, database_url: str
) -> Iterator[RunningBot]:
    settings = Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
    )
    catalog = load_catalog(e2e_policy, extra=[ROOT / "runbooks"])
    running = LocalBot(
        Firebreak.create(settings, e2e_policy, database=db, catalog=catalog),
        signing_secret=SECRET,
    ).start()
    yield running
    running.stop()


@pytest.fixture
def slack(fake: FakeSlack, bot: RunningBot) -> SlackSimulator:
    return SlackSimulator(fake, bot.events_url, SECRET)


def texts(message: Any) -> str:
    """All readable text of a message, ephemeral or response the fake holds."""
    from bot.slack.limits import iter_texts

    if isinstance(message, dict):
        return "\n".join([str(message.get("text", "")), *iter_texts(message.get("blocks") or [])])
    return "\n".join([message.text, *iter_texts(message.blocks)])


def send_alert(bot: RunningBot, source: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    """POST an alert webhook with a bearer token; the JSON answer (a 200 is required)."""
    request = urllib.request.Request(
        f"{bot.url}/alerts/{source}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
        return dict(json.loads(answer.read()))
