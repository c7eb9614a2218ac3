"""On Enterprise Grid and Slack Connect, Slack refuses some people a channel (a member of
another workspace of the org, an external user): the others are invited all the same, and the
refused person is named."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.sandbox import FakeSlack
from bot.slack.gateway import SlackGateway, build_client


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(seed=3) as fake:
        yield fake


@pytest.mark.parametrize(
    "error",
    ["invitee_cant_see_channel", "org_user_not_in_team", "no_external_invite_permission"],
)
def test_one_person_slack_refuses_does_not_stop_the_others(slack: FakeSlack, error: str) -> None:
    gateway = SlackGateway(build_client(slack.token, slack.api_url))
    try:
        channel = slack.channel_id("incidents")
        ben, chloe = slack.user_id("ben.okafor"), slack.user_id("chloe.martin")
        slack.fail("conversations.invite", error=error, times=1)
        done, problems = gateway.invite(channel, [ben, chloe])
    finally:
        gateway.close()
    assert done == [chloe] and chloe in slack.members(channel)
    assert [(user, exc.error) for user, exc in problems] == [(ben, error)]
