"""Where Firebreak cuts a text to fit Slack, what people see is whole: a plain-text title keeps
what follows a ``<``, a code block cut in two is closed in each message part, an emoji or a
letter with its accent is never cut in half, and lengths are counted as Slack's clients count
them (UTF-16 code units), so the channel purpose always keeps its marker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import regex

from bot.config import Policy
from bot.models import EventKind, TimelineEvent
from bot.runbooks.parser import parse_runbook
from bot.slack import blocks
from bot.slack.event_notices import event_message
from bot.slack.limits import (
    BLOCKS_TEXT_BUDGET,
    HEADER_TEXT,
    PURPOSE,
    SECTION_TEXT,
    TOPIC,
    assert_valid_message,
    chunk_text,
    iter_texts,
    message_errors,
    text_length,
    truncate,
)
from bot.slack.runbook_messages import mrkdwn_sections, render_runbook_pages
from tests.slack.test_blocks import make_incident

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦
FLAG = "\U0001f1fa\U0001f1e6"  # 🇺🇦
THUMB = "\U0001f44d\U0001f3fd"  # 👍🏽
ACCENT = "e\u0301"  # é as e + combining acute


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def boundaries(text: str) -> set[int]:
    ends = {0}
    for match in regex.finditer(r"\X", text):
        ends.add(match.end())
    return ends


def fences_balanced(text: str) -> bool:
    return text.count("```") % 2 == 0


def update(text: str) -> TimelineEvent:
    return TimelineEvent(
        id=1,
        incident_id=7,
        occurred_at=NOW,
        recorded_at=NOW,
        kind=EventKind.STATUS_UPDATE,
        actor_id="U2",
        text=text,
        idempotency_key="1",
    )


FENCED_LOG = (
    "Rollback log:\n```\n"
    + "".join(
        f"2026-03-04T03:{i:02d} pod checkout-{i} CrashLoopBackOff restarting (exit 137)\n"
        for i in range(120)
    )
    + "```\nDone."
)


# 1. A plain-text field is cut plainly: a "<" in a title is a character, not a Slack entity.


def test_a_header_keeps_what_follows_a_less_than_sign(policy: Policy) -> None:
    incident = make_incident(title="p99 < 5ms on checkout " + "x" * 250)
    snap = blocks.IncidentSnapshot(incident=incident, roles={}, now=NOW)
    for _, payload in (blocks.incident_summary(policy, snap), blocks.announcement(policy, snap)):
        header = payload[0]["text"]["text"]
        assert header.startswith("🔴 INC-7: p99 < 5ms on checkout xxx"), header
        assert header.endswith("…") and text_length(header) == HEADER_TEXT


def test_a_plain_cut_is_plain_and_a_mrkdwn_cut_keeps_entities_whole() -> None:
    assert truncate("p99 < 5ms " + "x" * 300, 150, plain=True).startswith("p99 < 5ms xxx")
    assert truncate("a &amp; b " + "x" * 300, 8, plain=True) == "a &amp;…"
    assert truncate("a <@U123> " + "x" * 300, 6) == "a …"


# 2. A code block cut in two is closed at the end of one part and reopened in the next.


def test_a_long_fenced_status_update_is_a_code_block_in_every_section(policy: Policy) -> None:
    _, payload = event_message(policy, "status_update", update(FENCED_LOG), "INC-7")
    assert_valid_message("x", payload)
    sections = [b["text"]["text"] for b in payload if b["type"] == "section"]
    assert len(sections) >= 2
    assert all(fences_balanced(s) for s in sections), [s.count("```") for s in sections]
    shown = "\n".join(sections)
    for i in range(120):
        assert f"pod checkout-{i} CrashLoopBackOff" in shown
    assert sections[-1].rstrip().endswith("Done.")


def test_chunks_of_fenced_text_close_and_reopen_the_block_within_the_limit() -> None:
    pieces = chunk_text("```\n" + "code line\n" * 600 + "```", 3000)
    assert len(pieces) >= 2
    assert all(fences_balanced(p) and text_length(p) <= 3000 for p in pieces)
    assert "".join(pieces).count("code line") == 600
    assert all(p.strip("`\n") for p in pieces)  # no empty code block


def test_the_summarys_latest_update_cut_short_closes_its_code_block(policy: Policy) -> None:
    incident = make_incident(summary="s" * 3000)
    snap = blocks.IncidentSnapshot(
        incident=incident, roles={}, now=NOW, latest_update=update(FENCED_LOG * 3)
    )
    for text, payload in (blocks.incident_summary(policy, snap), blocks.announcement(policy, snap)):
        assert_valid_message(text, payload)
        latest = [t for t in iter_texts(payload) if t.startswith("*Latest update*")]
        assert len(latest) == 1 and "CrashLoopBackOff" in latest[0]
        assert fences_balanced(latest[0]) and "…" in latest[0]


# 3. Cuts fall between grapheme clusters.


@pytest.mark.parametrize("cluster", [FAMILY, FLAG, THUMB, ACCENT])
@pytest.mark.parametrize("kind", ["plain", "mrkdwn"])
def test_a_cut_never_splits_an_emoji_or_an_accented_letter(cluster: str, kind: str) -> None:
    for pad in range(0, 12):
        text = "a" * pad + cluster * 20 + "tail"
        for limit in range(5, 40):
            cut = truncate(text, limit, plain=kind == "plain")
            assert cut.endswith("…") and utf16(cut) <= limit
            assert len(cut) - 1 in boundaries(text), (pad, limit, cut)


@pytest.mark.parametrize("cluster", [FAMILY, FLAG, THUMB, ACCENT])
def test_chunks_never_split_an_emoji_or_an_accented_letter(cluster: str) -> None:
    text = ("x" * 10 + cluster) * 400
    pieces = chunk_text(text, 3000)
    assert "".join(pieces) == text
    at = 0
    for piece in pieces:
        assert utf16(piece) <= 3000
        at += len(piece)
        assert at in boundaries(text)
        assert not piece.startswith(("\u200d", "\u0301", "\U0001f3fd"))


def test_the_channel_purpose_keeps_whole_flags_and_its_marker() -> None:
    purpose = blocks.channel_purpose(make_incident(title=FLAG * 150), "firebreak:7:1")
    about, marker = purpose.rsplit(" · ", 1)
    assert marker == "firebreak:7:1"
    assert about.endswith("…") and len(about) - 1 in boundaries(about)
    assert regex.fullmatch(r"INC-7: (\U0001f1fa\U0001f1e6)+…", about)


# 5. Lengths are UTF-16 code units, as Slack's clients count them.


def test_the_purpose_and_topic_fit_in_utf16_with_the_marker_whole(policy: Policy) -> None:
    for title in ("😀" * 300, "𝔘" * 300, FAMILY * 60, "a" * 300, "😀 " * 150):
        incident = make_incident(title=title)
        purpose = blocks.channel_purpose(incident, "firebreak:123456:1767225600.123456")
        assert utf16(purpose) <= PURPOSE
        assert purpose.endswith(" · firebreak:123456:1767225600.123456")
        topic = blocks.channel_topic(policy, incident, {"commander": "U12345678"})
        assert utf16(topic) <= TOPIC


def test_the_limits_checker_counts_utf16_code_units() -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "😀" * 100}}
    assert message_errors("x", [header]) == [
        "blocks[0].text.text: must be at most 150 characters (got 200)"
    ]
    assert text_length("😀a") == 3


# Runbook messages pack their sections with the same measure and the same cuts.


@pytest.mark.parametrize(
    "markdown",
    [
        "😀 " * 2500,
        FAMILY * 900,
        FLAG * 1001 + "x",
        "Run:\n\n```\n" + "\n".join(f"echo 🇺🇦 {i} " + "😀" * 60 for i in range(60)) + "\n```\n",
        "```\n" + THUMB * 2000 + "\n```\n",
    ],
)
def test_runbook_sections_fit_in_utf16_and_keep_emoji_whole(markdown: str) -> None:
    sections = mrkdwn_sections(markdown)
    for section in sections:
        assert text_length(section) <= SECTION_TEXT
        assert fences_balanced(section)
        assert not section.startswith(("\u200d", "\U0001f3fd"))
        assert regex.fullmatch(r"(?:(?!\u200d$)\X)*", section)  # no trailing joiner
        pairs = regex.sub(r"(?:[\U0001f1e6-\U0001f1ff]{2})+", "", section)
        assert not regex.search(r"[\U0001f1e6-\U0001f1ff]", pairs), section[-8:]
    runbook = parse_runbook("# Emoji runbook\n\n## Steps\n\n1. " + markdown, runbook_id="e")
    for page in render_runbook_pages(runbook, steps_per_page=5):
        assert message_errors(page.text, page.blocks) == []


def test_a_timeline_of_emoji_events_stays_within_slacks_budget_in_utf16() -> None:
    events = [
        TimelineEvent(
            id=i,
            incident_id=7,
            occurred_at=NOW,
            recorded_at=NOW,
            kind=EventKind.NOTE,
            actor_id="U2",
            text="😀" * 300,
            idempotency_key=str(i),
        )
        for i in range(60)
    ]
    text, payload = blocks.timeline_blocks(make_incident(), events)
    assert_valid_message(text, payload)
    assert sum(text_length(t) for t in iter_texts(payload)) <= BLOCKS_TEXT_BUDGET
