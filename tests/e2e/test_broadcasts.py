"""Text Firebreak re-posts never carries a live @channel, @here, @everyone or user-group mention
(unless the policy allows it), and text from Slack is escaped exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import Policy, SlackPolicy
from bot.db import Database
from bot.markup import WORD_JOINER
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import ask, declare

# What Slack sends when someone types "@channel", "@here" and "@sre" in a slash command.
BROADCASTS = ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S0SRE0001|@sre>")


def posted(fake: Any, *channels: str) -> str:
    return "\n".join(texts(m) for c in channels for m in fake.messages(c))


def test_broadcast_mentions_are_shown_but_do_not_notify(
    fake: Any, bot: RunningBot, slack: Any, db: Database
) -> None:
    incident = declare(fake, bot, slack, db, title="<!channel> checkout is down")
    channel = incident.slack_channel_id or ""
    announcements = fake.channel_id("incidents")
    slack.slash_command(
        "update <!channel> rolled back, <!subteam^S0SRE0001|@sre> watching",
        user="ana.garcia",
        channel=channel,
    )
    slack.slash_command("note <!here> CPU at 95%", user="ana.garcia", channel=channel)
    slack.slash_command("resolve <!everyone> all clear", user="ana.garcia", channel=channel)
    bot.settle()

    everything = posted(fake, channel, announcements)
    for broadcast in BROADCASTS:
        assert broadcast not in everything
    assert f"@{WORD_JOINER}channel rolled back, @{WORD_JOINER}sre watching" in everything
    assert f"@{WORD_JOINER}everyone all clear" in everything
    assert incident.title == f"@{WORD_JOINER}channel checkout is down"
    timeline = ask(fake, bot, slack, "timeline", channel)
    assert f"@{WORD_JOINER}here CPU at 95%" in timeline
    assert "<!here>" not in timeline


@pytest.fixture
def e2e_policy(request: pytest.FixtureRequest, fake: Any) -> Policy:
    allow = getattr(request, "param", False)
    return Policy(
        slack=SlackPolicy(
            announcements_channel=fake.channel_id("incidents"), allow_broadcast_mentions=allow
        )
    )


@pytest.mark.parametrize("e2e_policy", [True], indirect=True)
def test_the_policy_may_allow_broadcast_mentions(
    fake: Any, bot: RunningBot, slack: Any, db: Database, e2e_policy: Policy
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.slash_command("update <!channel> rolled back", user="ana.garcia", channel=channel)
    bot.settle()
    assert "<!channel> rolled back" in posted(fake, channel)


def test_action_items_are_escaped_exactly_once(
    fake: Any, bot: RunningBot, slack: Any, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    # Slack sends "R&D <owner> -> x" typed in a command escaped once.
    slack.slash_command(
        "action Ask R&amp;D about &lt;pool&gt; sizes -&gt; 2x", user="ana.garcia", channel=channel
    )
    bot.settle()
    listed = ask(fake, bot, slack, "actions", channel)
    assert "1. Ask R&amp;D about &lt;pool&gt; sizes -&gt; 2x" in listed
    assert "&amp;amp;" not in listed and "&amp;lt;" not in listed
