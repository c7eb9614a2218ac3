"""A click whose value Firebreak never wrote (an old message, a tampered request, digits Python
reads but the database cannot store) is answered at once, plainly, and not tried again; the
person's next request in the same channel does not wait behind it."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import col, select

from bot.db import Database
from bot.effects import kinds
from bot.effects.models import Effect
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import alerts
from bot.slack import blocks as B
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import declare
from tests.e2e.helpers import kinds as timeline_kinds

OUT_OF_DATE = "That button is out of date or not valid"


def summary_ts(fake: FakeSlack, channel: str) -> str:
    for message in fake.messages(channel):
        if B.ACKNOWLEDGE in json.dumps(message.blocks):
            return message.ts
    raise AssertionError("no pinned summary with an Acknowledge button")


def click_with(
    fake: FakeSlack,
    slack: SlackSimulator,
    channel: str,
    message_ts: str,
    action_id: str,
    value: str,
    *,
    block_id: str = "tampered",
    user: str = "ana.garcia",
) -> str:
    """``user`` clicks a button of ``message_ts`` whose value is ``value`` (a button Firebreak
    did not draw, signed as Slack signs it); returns the click's response URL."""
    person = fake.user_json(user)
    response_url = fake.issue_response_url(channel, person["id"], message_ts=message_ts)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": person["id"], "username": person["name"], "team_id": fake.team_id},
        "api_app_id": fake.app_id,
        "token": slack.verification_token,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "trigger_id": fake.issue_trigger(person["id"]),
        "team": {"id": fake.team_id, "domain": fake.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": fake.channel(channel).name},
        "response_url": response_url,
        "state": {"values": {}},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "text": {"type": "plain_text", "text": "Go"},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    reply = slack.send_raw(urlencode({"payload": json.dumps(payload)}))
    assert reply.status == 200
    return response_url


def recorded_clicks(db: Database) -> list[tuple[str, int, str | None]]:
    """(state, attempts, last error) of every recorded click."""
    with db.read() as session:
        rows = session.exec(
            select(Effect).where(col(Effect.kind) == kinds.SLACK_REQUEST).order_by(col(Effect.id))
        ).all()
    return [(r.state, r.attempts, r.last_error) for r in rows if r.data.get("kind") == "action"]


@pytest.mark.parametrize(
    "value",
    [
        "2147483648",  # digits, one more than the database's integer holds
        "99999999999999999999999",
        "\u00b2",  # "²": str.isdigit says yes, int() says no
        "\uff11",  # "1" written full width
        "abc",
        "-1",
    ],
)
def test_a_button_with_a_value_firebreak_never_wrote_is_answered_once_and_not_retried(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, value: str
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    url = click_with(fake, slack, channel, summary_ts(fake, channel), B.ACKNOWLEDGE, value)
    bot.settle()

    said = [texts(p.payload) for p in fake.response_posts(url)]
    assert len(said) == 1 and OUT_OF_DATE in said[0], said
    assert "try it again" not in said[0]
    assert recorded_clicks(db) == [("done", 1, None)]
    assert "acknowledged" not in timeline_kinds(db, incident)


def test_an_alert_button_with_a_broken_value_is_answered_and_not_retried(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    declare(fake, bot, slack, db)
    triage = fake.channel_id("incidents")
    url = click_with(fake, slack, triage, "1700000000.000100", alerts.IGNORE, "abc")
    bot.settle()

    said = [texts(p.payload) for p in fake.response_posts(url)]
    assert len(said) == 1 and OUT_OF_DATE in said[0], said
    assert recorded_clicks(db) == [("done", 1, None)]


def test_the_persons_next_command_in_the_channel_runs_at_once_after_a_broken_click(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    click_with(fake, slack, channel, summary_ts(fake, channel), B.ACKNOWLEDGE, "\u00b2")
    update = slack.slash_command("update DB failover done", user="ana.garcia", channel=channel)
    assert update.status == 200
    started = time.monotonic()
    bot.settle()

    assert "status_update" in timeline_kinds(db, incident)
    assert time.monotonic() - started < 5  # not after the broken click's retries
    assert recorded_clicks(db) == [("done", 1, None)]
    posted = [texts(m) for m in fake.messages(channel)]
    assert any("DB failover done" in text for text in posted)


def _interaction(fake: FakeSlack, slack: SlackSimulator, kind: str, **fields: Any) -> Any:
    person = fake.user_json("ana.garcia")
    payload = {
        "type": kind,
        "user": {"id": person["id"], "username": person["name"], "team_id": fake.team_id},
        "api_app_id": fake.app_id,
        "token": slack.verification_token,
        "team": {"id": fake.team_id, "domain": fake.team_domain},
        "trigger_id": fake.issue_trigger(person["id"]),
        **fields,
    }
    return slack.send_raw(urlencode({"payload": json.dumps(payload)}))


def test_interactions_nothing_handles_are_acknowledged_and_change_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """A link button, another app version's button, form or shortcut, a menu asking for
    options, a legacy attachment button: Slack shows the person an error unless each is
    answered 200 (an empty option list for the menu)."""
    general = fake.channel_id("general")
    calls = len(fake.calls)
    message = {"container": {"type": "message", "message_ts": "1.1", "channel_id": general}}
    button = {"type": "button", "block_id": "b", "action_ts": f"{time.time():.6f}"}
    replies = {
        "link button": _interaction(
            fake,
            slack,
            "block_actions",
            **message,
            actions=[{**button, "action_id": "open-dashboard", "url": "https://grafana.example"}],
        ),
        "unknown button": _interaction(
            fake, slack, "block_actions", **message, actions=[{**button, "action_id": "v0:ack"}]
        ),
        "unknown shortcut": _interaction(fake, slack, "shortcut", callback_id="old_shortcut"),
        "unknown message shortcut": _interaction(
            fake,
            slack,
            "message_action",
            callback_id="old_message_shortcut",
            channel={"id": general},
            message={"ts": "1.1", "text": "x"},
        ),
        "unknown form": _interaction(
            fake,
            slack,
            "view_submission",
            view={"id": "V1", "type": "modal", "callback_id": "old_form", "state": {"values": {}}},
        ),
        "menu options": _interaction(
            fake,
            slack,
            "block_suggestion",
            action_id="service",
            block_id="b",
            value="chec",
            view={"id": "V1", "type": "modal", "callback_id": "declare"},
        ),
        "legacy attachment button": _interaction(
            fake,
            slack,
            "interactive_message",
            callback_id="legacy",
            actions=[{"name": "ack", "type": "button", "value": "1"}],
            channel={"id": general},
        ),
    }
    bot.settle()
    assert {name: reply.status for name, reply in replies.items()} == dict.fromkeys(replies, 200)
    assert json.loads(replies["menu options"].body) == {"options": []}
    assert len(fake.calls) == calls  # nothing said, opened or changed in Slack
    with db.read() as session:
        assert session.exec(select(Effect)).all() == []
