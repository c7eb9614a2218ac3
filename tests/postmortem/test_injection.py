"""What people typed (titles, summaries, notes, action items) reads as written in the postmortem
draft: it never becomes a link, an image or formatting, and no link shows one address while
pointing at another. Links Firebreak builds itself (the incident channel) stay links."""

from __future__ import annotations

import re
from datetime import timedelta

from freezegun import freeze_time
from markdown_it import MarkdownIt

from bot import incidents as core
from bot.config import Policy
from bot.db import Database
from bot.postmortem import generate_postmortem

from .scenario import CLOSED_AT, T0

TITLE = "[Reset your SSO password](https://evil.example/login) ![t](https://evil.example/p.png)"


def draft(db: Database, policy: Policy, *, title: str, summary: str, notes: list[str]) -> str:
    """The draft's Markdown rendered to HTML, as Git, a wiki or the console shows it."""
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title=title, summary=summary, reporter="U01ALICE"
        ).incident
        assert incident.id is not None
        incident.slack_channel_id = "C0INC1"
        session.add(incident)
    with freeze_time(T0 + timedelta(minutes=5)), db.transaction() as session:
        for note in notes:
            core.add_note(session, policy, incident.id, note, actor="U02BOB")
        core.add_action_item(session, policy, incident.id, notes[0], actor="U02BOB")
    with freeze_time(CLOSED_AT), db.transaction() as session:
        postmortem = generate_postmortem(session, policy, incident.id, actor="U01ALICE", key="k")
    html: str = MarkdownIt("commonmark").enable("table").render(postmortem.markdown)
    return html


def anchors(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<a href="([^"]*)">(.*?)</a>', html)


def test_typed_markdown_in_titles_summaries_and_notes_is_shown_as_written(
    db: Database, team_policy: Policy
) -> None:
    typed = "see [the dashboard](https://evil.example/dash) **now** <img src=x> `ok`"
    html = draft(db, team_policy, title=TITLE, summary=TITLE, notes=[typed])
    assert "<img" not in html
    assert [href for href, _ in anchors(html) if "evil.example" in href] == []
    assert "<h1>INC-1: [Reset your SSO password](https://evil.example/login) ![t]" in html
    assert "[the dashboard](https://evil.example/dash) **now** &lt;img src=x&gt;" in html
    assert "<code>ok</code>" in html  # code people typed stays code


def test_a_slack_link_whose_label_shows_another_address_shows_its_target(
    db: Database, team_policy: Policy
) -> None:
    spoof = "graph: <https://evil.example/x|https://grafana.example.com>"
    honest = "and <https://grafana.example.com/d/1|the latency board>"
    html = draft(db, team_policy, title="Checkout down", summary=spoof, notes=[spoof, honest])
    links = anchors(html)
    assert all("grafana.example.com" not in text for href, text in links if "evil" in href)
    assert "https://grafana.example.com" not in html.replace("https://grafana.example.com/d/1", "")
    assert ("https://grafana.example.com/d/1", "the latency board") in links
    assert any("slack.com" in href and "C0INC1" in href for href, _ in links)  # Firebreak's own


def test_a_captured_messages_link_that_is_not_http_never_becomes_a_link(
    db: Database, team_policy: Policy
) -> None:
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(
            session, team_policy, title="Checkout down", reporter="U01ALICE"
        ).incident
        assert incident.id is not None
        core.record_timeline_event(
            session,
            team_policy,
            incident.id,
            kind="message",
            text="click the source",
            actor="U02BOB",
            source_url="javascript:alert(1)",
        )
    with freeze_time(CLOSED_AT), db.transaction() as session:
        postmortem = generate_postmortem(
            session, team_policy, incident.id, actor="U01ALICE", key="k"
        )
    assert "javascript:" not in postmortem.markdown
    assert "click the source" in postmortem.markdown


def test_lines_typed_like_headings_or_rules_stay_text_in_the_draft(
    db: Database, team_policy: Policy
) -> None:
    """Slack has no headings: a summary or note line starting with ``#`` (or a ``---`` line)
    was shown as written there, and must not add a section or a rule to the draft. A comment
    in a code block stays as it is."""
    html = draft(
        db,
        team_policy,
        title="Checkout down",
        summary="## Root cause\nthe pool\n---",
        notes=["# not a heading\n```\n# a shell comment\n```"],
    )
    headings = re.findall(r"<h[1-6]>(.*?)</h[1-6]>", html)
    assert not any("Root cause" in h or "not a heading" in h for h in headings), headings
    assert "## Root cause" in html and "# not a heading" in html
    assert "<pre><code># a shell comment\n</code></pre>" in html
