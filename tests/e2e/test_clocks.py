"""Regulatory clocks in Slack: a major incident under DORA shows its deadlines counting down on
the pinned summary, warns before each deadline through the reminders, and is completed by
``/incident notified``."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import col, select

from bot import incidents as core
from bot import postmortem
from bot.clock import utcnow
from bot.config import Policy, PostmortemPolicy, SlackPolicy, policy_from_dict
from bot.db import Database
from bot.models import EventKind, Reminder
from bot.reminders.worker import ReminderWorker
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import declare


@pytest.fixture
def e2e_policy(fake: FakeSlack, tmp_path: Path) -> Policy:
    policy = policy_from_dict({"clocks": [{"preset": "dora"}]})
    return policy.model_copy(
        update={
            "slack": SlackPolicy(announcements_channel=fake.channel_id("incidents")),
            "postmortem": PostmortemPolicy(output_dir=tmp_path / "postmortems"),
        }
    )


def summary_text(fake: FakeSlack, db: Database, incident_id: int) -> str:
    with db.read() as session:
        incident = core.get_incident(session, incident_id)
    return texts(fake.message(incident.slack_channel_id or "", incident.summary_message_ts or ""))


def test_a_major_incident_counts_down_warns_and_is_completed(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.slash_command("classify major", user="ana.garcia", channel=channel)
    bot.settle()
    with db.read() as session:
        kinds = [e.kind for e in core.timeline(session, incident.id or 0)]
        warnings = session.exec(
            select(Reminder).where(Reminder.kind == "clock").order_by(col(Reminder.due_at))
        ).all()
    assert EventKind.CLASSIFIED in kinds and EventKind.CLOCK_STARTED in kinds
    summary = summary_text(fake, db, incident.id or 0)
    assert "Regulatory clocks" in summary
    assert re.search(r"\(in 3h 5\dm\)", summary), summary  # the initial notice: 4h from now
    assert warnings, "the deadline warnings are reminders, which survive restarts"

    # The first warning, when it falls due: posted in the incident channel, once.
    first = warnings[0]
    worker = ReminderWorker(bot.firebreak.db, bot.firebreak.policy, worker_id="clock-test")
    with freeze_time(first.due_at + timedelta(seconds=1), tick=True, ignore=["uvicorn"]):
        assert worker.tick().sent >= 1
        bot.settle()
        worker.tick()
        bot.settle()
    said = [
        texts(m)
        for m in fake.messages(channel)
        if ":stopwatch:" in texts(m)
        and str(((m.metadata or {}).get("event_payload") or {}).get("effect", "")).startswith(
            "reminder:"
        )
    ]
    assert len(said) == 1 and "INC-1" in said[0]

    slack.slash_command("notified initial", user="ana.garcia", channel=channel)
    bot.settle()
    with db.read() as session:
        kinds = [e.kind for e in core.timeline(session, incident.id or 0)]
    assert EventKind.CLOCK_COMPLETED in kinds

    # The postmortem draft carries the clocks too.
    with db.transaction() as session:
        draft = postmortem.generate_postmortem(
            session, bot.firebreak.policy, incident.id or 0, actor="U0ANA", key="pm:clocks"
        )
    assert "## Regulatory clocks" in draft.markdown and "initial" in draft.markdown.lower()
    assert utcnow() < first.due_at + timedelta(days=400)


def test_notified_for_a_clock_never_started_changes_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    reply = slack.slash_command("notified initial", user="ana.garcia", channel=channel)
    bot.settle()
    answer = "\n".join(texts(p.payload) for p in fake.response_posts(reply.request.response_url))
    assert "initial" in answer
    with db.read() as session:
        kinds = [e.kind for e in core.timeline(session, incident.id or 0)]
    assert EventKind.CLOCK_COMPLETED not in kinds
