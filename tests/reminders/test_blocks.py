"""Reminder messages stay within Slack's limits whatever the input, and their buttons route."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.slack import reminder_blocks as rb
from bot.slack.limits import MESSAGE_BLOCKS, iter_texts, message_errors

LONG_TITLE = "<script>&" + "🔥 very long title " * 40
TYPED_LONG = "&lt;script&gt;&amp;" + "🔥 very long title " * 40
"""The same, as Slack delivers it typed in a command (action items are stored so)."""
MANY_SNOOZES = [timedelta(minutes=m) for m in range(1, 40)] + [timedelta(seconds=30)]


def _texts(message: rb.ReminderMessage) -> str:
    return "\n".join([message.text, *iter_texts(message.blocks)])


def _action_ids(message: rb.ReminderMessage) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def _messages() -> dict[str, rb.ReminderMessage]:
    return {
        "nudge": rb.update_nudge(
            reminder_id=9,
            incident_id=4,
            incident_ref="INC-4",
            title=LONG_TITLE,
            severity="SEV1",
            mention="<@U0IC>",
            quiet_for="45m",
            every="15m",
            had_update=True,
            snooze_choices=MANY_SNOOZES,
        ),
        "escalation": rb.escalation(
            incident_ref="INC-4",
            title=LONG_TITLE,
            severity="SEV1",
            channel_id="C0INC",
            private=False,
            tier=2,
            mentions=["<!subteam^S0SRE>"] * 200,
            waited="15m",
            in_incident_channel=False,
        ),
        "step": rb.stale_step(
            reminder_id=3,
            incident_ref="INC-4",
            runbook_title=LONG_TITLE,
            step_number=2,
            step_title=LONG_TITLE,
            mention="<@U0OPS>",
            in_progress_for="1h",
            snooze_choices=MANY_SNOOZES,
        ),
        "close": rb.close_reminder(
            reminder_id=5,
            incident_ref="INC-4",
            title=LONG_TITLE,
            mention="<@U0IC>",
            resolved_for="1d",
            snooze_choices=[],
        ),
        "actions": rb.overdue_action_items(
            incident_ref="INC-4",
            items=[
                rb.OverdueItem(n, TYPED_LONG, f"U0OWNER{n}", date(2026, 1, 1))
                for n in range(1, 501)
            ],
            today=date(2026, 3, 2),
        ),
        "digest": rb.digest(
            entries=[
                rb.DigestEntry(
                    f"INC-{n}", LONG_TITLE, "SEV2", "Investigating", "C0X", "3h", None, False
                )
                for n in range(200)
            ],
            day=date(2026, 3, 2),
        ),
    }


@pytest.mark.parametrize("name", sorted(_messages()))
def test_every_message_passes_slacks_limits_even_with_extreme_input(name: str) -> None:
    message = _messages()[name]
    assert message_errors(message.text, message.blocks) == []
    assert len(message.blocks) <= MESSAGE_BLOCKS
    assert "<script>" not in _texts(message)  # user text is escaped, not rendered as markup


def test_nudge_buttons_route_to_update_snooze_and_stop() -> None:
    message = rb.update_nudge(
        reminder_id=9,
        incident_id=4,
        incident_ref="INC-4",
        title="API down",
        severity="SEV1",
        mention="<!channel>",
        quiet_for="20m",
        every="15m",
        had_update=False,
        snooze_choices=[timedelta(minutes=15), timedelta(seconds=900), timedelta(hours=2)],
    )
    ids = _action_ids(message)
    assert ids == [
        "reminder:update:4",
        "reminder:snooze:9:15",
        "reminder:snooze:9:120",
        "reminder:stop:9",
    ]
    assert [rb.parse_action_id(i) for i in ids] == [
        rb.ReminderAction("update", 4),
        rb.ReminderAction("snooze", 9, 15),
        rb.ReminderAction("snooze", 9, 120),
        rb.ReminderAction("stop", 9),
    ]
    assert "Snooze 2h" in _texts(message)
    assert "none since it was declared 20m ago" in _texts(message)


def test_snooze_and_stop_buttons_say_which_message_they_are_on() -> None:
    """A nudge's buttons carry its number among the reminder's sends, so a click on a message
    of an earlier cycle can be told from one on the current cycle's; buttons posted before,
    without it, still work."""
    message = rb.update_nudge(
        reminder_id=9,
        incident_id=4,
        incident_ref="INC-4",
        title="API down",
        severity="SEV1",
        mention="<!channel>",
        quiet_for="20m",
        every="15m",
        had_update=False,
        snooze_choices=[timedelta(minutes=15)],
        seq=3,
    )
    ids = _action_ids(message)
    assert ids == ["reminder:update:4", "reminder:snooze:9:15:3", "reminder:stop:9:3"]
    assert [rb.parse_action_id(i) for i in ids] == [
        rb.ReminderAction("update", 4),
        rb.ReminderAction("snooze", 9, 15, seq=3),
        rb.ReminderAction("stop", 9, seq=3),
    ]
    assert rb.parse_action_id("reminder:stop:9") == rb.ReminderAction("stop", 9, seq=None)
    assert rb.parse_action_id("reminder:snooze:9:15") == rb.ReminderAction("snooze", 9, 15)


@pytest.mark.parametrize(
    "action_id",
    [
        "reminder:snooze:9",
        "reminder:stop:x",
        "incident:update:4",
        "reminder:update:4:5",
        "reminder:stop:9:1:2",
        "reminder:snooze:9:15:1:2",
        "",
    ],
)
def test_other_action_ids_are_not_reminder_actions(action_id: str) -> None:
    assert rb.parse_action_id(action_id) is None


def test_long_lists_say_how_many_more_there_are() -> None:
    items = [rb.OverdueItem(n, "x" * 500, None, date(2026, 3, 1)) for n in range(1, 301)]
    message = rb.overdue_action_items(incident_ref="INC-1", items=items, today=date(2026, 3, 2))
    listed = sum(t.count("• ") for t in iter_texts(message.blocks[1:-1]))
    assert 0 < listed < 300
    assert f"…and {300 - listed} more" in _texts(message)
    assert "300 overdue action items" in message.text

    entries = [
        rb.DigestEntry(f"INC-{n}", "t" * 200, "SEV2", "Investigating", "C0X", "1h", "5m", True)
        for n in range(1, 101)
    ]
    digest = rb.digest(entries=entries, day=date(2026, 3, 2))
    shown = sum(1 for b in digest.blocks if b["type"] == "section")
    assert 0 < shown < 100
    assert f"…and {100 - shown} more" in _texts(digest)
    assert message_errors(digest.text, digest.blocks) == []


def test_an_empty_digest_says_so() -> None:
    message = rb.digest(entries=[], day=date(2026, 3, 2))
    assert "No open incidents" in _texts(message)
    assert "Monday 2 March 2026" in message.text
    assert message_errors(message.text, message.blocks) == []


def test_the_escalation_in_the_incident_channel_says_how_to_acknowledge() -> None:
    message = rb.escalation(
        incident_ref="INC-4",
        title="Checkout down",
        severity="SEV1",
        channel_id="C0INC",
        private=False,
        tier=1,
        mentions=[],
        waited="5m",
        in_incident_channel=True,
    )
    assert "`/incident ack`" in _texts(message) and "`/incident ic me`" in _texts(message)


def test_overdue_items_show_their_text_as_it_was_typed_mentions_and_all() -> None:
    # `/incident action Ask @dana about the R&D quota` arrives as Slack markup: the chase
    # mentions Dana (a link she is notified by) and shows "R&D", as `/incident actions` does.
    typed = "Ask <@U0DANA001> about the R&amp;D quota, <!channel>"
    items = [rb.OverdueItem(1, typed, "U0OWNER01", date(2026, 3, 1))]
    message = rb.overdue_action_items(incident_ref="INC-1", items=items, today=date(2026, 3, 2))
    texts = _texts(message)
    assert "Ask <@U0DANA001> about the R&amp;D quota" in texts
    assert "&amp;amp;" not in texts and "&lt;@" not in texts
    assert "<!channel>" not in texts  # a chase never pings the whole channel
