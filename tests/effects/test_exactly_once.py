"""Exactly once against Slack failing the way it really fails: the real bot over HTTP, the fake
Slack doing the work and then answering 500, dropping the connection, hanging, sending an HTML
page or garbage, rate limiting with every kind of ``Retry-After``, a channel archived under the
bot. Each test counts what reached Slack and the timeline: nothing lost, nothing twice."""

from __future__ import annotations

import time

import pytest
from sqlmodel import col, select

from bot import incidents as core
from bot.db import Database
from bot.effects import kinds
from bot.effects.models import Effect
from bot.models import EventKind, Incident, TimelineEvent
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import declare


def updates_in(fake: FakeSlack, channel: str, words: str) -> int:
    return sum(
        1 for m in fake.messages(channel) if "Status update" in texts(m) and words in texts(m)
    )


def events(db: Database, incident: Incident, kind: str) -> list[TimelineEvent]:
    with db.read() as session:
        return [e for e in core.timeline(session, incident.id or 0) if e.kind == kind]


def effects(db: Database) -> list[Effect]:
    with db.read() as session:
        return list(session.exec(select(Effect).order_by(col(Effect.id))).all())


@pytest.mark.parametrize("mode", ["500", "reset", "html", "garbage"])
def test_a_post_slack_did_then_failed_to_confirm_is_found_not_repeated(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, mode: str
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.fail("chat.postMessage", mode=mode, after_work=True, times=1)  # type: ignore[arg-type]
    slack.slash_command("update failover done, watching", user="ana.garcia", channel=channel)
    bot.settle()
    assert updates_in(fake, channel, "failover done") == 1
    assert len(events(db, incident, EventKind.STATUS_UPDATE)) == 1
    [post] = [e for e in effects(db) if e.key.endswith(":update")]
    assert post.state == "done" and post.attempts == 2 and post.result.get("found") is True


def test_a_post_that_hung_until_the_connection_dropped_is_posted_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.fail("chat.postMessage", mode="hang", after_work=True, hang_seconds=1, times=1)
    slack.slash_command("update rolling back", user="ana.garcia", channel=channel)
    bot.settle(timeout=60)
    assert updates_in(fake, channel, "rolling back") == 1


@pytest.mark.parametrize("mode", ["500", "html", "garbage", "reset"])
def test_a_post_slack_refused_before_doing_it_is_retried_and_posted_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, mode: str
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.fail("chat.postMessage", mode=mode, times=2)  # type: ignore[arg-type]
    slack.slash_command("update cache flushed", user="ana.garcia", channel=channel)
    bot.settle()
    assert updates_in(fake, channel, "cache flushed") == 1


def test_five_updates_each_answered_500_after_posting_make_five_messages(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """The report: 5 status updates became 15 messages. Now: 5."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.fail("chat.postMessage", mode="500", after_work=True, times=5)
    for n in range(5):
        slack.slash_command(f"update step {n} done", user="ana.garcia", channel=channel)
    bot.settle()
    for n in range(5):
        assert updates_in(fake, channel, f"step {n} done") == 1
    assert len(events(db, incident, EventKind.STATUS_UPDATE)) == 5


def test_a_channel_slack_created_then_answered_500_is_adopted_not_doubled(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    fake.fail("conversations.create", mode="500", after_work=True, times=5)
    titles = ["Outage alpha", "Outage bravo", "Outage charlie", "Outage delta", "Outage echo"]
    for title in titles:
        slack.slash_command(title, user="ana.garcia", channel="general")
    bot.settle()
    with db.read() as session:
        found = list(session.exec(select(Incident).order_by(col(Incident.number))).all())
    assert len(found) == 5
    made = [c for c in fake.channels() if c.name.startswith("inc-")]
    assert len(made) == 5  # no "-2" and no orphan
    assert {c.id for c in made} == {i.slack_channel_id for i in found}
    for incident in found:
        assert (
            incident.slack_channel_name
            == f"inc-{incident.number}-{incident.title.lower().replace(' ', '-')}"
        )
        assert len(events(db, incident, EventKind.CHANNEL_CREATED)) == 1
        assert incident.summary_message_ts in fake.pins(incident.slack_channel_id or "")


@pytest.mark.parametrize("retry_after", ["1", "0", "86400", "abc", None])
def test_captures_in_a_rate_limit_storm_all_land_once(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    retry_after: str | None,
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said = [slack.say(channel, "ana.garcia", f"observation {n}")[0] for n in range(8)]
    if retry_after is None:
        fake.fail("conversations.history", status=429, retry_after_header=False, times=3)
    else:
        fake.fail("conversations.history", status=429, retry_after=retry_after, times=3)
    for ts in said:
        slack.react(channel, ts, user="ana.garcia", reaction="pushpin")
    bot.settle(timeout=60)
    captured = sorted(e.text for e in events(db, incident, EventKind.MESSAGE))
    assert captured == sorted(f"observation {n}" for n in range(8))
    assert [c.status for c in fake.calls_to("conversations.history")].count(429) == 3


def test_the_pinned_summary_catches_up_after_a_burst_of_errors(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.fail("chat.update", status=429, retry_after=1, times=2)
    fake.fail("chat.update", mode="500", after_work=True, times=1)
    for severity in ("2", "1"):
        slack.slash_command(f"sev {severity}", user="ana.garcia", channel=channel)
    bot.settle(timeout=60)
    summary = fake.message(channel, incident.summary_message_ts or "")
    assert "SEV1" in texts(summary)


def test_an_archived_channel_ends_the_effect_on_the_timeline_and_tells_the_commander(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.archive(channel)
    slack.slash_command(
        f"INC-{incident.number} note archived by mistake", user="ana.garcia", channel="general"
    )
    slack.slash_command(f"INC-{incident.number} sev 1", user="ana.garcia", channel="general")
    bot.settle()
    failed = [e for e in effects(db) if e.state == "failed"]
    assert failed and all(e.attempts == 1 for e in failed)  # permanent: not retried
    assert events(db, incident, EventKind.SLACK_FAILED)
    told = [texts(m) for m in fake.messages(fake.im_channel("ana.garcia"))]
    assert any("archived" in t for t in told), told


def test_a_channel_full_of_pins_ends_the_refresh_on_the_timeline_and_tells_the_commander_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    fake.fail("pins.add", error="too_many_pins", times=None)
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    summary = incident.summary_message_ts or ""
    [refresh] = [e for e in effects(db) if e.kind == kinds.REFRESH]
    assert (refresh.state, refresh.attempts) == ("failed", 1)  # permanent: not retried
    [failed] = events(db, incident, EventKind.SLACK_FAILED)
    assert "Slack refused pins.add (too_many_pins)" in failed.text
    assert "unpin one" in failed.text
    told = [texts(m) for m in fake.messages(fake.im_channel("ana.garcia"))]
    assert sum("too_many_pins" in t for t in told) == 1, told
    assert summary and fake.pins(channel) == []  # the summary is posted, only not pinned

    # Later changes still update the summary, and the refusal is not said again.
    slack.slash_command("sev 1", user="ana.garcia", channel=channel)
    bot.settle()
    assert "SEV1" in texts(fake.message(channel, summary))
    assert len(events(db, incident, EventKind.SLACK_FAILED)) == 1
    told = [texts(m) for m in fake.messages(fake.im_channel("ana.garcia"))]
    assert sum("too_many_pins" in t for t in told) == 1, told

    # Once someone made room, the next update pins it.
    fake.clear_failures()
    slack.slash_command("sev 2", user="ana.garcia", channel=channel)
    bot.settle()
    assert fake.pins(channel) == [summary]


def cut_database_connections(db: Database) -> None:
    """Every other connection to the test database is cut (PostgreSQL), or the database is held
    by another writer for a few seconds (SQLite, where a connection is a file handle)."""
    if db.backend == "postgresql":
        with db.engine.connect() as connection:
            connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        return
    with db.engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        raw.execute("BEGIN EXCLUSIVE")
        time.sleep(3)
        raw.execute("ROLLBACK")


def test_a_database_connection_cut_mid_work_loses_nothing_and_doubles_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.fail("chat.postMessage", mode="hang", hang_seconds=1, times=1)  # work in flight
    for n in range(6):
        slack.slash_command(f"update phase {n}", user="ana.garcia", channel=channel)
    cut_database_connections(db)
    bot.settle(timeout=120, within=40)  # a lost claim is retaken after its 30 s lease
    for n in range(6):
        assert updates_in(fake, channel, f"phase {n}") == 1
    assert len(events(db, incident, EventKind.STATUS_UPDATE)) == 6
