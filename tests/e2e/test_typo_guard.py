"""``/incident stauts`` in #general asks "did you mean `status`?" and declares nothing; the
"Declare anyway" button declares what was typed, once, however often it is clicked."""

from __future__ import annotations

from typing import Any

from sqlmodel import func, select

from bot.db import Database
from bot.models import Incident
from bot.slack import blocks
from tests.e2e.conftest import RunningBot, texts

# The fake Slack and the simulator come from the e2e fixtures; typed loosely here so this file
# does not depend on which module currently hosts them.


def incident_count(db: Database) -> int:
    with db.transaction() as session:
        return int(session.exec(select(func.count()).select_from(Incident)).one())


def test_a_typo_asks_and_declares_nothing(
    fake: Any, bot: RunningBot, slack: Any, db: Database
) -> None:
    for typo, meant in (("stauts", "status"), ("hlep", "help")):
        slack.slash_command(typo, user="ana.garcia", channel="general")
        bot.settle()
        said = "\n".join(texts(e) for e in fake.ephemerals("general", "ana.garcia"))
        assert f"Did you mean `/incident {meant}`?" in said
    assert incident_count(db) == 0


def test_declare_anyway_declares_once_even_when_clicked_twice(
    fake: Any, bot: RunningBot, slack: Any, db: Database
) -> None:
    slack.slash_command("stauts", user="ana.garcia", channel="general")
    bot.settle()
    (question,) = [
        e
        for e in fake.ephemerals("general", "ana.garcia")
        if any(blocks.DECLARE_ANYWAY in str(b) for b in e.blocks)
    ]
    assert incident_count(db) == 0

    slack.click_ephemeral(question.ts, blocks.DECLARE_ANYWAY, user="ana.garcia")
    slack.click_ephemeral(question.ts, blocks.DECLARE_ANYWAY, user="ana.garcia")
    bot.settle()
    slack.click_ephemeral(question.ts, blocks.DECLARE_ANYWAY, user="ana.garcia")
    bot.settle()

    assert incident_count(db) == 1
    with db.transaction() as session:
        incident = session.exec(select(Incident)).one()
    assert incident.title == "stauts"
    assert incident.slack_channel_id
    said = "\n".join(texts(e) for e in fake.ephemerals("general", "ana.garcia"))
    assert said.count("Declared *INC-1*") == 1
    assert said.count("You already declared INC-1") == 2
