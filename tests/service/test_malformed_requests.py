"""Requests Slack would never send: refused with 401 (a timestamp that is not whole seconds) or
400 (signed, but not a shape Slack sends), never a 5xx, and nothing stored or sent to Slack."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import text

from bot.config import Policy, Settings
from bot.db import Database
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack
from bot.sandbox.signing import JSON_CONTENT_TYPE, sign, signed_headers
from bot.schema import metadata
from bot.testing.harness import LocalBot

SECRET = "c4ca4238a0b923820dcc509a6f75849b"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(seed=13) as running:
        yield running


@pytest.fixture
def bot(fake: FakeSlack, db: Database, database_url: str) -> Iterator[LocalBot]:
    settings = Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
    )
    running = LocalBot(
        Firebreak.create(settings, Policy(), database=db), signing_secret=SECRET
    ).start()
    yield running
    running.stop()


def post(bot: LocalBot, body: str, headers: dict[str, str]) -> tuple[int, str]:
    parts = urlsplit(bot.events_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("POST", parts.path, body=body.encode("utf-8"), headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        connection.close()


def assert_nothing_happened(bot: LocalBot, fake: FakeSlack, db: Database) -> None:
    bot.settle()
    with db.transaction() as session:
        stored = {
            table.name: session.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one()
            for table in metadata.sorted_tables
            if table.name != "counters"  # the incident counter's row is always there
        }
    assert {name: count for name, count in stored.items() if count} == {}
    assert fake.calls == []


def form(payload: object) -> str:
    return "payload=" + quote(json.dumps(payload))


@pytest.mark.parametrize("timestamp", ["abc", "", "1e9", "12.5", "-5", "0x10", "1700000000.0"])
def test_a_timestamp_that_is_not_whole_seconds_is_401(
    bot: LocalBot, fake: FakeSlack, db: Database, timestamp: str
) -> None:
    body = "command=%2Fincident&text=Checkout+down&user_id=U1&channel_id=C1"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(SECRET, timestamp, body),
    }
    assert post(bot, body, headers) == (401, "invalid request timestamp")
    assert_nothing_happened(bot, fake, db)


def test_a_missing_timestamp_is_401(bot: LocalBot, fake: FakeSlack, db: Database) -> None:
    body = "command=%2Fincident&text=x&user_id=U1"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Signature": "v0=0"}
    assert post(bot, body, headers) == (401, "invalid request timestamp")
    assert_nothing_happened(bot, fake, db)


USER = {"id": "U1", "name": "ana"}

MALFORMED_EVENTS = {
    "a JSON array": ("[]", "the body is not a JSON object"),
    "null": ("null", "the body is not a JSON object"),
    "a string": ('"event_callback"', "the body is not a JSON object"),
    "broken JSON": (
        '{"type": ',
        "the body is not JSON (Expecting value at line 1 column 10)",
    ),
    "no type": ("{}", "type is missing or not a string"),
    "an event that is a string": (
        json.dumps({"type": "event_callback", "event_id": "Ev1", "event": "reaction_added"}),
        "event is not an object",
    ),
    "an event without a type": (
        json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {"user": "U1"}}),
        "event.type is missing or not a string",
    ),
    "a reaction whose item is a string": (
        json.dumps(
            {
                "type": "event_callback",
                "event_id": "Ev1",
                "event": {"type": "reaction_added", "user": "U1", "item": "C1"},
            }
        ),
        "event.item is not an object",
    ),
    "an event id that is a number": (
        json.dumps({"type": "event_callback", "event_id": 7, "event": {"type": "app_home_opened"}}),
        "event_id is not a string",
    ),
    "a url verification without a challenge": (
        json.dumps({"type": "url_verification"}),
        "challenge is missing or not a string",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_EVENTS))
def test_a_signed_malformed_event_is_400(
    bot: LocalBot, fake: FakeSlack, db: Database, case: str
) -> None:
    body, problem = MALFORMED_EVENTS[case]
    headers = signed_headers(SECRET, body, content_type=JSON_CONTENT_TYPE)
    assert post(bot, body, headers) == (400, f"malformed request: {problem}")
    assert_nothing_happened(bot, fake, db)


MALFORMED_FORMS = {
    "payload=[1,2]": ("payload=%5B1%2C2%5D", "payload is not a JSON object"),
    "payload=null": ("payload=null", "payload is not a JSON object"),
    "broken JSON": (
        "payload=%7Bbroken",
        "payload is not JSON "
        "(Expecting property name enclosed in double quotes at line 1 column 2)",
    ),
    "two payloads": (
        form({"type": "block_actions"}) + "&" + form({"type": "block_actions"}),
        "more than one payload",
    ),
    "no type": (form({"user": USER}), "payload.type is missing or not a string"),
    "no user": (
        form({"type": "block_actions", "actions": [{"action_id": "incident:ack"}]}),
        "payload.user is not an object",
    ),
    "a user that is a string": (
        form({"type": "block_actions", "user": "U1", "actions": [{"action_id": "a"}]}),
        "payload.user is not an object",
    ),
    "a user without an id": (
        form({"type": "block_actions", "user": {"name": "ana"}, "actions": [{"action_id": "a"}]}),
        "payload.user.id is missing or not a string",
    ),
    "block_actions with no actions": (
        form({"type": "block_actions", "user": USER, "actions": []}),
        "payload.actions is not a non-empty list",
    ),
    "block_actions whose actions is an object": (
        form({"type": "block_actions", "user": USER, "actions": {"action_id": "a"}}),
        "payload.actions is not a non-empty list",
    ),
    "an action that is a string": (
        form({"type": "block_actions", "user": USER, "actions": ["incident:ack"]}),
        "payload.actions.0 is not an object",
    ),
    "an action without an action_id": (
        form({"type": "block_actions", "user": USER, "actions": [{"value": "1"}]}),
        "payload.actions.0.action_id is missing or not a string",
    ),
    "a channel that is a string": (
        form(
            {
                "type": "block_actions",
                "user": USER,
                "channel": "C1",
                "actions": [{"action_id": "incident:ack"}],
            }
        ),
        "payload.channel is not an object",
    ),
    "a view submission whose view is a string": (
        form({"type": "view_submission", "user": USER, "view": "V1"}),
        "payload.view is not an object",
    ),
    "a view submission whose values are a list": (
        form({"type": "view_submission", "user": USER, "view": {"state": {"values": []}}}),
        "payload.view.state.values is not an object of objects",
    ),
    "a shortcut without a callback_id": (
        form({"type": "message_action", "user": USER, "message": {"ts": "1.2"}}),
        "payload.callback_id is missing or not a string",
    ),
    "a command without a user": (
        "command=%2Fincident&text=Checkout+down&channel_id=C1",
        "user_id is missing",
    ),
    "neither": ("token=abc&team_id=T1", "neither an event, an interaction nor a command"),
}


@pytest.mark.parametrize("case", list(MALFORMED_FORMS))
def test_a_signed_malformed_interaction_or_command_is_400(
    bot: LocalBot, fake: FakeSlack, db: Database, case: str
) -> None:
    body, problem = MALFORMED_FORMS[case]
    assert post(bot, body, signed_headers(SECRET, body)) == (400, f"malformed request: {problem}")
    assert_nothing_happened(bot, fake, db)


def test_what_slack_really_sends_still_passes(bot: LocalBot, fake: FakeSlack, db: Database) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV"})
    status, answer = post(
        bot, challenge, signed_headers(SECRET, challenge, content_type=JSON_CONTENT_TYPE)
    )
    assert (status, json.loads(answer)) == (200, {"challenge": "3eZbrw1aBm2rZgRNFdxV"})
    ssl_check = "ssl_check=1&token=legacy"
    assert post(bot, ssl_check, signed_headers(SECRET, ssl_check))[0] == 200
    # Slack's certificate check may come unsigned: answered empty, nothing read or stored.
    assert post(bot, ssl_check, {"Content-Type": "application/x-www-form-urlencoded"}) == (200, "")
    # Outside Enterprise Grid, Slack sends "enterprise": null: not malformed.
    click = form(
        {
            "type": "block_actions",
            "user": USER,
            "enterprise": None,
            "team": {"id": "T1"},
            "actions": [{"action_id": "home:unknown", "value": "x"}],
        }
    )
    assert post(bot, click, signed_headers(SECRET, click))[0] == 200
