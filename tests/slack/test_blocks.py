"""Every payload the bot builds stays within Slack's Block Kit limits, whatever the data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import Policy, policy_from_dict
from bot.models import ActionItem, EventKind, Incident, TimelineEvent
from bot.slack import blocks
from bot.slack.limits import (
    BLOCKS_TEXT_BUDGET,
    assert_valid_message,
    assert_valid_view,
    blocks_text_length,
    chunk_text,
    iter_texts,
    truncate,
)

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
        closed_at=NOW if status == "closed" else None,
    )
    snap = blocks.IncidentSnapshot(incident=incident, roles={"commander": "U2"}, now=NOW)
    text, payload = blocks.incident_summary(policy, snap)
    assert_valid_message(text, payload)
    action_ids = [e["action_id"] for b in payload if b["type"] == "actions" for e in b["elements"]]
    if status in ("resolved", "closed"):
        assert blocks.RESOLVE not in action_ids and blocks.REOPEN in action_ids
    else:
        assert blocks.RESOLVE in action_ids and blocks.SEVERITY in action_ids
    # A closed incident's roles change after a reopen: no button whose form is then refused.
    assert (blocks.ASSIGN_ROLE in action_ids) == (status != "closed")


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


def test_a_summary_with_everything_long_stays_within_slacks_text_budget() -> None:
    """Slack rejects a message whose blocks hold more than about 12,000 characters of text
    (msg_blocks_too_long), so a summary that long would never be refreshed again. The long
    sections share what is left evenly, each keeping its heading; short ones stay whole."""
    roles = [{"key": "commander", "name": "Incident Commander"}] + [
        {"key": f"r{i}", "name": f"Role {i:02d} liaison ☢️ & <x>"} for i in range(29)
    ]
    policy = policy_from_dict({"roles": roles})
    incident = make_incident(summary="s" * 3000, service="&<>" * 66)
    snap = blocks.IncidentSnapshot(
        incident=incident,
        roles={r["key"]: f"U{i:08d}" for i, r in enumerate(roles)},
        now=NOW,
        latest_update=event(1, "u" * 2900),
        runbooks=[("r" * 300, "1/300 done, 299 skipped")] * 20,
        clocks=["DORA initial notification due 12:00 UTC"],
    )
    text, payload = blocks.incident_summary(policy, snap)
    assert_valid_message(text, payload)
    assert blocks_text_length(payload) <= BLOCKS_TEXT_BUDGET
    sections = {
        b["text"]["text"].split("\n", 1)[0]: b["text"]["text"]
        for b in payload
        if b["type"] == "section" and "text" in b
    }
    for heading in ("*Summary*", "*Runbooks*"):
        assert sections[heading].endswith("…") and len(sections[heading]) > 1000
    assert any(h.startswith("*Latest update*") and t.endswith("…") for h, t in sections.items())
    assert sections[":stopwatch: *Regulatory clocks*"].endswith("due 12:00 UTC")
    fields = "\n".join(f["text"] for b in payload if "fields" in b for f in b["fields"])
    assert "Role 03 liaison ☢️ &amp; &lt;x&gt;: <@U00000004>" in fields


def test_summary_shows_roles_elapsed_time_and_who_declared(policy: Policy) -> None:
    snap = blocks.IncidentSnapshot(
        incident=make_incident(), roles={"commander": "U2", "comms": "U3"}, now=NOW
    )
    _, payload = blocks.incident_summary(policy, snap)
    text = "\n".join(iter_texts(payload))
    assert "<@U2>" in text and "Comms: <@U3>" in text and "Scribe: _unassigned_" in text
    assert "1h 5m" in text
    assert "by <@U1>" in text


def test_open_for_agrees_with_the_times_shown_beside_it(policy: Policy) -> None:
    """Declared 23:55 (a fraction of a second past), shown at 02:10: open for 2h 15m, as a
    reader computes from the two times, not a truncated 2h 14m."""
    now = datetime(2026, 3, 29, 2, 10, tzinfo=UTC)
    declared = datetime(2026, 3, 28, 23, 55, 0, 400_000, tzinfo=UTC)
    snap = blocks.IncidentSnapshot(incident=make_incident(declared_at=declared), roles={}, now=now)
    _, payload = blocks.incident_summary(policy, snap)
    text = "\n".join(iter_texts(payload))
    assert "*Open for*\n2h 15m (as of 02:10 UTC)" in text


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
    purpose = blocks.channel_purpose(incident, "firebreak:7:1")
    assert purpose == "INC-7: &lt;!channel&gt; wake up · firebreak:7:1"
    long = blocks.channel_purpose(make_incident(title="a & b " * 100), "firebreak:7:1")
    assert len(long) <= 250 and long.endswith("… · firebreak:7:1")
    assert "&amp…" not in long and "&am…" not in long and "&a…" not in long

    shown = "\n".join(iter_texts(payload))
    assert "<@U2|dev> is rolling back" in shown
    assert "<https://grafana.example.com/d/1|dashboard>" in shown


@pytest.mark.parametrize("limit", range(8, 14))
def test_a_cut_never_splits_an_entity(limit: int) -> None:
    cut = truncate("abcdef &amp; <@U1> x", limit)
    assert len(cut) <= limit and cut.endswith("…")
    assert cut[:-1] in ("abcdef ", "abcdef &amp;", "abcdef &amp; ")


@pytest.mark.parametrize("limit", range(48, 90))
def test_pieces_of_a_long_text_never_split_an_entity(limit: int) -> None:
    link = "<https://g.example/d?a=1&amp;b=2|latency board>"  # shorter than any piece
    text = ("x" * 7 + " <@U024BE7LH> R&amp;D " + link + " ") * 6
    pieces = chunk_text(text, limit)
    assert all(len(piece) <= limit for piece in pieces)
    assert "".join(pieces) == text
    for piece in pieces:
        assert re.sub(r"<[^<>]*>", "", piece).count("<") == 0
        assert re.sub(r"<[^<>]*>", "", piece).count(">") == 0
        assert not re.search(r"&(a|am|amp|l|lt|g|gt)?$", piece)


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
    listed = blocks.action_items_text(make_incident(), items)
    assert len(listed) <= 4_000  # Slack shows a message's text whole up to about this long
    shown = [line for line in listed.splitlines() if line[:1] in "☐☑"]
    assert listed.splitlines()[-1] == (
        f"…and {79 - len(shown)} more: the postmortem draft lists every one"
        " (`/incident postmortem`)."
    )
    few = blocks.action_items_text(make_incident(), items[:3])
    assert len(few.splitlines()) == 4 and "more" not in few


def test_the_timeline_shows_slack_markup_once_and_escapes_the_rest() -> None:
    """Action items and role changes are stored in Slack's markup (what people typed, the
    mentions of the people given a role): shown as is. Titles and alert text are not: escaped."""
    typed = "ask <@U9> about <https://x.example|the runbook> &amp; &lt;script&gt;"
    events = [
        event(1, f"Action item 1: {typed}", EventKind.ACTION_ITEM_ADDED),
        event(2, f"Action item 1 done: {typed}", EventKind.ACTION_ITEM_COMPLETED),
        event(3, "Commander: <@U3> (was <@U2>)", EventKind.ROLE_ASSIGNED),
        event(4, "Scribe: <@U4> stepped down", EventKind.ROLE_UNASSIGNED),
        event(5, "INC-7 declared as SEV1: a < b & c", EventKind.DECLARED),
        event(6, "status changed: triage → resolved — fixed R&amp;D", EventKind.STATUS_CHANGED),
    ]
    _, payload = blocks.timeline_blocks(make_incident(), events)
    shown = "\n".join(iter_texts(payload))
    assert shown.count(typed) == 2 and "&amp;amp;" not in shown
    assert "Commander: <@U3> (was <@U2>)" in shown and "Scribe: <@U4> stepped down" in shown
    assert "declared as SEV1: a &lt; b &amp; c" in shown
    assert "— fixed R&amp;D" in shown  # a resolve's reason, typed in Slack


def test_the_timeline_names_whom_a_runbook_step_was_assigned_to() -> None:
    """The step's words are the runbook's (escaped); the assignee stays a mention, so Slack
    shows the person, never ``<@U5>`` as text."""
    step = event(1, "Disk full: step 2 assigned to <@U5>: Free <space> & *check*", "runbook_step")
    step.data = {"assignee": "U5", "step": 1}
    _, payload = blocks.timeline_blocks(make_incident(), [step])
    shown = "\n".join(iter_texts(payload))
    assert "step 2 assigned to <@U5>: Free &lt;space&gt; &amp; *check*" in shown


def test_runbook_titles_are_shown_literally_in_suggestions_and_the_summary(
    policy: Policy,
) -> None:
    """A runbook title's ``~/.cache`` or ``*.tmp`` must not end the bold around it, nor start
    a strikethrough in the summary's list: shown as code, as on the runbook's own pages."""
    title = "Clean ~/.cache and *.tmp in node_modules_old"
    literal = "Clean `~/.cache` and `*.tmp` in `node_modules_old`"
    _, payload = blocks.suggestions_blocks(make_incident(), [("x", title, "alert disk_full")])
    assert payload[1]["text"]["text"] == f"*{literal}*\n_alert `disk_full`_ · `x`"
    # The id is code to copy into `/incident runbook <id>`, with real backticks around it.
    _, payload = blocks.suggestions_blocks(
        make_incident(), [("db/conn-exhaustion", "T", "3 steps")]
    )
    assert payload[1]["text"]["text"] == "*T*\n_3 steps_ · `db/conn-exhaustion`"
    snap = blocks.IncidentSnapshot(
        incident=make_incident(), roles={}, now=NOW, runbooks=[(title, "1/3 done")]
    )
    _, payload = blocks.incident_summary(policy, snap)
    assert f"*Runbooks*\n• {literal}: 1/3 done" in "\n".join(iter_texts(payload))


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
    assert "`classify &lt;class&gt;` · `notified &lt;clock&gt; [note]`" in blocks.help_text(
        with_clocks
    )


def test_the_summary_offers_resolve_and_close_only_where_the_policys_moves_allow_them() -> None:
    """A team whose resolved incidents go to a postmortem review before closing: a Close on
    the resolved summary would only be refused; nor is Resolve offered where ``next`` leads
    elsewhere first."""
    policy = policy_from_dict(
        {
            "statuses": [
                {"key": "investigating", "next": ["fixing", "resolved"]},
                {"key": "fixing", "next": ["verifying"]},
                {"key": "verifying", "milestone": "mitigated", "next": ["resolved"]},
                {"key": "resolved", "phase": "resolved", "next": ["review", "investigating"]},
                {"key": "review", "phase": "resolved", "next": ["closed", "investigating"]},
                {"key": "closed", "phase": "closed", "next": ["investigating"]},
            ]
        }
    )

    def actions(status: str) -> list[str]:
        incident = make_incident(status=status, acknowledged_at=NOW)
        block = blocks.incident_actions(policy, incident, {"commander": "U2"})
        return [e["action_id"] for e in block["elements"] if e["type"] == "button"]

    assert blocks.RESOLVE in actions("investigating")
    assert blocks.RESOLVE not in actions("fixing")
    assert blocks.CLOSE not in actions("resolved")
    assert blocks.REOPEN in actions("resolved")
    assert blocks.CLOSE in actions("review")


def test_help_offers_mitigate_only_when_the_policy_has_a_mitigated_status() -> None:
    without = policy_from_dict(
        {
            "statuses": [
                {"key": "open", "next": ["resolved"]},
                {"key": "resolved", "phase": "resolved", "next": ["closed"]},
                {"key": "closed", "phase": "closed"},
            ]
        }
    )
    assert "`mitigate`" in blocks.help_text(Policy())
    assert "`mitigate`" not in blocks.help_text(without)
    assert "`status &lt;status&gt;` (open, resolved, closed)" in blocks.help_text(without)


def test_a_severity_named_with_its_key_is_not_shown_twice() -> None:
    policy = policy_from_dict(
        {
            "default_severity": "P1",
            "severities": [{"key": "P1", "name": "P1 - Critical"}, {"key": "P2", "name": "High"}],
        }
    )
    assert blocks.severity_label(policy, "P1") == "P1 - Critical"
    assert blocks.severity_label(policy, "P2") == "P2 — High"
    assert blocks.severity_label(Policy(), "SEV1") == "SEV1 — Critical"
