"""Another process holds the database's writer for longer than Slack waits (a backup, a
``firebreak`` CLI run, a migration; on PostgreSQL, a lock on the table): a request is answered
within Slack's 3 seconds that nothing was saved, and it is not done later behind the person's
back. Typed again once the database is free, it is done once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlmodel import select

from bot.db import Database
from bot.models import EventKind, TimelineEvent
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack.inbound import NOT_SAVED
from tests.db_faults import hold_writer as take_writer
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import answer, declare

HELD = 6.0


@pytest.fixture
def hold_writer(database_url: str) -> Iterator[Callable[[float], None]]:
    """``hold(seconds)``: another connection takes the writer (SQLite) or an exclusive lock on
    the effects table (PostgreSQL) now, and lets go after ``seconds``."""
    timers: list[threading.Timer] = []

    def hold(seconds: float) -> None:
        let_go = take_writer(database_url, table="effects")
        timer = threading.Timer(seconds, let_go)
        timers.append(timer)
        timer.start()

    yield hold
    for timer in timers:
        timer.join()


def updates(db: Database, incident_id: int | None) -> list[str]:
    with db.read() as session:
        return [
            e.text
            for e in session.exec(
                select(TimelineEvent).where(
                    TimelineEvent.incident_id == incident_id,
                    TimelineEvent.kind == EventKind.STATUS_UPDATE,
                )
            )
        ]


def test_a_request_the_busy_database_cannot_save_in_time_is_refused_not_done_later(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    hold_writer: Callable[[float], None],
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    posted = len(fake.messages(channel))
    hold_writer(HELD)
    reply = slack.slash_command(
        "update Rolled back deploy 4512", user="ana.garcia", channel=channel
    )
    assert reply.status == 200
    # Answered without waiting for the writer to be free (inbound.SAVE_WITHIN, 2 s, keeps it
    # within Slack's 3 s); not after it, as before.
    assert reply.elapsed < HELD - 2, reply.elapsed
    assert answer(fake, reply) == NOT_SAVED
    time.sleep(HELD)  # the writer free again: anything kept back would go now
    bot.settle()
    assert updates(db, incident.id) == []  # not done later, behind the person's back
    assert not any("Rolled back" in m.text for m in fake.messages(channel)[posted:])

    again = slack.slash_command(
        "update Rolled back deploy 4512", user="ana.garcia", channel=channel
    )
    assert again.status == 200
    bot.settle()
    assert updates(db, incident.id) == ["Rolled back deploy 4512"]
    assert sum("Rolled back" in m.text for m in fake.messages(channel)[posted:]) == 1
