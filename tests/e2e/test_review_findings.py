"""Behaviour people rely on that earlier versions got wrong: privacy, typos, double clicks,
captures from other channels, role holders, form text and Slack markup."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlmodel import col, func, select

from bot import incidents as core
from bot.db import Database
from bot.models import EventKind, Incident, TimelineEvent
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import answer, ask, declare, declare_private, kinds


def test_a_private_incident_is_closed_to_people_outside_its_channel(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare_private(fake, bot, slack, db)
    for command in (
        "INC-1 timeline",
        "INC-1 status",
        "INC-1 sev 4",
        "INC-1 resolve",
        "INC-1 note hello",
        "INC-1 actions",
        "INC-1 postmortem",
    ):
        said = ask(fake, bot, slack, command, "general", user="farid.haddad")
        assert "INC-1 is private" in said, command
        assert "Payroll" not in said
    with db.transaction() as session:
        stored = core.get_incident(session, incident.id or 0)
    assert (stored.severity, stored.status) == ("SEV1", "triage")
    assert kinds(db, incident).count(EventKind.NOTE) == 0
    # its members still can, from anywhere
    assert "Payroll DB credentials leaked" in ask(fake, bot, slack, "INC-1 status", "general")


def test_a_typo_after_an_incident_number_declares_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    assert "`stauts` is not a command" in ask(fake, bot, slack, "INC-1 stauts", "general")
    assert "`resolv` is not a command" in ask(
        fake, bot, slack, "INC-1 resolv", incident.slack_channel_id or ""
    )
    # A channel or number that names no incident says so, rather than blaming the next word.
    general = fake.channel_id("general")
    said = ask(fake, bot, slack, f"<#{general}|general> latency is high", "general")
    assert said == (
        f":no_entry: <#{general}> is not an incident channel. Name the incident, e.g. "
        "`/incident INC-42 status`, or see `/incident list`."
    )
    assert ask(fake, bot, slack, "INC-7 stauts", "general").endswith("There is no incident INC-7.")
    with db.transaction() as session:
        assert session.exec(select(func.count()).select_from(Incident)).one() == 1


def test_starting_a_runbook_with_a_double_click_posts_it_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db, title="Disk full on db-3")
    channel = incident.slack_channel_id or ""
    fake.join(channel, fake.user_id("ben.okafor"))
    [suggestions] = [m for m in fake.messages(channel) if "may help" in texts(m)]
    start = next(
        b["accessory"]["action_id"]
        for b in suggestions.blocks
        if b.get("accessory") and "Disk full" in b["text"]["text"]
    )
    with ThreadPoolExecutor(3) as pool:
        list(
            pool.map(
                lambda user: slack.click(channel, suggestions.ts, start, user=user),
                ["ana.garcia", "ana.garcia", "ben.okafor"],
            )
        )
    bot.settle()
    posted = [
        m
        for m in fake.messages(channel)
        if any(
            str(e.get("action_id", "")).startswith("runbook:done:")
            for b in m.blocks
            if b.get("type") == "actions"
            for e in b.get("elements", [])
        )
    ]
    assert len(posted) == 1


def test_messages_from_other_channels_are_captured_whole(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    fake.remove_bot_from_channel("incidents")  # Firebreak cannot read it: the form carries it
    for text in ("障害が発生しました。" * 60, "🔥" * 300, "x " * 2000):
        said, _ = slack.say("incidents", "ana.garcia", text)
        slack.message_shortcut("add_to_timeline", "incidents", said, user="ana.garcia")
        bot.settle()
        view = fake.open_views("ana.garcia")[-1]
        slack.submit_view(view.id, {"incident": str(incident.id)}, user="ana.garcia")
        bot.settle()
    with db.transaction() as session:
        captured = [
            e.text for e in core.timeline(session, incident.id or 0) if e.kind == EventKind.MESSAGE
        ]
    assert captured[0] == "障害が発生しました。" * 60
    assert captured[1] == "🔥" * 300
    assert captured[2].startswith("x x") and captured[2].endswith("[…]")  # shortened, marked


def test_a_capture_during_slack_errors_is_retried_not_lost(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said, _ = slack.say(channel, "ana.garcia", "root cause: expired cert")
    fake.fail("conversations.history", status=500, times=2)
    slack.react(channel, said, user="ana.garcia", reaction="pushpin")
    bot.settle()
    captured = [e for e in timeline(db, incident) if e.kind == EventKind.MESSAGE]
    assert [e.text for e in captured] == ["root cause: expired cert"]


def test_a_capture_that_cannot_succeed_is_not_silent(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said, _ = slack.say(channel, "ana.garcia", "root cause: expired cert")
    fake.fail("conversations.history", error="missing_scope", times=1)
    slack.react(channel, said, user="ana.garcia", reaction="pushpin")
    bot.settle()
    assert EventKind.MESSAGE not in kinds(db, incident)
    told = [texts(e) for e in fake.ephemerals(user=fake.user_id("ana.garcia"))]
    assert any("could not add that message to the incident timeline" in t for t in told)


def timeline(db: Database, incident: Incident) -> list[TimelineEvent]:
    with db.read() as session:
        return core.timeline(session, incident.id or 0)


def test_whoever_gets_a_role_joins_the_channel(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare_private(fake, bot, slack, db)
    dev = fake.user_id("dev.patel")
    slack.slash_command(
        f"ic <@{dev}|dev.patel>", user="ana.garcia", channel=incident.slack_channel_id or ""
    )
    bot.settle()
    assert dev in fake.members(incident.slack_channel_id or "")


def test_a_refused_status_change_does_not_lose_the_update(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel, ts = incident.slack_channel_id or "", incident.summary_message_ts or ""
    slack.click(channel, ts, blocks.POST_UPDATE, user="ana.garcia")
    bot.settle()
    [form] = fake.open_views("ana.garcia")
    slack.slash_command("resolve", user="ana.garcia", channel=channel)  # meanwhile
    bot.settle()
    slack.submit_view(
        form.id,
        {"update": "DB failover done, errors <1% & falling", "status": "monitoring"},
        user="ana.garcia",
    )
    bot.settle()
    with db.transaction() as session:
        [update] = [
            e for e in core.timeline(session, incident.id or 0) if e.kind == EventKind.STATUS_UPDATE
        ]
    assert update.text == "DB failover done, errors &lt;1% &amp; falling"  # Slack markup
    told = [texts(e) for e in fake.ephemerals(user=fake.user_id("ana.garcia"))]
    dms = [texts(m) for m in fake.messages(fake.im_channel("ana.garcia"))]
    assert any("cannot move to monitoring" in t for t in told), (told, dms)


def test_mentions_and_links_in_updates_stay_live(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    dev = fake.user_id("dev.patel")
    slack.slash_command(
        f"Checkout down <@{dev}|dev.patel> is on it", user="ana.garcia", channel="general"
    )
    bot.settle()
    with db.transaction() as session:
        incident = session.exec(select(Incident)).one()
    assert incident.title == "Checkout down @dev.patel is on it"
    assert incident.slack_channel_name == "inc-1-checkout-down-dev-patel-is-on"
    channel = incident.slack_channel_id or ""
    slack.slash_command(
        f"update <@{dev}|dev.patel> is rolling back, see "
        "<https://grafana.example.com/d/abc|dashboard>",
        user="ana.garcia",
        channel=channel,
    )
    bot.settle()
    posted = texts(fake.messages(channel)[-1])
    assert f"<@{dev}|dev.patel> is rolling back" in posted
    assert "<https://grafana.example.com/d/abc|dashboard>" in posted
    assert "&lt;" not in posted
    with db.transaction() as session:
        rows = session.exec(
            select(TimelineEvent).where(col(TimelineEvent.kind) == EventKind.STATUS_UPDATE)
        ).all()
    assert len(rows) == 1


def test_huge_numbers_get_a_usage_message(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    reply = slack.slash_command(
        "done 99999999999999999999", user="ana.garcia", channel=incident.slack_channel_id or ""
    )
    bot.settle()
    assert "Say which action item" in answer(fake, reply)
