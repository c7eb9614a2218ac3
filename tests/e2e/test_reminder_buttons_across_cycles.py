"""The Snooze and Stop buttons of a nudge act on the cycle that sent it: a reopened incident's
new reminders are never silenced from a message posted before the resolve, and a double click
on Snooze is one snooze."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from bot.db import Database
from bot.models import EventKind
from bot.reminders.worker import ReminderWorker
from bot.sandbox import FakeSlack, SlackSimulator
from bot.testing.harness import LocalBot
from tests.e2e.conftest import texts
from tests.e2e.helpers import ask, declare, kinds
from tests.e2e.test_reminders_and_access import (
    TickingWorker,
    core_timeline,
    e2e_policy,
    tick_later,
)

__all__ = ["e2e_policy"]  # the team's policy (commanders silence reminders)


@pytest.fixture
def worker(bot: LocalBot) -> Iterator[ReminderWorker]:
    yield TickingWorker(bot)


def _buttons(message: object) -> list[str]:
    blocks = getattr(message, "blocks", [])
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _said(fake: FakeSlack, channel: str, reply: object, user: str = "ana.garcia") -> list[str]:
    said = [texts(p.payload) for p in fake.response_posts(reply.request.response_url)]  # type: ignore[attr-defined]
    return said + [e.text for e in fake.ephemerals(channel, user=user)]


def test_buttons_on_a_nudge_from_before_a_resolve_never_silence_the_reopened_cycle(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    """Nudged (N1), resolved, reopened, nudged again (N2): Stop and Snooze on N1 are refused
    even though the new cycle has sent a nudge; N2's own buttons work."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.click(channel, incident.summary_message_ts or "", "incident:ack_ic", user="ana.garcia")
    bot.settle()
    assert tick_later(worker, 61) == 1  # SEV3: a status update every hour
    first = fake.messages(channel)[-1]
    old = _buttons(first)
    assert "INC-1 is resolved" in ask(fake, bot, slack, "INC-1 resolve fixed", "general")
    assert "INC-1 is reopened" in ask(fake, bot, slack, "INC-1 reopen flapping", "general")
    assert tick_later(worker, 61) == 1  # the reopened incident's first nudge
    second = fake.messages(channel)[-1]
    assert second.ts != first.ts and "status update" in texts(second)

    for action in (
        next(a for a in old if a.startswith(p)) for p in ("reminder:stop:", "reminder:snooze:")
    ):
        refused = slack.click(channel, first.ts, action, user="ana.garcia")
        bot.settle()
        assert any(
            "That button is on an earlier reminder" in t for t in _said(fake, channel, refused)
        )
    assert EventKind.REMINDER_STOPPED not in kinds(db, incident)
    assert EventKind.REMINDER_SNOOZED not in kinds(db, incident)
    assert tick_later(worker, 121) == 1  # the new cycle still nudges

    stop = next(a for a in _buttons(second) if a.startswith("reminder:stop:"))
    slack.click(channel, second.ts, stop, user="ana.garcia")
    bot.settle()
    assert EventKind.REMINDER_STOPPED in kinds(db, incident)


def test_a_double_click_on_snooze_is_one_snooze(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    """Snooze 30m clicked twice on the same nudge (two Slack actions): one snooze on the
    timeline, and the second click is told until when it is already snoozed."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.click(channel, incident.summary_message_ts or "", "incident:ack_ic", user="ana.garcia")
    bot.settle()
    assert tick_later(worker, 61) == 1
    nudge = fake.messages(channel)[-1]
    snooze = next(a for a in _buttons(nudge) if a.startswith("reminder:snooze:") and ":30:" in a)
    first = slack.click(channel, nudge.ts, snooze, user="ana.garcia")
    bot.settle()
    second = slack.click(channel, nudge.ts, snooze, user="ana.garcia")
    bot.settle()
    snoozed = [e for e in core_timeline(db, incident) if e.kind == EventKind.REMINDER_SNOOZED]
    assert len(snoozed) == 1
    until = datetime.fromisoformat(snoozed[0].data["until"])
    assert _said(fake, channel, first)[0] == "Snoozed for 30 minutes."
    again = [texts(p.payload) for p in fake.response_posts(second.request.response_url)]
    assert again == [f"Already snoozed until {until:%H:%M} UTC."]
