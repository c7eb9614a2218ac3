"""Requests are answered without asking Slack who the bot is: Slack failing ``auth.test`` at
that moment must not drop an event or tell people to reinstall the app."""

from __future__ import annotations

from sqlmodel import select

from bot import incidents as core
from bot.db import Database
from bot.models import EventKind, Incident
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import answer


def auth_tests(fake: FakeSlack) -> int:
    return sum(1 for call in fake.calls if call.method == "auth.test")


def test_requests_are_recorded_while_slack_fails_auth_test(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """From the first request on: the bot asked ``auth.test`` when it started (as the
    readiness check does), and Slack fails it from then on."""
    bot.firebreak.gateway.bot_user_id()
    fake.fail("auth.test", status=500, times=None)
    asked = auth_tests(fake)

    reply = slack.slash_command("Search is slow", user="dev.patel", channel="general")
    bot.settle()
    with db.transaction() as session:
        incident = session.exec(select(Incident)).one()
    channel = incident.slack_channel_id or ""
    ts = fake.user_says(channel, "dev.patel", "Rolled back the 14:02 deploy")
    fake.user_reacts(channel, ts, "dev.patel", "pushpin")
    pinned = slack.event(
        slack.reaction_added_event(channel, ts, user="dev.patel", reaction="pushpin"),
        event_id="Ev0AUTH0001",
    )
    bot.settle()

    assert (reply.status, pinned.status) == (200, 200)
    assert "reinstall" not in (answer(fake, reply) + pinned.text).casefold()
    assert auth_tests(fake) == asked  # nothing on the request path asked Slack
    with db.transaction() as session:
        assert incident.title == "Search is slow"
        captured = [
            e.text for e in core.timeline(session, incident.id or 0) if e.kind == EventKind.MESSAGE
        ]
        assert captured == ["Rolled back the 14:02 deploy"]


def test_an_event_type_without_a_listener_is_acknowledged(
    bot: RunningBot, slack: SlackSimulator
) -> None:
    """An operator who subscribes the app to more events than Firebreak listens to must not
    have Slack retry them and then switch the app's events off."""
    reply = slack.event(
        {"type": "channel_rename", "channel": {"id": "C0RENAMED1", "name": "inc-9-renamed"}},
        event_id="Ev0RENAME01",
    )
    assert reply.status == 200
