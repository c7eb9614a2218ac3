"""/incident subcommands from Slack, and the answers people get when something is wrong."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from bot import incidents as core
from bot.db import Database
from bot.models import EventKind, Incident, TimelineEvent
from bot.sandbox import FakeSlack, SlackSimulator
from bot.sandbox.simulator import Signing
from bot.slack import blocks as B
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import answer, ask, declare, kinds


def test_help_list_status_and_timeline(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    assert "`/incident` commands" in ask(fake, bot, slack, "help", "general")
    assert "INC-1" in ask(fake, bot, slack, "list", "general")
    assert "INC-1: Checkout returns 500s" in ask(fake, bot, slack, "status", channel)
    assert "INC-1: Checkout returns 500s" in ask(fake, bot, slack, "INC-1", "general")
    assert "Timeline of INC-1" in ask(fake, bot, slack, "timeline INC-1", "general")


@pytest.mark.parametrize("command", ["/inc", "/incident-staging"])
def test_the_command_works_under_the_name_the_workspace_gave_it(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, command: str
) -> None:
    """Slack sends only commands the app defines: an app set up as `/inc`, or a second
    installation as `/incident-staging`, declares and answers as `/incident` does."""
    reply = slack.slash_command(
        "Checkout returns 500s", user="ana.garcia", channel="general", command=command
    )
    assert reply.status == 200 and not reply.problems
    bot.settle()
    with db.read() as session:
        [incident] = session.exec(select(Incident)).all()
    assert incident.title == "Checkout returns 500s" and incident.slack_channel_id
    status = slack.slash_command(
        "status", user="ana.garcia", channel=incident.slack_channel_id, command=command
    )
    bot.settle()
    assert "INC-1: Checkout returns 500s" in answer(fake, status)


def test_asking_for_help_or_a_severity_in_shorthand_declares_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    for text in ("--help", "-h", "?", "help?"):
        assert "`/incident` commands" in ask(fake, bot, slack, text, "general")
    assert "not an incident channel" in ask(fake, bot, slack, "sev1", "general")
    incident = declare(fake, bot, slack, db)
    slack.slash_command("sev1", user="ana.garcia", channel=incident.slack_channel_id or "")
    bot.settle()
    with db.read() as session:
        assert session.exec(select(func.count()).select_from(Incident)).one() == 1
        assert core.get_incident(session, incident.id or 0).severity == "SEV1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sev", "Say which severity"),
        ("sev 9", "Unknown severity '9'"),
        ("ic bob", "mention them with @"),
        ("role janitor <@U0FAKE001|x>", "Unknown role 'janitor'"),
        ("status please now", "Unknown status 'please now'. Choose one of: triage,"),
        ("timeline please now", "takes no words"),
        ("frobnicate the widgets", "is not a command"),
    ],
)
def test_bad_input_gets_a_usage_message(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    text: str,
    expected: str,
) -> None:
    incident = declare(fake, bot, slack, db)
    said = ask(fake, bot, slack, text, incident.slack_channel_id or "")
    assert expected in said
    assert "Traceback" not in said


def test_mentioning_someone_who_does_not_exist(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    said = ask(fake, bot, slack, "ic <@U0NOBODY1|ghost>", incident.slack_channel_id or "")
    assert "Slack does not know the user" in said
    with db.transaction() as session:
        assert core.current_roles(session, incident.id or 0) == {}


def test_commands_outside_an_incident_channel_need_the_number(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    declare(fake, bot, slack, db)
    assert "not an incident channel" in ask(fake, bot, slack, "resolve", "general")
    assert "There is no incident INC-7" in ask(fake, bot, slack, "INC-7 resolve", "general")
    # a long number is a number too: never the title of a new incident
    for command, number in [
        ("INC-1000000000 status", "INC-1000000000"),
        ("#12345678901 close", "INC-12345678901"),
        ("inc-999999999999999999 resolve", "INC-999999999999999999"),
    ]:
        assert f"There is no incident {number}" in ask(fake, bot, slack, command, "general")
    assert "INC-1 is resolved" in ask(fake, bot, slack, "INC-1 resolve", "general")
    with db.read() as session:
        assert session.exec(select(func.count()).select_from(Incident)).one() == 1


def test_transitions_the_policy_forbids_are_explained(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.slash_command("resolve", user="ana.garcia", channel=channel)
    bot.settle()
    assert "INC-1 status changed: Triage → Resolved" in texts(fake.messages(channel)[-1])
    said = ask(fake, bot, slack, "mitigate", channel)
    assert "cannot move to monitoring" in said and "closed, investigating" in said
    assert "INC-1 is reopened" in ask(fake, bot, slack, "INC-1 reopen flapping", "general")


def test_action_items_from_slack(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ben = fake.user_id("ben.okafor")
    assert "Action item 1 added" in ask(
        fake, bot, slack, f"action Alert on pool saturation <@{ben}|ben> 2099-01-31", channel
    )
    assert "1. Alert on pool saturation" in ask(fake, bot, slack, "actions", channel)
    assert "is done" in ask(fake, bot, slack, "done 1", channel)
    assert "no action item 5" in ask(fake, bot, slack, "done 5", channel)


def test_a_bot_removed_from_the_channel_says_so_and_loses_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.remove_bot_from_channel(channel)
    slack.slash_command("update DB failover complete", user="ana.garcia", channel=channel)
    bot.settle()
    assert EventKind.STATUS_UPDATE in kinds(db, incident)  # recorded, though not posted
    assert EventKind.SLACK_FAILED in kinds(db, incident)
    # The commander (here the reporter) is told, where Firebreak can still write: a DM.
    told = [texts(m) for m in fake.messages(fake.im_channel("ana.garcia"))]
    assert any("/invite @Firebreak" in t for t in told), told


def test_a_note_is_recorded_and_only_the_author_hears_back(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    before = len(fake.messages(channel))
    assert "Added to INC-1's timeline" in ask(
        fake, bot, slack, "note <!channel> 'DROP TABLE", channel
    )
    assert len(fake.messages(channel)) == before
    with db.transaction() as session:
        [note] = [e for e in core.timeline(session, incident.id or 0) if e.kind == "note"]
    assert note.text == "<!channel> 'DROP TABLE"


def test_home_tab_shows_private_incidents_only_to_members(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    declare(fake, bot, slack, db, title="Public outage")
    slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    slack.submit_view(
        view.id, {"title": "Suspected credential leak", "private": ["private"]}, user="ana.garcia"
    )
    bot.settle()
    slack.open_home("ana.garcia")
    slack.open_home("chloe.martin")  # not in the channel and not an admin
    bot.settle()
    mine_view, their_view = fake.home_view("ana.garcia"), fake.home_view("chloe.martin")
    assert mine_view is not None and their_view is not None
    mine = texts({"blocks": mine_view.payload["blocks"]})
    theirs = texts({"blocks": their_view.payload["blocks"]})
    assert "Suspected credential leak" in mine and "Public outage" in mine
    assert "Suspected credential leak" not in theirs and "Public outage" in theirs


def test_forged_unsigned_and_replayed_requests_are_refused_and_store_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    signings: list[Signing] = ["forged", "unsigned", "stale"]
    for signing in signings:
        reply = slack.slash_command(
            "Totally real incident", user="ana.garcia", channel="general", signing=signing
        )
        assert reply.status == 401, signing
    bot.settle()
    with db.transaction() as session:
        assert session.exec(select(func.count()).select_from(Incident)).one() == 0
        assert session.exec(select(func.count()).select_from(TimelineEvent)).one() == 0
    assert fake.calls_to("conversations.create") == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"payload=%7Bnot json", "application/x-www-form-urlencoded"),
        (b'{"type": "event_callback"}', "application/json"),
        (b"\xff\xfe\x00garbage", "application/octet-stream"),
        (
            b"payload=" + b"%7B%22type%22%3A%22block_actions%22%7D",
            "application/x-www-form-urlencoded",
        ),
    ],
)
def test_malformed_payloads_never_crash_the_bot(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    body: bytes,
    content_type: str,
) -> None:
    reply = slack.send_raw(body, content_type=content_type)
    assert reply.status < 500
    bot.settle()
    assert slack.slash_command("help", user="ana.garcia", channel="general").status == 200


def test_oversized_bodies_are_refused(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator
) -> None:
    reply = slack.send_raw(b"text=" + b"x" * (2 * 1024 * 1024))
    assert reply.status == 413


def test_a_form_sent_after_leaving_a_private_incident_is_refused(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Dev opened "Add note" on a private incident while in its channel, then was removed from
    it: sending the form is refused like any command of someone outside it, and nothing is
    written. Before, the forms (note, update, role) checked nothing when sent."""
    dev = fake.user_id("dev.patel")
    slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    slack.submit_view(
        view.id,
        {"title": "Suspected credential leak", "private": ["private"], "responders": [dev]},
        user="ana.garcia",
    )
    bot.settle()
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
    channel = incident.slack_channel_id or ""
    summary = fake.pins(channel)[0]
    slack.click(channel, summary, B.ADD_NOTE, user="dev.patel")
    bot.settle()
    [note] = fake.open_views("dev.patel")
    fake.leave(channel, "dev.patel")
    slack.event({"type": "member_left_channel", "user": dev, "channel": channel})
    bot.settle()
    before = [e.id for e in timeline_of(db, incident)]

    slack.submit_view(note.id, {"note": "rotating the keys now"}, user="dev.patel")
    bot.settle()
    assert [e.id for e in timeline_of(db, incident)] == before, "nothing written"
    told = [texts(m) for m in fake.messages(fake.im_channel("dev.patel"))]
    assert sum("INC-1 is private" in t for t in told) == 1, told


def timeline_of(db: Database, incident: Incident) -> list[TimelineEvent]:
    with db.read() as session:
        return list(core.timeline(session, incident.id or 0))


def test_a_status_is_typed_as_it_is_chosen_on_the_summary(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """``/incident status identified``, as a team using Statuspage's words types it: the same
    change, rules and answers as the summary's status menu, once however often Slack retries."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    for _ in range(2):  # Slack's retry of the same command
        reply = slack.slash_command("status identified", user="ana.garcia", channel=channel)
        assert reply.status == 200
    bot.settle()
    announced = [m for m in fake.messages(channel) if "→ Identified" in texts(m)]
    assert len(announced) == 1
    assert "INC-1 is already Identified." in ask(fake, bot, slack, "status Identified", channel)
    said = ask(fake, bot, slack, "status closed INC-1", "general")
    assert "it cannot move to closed" in said
    with db.read() as session:
        assert core.get_incident(session, incident.id or 0).status == "identified"
        changes = [
            e.text for e in core.timeline(session, incident.id or 0) if e.kind == "status_changed"
        ]
    assert changes == ["INC-1 status changed: Triage → Identified"]
    assert "INC-1 [SEV3] Identified" in ask(fake, bot, slack, "status", channel)  # the summary
