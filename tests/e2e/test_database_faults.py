"""The database refuses writes (full disk, read-only file or role): a command is answered, in
private, that nothing was saved, and nothing is half-done in Slack. Once writes work again the
same command declares exactly one incident."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlmodel import select

from bot.db import Database
from bot.models import Incident
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack.inbound import NOT_SAVED
from tests.db_faults import refuse_writes
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import answer


@pytest.fixture
def disk_full(db: Database) -> Iterator[Callable[[], None]]:
    """Every new effect row fails to insert, as on a full disk; the returned call lifts it."""
    allow_writes = refuse_writes(db)
    yield allow_writes
    allow_writes()


def incidents(db: Database) -> list[Incident]:
    with db.transaction() as session:
        return list(session.exec(select(Incident)).all())


def test_a_command_that_cannot_be_saved_says_so_and_changes_nothing(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    disk_full: Callable[[], None],
) -> None:
    reply = slack.slash_command("Checkout returns 500s", user="ana.garcia", channel="general")
    assert reply.status == 200  # acknowledged within Slack's 3 seconds, not an error page
    bot.settle()
    said = answer(fake, reply)
    assert said == NOT_SAVED
    assert "Traceback" not in said
    posts = fake.response_posts(reply.request.response_url)
    assert [p.payload.get("response_type") for p in posts] == ["ephemeral"]
    assert incidents(db) == []
    assert fake.calls_to("conversations.create") == []
    assert fake.calls_to("chat.postMessage") == []

    disk_full()  # space freed: writes work again
    again = slack.slash_command("Checkout returns 500s", user="ana.garcia", channel="general")
    assert again.status == 200
    bot.settle()
    [incident] = incidents(db)
    assert incident.title == "Checkout returns 500s"
    assert len(fake.calls_to("conversations.create")) == 1
