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


def _update(text: str) -> TimelineEvent:
    return TimelineEvent(
        incident_id=1,
        kind=EventKind.STATUS_UPDATE,
        actor_id="U0RESPOND1",
        text=text,
        idempotency_key="u1",
    )


def test_a_long_status_update_is_posted_whole_across_sections() -> None:
    """A responder's 7,400-character update (a pasted log excerpt) is shown whole, in sections
    Slack accepts. Before, it stopped at 3,000 characters with "…" and nothing said the rest
    existed."""
    lines = [f"{n:04d} checkout-7f9 GET /cart 502 upstream reset <@U0DANA001>" for n in range(120)]
    said = "\n".join(lines)
    text, blocks = event_notices.event_message(Policy(), "status_update", _update(said), "INC-1")
    assert message_errors(text, blocks) == []
    shown = "\n".join(iter_texts(blocks))
    assert len(blocks) == 3 and all(len(t) <= SECTION_TEXT for t in iter_texts(blocks))
    assert all(line in shown for line in lines)
    assert "Cut here" not in shown


def test_an_update_longer_than_a_message_says_where_the_rest_is() -> None:
    said = "Rolled back deploy 4512. " * 1600  # 40,000 characters, the most an update holds
    text, blocks = event_notices.event_message(Policy(), "status_update", _update(said), "INC-1")
    assert message_errors(text, blocks) == []
    note = list(iter_texts(blocks))[-1]
    assert note.startswith("_Cut here: a Slack message shows ") and "of its 40,000" in note
    assert "timeline" in note
