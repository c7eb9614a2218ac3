"""Characters Slack reserves, typed by a person: the simulator sends them escaped as Slack does
(``&lt;``, ``&amp;``, client tokens kept), and people see what they typed, everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from bot import incidents as core
from bot.cli import main
from bot.db import Database
from bot.markup import slack_to_plain
from bot.models import EventKind, Incident, Postmortem
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import ask, declare

NOTE = "p99 < 5ms & rising, see <https://grafana.example/d/1|dashboard>"


def test_the_command_text_arrives_escaped_as_slack_sends_it(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    reply = slack.slash_command(
        f"note {NOTE}", user="ana.garcia", channel=incident.slack_channel_id or ""
    )
    assert reply.request.payload["text"] == (
        "note p99 &lt; 5ms &amp; rising, see <https://grafana.example/d/1|dashboard>"
    )


def test_a_note_with_reserved_characters_reads_as_typed_in_slack_and_outside(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    incident = declare(fake, bot, slack, db)
    channel, ts = incident.slack_channel_id or "", incident.summary_message_ts or ""
    assert "Added to INC-1's timeline" in ask(fake, bot, slack, f"note {NOTE}", channel)
    slack.slash_command(f"update {NOTE}", user="ana.garcia", channel=channel)
    bot.settle()

    # In Slack: mrkdwn carrying each reserved character escaped exactly once.
    posted = "\n".join(
        texts(m) for m in fake.messages(channel) if m.user == fake.bot_user_id
    ) + texts(fake.message(channel, ts))
    assert "p99 &lt; 5ms &amp; rising" in posted
    assert "&amp;lt;" not in posted and "&amp;amp;" not in posted
    assert "p99 < 5ms" not in posted

    # The timeline as Slack shows it.
    timeline = ask(fake, bot, slack, "timeline", channel)
    assert "p99 &lt; 5ms &amp; rising" in timeline and "&amp;lt;" not in timeline

    for action in (blocks.RESOLVE, blocks.CLOSE):
        slack.click(channel, ts, action, user="ana.garcia")
        bot.settle()
    with db.read() as session:
        [draft] = session.exec(select(Postmortem)).all()
        events = core.timeline(session, incident.id or 0)
    assert "p99 < 5ms & rising" in draft.markdown
    assert "&lt;" not in draft.markdown and "&amp;" not in draft.markdown
    assert "[dashboard](https://grafana.example/d/1)" in draft.markdown
    [note] = [e for e in events if e.kind == EventKind.NOTE]

    # The export is the audit record: the note as stored (Slack's markup, which the hash chain
    # covers), read back to what was typed by the same unescaping the postmortem uses.
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "INC-1", "--output", "out.json"]) == 0
    exported = json.loads((tmp_path / "out.json").read_text())
    [exported_note] = [e for e in exported["timeline"] if e["kind"] == "note"]
    assert exported_note["text"] == note.text
    assert slack_to_plain(exported_note["text"]) == "p99 < 5ms & rising, see dashboard"


def test_a_pinned_message_with_reserved_characters_reads_as_typed_in_the_postmortem(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel, ts = incident.slack_channel_id or "", incident.summary_message_ts or ""
    said, _ = slack.say(channel, "ana.garcia", "p95 > 2s & climbing <b>")
    assert fake.message(channel, said).text == "p95 &gt; 2s &amp; climbing &lt;b&gt;"
    slack.react(channel, said, user="ana.garcia", reaction="pushpin")
    bot.settle()
    for action in (blocks.RESOLVE, blocks.CLOSE):
        slack.click(channel, ts, action, user="ana.garcia")
        bot.settle()
    with db.read() as session:
        [draft] = session.exec(select(Postmortem)).all()
    assert "p95 > 2s & climbing" in draft.markdown and "&gt;" not in draft.markdown
    assert "climbing \\<b>" in draft.markdown  # typed HTML stays text in Markdown, never a tag


def test_a_title_with_reserved_characters_names_the_channel_topic_and_header(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    general = fake.channel_id("general")
    incident = declare(fake, bot, slack, db, title=f"p99 < 5ms & rising on <#{general}|general>")
    assert incident.title == "p99 < 5ms & rising on #general"
    channel = fake.channel_json(incident.slack_channel_id or "")
    assert channel["name"] == "inc-1-p99-5ms-rising-on-general"
    topic = channel["topic"]["value"]
    assert topic.endswith("p99 &lt; 5ms &amp; rising on #general") and "&amp;lt;" not in topic
    summary = fake.message(channel["id"], incident.summary_message_ts or "")
    [header] = [b for b in summary.blocks if b["type"] == "header"]
    assert header["text"] == {
        "type": "plain_text",
        "text": "🟡 INC-1: p99 < 5ms & rising on #general",
        "emoji": True,
    }
    assert summary.text.endswith("p99 &lt; 5ms &amp; rising on #general")


def test_a_title_typed_in_the_declare_form_arrives_as_typed(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Slack sends a ``plain_text_input`` value as typed (no entities): it is stored as is."""
    slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    reply = slack.submit_view(view.id, {"title": "p99 < 5ms & rising"}, user="ana.garcia")
    assert "p99 < 5ms & rising" in json.dumps(reply.request.payload)
    bot.settle()
    with db.read() as session:
        stored = session.exec(select(Incident)).one()
    assert stored.title == "p99 < 5ms & rising"
    topic = fake.channel_json(stored.slack_channel_id or "")["topic"]["value"]
    assert topic.endswith("p99 &lt; 5ms &amp; rising")
