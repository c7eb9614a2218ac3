"""An alert webhook that finds the incident counter taken by another declare is answered at
once (stored, ``declaring``); the effect runner then opens the incident and its channel, once,
and a repeat of the webhook attaches to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from bot import incidents as core
from bot.config import Policy, SlackPolicy
from bot.db import Database
from bot.effects import kinds
from bot.effects.models import Effect
from bot.incidents.text import INCIDENT_COUNTER
from bot.models import EventKind, Incident, TimelineEvent
from bot.sandbox import FakeSlack
from tests.e2e.conftest import RunningBot, send_alert

TOKEN = "alerts-token-for-the-waiting-declare"
BODY = {
    "title": "Checkout 5xx above 5%",
    "dedupe_key": "checkout-5xx",
    "status": "firing",
    "severity": "critical",
    "service": "checkout",
}


@pytest.fixture
def e2e_policy(fake: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Policy:
    monkeypatch.setenv("FIREBREAK_ALERTS_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return Policy(slack=SlackPolicy(announcements_channel=fake.channel_id("incidents")))


@contextmanager
def counter_taken(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Another declare holds the incident counter until the event is set: on PostgreSQL a
    transaction of another connection has its row locked (the effect's declare waits for it,
    as a declare does); SQLite has no row locks, so the core is told the counter is taken."""
    release = threading.Event()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as other:
            other.execute(
                text("SELECT value FROM counters WHERE name = :name FOR UPDATE"),
                {"name": INCIDENT_COUNTER},
            )
            yield release
            release.wait(10)
            other.rollback()
    else:
        with monkeypatch.context() as patch:
            patch.setattr(core, "number_free", lambda session: False)
            yield release


def test_the_webhook_is_answered_and_the_incident_opens_once(
    bot: RunningBot, fake: FakeSlack, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with counter_taken(db, monkeypatch) as release:
        answer = send_alert(bot, "generic", BODY, TOKEN)
        release.set()
    assert (answer["disposition"], answer["incident"], answer["declared"]) == (
        "declaring",
        None,
        False,
    )
    bot.settle()
    again = send_alert(bot, "generic", BODY, TOKEN)  # the same alert sent again
    assert (again["incident"], again["declared"]) == ("INC-1", False)
    bot.settle()

    with db.read() as session:
        [incident] = session.exec(select(Incident)).all()
        events = session.exec(
            select(TimelineEvent).where(TimelineEvent.incident_id == incident.id)
        ).all()
        [effect] = session.exec(select(Effect).where(Effect.kind == kinds.ALERTS_DECLARE)).all()
    assert (incident.title, incident.service, incident.reporter_id) == (
        "Checkout 5xx above 5%",
        "checkout",
        "alerts:generic",
    )
    assert (effect.state, effect.result.get("incident")) == ("done", "INC-1")
    assert [e.kind for e in events].count(EventKind.DECLARED) == 1
    assert [e.kind for e in events].count(EventKind.ALERT_FIRING) == 1
    assert len(fake.calls_to("conversations.create", applied=True)) == 1
    channel = incident.slack_channel_id or ""
    assert channel in {c.id for c in fake.channels()}
    # The alerts' post in the channel, once, as for an incident its webhook declared.
    posts = [m for m in fake.messages(channel) if "Checkout 5xx above 5%" in m.text]
    assert posts
