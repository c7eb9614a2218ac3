"""Reminders when the incident channel stops taking posts and Slack's event about it never
arrived (Firebreak was restarting, the delivery was lost): the first reminder Slack refuses
tells Firebreak what happened to the channel, later ones go where people read them, and a
retry never replays reminders whose words are no longer true."""

from __future__ import annotations

from sqlmodel import select

from bot.db import Database
from bot.effects import kinds
from bot.effects.models import Effect
from bot.models import EventKind
from bot.reminders.worker import ReminderWorker
from bot.sandbox import FakeSlack, SlackSimulator
from bot.testing.harness import LocalBot
from tests.e2e.helpers import declare, declare_private
from tests.e2e.test_reminders_and_access import (  # noqa: F401  (fixtures)
    core_timeline,
    e2e_policy,
    tick_later,
)
from tests.e2e.test_reminders_and_access import worker as worker


def test_a_reminder_refused_for_not_in_channel_marks_the_channel_lost(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.remove_bot_from_channel(channel)  # no channel_left event reaches Firebreak
    tick_later(worker, 31)  # the escalation: posted in the channel, refused
    kinds_seen = [e.kind for e in core_timeline(db, incident)]
    assert EventKind.CHANNEL_LOST in kinds_seen


def test_a_reminder_refused_in_a_private_channel_firebreak_left_marks_it_lost(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    """Slack answers channel_not_found, not not_in_channel, for a private channel Firebreak is
    no longer in."""
    incident = declare_private(fake, bot, slack, db)
    fake.remove_bot_from_channel(incident.slack_channel_id or "")
    tick_later(worker, 31)
    lost = [e for e in core_timeline(db, incident) if e.kind == EventKind.CHANNEL_LOST]
    assert len(lost) == 1


def test_a_reminder_refused_for_an_archived_channel_marks_it_archived(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.archive(channel)  # no channel_archive event reaches Firebreak
    tick_later(worker, 31)
    archived = [e for e in core_timeline(db, incident) if e.kind == EventKind.CHANNEL_ARCHIVED]
    assert len(archived) == 1


def test_a_retry_does_not_replay_reminders_or_failure_notices(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    """Slack refused every post for hours (a revoked token), then works again: `/incident
    retry` tries the summary again, not the escalations and nudges of hours ago ("not
    acknowledged after 31m") nor the notices that something failed."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    for method in ("chat.postMessage", "chat.update", "conversations.open"):
        fake.fail(method, error="token_revoked", times=None)
    for minutes in (31, 61, 121):
        tick_later(worker, minutes)
    # An update: its post and the summary's edit fail.
    slack.slash_command(
        "update Rolled back; error rate falling", user="ana.garcia", channel=channel
    )
    bot.settle()
    with db.read() as session:
        failed = session.exec(select(Effect).where(Effect.state == "failed")).all()
    moments = [row for row in failed if row.data.get("moment")]
    assert moments and any(row.kind == kinds.REFRESH for row in failed)
    fake.clear_failures()
    posted_before = len(fake.messages(channel))
    retry = slack.slash_command("retry", user="ana.garcia", channel=channel)
    bot.settle()
    posted = [m.text for m in fake.messages(channel)[posted_before:]]
    assert not [text for text in posted if "escalat" in text.lower() or "not acknowledged" in text]
    with db.read() as session:
        again = session.exec(select(Effect).where(Effect.state == "failed")).all()
    assert {row.id for row in again} == {row.id for row in moments}
    answer = " ".join(
        p.payload.get("text", "") for p in fake.response_posts(retry.request.response_url)
    )
    assert str(len(failed) - len(moments)) in answer
    # An auditor reading "could not post" reads, after it, that it was posted in the end.
    recovered = [e for e in core_timeline(db, incident) if e.kind == EventKind.SLACK_RECOVERED]
    assert sorted(e.data["effect"] for e in recovered) == sorted(
        row.id or 0 for row in failed if row not in moments
    )
    assert all(e.text.endswith("after all, asked again after it had failed") for e in recovered)
