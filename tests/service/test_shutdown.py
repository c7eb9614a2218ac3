"""Graceful shutdown: on SIGTERM (Kubernetes, ``docker stop``) ``firebreak serve`` stops taking
requests, finishes the work it acknowledged, gives its reminder claims back and exits 0."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlmodel import select

from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.migrations import MIGRATION_LOCK
from bot.models import Incident, Reminder
from bot.reminders import CLAIMED, PENDING, claim_due_reminders
from bot.sandbox import SlackSimulator
from bot.slack.limits import iter_texts
from tests.service.conftest import (
    SECRET,
    HoldingFakeSlack,
    ServeProcess,
    eventually,
    reminder_messages,
    seed_overdue_incidents,
)

DRAINED = "acknowledged work finished"
RELEASED = re.compile(r"reminder scheduler stopped; (\d+) claims released")


def test_sigterm_finishes_acknowledged_work_hands_reminders_over_and_exits_0(
    fake: HoldingFakeSlack,
    launch: Callable[..., ServeProcess],
    service_policy: Policy,
    service_database_url: str,
) -> None:
    # Three incidents nobody acknowledged for hours: six reminders are due when the service
    # starts. Slack is slow with the first of them, so the scheduler is mid-tick holding claims
    # on all six when the signal arrives.
    overdue = seed_overdue_incidents(service_database_url, fake, service_policy, count=3)
    first_reminder = fake.hold("chat.postMessage", mentioning=[o.channel for o in overdue])
    service = launch()
    first_reminder.wait_entered()

    # Someone declares an incident; Slack is slow to create its channel.
    channel_create = fake.hold("conversations.create")
    slack = SlackSimulator(fake, service.events_url, SECRET)
    reply = slack.slash_command("Checkout returns 500s", user="ana.garcia", channel="general")
    assert reply.status == 200 and reply.problems == ()
    channel_create.wait_entered()

    service.terminate()
    eventually(lambda: not service.accepts_connections(), "the listener closes on SIGTERM")
    assert service.running, "the process must finish the work it acknowledged before exiting"
    with pytest.raises(ConnectionRefusedError):
        slack.slash_command("Search is down", user="ben.okafor", channel="general")

    channel_create.release()
    eventually(
        lambda: fake.response_posts(reply.request.response_url),
        "the declaration is answered after set-up",
    )
    # Once the acknowledged work is done the scheduler is told to stop; the tick in flight
    # finishes the reminder it is sending and sends no more.
    eventually(lambda: any(DRAINED in line for line in service.stderr), "the drain is logged")
    first_reminder.release()
    assert service.wait() == 0, service.output()

    # The acknowledged declaration was carried out in full, once.
    database = Database(service_database_url)
    try:
        with database.transaction() as session:
            incident = session.exec(
                select(Incident).where(Incident.title == "Checkout returns 500s")
            ).one()
            reminders = list(session.exec(select(Reminder)).all())
        channel = incident.slack_channel_id
        assert channel is not None and incident.slack_setup_error is None
        assert len(fake.calls_to("conversations.create")) == 1
        assert fake.pins(channel) == [incident.summary_message_ts]
        summary = fake.message(channel, incident.summary_message_ts or "")
        assert f"{incident.ref}: Checkout returns 500s" in "\n".join(
            [summary.text, *iter_texts(summary.blocks)]
        )
        [answer] = fake.response_posts(reply.request.response_url)
        assert f"Declared *{incident.ref}*" in "\n".join(
            [str(answer.payload.get("text", "")), *iter_texts(answer.payload.get("blocks") or [])]
        )

        # No claim outlives the process: every overdue reminder was either sent exactly once
        # or handed back, due, for another replica to take at once (not after the lease).
        assert [r.dedupe_key for r in reminders if r.state == CLAIMED or r.claimed_by] == []
        seeded_ids = {o.incident_id for o in overdue}
        seeded = [r for r in reminders if r.incident_id in seeded_ids]
        assert len(seeded) == 2 * len(overdue)
        assert {r.sent_count for r in seeded} <= {0, 1}
        for item in overdue:
            sent_here = sum(r.sent_count for r in seeded if r.incident_id == item.incident_id)
            # Each reminder queued its message as an effect; the drain posted every one once.
            assert len(reminder_messages(fake, item.channel)) == sent_here
        sent = [r for r in seeded if r.sent_count == 1]
        handed_back = [r for r in seeded if r.sent_count == 0]
        assert sent, "the reminder in flight at SIGTERM was finished"
        assert all(r.state == PENDING for r in handed_back)
        with database.transaction() as session:
            taken = claim_due_reminders(session, "another-replica", now=utcnow())
        assert sorted(c.id for c in taken if c.incident_id in seeded_ids) == sorted(
            r.id for r in handed_back if r.id is not None
        )
    finally:
        database.dispose()
    released = [int(m.group(1)) for line in service.stderr if (m := RELEASED.search(line))]
    assert released == [len(handed_back)]


def test_sigterm_on_an_idle_service_exits_0_at_once(launch: Callable[..., ServeProcess]) -> None:
    service = launch()
    service.terminate()
    assert service.wait() == 0, service.output()
    assert not service.accepts_connections()


def test_sigterm_while_starting_stops_there_with_a_line_and_exit_0(
    fake: HoldingFakeSlack, launch: Callable[..., ServeProcess]
) -> None:
    """A pod stopped while it waits for Slack (or migrates) says so and exits 0, instead of
    dying silently with 143."""
    held = fake.hold("auth.test")
    service = launch(wait=False)
    assert held.entered.wait(30), service.output()
    service.terminate()
    assert service.wait() == 0, service.output()
    messages = [r["message"] for r in service.log_records()]
    assert messages[-1] == "stopped by SIGTERM while starting; nothing was served", messages
    assert not service.accepts_connections()


def test_sigterm_while_migrating_stops_there_with_nothing_half_written(
    launch: Callable[..., ServeProcess], service_database_url: str
) -> None:
    """A rollout stopped while a new pod waits for the migration (another replica migrating)
    exits 0 with its line, and its part of the migration is rolled back."""
    url = make_url(service_database_url)
    holder = create_engine(service_database_url)
    with holder.connect() as connection:
        if url.get_backend_name() == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the database's write lock
        else:
            connection.execute(text("BEGIN"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        service = launch(wait=False)
        eventually(lambda: _waits_to_migrate(service, url), "serve waits for the migration lock")
        service.terminate()
        connection.rollback()
    assert service.wait() == 0, service.output()
    messages = [r["message"] for r in service.log_records()]
    assert messages[-1] == "stopped by SIGTERM while starting; nothing was served", messages
    if url.get_backend_name() == "postgresql":  # SQLite's lock cannot be asked for without waiting
        waiting = "waiting for another process's migration of this database"
        assert sum(m.startswith(waiting) for m in messages) == 1, messages
    assert inspect(holder).get_table_names() == []
    holder.dispose()


def _waits_to_migrate(service: ServeProcess, url: URL) -> bool:
    if url.get_backend_name() == "sqlite":
        return str(url.database) in _open_files(service.process.pid)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            waiting = connection.execute(
                # This database's only: other tests run beside this one on the same server.
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return bool(waiting)


def _open_files(pid: int) -> set[str]:
    """The files a process has open (a descriptor closed while they are listed is skipped)."""
    names = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            names.add(os.readlink(fd))
        except OSError:
            continue
    return names
