"""Replicas killed with SIGKILL: real processes, a shared database, the fake Slack. Whatever a
dead replica recorded is finished by another, once: no incident without its channel, no
second channel, no change lost, no reply twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlmodel import col, select

from bot import incidents as core
from bot.db import Database
from bot.effects import kinds
from bot.effects.models import Effect
from bot.models import EventKind, Incident
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import texts

from .replica import SECRET

ROOT = Path(__file__).resolve().parents[2]
PATIENCE = 120.0
"""Generous: leases are 30 s. The time a stranded set-up takes is measured in bench/, not here."""


@contextmanager
def replica(fake: FakeSlack, database_url: str, *flags: str) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.effects.replica",
            database_url,
            fake.api_url,
            fake.token,
            fake.channel_id("incidents"),
            *flags,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def url_of(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line.startswith("http://"), line
    return line


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL


def wait_for(
    what: str,
    done: Callable[[], bool],
    timeout: float = PATIENCE,
    explain: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            why = f"; {explain()}" if explain is not None else ""
            raise AssertionError(f"still waiting for {what} after {timeout:.0f} s{why}")
        time.sleep(0.2)


def effects_now(db: Database) -> str:
    """Every effect row, for a failure message: what is stuck, and why."""
    with db.read() as session:
        rows = session.exec(select(Effect).order_by(col(Effect.id))).all()
    return "effects: " + "; ".join(
        f"{r.id} {r.kind} {r.state} attempts={r.attempts} due={r.due_at:%H:%M:%S} "
        f"claimed_until={r.claimed_until and f'{r.claimed_until:%H:%M:%S}'} "
        f"error={(r.last_error or '')[:80]!r}"
        for r in rows
    )


def only_incident(db: Database) -> Incident | None:
    with db.read() as session:
        found = list(session.exec(select(Incident).order_by(col(Incident.number))).all())
    assert len(found) <= 1
    return found[0] if found else None


def test_a_replica_killed_mid_set_up_is_finished_by_another(
    fake: FakeSlack, db: Database, database_url: str
) -> None:
    # Slack creates the channel, then hangs on inviting the reporter (part of the channel's
    # effect): the replica dies right there, before it recorded the channel.
    fake.fail("conversations.invite", mode="hang", hang_seconds=110, times=1)
    with replica(fake, database_url) as first:
        slack = SlackSimulator(fake, url_of(first), SECRET)
        reply = slack.slash_command("Checkout is down", user="ana.garcia", channel="general")
        assert reply.status == 200
        wait_for("the invite to hang", lambda: len(fake.calls_to("conversations.invite")) == 1)
        kill(first)
    fake.clear_failures()
    incident = only_incident(db)
    assert incident is not None and incident.slack_channel_id is None  # stranded half-way
    # The answer to the reporter is sent at most once: if the dead replica had started sending
    # it (another thread, a loaded machine) and no post arrived, it may have been delivered as
    # far as anyone can tell, and is not sent again. Otherwise it is sent, once.
    with db.read() as session:
        answer = session.exec(select(Effect).where(col(Effect.kind) == kinds.REPLY)).first()
    answered = 1
    if (
        answer is not None
        and answer.attempts
        and not fake.response_posts(reply.request.response_url)
    ):
        answered = 0
    assert [c.name for c in fake.channels() if c.name.startswith("inc-")] != []

    with replica(fake, database_url) as second:
        url_of(second)

        def missing() -> list[str]:
            found = only_incident(db)
            if found is None:
                return ["the incident"]
            channel = found.slack_channel_id
            parts = {
                "the channel": bool(channel),
                "the summary": bool(found.summary_message_ts),
                "the announcement": bool(found.announcement_ts),
                "the pin": bool(channel) and found.summary_message_ts in fake.pins(channel or ""),
                "the answer": len(fake.response_posts(reply.request.response_url)) == answered,
            }
            return [name for name, there in parts.items() if not there]

        # The reply was claimed with the hung channel in one batch and never tried: it is
        # sent once, not taken for an attempt that may have been delivered.
        wait_for(
            "another replica to finish the set-up and answer the reporter",
            lambda: not missing(),
            explain=lambda: f"missing {', '.join(missing())}; {effects_now(db)}",
        )
    incident = only_incident(db)
    assert incident is not None
    channel = incident.slack_channel_id or ""
    assert [c.name for c in fake.channels() if c.name.startswith("inc-")] == [
        incident.slack_channel_name
    ]
    assert fake.user_id("ana.garcia") in fake.members(channel)
    summaries = [m for m in fake.messages(channel) if "INC-1: Checkout is down" in texts(m)]
    assert len(summaries) == 1
    announced = [m for m in fake.messages(fake.channel_id("incidents")) if "INC-1" in texts(m)]
    assert len(announced) == 1
    with db.read() as session:
        recorded = [e.kind for e in core.timeline(session, incident.id or 0)]
    assert recorded.count(EventKind.CHANNEL_CREATED) == 1
    assert len(fake.response_posts(reply.request.response_url)) == answered


def test_what_a_dead_replica_acknowledged_is_done_by_another_once(
    fake: FakeSlack, db: Database, database_url: str
) -> None:
    with replica(fake, database_url) as setup:
        slack = SlackSimulator(fake, url_of(setup), SECRET)
        slack.slash_command("Payments failing", user="ana.garcia", channel="general")
        wait_for(
            "the incident channel", lambda: bool((i := only_incident(db)) and i.summary_message_ts)
        )
        kill(setup)
    incident = only_incident(db)
    assert incident is not None
    channel = incident.slack_channel_id or ""
    fake.join(channel, fake.user_id("ben.okafor"))

    # This replica records and acknowledges, then dies before doing any of it.
    with replica(fake, database_url, "--idle") as doomed:
        slack = SlackSimulator(fake, url_of(doomed), SECRET)
        said = [slack.say(channel, "ben.okafor", f"clue {n}")[0] for n in range(3)]
        replies = [
            slack.slash_command(f"note finding {n}", user="ana.garcia", channel=channel)
            for n in range(4)
        ]
        replies.append(slack.slash_command("sev 1", user="ana.garcia", channel=channel))
        for ts in said:
            assert slack.react(channel, ts, user="ben.okafor", reaction="pushpin").status == 200
        assert all(r.status == 200 for r in replies)
        kill(doomed)

    incident_id = incident.id or 0
    with replica(fake, database_url) as survivor:
        url_of(survivor)

        def applied() -> bool:
            with db.read() as session:
                events = core.timeline(session, incident_id)
            notes = [e for e in events if e.kind == EventKind.NOTE]
            captured = [e for e in events if e.kind == EventKind.MESSAGE]
            return (
                len(notes) == 4
                and len(captured) == 3
                and any(e.kind == EventKind.SEVERITY_CHANGED for e in events)
            )

        wait_for("the acknowledged changes", applied)
        # The pinned summary catches up too: its refresh may have been claimed by the replica
        # killed first, and is taken over when that claim's lease runs out.
        summary_ts = incident.summary_message_ts or ""
        wait_for(
            "the pinned summary to show SEV1",
            lambda: "SEV1" in texts(fake.message(channel, summary_ts)),
        )
        time.sleep(2)  # anything done twice would show up by now
    with db.read() as session:
        events = core.timeline(session, incident.id or 0)
        incident = core.get_incident(session, incident.id or 0)
    assert sorted(e.text for e in events if e.kind == EventKind.NOTE) == [
        f"finding {n}" for n in range(4)
    ]
    assert sorted(e.text for e in events if e.kind == EventKind.MESSAGE) == [
        f"clue {n}" for n in range(3)
    ]
    assert [e.kind for e in events].count(EventKind.SEVERITY_CHANGED) == 1
    assert incident.severity == "SEV1"
    for reply in replies[:4]:  # the notes were answered once each
        assert len(fake.response_posts(reply.request.response_url)) == 1
