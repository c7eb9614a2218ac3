"""A command acts on the incident the person named, wherever they typed it: by its number before
or right after the command word, or by its channel picked from Slack's # list."""

from __future__ import annotations

from sqlmodel import func, select

from bot import incidents as core
from bot.db import Database
from bot.models import EventKind, Incident
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import ask, declare


def stored(db: Database, number: int) -> Incident:
    with db.transaction() as session:
        return core.find_incident(session, number)


def events(db: Database, incident: Incident, kind: str) -> list[str]:
    with db.transaction() as session:
        return [e.text for e in core.timeline(session, incident.id or 0) if e.kind == kind]


def incident_count(db: Database) -> int:
    with db.transaction() as session:
        return session.exec(select(func.count()).select_from(Incident)).one()


def test_an_incident_named_after_a_free_text_command_is_the_one_changed(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    first = declare(fake, bot, slack, db, title="Checkout returns 500s")
    second = declare(fake, bot, slack, db, title="Search latency high")
    here = second.slack_channel_id or ""

    assert "INC-1 is resolved." in ask(fake, bot, slack, "resolve INC-1", here)
    assert stored(db, 1).status == "resolved"
    assert "INC-1 is reopened." in ask(fake, bot, slack, "reopen INC-1", here)
    assert stored(db, 1).status == "investigating"
    assert "Added to INC-1's timeline" in ask(fake, bot, slack, "note INC-1 rollback done", here)
    assert events(db, first, EventKind.NOTE) == ["rollback done"]

    # The channel's own incident was not touched.
    assert stored(db, 2).status == "triage"
    assert events(db, second, EventKind.NOTE) == []
    assert events(db, second, EventKind.STATUS_CHANGED) == []
    assert [m.text for m in fake.messages(here) if "INC-1" in m.text] == []


def test_an_incident_named_after_the_command_word_works_outside_incident_channels(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    first = declare(fake, bot, slack, db)
    said = ask(fake, bot, slack, "update INC-1 rolled back, next update at 14:30", "general")
    assert f"Update saved to INC-1; posting it in <#{first.slack_channel_id}>." in said
    assert events(db, first, EventKind.STATUS_UPDATE) == ["rolled back, next update at 14:30"]
    assert "INC-1 is resolved." in ask(fake, bot, slack, "resolve INC-1 rolled back", "general")
    assert stored(db, 1).status == "resolved"


def test_an_incident_number_further_in_the_text_is_text(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    declare(fake, bot, slack, db, title="Checkout returns 500s")
    second = declare(fake, bot, slack, db, title="Search latency high")
    # In the incident channel the update is posted there, not answered.
    slack.slash_command(
        "update the INC-1 rollback is done",
        user="ana.garcia",
        channel=second.slack_channel_id or "",
    )
    bot.settle()
    assert events(db, second, EventKind.STATUS_UPDATE) == ["the INC-1 rollback is done"]
    assert events(db, stored(db, 1), EventKind.STATUS_UPDATE) == []


def test_two_different_incidents_in_one_command_change_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    declare(fake, bot, slack, db, title="Checkout returns 500s")
    declare(fake, bot, slack, db, title="Search latency high")
    assert "names two incidents" in ask(fake, bot, slack, "INC-1 resolve INC-2", "general")
    assert (stored(db, 1).status, stored(db, 2).status) == ("triage", "triage")


def test_an_incident_channel_picked_in_the_command_names_its_incident(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    name = fake.channel(channel).name
    announcements = len(fake.messages("incidents"))

    said = ask(fake, bot, slack, f"<#{channel}|{name}> status", "general", user="ben.okafor")
    assert "INC-1 [SEV3] Triage: Checkout returns 500s" in said and "Declared *INC-2*" not in said
    said = ask(fake, bot, slack, f"status <#{channel}>", "general", user="ben.okafor")
    assert "INC-1 [SEV3] Triage: Checkout returns 500s" in said
    said = ask(fake, bot, slack, f"<#{channel}|> resolve", "general", user="ben.okafor")
    assert "INC-1 is resolved." in said
    assert stored(db, 1).status == "resolved"

    assert incident_count(db) == 1
    new = fake.messages("incidents")[announcements:]
    assert [texts(m) for m in new if "Triage" in texts(m)] == []


def test_a_channel_that_is_no_incident_channel_is_said_so(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    declare(fake, bot, slack, db)
    general = fake.channel_id("general")
    for text in (f"<#{general}|general> resolve", f"<#{general}|general>", f"status <#{general}>"):
        said = ask(fake, bot, slack, text, "general")
        assert f"<#{general}> is not an incident channel" in said, text
    assert incident_count(db) == 1
    assert stored(db, 1).status == "triage"
