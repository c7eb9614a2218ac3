"""Reminders reaching Slack (escalations, nudges with Snooze / Stop) and access rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot import incidents as core
from bot import reminders
from bot.clock import utcnow
from bot.config import AccessPolicy, Policy, PostmortemPolicy, RemindersPolicy, SlackPolicy
from bot.db import Database
from bot.effects.models import Effect
from bot.models import EventKind, Reminder, TimelineEvent
from bot.reminders.worker import ReminderWorker, TickReport
from bot.sandbox import FakeSlack, SlackSimulator
from bot.testing.harness import LocalBot
from tests.e2e.conftest import texts
from tests.e2e.helpers import ask, declare, kinds


@pytest.fixture
def e2e_policy(fake: FakeSlack, tmp_path: Path) -> Policy:
    return Policy(
        slack=SlackPolicy(announcements_channel=fake.channel_id("incidents")),
        postmortem=PostmortemPolicy(output_dir=tmp_path / "postmortems"),
        reminders=RemindersPolicy(
            escalate_to=["@oncall"], escalation_channel=fake.channel_id("incidents")
        ),
        access=AccessPolicy(
            close=["role:commander", "admins"],
            change_severity=["any-role", "group:@incident-commanders"],
            silence_reminders=["role:commander"],
        ),
    )


class TickingWorker(ReminderWorker):
    """The scheduler's tick, then the effect runners posting what it queued, at the same
    (frozen) time."""

    def __init__(self, bot: LocalBot) -> None:
        super().__init__(bot.firebreak.db, bot.firebreak.policy, worker_id="e2e-worker")
        self.bot = bot

    def tick(self, **kwargs: Any) -> TickReport:
        report = super().tick(**kwargs)
        # freezegun moves every thread's clock, the bot's runner threads too: they may take
        # what the tick queued, so wait for all of it, whoever runs it.
        self.bot.runner.run_until_idle()
        self.bot.settle()
        return report


@pytest.fixture
def worker(bot: LocalBot) -> Iterator[ReminderWorker]:
    yield TickingWorker(bot)


def core_timeline(db: Database, incident: object) -> list[TimelineEvent]:
    with db.read() as session:
        return list(core.timeline(session, getattr(incident, "id", 0) or 0))


def tick_later(worker: ReminderWorker, minutes: float) -> int:
    """Run the scheduler's tick as if ``minutes`` had passed. The bot's own threads keep real
    time (freezegun leaves threads alone), which is fine: the tick runs here."""
    later = utcnow() + timedelta(minutes=minutes)
    with freeze_time(later, tick=True, ignore=["asyncio", "uvicorn", "anyio", "starlette"]):
        return worker.tick().sent


def test_nobody_acknowledging_escalates_to_the_on_call_group(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    incident = declare(fake, bot, slack, db)
    assert tick_later(worker, 1) == 0  # SEV3: escalate after 30 minutes without an IC
    assert tick_later(worker, 31) == 1
    oncall = fake.usergroup_id("oncall")
    assert any(
        f"<!subteam^{oncall}" in texts(m) for m in fake.messages(incident.slack_channel_id or "")
    )
    assert any(
        "INC-1" in texts(m) and f"<!subteam^{oncall}" in texts(m)
        for m in fake.messages(fake.channel_id("incidents"))
    )
    assert EventKind.ESCALATED in kinds(db, incident)
    assert tick_later(worker, 32) == 0  # sent once, not again on the next tick


def test_update_nudge_buttons_snooze_and_stop(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.click(channel, incident.summary_message_ts or "", "incident:ack_ic", user="ana.garcia")
    bot.settle()
    assert tick_later(worker, 61) == 1  # SEV3: a status update every hour
    nudge = fake.messages(channel)[-1]
    assert "status update" in texts(nudge)
    buttons = [
        e["action_id"] for b in nudge.blocks if b["type"] == "actions" for e in b["elements"]
    ]
    snooze = next(a for a in buttons if a.startswith("reminder:snooze:") and ":30:" in a)
    slack.click(channel, nudge.ts, snooze, user="ana.garcia")
    bot.settle()
    key = reminders.update_key(incident.id or 0)
    with db.transaction() as session:
        row = session.exec(select(Reminder).where(Reminder.dedupe_key == key)).one()
    assert abs(row.due_at - (utcnow() + timedelta(minutes=30))) < timedelta(minutes=1)
    assert "reminder_snoozed" in kinds(db, incident)

    stop = next(a for a in buttons if a.startswith("reminder:stop:"))
    stopped = slack.click(channel, nudge.ts, stop, user="ana.garcia")
    bot.settle()
    assert tick_later(worker, 600) == 0
    assert "reminder_stopped" in kinds(db, incident)
    said = [texts(p.payload) for p in fake.response_posts(stopped.request.response_url)]
    said += [e.text for e in fake.ephemerals(channel, user="ana.garcia")]
    assert any(t.startswith("Stopped: no more reminders to post an update.") for t in said), said


def test_only_whom_the_policy_names_may_silence_an_incidents_reminders(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, worker: ReminderWorker
) -> None:
    """`silence_reminders = ["role:commander"]`: the commander's nudges are stopped by the
    commander, not by anyone else in the channel (before, anyone could; there was no rule)."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.click(channel, incident.summary_message_ts or "", "incident:ack_ic", user="ana.garcia")
    bot.settle()
    assert tick_later(worker, 61) == 1
    nudge = fake.messages(channel)[-1]
    buttons = [
        e["action_id"] for b in nudge.blocks if b["type"] == "actions" for e in b["elements"]
    ]
    stop = next(a for a in buttons if a.startswith("reminder:stop:"))
    dev = fake.user_id("dev.patel")
    fake.join(channel, dev)
    refused = slack.click(channel, nudge.ts, stop, user="dev.patel")
    bot.settle()
    said = [texts(p.payload) for p in fake.response_posts(refused.request.response_url)]
    said += [e.text for e in fake.ephemerals(channel, user="dev.patel")]
    assert any("You may not snooze or stop reminders" in t for t in said), said
    assert "reminder_stopped" not in kinds(db, incident)
    denied = [e for e in core_timeline(db, incident) if e.kind == EventKind.PERMISSION_DENIED]
    assert [e.actor_id for e in denied] == [dev]

    slack.click(channel, nudge.ts, stop, user="ana.garcia")
    bot.settle()
    assert "reminder_stopped" in kinds(db, incident)


@pytest.mark.parametrize(
    ("lost", "why"),
    [
        ("deleted", "was deleted"),
        ("removed", "no longer has Firebreak in it"),
        ("archived", "is archived"),
    ],
)
def test_a_nudge_for_an_incident_whose_channel_reaches_nobody_goes_to_the_commander(
    fake: FakeSlack,
    bot: LocalBot,
    slack: SlackSimulator,
    db: Database,
    worker: ReminderWorker,
    lost: str,
    why: str,
) -> None:
    """Posted in a channel nobody can read, the hourly nudge reached nobody while the timeline
    said the channel was reminded (and each post failed, for ever)."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.click(channel, incident.summary_message_ts or "", "incident:ack_ic", user="ana.garcia")
    bot.settle()
    if lost == "deleted":
        fake.delete_channel(channel)
        slack.event({"type": "channel_deleted", "channel": channel})
    elif lost == "removed":
        fake.remove_bot_from_channel(channel)
        slack.event({"type": "channel_left", "channel": channel})
    else:
        fake.archive(channel)
        slack.event(
            {"type": "channel_archive", "channel": channel, "user": fake.user_id("ben.okafor")}
        )
    bot.settle()
    since = len(fake.calls)

    assert tick_later(worker, 61) == 1  # SEV3: a status update every hour
    ana = fake.user_id("ana.garcia")
    nudges = [m for m in fake.messages(fake.im_channel(ana)) if "status update" in texts(m)]
    assert len(nudges) == 1
    assert [c.method for c in fake.calls[since:] if c.args.get("channel") == channel] == []
    sent = [e.text for e in core_timeline(db, incident) if e.kind == EventKind.REMINDER_SENT]
    assert sent == [
        f"Reminded <@{ana}> to post a status update (none for 1h 1m)"
        f" (by direct message: the incident's channel {why})"
    ]
    with db.read() as session:
        failed = session.exec(select(Effect).where(Effect.state == "failed")).all()
    assert [(e.kind, e.last_error) for e in failed] == []


def test_closing_is_refused_to_people_without_the_role_and_recorded(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    dev = fake.user_id("dev.patel")
    fake.join(channel, dev)
    refused = ask(fake, bot, slack, "close", channel, user="dev.patel")
    assert "You may not close incidents" in refused
    assert "Incident Commander" in refused and "admins" in refused
    with db.transaction() as session:
        stored = core.get_incident(session, incident.id or 0)
        denied = [
            e
            for e in core.timeline(session, incident.id or 0)
            if e.kind == EventKind.PERMISSION_DENIED
        ]
    assert stored.status == "triage"
    assert [e.actor_id for e in denied] == [dev]
    # the commander may
    slack.slash_command(f"ic <@{dev}|dev.patel>", user="ana.garcia", channel=channel)
    bot.settle()
    slack.slash_command("close", user="dev.patel", channel=channel)
    bot.settle()
    with db.transaction() as session:
        assert core.get_incident(session, incident.id or 0).status == "closed"


def test_severity_changes_follow_group_membership(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    outsider = "farid.haddad"
    fake.join(channel, fake.user_id(outsider))
    assert "You may not change the severity" in ask(
        fake, bot, slack, "sev 1", channel, user=outsider
    )
    member = "chloe.martin"  # in @incident-commanders
    fake.join(channel, fake.user_id(member))
    slack.slash_command("sev 1", user=member, channel=channel)
    bot.settle()
    with db.transaction() as session:
        assert core.get_incident(session, incident.id or 0).severity == "SEV1"
