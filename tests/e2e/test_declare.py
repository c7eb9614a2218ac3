"""Declaring: the channel, the summary, the announcement, and every way it can go wrong."""

from __future__ import annotations

import pytest
from sqlmodel import col, func, select

from bot import incidents as core
from bot.db import Database
from bot.models import EventKind, Incident, TimelineEvent
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks
from tests.e2e.conftest import RunningBot, texts


def incidents(db: Database) -> list[Incident]:
    with db.transaction() as session:
        return list(session.exec(select(Incident).order_by(col(Incident.number))).all())


def test_declare_with_a_title_sets_up_the_whole_channel(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    reply = slack.slash_command("Checkout returns 500s", user="ana.garcia", channel="general")
    assert reply.status == 200
    bot.settle()

    [incident] = incidents(db)
    assert (incident.ref, incident.title, incident.severity) == (
        "INC-1",
        "Checkout returns 500s",
        "SEV3",
    )
    channel = incident.slack_channel_id
    assert channel is not None
    assert fake.channel_json(channel)["name"] == "inc-1-checkout-returns-500s"
    assert fake.user_id("ana.garcia") in fake.members(channel)
    assert "Checkout returns 500s" in fake.channel_json(channel)["topic"]["value"]
    summary = fake.message(channel, incident.summary_message_ts or "")
    assert "INC-1: Checkout returns 500s" in texts(summary)
    assert fake.pins(channel) == [incident.summary_message_ts]
    announcement = fake.message(fake.channel_id("incidents"), incident.announcement_ts or "")
    assert f"<#{channel}>" in texts(announcement)
    [answer] = fake.response_posts(reply.request.response_url)
    assert "Declared *INC-1*" in texts(answer.payload)


def test_the_form_declares_with_everything_it_asks_for(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    reply = slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    assert view.payload["callback_id"] == blocks.DECLARE_VIEW
    responder = fake.user_id("ben.okafor")
    submitted = slack.submit_view(
        view.id,
        {
            "title": "Payments API timing out",
            "severity": "SEV1",
            "summary": "EU card payments fail since 02:40",
            "service": "payments-api",
            "responders": [responder],
            "private": ["private"],
        },
        user="ana.garcia",
    )
    assert submitted.status == 200 and reply.status == 200
    bot.settle()
    [incident] = incidents(db)
    assert (incident.severity, incident.service, incident.private) == ("SEV1", "payments-api", True)
    channel = incident.slack_channel_id or ""
    assert fake.channel_json(channel)["is_private"] is True
    assert responder in fake.members(channel)
    assert incident.announcement_ts is None  # private incidents are never announced
    assert fake.messages(fake.channel_id("incidents")) == []


def test_submitting_the_form_twice_declares_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    first = slack.submit_view(view.id, {"title": "Queue backlog"}, user="ana.garcia")
    bot.settle()
    # The same submission delivered again (a retry, or a second replica) declares nothing new.
    slack.send_raw(first.request.body)
    bot.settle()
    assert len(incidents(db)) == 1
    assert len(fake.calls_to("conversations.create")) == 1


@pytest.mark.parametrize("title", ["   ", "\u200b\u2060", "\u200f \ufeff"])
def test_an_empty_title_in_the_form_is_refused_in_the_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, title: str
) -> None:
    """Blank, or only characters that show nothing (zero-width, direction marks): refused under
    the title with the form still open and what was typed kept, not after it closed."""
    slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    reply = slack.submit_view(view.id, {"title": title, "summary": "EU cards"}, user="ana.garcia")
    assert reply.validation_errors == {"title": "Say in a few words what is wrong."}
    assert [v.id for v in fake.open_views("ana.garcia")] == [view.id]
    assert incidents(db) == []


def test_a_taken_channel_name_gets_a_suffix_not_a_second_incident(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    fake.add_channel("inc-1-db-down")
    slack.slash_command("DB down", user="ana.garcia", channel="general")
    bot.settle()
    [incident] = incidents(db)
    assert incident.slack_channel_name == "inc-1-db-down-2"


def test_slack_failing_twice_on_channel_creation_is_retried_by_itself(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    fake.fail("conversations.create", status=500, times=2)
    slack.slash_command("Search is slow", user="ana.garcia", channel="general")
    bot.settle()
    [incident] = incidents(db)
    assert incident.slack_channel_id is not None and incident.summary_message_ts is not None
    assert [c.status for c in fake.calls_to("conversations.create")] == [500, 500, 200]
    assert len([c for c in fake.channels() if c.name.startswith("inc-1-")]) == 1


def test_a_refused_channel_creation_is_reported_and_retry_completes_it(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    fake.fail("conversations.create", error="restricted_action", times=1)
    slack.slash_command("Search is slow", user="ana.garcia", channel="general")
    bot.settle()
    [incident] = incidents(db)
    assert incident.slack_channel_id is None
    assert EventKind.SLACK_FAILED in [e.kind for e in timeline_of(db, incident)]
    dm = fake.im_channel("ana.garcia")
    [notice] = [m for m in fake.messages(dm) if "could not create the incident channel" in texts(m)]
    slack.click(dm, notice.ts, blocks.RETRY_SETUP, user="ana.garcia")
    bot.settle()
    [incident] = incidents(db)
    assert incident.slack_channel_id is not None and incident.summary_message_ts is not None
    with db.transaction() as session:
        created = session.exec(
            select(func.count())
            .select_from(TimelineEvent)
            .where(TimelineEvent.kind == EventKind.CHANNEL_CREATED)
        ).one()
    assert created == 1


def timeline_of(db: Database, incident: Incident) -> list[TimelineEvent]:
    with db.read() as session:
        return core.timeline(session, incident.id or 0)


def answer_ts(fake: FakeSlack, user: str) -> str:
    return fake.ephemerals(user=fake.user_id(user))[-1].ts


def test_rate_limits_are_honoured_without_delaying_the_acknowledgement(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    fake.fail("chat.postMessage", error="ratelimited", status=429, retry_after=1, times=1)
    reply = slack.slash_command("Latency spike", user="ana.garcia", channel="general")
    assert reply.elapsed < 1.0
    bot.settle()
    [incident] = incidents(db)
    assert incident.summary_message_ts is not None
    statuses = [c.status for c in fake.calls_to("chat.postMessage")]
    assert statuses[0] == 429 and 200 in statuses


def test_a_long_title_is_shortened_and_kept_whole_in_the_summary(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    text = "Everything is on fire " * 140
    slack.slash_command(text, user="ana.garcia", channel="general")
    bot.settle()
    [incident] = incidents(db)
    assert len(incident.title) <= 300 and incident.title.endswith("…")
    assert incident.summary == text.strip()
    assert len(incident.slack_channel_name or "") <= 80


def test_typing_a_title_twice_declares_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    slack.slash_command("Login fails", user="ana.garcia", channel="general")
    bot.settle()
    second = slack.slash_command("Login fails", user="ana.garcia", channel="general")
    bot.settle()
    assert len(incidents(db)) == 1
    [answer] = fake.response_posts(second.request.response_url)
    assert "already declared INC-1" in texts(answer.payload)


def test_an_invite_slack_failed_is_tried_again_by_itself(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    responder = fake.user_id("ben.okafor")
    slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    fake.fail("conversations.invite", error="internal_error", times=2)
    reply = slack.submit_view(
        view.id, {"title": "Cache stampede", "responders": [responder]}, user="ana.garcia"
    )
    assert reply.status == 200
    bot.settle()
    [incident] = incidents(db)
    channel = incident.slack_channel_id or ""
    assert responder in fake.members(channel)
    assert fake.user_id("ana.garcia") in fake.members(channel)
    errors = [c for c in fake.calls_to("conversations.invite") if c.error == "internal_error"]
    assert len(errors) == 2


def test_a_long_emoji_title_is_cut_between_emoji_and_the_channel_keeps_its_marker(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """A title with no space to cut at, of emoji Slack counts twice (UTF-16): the title keeps
    whole flags, the header says what follows "<", and the purpose keeps Firebreak's marker
    (by which a retried channel creation finds its channel) within Slack's 250."""
    flags = "\U0001f1fa\U0001f1e6" * 200
    slack.slash_command("p99<5ms!" + flags, user="ana.garcia", channel="general")
    bot.settle()
    [incident] = incidents(db)
    assert incident.title.startswith("p99<5ms!\U0001f1fa\U0001f1e6")
    assert incident.title.endswith("\U0001f1fa\U0001f1e6…")
    channel = incident.slack_channel_id or ""
    purpose = fake.channel_json(channel)["purpose"]["value"]
    assert len(purpose.encode("utf-16-le")) // 2 <= 250
    assert f"firebreak:{incident.id}:" in purpose.rsplit(" · ", 1)[1]
    assert purpose.split(" · ")[0].endswith("\U0001f1fa\U0001f1e6…")
    summary = fake.message(channel, incident.summary_message_ts or "")
    header = summary.blocks[0]["text"]["text"]
    assert "INC-1: p99<5ms!\U0001f1fa\U0001f1e6" in header
    assert header.endswith("\U0001f1fa\U0001f1e6…")
