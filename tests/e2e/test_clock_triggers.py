"""A regulatory clock that starts on an event (here a severity reached) is started by the
``clock.sync`` effect that event queues, on whichever replica takes it, with no command typed."""

from __future__ import annotations

import pytest

from bot import incidents as core
from bot.config import Policy, SlackPolicy, policy_from_dict
from bot.db import Database
from bot.models import EventKind
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import declare


@pytest.fixture
def e2e_policy(fake: FakeSlack) -> Policy:
    policy = policy_from_dict(
        {
            "clocks": [
                {
                    "key": "brands",
                    "name": "Notify the card brands",
                    "starts_on": "severity:SEV1",
                    "deadlines": [{"after": "24h", "since": "awareness"}],
                }
            ]
        }
    )
    return policy.model_copy(
        update={"slack": SlackPolicy(announcements_channel=fake.channel_id("incidents"))}
    )


def test_a_severity_reached_starts_its_clock(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)

    def started() -> list[str]:
        with db.read() as session:
            return [
                str(e.data)
                for e in core.timeline(session, incident.id or 0)
                if e.kind == EventKind.CLOCK_STARTED
            ]

    assert started() == []  # SEV3: not yet
    slack.slash_command("sev 1", user="ana.garcia", channel=incident.slack_channel_id or "")
    bot.settle()
    [clock] = started()
    assert "brands" in clock
    slack.slash_command("sev 1", user="ana.garcia", channel=incident.slack_channel_id or "")
    bot.settle()
    assert len(started()) == 1  # started once
