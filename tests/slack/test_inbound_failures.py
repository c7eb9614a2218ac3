"""Processing a recorded Slack request: only what can work later is tried again (the database
cut off, Slack's transient errors). A request that fails any other way (a bug, a value nobody
checked) ends at once as failed: the person is told plainly, once, that nothing was changed,
and their next request in the same channel runs right away instead of queueing behind an hour
of retries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import col, select

from bot.clock import utcnow
from bot.config import Policy, Settings
from bot.db import Database
from bot.effects import kinds, store
from bot.effects.models import Effect
from bot.effects.runner import EffectRunner
from bot.runtime import Firebreak
from bot.slack.gateway import SlackCallError
from bot.slack.inbound import Inbox, Replies
from bot.slack.listeners.context import UNAVAILABLE, Ctx, guarded

ANA = {"user_id": "U0ANA", "channel_id": "C0GENERAL", "response_url": None}
"""A command from one person in one channel: all of hers there share a lane."""


@pytest.fixture
def inbox(db: Database, database_url: str) -> Inbox:
    settings = Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-not-used",
        SLACK_SIGNING_SECRET="not-used",
        SLACK_API_URL="http://127.0.0.1:9/api/",  # processing here never calls Slack
    )
    return Inbox(Firebreak.create(settings, Policy(), database=db))


def runner(inbox: Inbox) -> EffectRunner:
    return EffectRunner(inbox.fb.db, {kinds.SLACK_REQUEST: inbox.handle}, worker_id="w", threads=0)


def run_next(db: Database, runner: EffectRunner) -> str | None:
    """Claim and run the next request that is due; None when nothing is."""
    with db.transaction() as session:
        ids = session.exec(
            select(Effect.id).where(
                col(Effect.kind) == kinds.SLACK_REQUEST, col(Effect.state) == "pending"
            )
        ).all()
        claimed = store.claim(session, "w", now=utcnow(), limit=1, ids=[i for i in ids if i])
    return runner.execute(claimed[0]) if claimed else None


def said(db: Database) -> list[str]:
    with db.read() as session:
        rows = session.exec(
            select(Effect).where(col(Effect.kind) == kinds.REPLY).order_by(col(Effect.id))
        ).all()
    return [str(r.data["text"]) for r in rows]


def requests(db: Database) -> dict[str, tuple[str, int]]:
    with db.read() as session:
        rows = session.exec(select(Effect).where(col(Effect.kind) == kinds.SLACK_REQUEST)).all()
    return {str(r.data["key"]): (r.state, r.attempts) for r in rows}


@pytest.mark.parametrize(
    "bug",
    [
        lambda: int("\u00b2"),  # ValueError: a value no check refused
        lambda: dict[str, str]()["missing"],  # KeyError
        lambda: divmod(1, 0),  # ZeroDivisionError
    ],
)
def test_a_request_that_fails_with_a_bug_ends_at_once_and_says_so_plainly(
    inbox: Inbox, db: Database, bug: Callable[[], object]
) -> None:
    attempts: list[int] = []

    def broken(kind: str, body: dict[str, Any], replies: Replies) -> None:
        attempts.append(1)
        bug()

    inbox.processors["command"] = broken
    assert inbox.record("command", "cmd:T1", ANA)
    run = runner(inbox)
    with freeze_time(utcnow()) as clock:
        outcomes = [run_next(db, run)]
        clock.tick(timedelta(hours=2))  # past any backoff
        outcomes.append(run_next(db, run))

    assert outcomes == ["failed", None] and attempts == [1]
    assert requests(db) == {"cmd:T1": ("failed", 1)}
    (warning,) = said(db)
    assert warning.startswith(":warning: Firebreak could not do this")
    assert "nothing was changed" in warning
    assert "try it again" not in warning and "saved" not in warning
    assert "Traceback" not in warning and "ValueError" not in warning


def test_what_a_failed_request_said_before_it_failed_is_kept(inbox: Inbox, db: Database) -> None:
    def half_way(kind: str, body: dict[str, Any], replies: Replies) -> None:
        replies("Update posted to INC-7.")
        raise RuntimeError("a bug")

    inbox.processors["command"] = half_way
    assert inbox.record("command", "cmd:T1", ANA)
    assert run_next(db, runner(inbox)) == "failed"
    first, warning = said(db)
    assert first == "Update posted to INC-7."
    assert "nothing else was changed" in warning


def test_the_persons_next_request_in_the_channel_runs_right_after_a_failed_one(
    inbox: Inbox, db: Database
) -> None:
    done: list[str] = []

    def process(kind: str, body: dict[str, Any], replies: Replies) -> None:
        if body.get("text") == "poison":
            raise ValueError("invalid literal for int()")
        done.append(str(body.get("text")))
        replies("Update posted.")

    inbox.processors["command"] = process
    assert inbox.record("command", "cmd:T1", {**ANA, "text": "poison"})
    assert inbox.record("command", "cmd:T2", {**ANA, "text": "update DB failover done"})
    run = runner(inbox)
    with freeze_time(utcnow()):  # no time passes: nothing waits for a backoff
        outcomes = [run_next(db, run), run_next(db, run), run_next(db, run)]

    assert outcomes == ["failed", "done", None]
    assert done == ["update DB failover done"]
    assert requests(db) == {"cmd:T1": ("failed", 1), "cmd:T2": ("done", 1)}


@pytest.mark.parametrize(
    "cut_off",
    [
        OperationalError("UPDATE incidents", {}, Exception("server closed the connection")),
        PoolTimeout("QueuePool limit of size 10 overflow 0 reached, connection timed out"),
        SlackCallError("chat.postMessage", "ratelimited", transient=True, retry_after=1),
    ],
)
def test_what_can_work_later_is_still_tried_again(
    inbox: Inbox, db: Database, cut_off: Exception
) -> None:
    attempts: list[int] = []

    def once_cut_off(kind: str, body: dict[str, Any], replies: Replies) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise cut_off
        replies("Declared INC-7")

    inbox.processors["command"] = once_cut_off
    assert inbox.record("command", "cmd:T1", ANA)
    run = runner(inbox)
    with freeze_time(utcnow()) as clock:
        outcomes = [run_next(db, run)]
        clock.tick(timedelta(minutes=5))  # past any backoff
        outcomes.append(run_next(db, run))

    assert outcomes == ["retry", "done"] and attempts == [1, 1]
    assert said(db) == ["Declared INC-7"]


@pytest.mark.parametrize(
    ("failure", "told", "logged"),
    [
        (OperationalError("SELECT", {}, Exception("connection refused")), UNAVAILABLE, "WARNING"),
        (PoolTimeout("QueuePool limit reached"), UNAVAILABLE, "WARNING"),
        (KeyError("a bug"), "Something went wrong inside Firebreak", "ERROR"),
    ],
    ids=["connection-refused", "pool-timeout", "bug"],
)
def test_a_read_while_the_database_is_down_says_so_and_is_no_bug(
    failure: Exception, told: str, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``/incident status`` while the database is down: the person is told it is unavailable
    (not "something went wrong inside Firebreak"), and the log has a warning, no traceback."""
    answers: list[str] = []

    def respond(**kwargs: Any) -> None:
        answers.append(str(kwargs["text"]))

    def read() -> None:
        raise failure

    ctx = Ctx(user="U0ANA", channel="C0GENERAL", respond=respond, key="status:1")
    with caplog.at_level("WARNING"):
        guarded(ctx, read)
    [said] = answers
    assert told in said
    assert [r.levelname for r in caplog.records] == [logged]
    assert (caplog.records[0].exc_info is not None) == (logged == "ERROR")
