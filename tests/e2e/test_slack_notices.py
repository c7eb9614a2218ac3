"""What Slack tells the bot about itself: that it is dropping its events (``app_rate_limited``),
and who joined an incident channel (the welcome)."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from bot.db import Database
from bot.models import Incident
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import declare

DROPPED = "firebreak_slack_events_rate_limited_total"


def dropped_count(bot: RunningBot) -> float:
    with urllib.request.urlopen(f"{bot.url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == DROPPED
    )


def test_slack_dropping_events_is_answered_logged_and_counted(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = dropped_count(bot)
    # As Slack sends it: no event_id, no inner event (api.slack.com/events/app_rate_limited).
    notice = {
        "token": slack.verification_token,
        "type": "app_rate_limited",
        "team_id": fake.team_id,
        "minute_rate_limited": 1518467820,
        "api_app_id": fake.app_id,
    }
    with caplog.at_level(logging.WARNING):
        reply = slack.send_raw(json.dumps(notice), content_type="application/json")
    assert reply.status == 200
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "app_rate_limited" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert getattr(warnings[0], "minute_rate_limited", None) == 1518467820
    assert dropped_count(bot) == before + 1


def test_the_person_who_declared_is_not_welcomed_to_their_own_incident(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    # Firebreak invited the reporter when it created the channel; Slack says so.
    joined = slack.member_joined_channel_event(channel, "ana.garcia")
    joined["inviter"] = fake.bot_user_id
    assert slack.event(joined).status == 200
    # Someone joining by themselves is welcomed.
    assert slack.join(channel, "ben.okafor").status == 200
    bot.settle()
    welcomes = [e for e in fake.ephemerals(channel) if e.text.startswith("Welcome to INC-1")]
    assert [e.user for e in welcomes] == [fake.user_id("ben.okafor")]


@pytest.mark.parametrize("join_first", [True, False], ids=["join-first", "link-first"])
def test_responders_invited_as_the_channel_is_made_are_not_welcomed_whichever_comes_first(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    join_first: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slack's ``member_joined_channel`` for the people Firebreak invites while it makes the
    channel races the channel's link to the incident: before, a responder got the welcome or
    not depending on which came first. They join a channel whose first message is the
    summary: no welcome either way. Someone invited later is welcomed."""
    responder = fake.user_id("ben.okafor")
    slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    if join_first:  # Slack's join event reaches Firebreak before the channel is linked
        invite = fake._methods["conversations.invite"]

        def invite_and_tell(args: Any) -> Any:
            result = invite(args)
            event = {
                "type": "member_joined_channel",
                "user": responder,
                "channel": args.text("channel"),
                "channel_type": "C",
                "team": fake.team_id,
                "inviter": fake.bot_user_id,
            }
            # delivered on Slack's own connection while the channel is still being made
            told = threading.Thread(target=slack.event, args=(event,))
            told.start()
            told.join(10)
            return result

        monkeypatch.setitem(fake._methods, "conversations.invite", invite_and_tell)
    slack.submit_view(
        view.id, {"title": "Cache stampede", "responders": [responder]}, user="ana.garcia"
    )
    bot.settle()
    with db.read() as session:
        [incident] = session.exec(select(Incident)).all()
    channel = incident.slack_channel_id or ""
    if not join_first:
        event = slack.member_joined_channel_event(channel, "ben.okafor")
        event["inviter"] = fake.bot_user_id
        slack.event(event)
    assert slack.join(channel, "dev.patel").status == 200
    bot.settle()
    welcomes = [e for e in fake.ephemerals(channel) if e.text.startswith("Welcome to INC-1")]
    assert [e.user for e in welcomes] == [fake.user_id("dev.patel")]
