"""End to end: the real bot (Bolt app, Starlette, uvicorn) over HTTP, signed Slack-shaped
requests from the simulator, and the fake Slack recording every Web API call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from bot.config import Policy, Settings, SlackPolicy
from bot.db import Database
from bot.observability import ContextThreadPoolExecutor
from bot.runtime import Firebreak
from bot.slack.app import build_app
from bot.slack.flows import IncidentFlows
from bot.testing import FakeSlack, SlackSimulator
from bot.web import create_web_app

SECRET = "8f14e45fceea167a5a36dedd4bea2543"


class RunningBot:
    """The bot serving on a free port; ``settle()`` waits until acknowledged work is done."""

    def __init__(self, firebreak: Firebreak) -> None:
        self.firebreak = firebreak
        self.executor = ContextThreadPoolExecutor(max_workers=16)
        self.flows = IncidentFlows(firebreak)
        self.bolt = build_app(firebreak, flows=self.flows, executor=self.executor)
        config = uvicorn.Config(
            create_web_app(self.bolt, firebreak.db, signing_secret=SECRET),
            host="127.0.0.1",
            port=0,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the bot did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def settle(self) -> None:
        assert self.executor.wait_idle(30), "the bot did not finish its work in 30 s"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.executor.shutdown(wait=True)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(seed=7) as running:
        yield running
    assert running.errors == [], "the fake failed on a request:\n" + "\n".join(running.errors)


@pytest.fixture
def e2e_policy(fake: FakeSlack) -> Policy:
    return Policy(slack=SlackPolicy(announcements_channel=fake.channel_id("incidents")))


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
    running = RunningBot(Firebreak.create(settings, e2e_policy, database=db))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def slack(fake: FakeSlack, bot: RunningBot) -> SlackSimulator:
    return SlackSimulator(fake, f"{bot.url}/slack/events", SECRET)


def texts(message: Any) -> str:
    """All readable text of a message, ephemeral or response the fake holds."""
    from bot.slack.limits import iter_texts

    if isinstance(message, dict):
        return "\n".join([str(message.get("text", "")), *iter_texts(message.get("blocks") or [])])
    return "\n".join([message.text, *iter_texts(message.blocks)])
