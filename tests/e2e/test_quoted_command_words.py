"""``/incident “status”`` (and 'status', `status`, status., status with a zero-width space,
“help”) runs the command people meant; it never declares an incident named after it. A title
that starts with a quoted word still declares."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.db import Database
from bot.models import Incident
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import ask


def titles(db: Database) -> list[str]:
    with db.read() as session:
        return [i.title for i in session.exec(select(Incident)).all()]


@pytest.mark.parametrize(
    "typed",
    [
        "\u201cstatus\u201d",
        "'status'",
        "`status`",
        "status.",
        "status\u200b",
        "\u201chelp\u201d",
        "\u201cstauts\u201d",  # a typo in quotes: asked about, not declared
    ],
)
def test_a_quoted_or_punctuated_command_word_declares_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, typed: str
) -> None:
    said = ask(fake, bot, slack, typed, channel="general")
    assert "Declared" not in said
    assert titles(db) == []


def test_quoted_help_answers_with_the_help(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    plain = ask(fake, bot, slack, "help", channel="general")
    quoted = ask(fake, bot, slack, "\u201chelp\u201d", channel="general")
    assert quoted == plain


def test_a_title_starting_with_a_quoted_word_still_declares(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    said = ask(fake, bot, slack, "'status' page is down", channel="general")
    assert "Declared *INC-1*" in said
    assert titles(db) == ["'status' page is down"]
