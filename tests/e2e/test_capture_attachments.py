"""Capturing messages whose content is not in ``text``: what alerting integrations and incoming
webhooks post (attachments), and messages made of blocks only. The timeline gets what people
saw, by the name the integration posts under."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient

from bot import incidents as core
from bot.db import Database
from bot.models import EventKind, Incident
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import ask, declare

ALERT = [
    {
        # Slack sends attachment text escaped once, like a message's text.
        "fallback": "[Alerting] Checkout 5xx rate &gt; 5%",
        "color": "#d63232",
        "pretext": "Firing: 1 alert",
        "title": "[Alerting] Checkout 5xx rate &gt; 5%",
        "title_link": "https://grafana.example.com/d/checkout",
        "text": "5xx ratio 7.2% on payments-api (threshold 5%)",
        "fields": [{"title": "Region", "value": "eu-west-1", "short": True}],
    }
]
ALERT_TEXT = (
    "Firing: 1 alert\n[Alerting] Checkout 5xx rate &gt; 5%\n"
    "5xx ratio 7.2% on payments-api (threshold 5%)\nRegion: eu-west-1"
)


def webhook_message(ts: str, **content: Any) -> dict[str, Any]:
    """A message an incoming webhook posted, as Slack sends it: no ``user``, no ``text``."""
    return {
        "type": "message",
        "subtype": "bot_message",
        "text": "",
        "ts": ts,
        "bot_id": "B0GRAFANA1",
        "username": "Grafana",
        **content,
    }


def pick_shortcut(
    fake: FakeSlack, slack: SlackSimulator, channel: str, message: dict[str, Any], user: str
) -> str:
    """``user`` picks *Add to incident timeline* on ``message``; returns the response URL."""
    person = fake.user_id(user)
    response_url = fake.issue_response_url(channel, person)
    payload = {
        "type": "message_action",
        "token": slack.verification_token,
        "action_ts": f"{time.time():.6f}",
        "team": {"id": fake.team_id, "domain": fake.team_domain},
        "user": {"id": person, "username": user, "name": user, "team_id": fake.team_id},
        "channel": {"id": channel, "name": fake.channel(channel).name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": "add_to_timeline",
        "trigger_id": fake.issue_trigger(person),
        "response_url": response_url,
        "message_ts": message["ts"],
        "message": message,
    }
    reply = slack.send_raw(urlencode({"payload": json.dumps(payload)}))
    assert reply.status == 200
    return response_url


def captured(db: Database, incident: Incident) -> list[tuple[str | None, str]]:
    with db.transaction() as session:
        return [
            (e.actor_id, e.text)
            for e in core.timeline(session, incident.id or 0)
            if e.kind == EventKind.MESSAGE
        ]


def test_an_alert_posted_as_attachments_is_captured_with_its_text_and_sender(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    url = pick_shortcut(
        fake, slack, channel, webhook_message("1700000100.000200", attachments=ALERT), "ana.garcia"
    )
    bot.settle()
    assert [p.payload["text"] for p in fake.response_posts(url)] == [
        ":pushpin: Added to INC-1's timeline."
    ]
    assert captured(db, incident) == [("Grafana", ALERT_TEXT)]
    shown = ask(fake, bot, slack, "timeline", channel)
    assert "Grafana Firing: 1 alert [Alerting] Checkout 5xx rate &gt; 5%" in shown
    assert "<@Grafana>" not in shown


def test_an_integration_is_named_by_its_app_when_it_posts_under_no_name(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    message = webhook_message("1700000100.000300", attachments=[{"fallback": "Pod restarted"}])
    del message["username"]
    message["bot_profile"] = {"id": "B0UPTIME01", "name": "Uptime Kuma", "app_id": "A0UPTIME01"}
    pick_shortcut(fake, slack, incident.slack_channel_id or "", message, "ana.garcia")
    bot.settle()
    assert captured(db, incident) == [("Uptime Kuma", "Pod restarted")]
    shown = ask(fake, bot, slack, "timeline", incident.slack_channel_id or "")
    assert "Uptime Kuma Pod restarted" in shown and "<@Uptime Kuma>" not in shown


def test_an_alert_from_another_channel_travels_whole_in_the_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    fake.remove_bot_from_channel("incidents")  # Firebreak cannot read it: the form carries it
    message = webhook_message("1700000100.000400", attachments=ALERT)
    pick_shortcut(fake, slack, fake.channel_id("incidents"), message, "ana.garcia")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    slack.submit_view(view.id, {"incident": str(incident.id)}, user="ana.garcia")
    bot.settle()
    assert captured(db, incident) == [("Grafana", ALERT_TEXT)]
    # Answered by direct message at once: an ephemeral answer in a channel Firebreak is not
    # in could only fail first.
    assert [c.error for c in fake.calls_to("chat.postEphemeral") if not c.ok] == []
    dm = [texts(m) for m in fake.messages(fake.im_channel("ana.garcia"))]
    assert ":pushpin: Added to INC-1's timeline." in dm


def test_pinning_messages_without_text_captures_their_attachments_and_blocks(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    client = WebClient(token=fake.token, base_url=fake.api_url)
    alert = client.chat_postMessage(channel=channel, text="", attachments=ALERT)["ts"]
    with pytest.warns(UserWarning, match="top-level `text`"):  # the SDK's advice, not Slack's
        blocks_only = client.chat_postMessage(
            channel=channel,
            text="",
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Deploy* of payments-api"}},
                {
                    "type": "rich_text",
                    "elements": [
                        {
                            "type": "rich_text_section",
                            "elements": [
                                {"type": "text", "text": "v1.2.3 < v1.2.4 by "},
                                {"type": "user", "user_id": fake.user_id("ben.okafor")},
                            ],
                        }
                    ],
                },
            ],
        )["ts"]
        # A dashboard's snapshot, as Grafana's Slack contact point posts one: a picture that
        # shows what its title and alt text say.
        picture = client.chat_postMessage(
            channel=channel,
            text="",
            blocks=[
                {
                    "type": "image",
                    "image_url": "https://grafana.example.com/render/checkout.png",
                    "alt_text": "p99 latency > 2s since 03:10",
                    "title": {"type": "plain_text", "text": "Checkout p99"},
                }
            ],
        )["ts"]
    for ts in (alert, blocks_only, picture):
        slack.react(channel, ts, user="ana.garcia", reaction="pushpin")
    bot.settle()
    assert [text for _, text in captured(db, incident)] == [
        ALERT_TEXT,
        f"*Deploy* of payments-api\nv1.2.3 &lt; v1.2.4 by <@{fake.user_id('ben.okafor')}>",
        "Checkout p99\np99 latency &gt; 2s since 03:10",
    ]


def test_a_reply_in_a_thread_is_captured_not_the_threads_first_message(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Slack's ``conversations.replies`` puts a thread's first message ahead of its replies
    whatever its bounds say: asking for one message got the first, never the reply, and the
    person was told the message was gone."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.join(channel, "ben.okafor")
    parent = fake.user_says(channel, "ben.okafor", "checkout errors climbing")
    fake.user_says(channel, "ana.garcia", "seen from EU only", thread_ts=parent)
    reply = fake.user_says(channel, "ben.okafor", "root cause: expired cert on lb-2", parent)
    slack.react(channel, reply, user="ana.garcia", reaction="pushpin")
    bot.settle()
    assert [text for _, text in captured(db, incident)] == ["root cause: expired cert on lb-2"]


def test_a_pin_on_a_message_deleted_meanwhile_gives_no_advice_that_cannot_work(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """The :pushpin: arrives for a message deleted before Firebreak read it: the person is told
    it is gone, not to "remove :pushpin: and add it again" on a message that no longer exists."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.join(channel, "ben.okafor")
    bot.settle()
    ts, _ = slack.say(channel, "ben.okafor", "will be deleted")
    fake.user_reacts(channel, ts, "ben.okafor", "pushpin")
    event = slack.reaction_added_event(channel, ts, user="ben.okafor", reaction="pushpin")
    fake.delete_message(channel, ts)
    assert slack.event(event).status == 200
    bot.settle()
    [said] = [
        str(c.args.get("text"))
        for c in fake.calls_to("chat.postEphemeral")
        if "could not add" in str(c.args.get("text"))
    ]
    assert said == (
        ":warning: Firebreak could not add that message to the incident timeline: That message "
        "cannot be found any more (deleted?)."
    )
