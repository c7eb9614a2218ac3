"""Every payload the bot builds stays within Slack's Block Kit limits, whatever the data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import Policy, policy_from_dict
from bot.models import ActionItem, EventKind, Incident, TimelineEvent
from bot.slack import blocks
from bot.slack.limits import assert_valid_message, assert_valid_view, iter_texts

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
LONG = "x" * 3_000 + " <@U1> & <#C1>"


def make_incident(**kwargs: object) -> Incident:
    values: dict[str, Any] = {
        "id": 7,
        "number": 7,
        "title": "Checkout returns 500s",
        "severity": "SEV1",
        "status": "investigating",
        "reporter_id": "U1",
        "declared_at": NOW - timedelta(minutes=65),
        "updated_at": NOW,
        "slack_channel_id": "C7",
        "summary": "",
        "private": False,
    }
    values.update(kwargs)
    return Incident(**values)


def event(i: int, text: str = "note", kind: str = EventKind.NOTE) -> TimelineEvent:
    return TimelineEvent(
        id=i,
        incident_id=7,
        occurred_at=NOW + timedelta(seconds=i),
        recorded_at=NOW,
        kind=kind,
        actor_id="U2",
        text=text,
        idempotency_key=str(i),
        source_url="https://x.slack.com/p1",
    )


@pytest.mark.parametrize("status", [s.key for s in Policy().statuses])
@pytest.mark.parametrize("severity", ["SEV1", "SEV4"])
def test_summary_is_valid_in_every_state(policy: Policy, status: str, severity: str) -> None:
    incident = make_incident(
        status=status,
        severity=severity,
        resolved_at=NOW if status in ("resolved", "closed") else None,
    )
    snap = blocks.IncidentSnapshot(incident=incident, roles={"commander": "U2"}, now=NOW)
    text, payload = blocks.incident_summary(policy, snap)
    assert_valid_message(text, payload)
    action_ids = [e["action_id"] for b in payload if b["type"] == "actions" for e in b["elements"]]
    if status in ("resolved", "closed"):
        assert blocks.RESOLVE not in action_ids and blocks.REOPEN in action_ids
    else:
        assert blocks.RESOLVE in action_ids and blocks.SEVERITY in action_ids


def test_summary_survives_huge_text(policy: Policy) -> None:
    incident = make_incident(title="t" * 300, summary=LONG * 4, service="s" * 200)
    snap = blocks.IncidentSnapshot(
        incident=incident,
        roles={},
        now=NOW,
        latest_update=event(1, LONG * 10),
        runbooks=[("r" * 300, "1/300 done, 299 skipped")] * 40,
        open_action_items=3,
    )
    text, payload = blocks.incident_summary(policy, snap)
    assert_valid_message(text, payload)
    assert blocks.ACK_IC in [
        e["action_id"] for b in payload if b["type"] == "actions" for e in b["elements"]
    ]
    header = payload[0]["text"]["text"]
    assert header.startswith("🔴 INC-7: ttt") and header.endswith("…")


def test_summary_shows_roles_elapsed_time_and_who_declared(policy: Policy) -> None:
    snap = blocks.IncidentSnapshot(
        incident=make_incident(), roles={"commander": "U2", "comms": "U3"}, now=NOW
    )
    _, payload = blocks.incident_summary(policy, snap)
    text = "\n".join(iter_texts(payload))
    assert "<@U2>" in text and "Comms: <@U3>" in text and "Scribe: _unassigned_" in text
    assert "1h 5m" in text
    assert "by <@U1>" in text


def test_titles_cannot_inject_mentions_and_slack_markup_survives(policy: Policy) -> None:
    """Titles are plain text and escaped wherever they land in mrkdwn (the notification text,
    the topic); summaries and updates are stored in Slack's markup, so mentions and links
    people typed keep working."""
    incident = make_incident(
        title="<!channel> wake up",
        summary="<@U2|dev> is rolling back, see <https://grafana.example.com/d/1|dashboard>",
    )
    snap = blocks.IncidentSnapshot(incident=incident, roles={}, now=NOW)
    text, payload = blocks.incident_summary(policy, snap)
    assert "<!channel>" not in text and "&lt;!channel&gt; wake up" in text
    assert "<!channel>" not in blocks.channel_topic(policy, incident, {})
    shown = "\n".join(iter_texts(payload))
    assert "<@U2|dev> is rolling back" in shown
    assert "<https://grafana.example.com/d/1|dashboard>" in shown


def test_modals_are_valid(policy: Policy) -> None:
    incident = make_incident()
    for view in (
        blocks.declare_modal(policy, title="x" * 5000, origin_channel="C1"),
        blocks.note_modal(incident),
        blocks.update_modal(policy, incident),
        blocks.role_modal(policy, incident),
        blocks.capture_modal(
            [make_incident(id=i, number=i, title=LONG) for i in range(1, 300)],
            channel="C1",
            ts="1.2",
        ),
        blocks.capture_modal([], channel="C1", ts="1.2"),
    ):
        assert_valid_view(view)


def test_home_with_hundreds_of_incidents_is_valid(policy: Policy) -> None:
    many = [make_incident(id=i, number=i, title=LONG, private=i % 2 == 0) for i in range(1, 400)]
    view = blocks.home_view(policy, many, {1: "U1"}, NOW)
    assert_valid_view(view)
    assert "more" in "\n".join(iter_texts(view["blocks"]))


def test_timeline_with_many_long_events_is_valid() -> None:
    events = [
        event(i, LONG * 10, EventKind.MESSAGE if i % 2 else EventKind.NOTE) for i in range(500)
    ]
    text, payload = blocks.timeline_blocks(make_incident(), events)
    assert_valid_message(text, payload)
    assert "of 500 events" in payload[0]["text"]["text"]
    short = [event(i, "restarted pod") for i in range(500)]
    _, payload = blocks.timeline_blocks(make_incident(), short)
    assert "the last 60 of 500 events" in payload[0]["text"]["text"]


def test_incident_list_and_action_items_fit() -> None:
    policy = Policy()
    many = [make_incident(id=i, number=i, title=LONG) for i in range(1, 200)]
    assert len(blocks.incident_list(policy, many, {}, NOW)) < 40_000
    items = [
        ActionItem(
            id=i,
            incident_id=7,
            number=i,
            text=LONG,
            created_at=NOW,
            created_by="U1",
            status="done" if i % 2 else "open",
        )
        for i in range(1, 80)
    ]
    assert len(blocks.action_items_text(make_incident(), items)) < 40_000


def test_suggestions_and_setup_problem_are_valid() -> None:
    incident = make_incident()
    text, payload = blocks.suggestions_blocks(
        incident, [(f"dir/{'r' * 3000}{i}", "T" * 500, "why " * 500) for i in range(20)]
    )
    assert_valid_message(text, payload)
    text, payload = blocks.setup_problem(incident, LONG)
    assert_valid_message(text, payload)


def test_help_lists_the_clock_commands_only_when_clocks_are_configured(policy: Policy) -> None:
    assert "classify" not in blocks.help_text(policy)
    with_clocks = policy_from_dict({"clocks": [{"preset": "dora"}]})
    assert "`classify <class>` · `notified <clock> [note]`" in blocks.help_text(with_clocks)
