"""Changes said in the incident channel are cut where Slack allows, never inside a mention."""

from __future__ import annotations

import pytest

from bot.config import Policy
from bot.models import EventKind, Incident, TimelineEvent
from bot.slack import event_notices
from bot.slack.limits import SECTION_TEXT, iter_texts, message_errors

LONG_NOTE = "x" * 2985 + " <@U0DANA001> and <https://status.example.com/|the status page>"


def _cut_inside_an_entity(text: str) -> bool:
    return text.count("<") != text.count(">")


@pytest.mark.parametrize("which", ["change", "reopened"])
def test_a_long_note_is_cut_before_a_mention_not_inside_it(which: str) -> None:
    policy = Policy()
    event = TimelineEvent(
        incident_id=1,
        kind=EventKind.STATUS_CHANGED,
        actor_id="U0RESPOND1",
        text=LONG_NOTE,
        data={"note": LONG_NOTE},
        idempotency_key="k1",
    )
    incident = Incident(
        id=1,
        number=1,
        title="Checkout down",
        severity="SEV2",
        status="investigating",
        reporter_id="U0RESPOND1",
        slack_channel_id="C0INC0001",
    )
    if which == "change":
        text, blocks = event_notices.event_message(policy, "change", event, "INC-1")
    else:
        text, blocks = event_notices.reopened(policy, event, incident)
    assert message_errors(text, blocks) == []
    for shown in [text, *iter_texts(blocks)]:
        assert len(shown) <= SECTION_TEXT
        assert not _cut_inside_an_entity(shown), shown[-40:]
        assert shown.endswith("…")
