"""A capture reaction with skin tones: Slack names a toned reaction ``raised_hand::skin-tone-3``
(and lists each tone apart on the message); it is the configured emoji all the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Policy
from bot.config.policy import PostmortemPolicy, SlackPolicy
from bot.db import Database
from bot.models import EventKind
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import declare, kinds


@pytest.fixture
def e2e_policy(fake: FakeSlack, tmp_path: Path) -> Policy:
    return Policy(
        slack=SlackPolicy(capture_reaction="raised_hand"),
        postmortem=PostmortemPolicy(output_dir=tmp_path / "postmortems"),
    )


def test_a_toned_capture_reaction_captures_and_its_removal_withdraws(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said, _ = slack.say(channel, "ana.garcia", "restarting the consumers now")
    slack.react(channel, said, user="ana.garcia", reaction="raised_hand::skin-tone-3")
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 1

    slack.react(channel, said, user="ana.garcia", reaction="raised_hand")  # a second, untoned
    slack.unreact(channel, said, user="ana.garcia", reaction="raised_hand::skin-tone-3")
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 1  # still carries the emoji
    slack.unreact(channel, said, user="ana.garcia", reaction="raised_hand")
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 0
