"""Fixtures for the reminder tests: a recording fake notifier, a team policy with escalation
targets, and small helpers that drive the core the way Slack would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlmodel import col, select

from bot import incidents as core
from bot import reminders
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.models import Incident, Reminder, TimelineEvent
from bot.reminders import NotifierError, ReminderWorker
from bot.slack.limits import assert_valid_message, iter_texts

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
"""A Monday, 10:00 UTC."""

TEAM_POLICY: dict[str, Any] = {
    "reminders": {
        "escalate_to": ["@sre-oncall", "U0LEAD"],
        "escalate_again_to": ["S0MANAGERS"],
        "escalation_channel": "C0ESCALATE",
    },
    "slack": {"announcements_channel": "C0ANNOUNCE"},
}


@dataclass(frozen=True)
class Post:
    channel: str
    text: str
    blocks: list[dict[str, Any]]

    @property
    def body(self) -> str:
        return "\n".join([self.text, *iter_texts(self.blocks)])

    @property
    def action_ids(self) -> list[str]:
        return [
            element["action_id"]
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block["elements"]
        ]


class FakeNotifier:
    """Records every message (after checking it against Slack's limits) and fails on demand."""

    def __init__(self, groups: Mapping[str, str] | None = None) -> None:
        self.posts: list[Post] = []
        self.groups = dict(groups or {})
        self.failing = False
        self.fail_channels: set[str] = set()
        self.retry_after: float | None = None
        self.posted = threading.Event()
        self.on_post: Callable[[], None] | None = None
        """Runs inside the Slack call, to act while a message is on its way."""
        self._lock = threading.Lock()

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        assert_valid_message(text, blocks)
        with self._lock:
            if self.failing or channel in self.fail_channels:
                raise NotifierError("ratelimited", retry_after=self.retry_after)
            self.posts.append(Post(channel, text, blocks))
            self.posted.set()
            ts = f"{len(self.posts)}.000100"
        if self.on_post is not None:
            self.on_post()
        return ts

    def user_groups(self) -> Mapping[str, str]:
        return dict(self.groups)

    def containing(self, needle: str) -> list[Post]:
        return [p for p in self.posts if needle in p.body]


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier(groups={"sre-oncall": "S0SRE"})


@pytest.fixture
def team_policy() -> Policy:
    return policy_from_dict(TEAM_POLICY)


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(T0) as frozen:
        assert isinstance(frozen, FrozenDateTimeFactory)
        yield frozen


def declare(
    db: Database,
    policy: Policy,
    *,
    severity: str = "SEV2",
    channel: str | None = "C0INC1",
    private: bool = False,
    title: str = "Checkout returns 500s",
    now: datetime | None = None,
) -> int:
    """Declare an incident and give it a Slack channel, as the Slack layer does."""
    with db.transaction() as session:
        incident = core.declare_incident(
            session,
            policy,
            title=title,
            reporter="U0REPORTER",
            severity=severity,
            private=private,
            now=now,
        ).incident
        incident.slack_channel_id = channel
        session.add(incident)
    assert incident.id is not None
    return incident.id


def set_channel(db: Database, incident_id: int, channel: str) -> None:
    with db.transaction() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        incident.slack_channel_id = channel
        session.add(incident)


def make_worker(
    db: Database, policy: Policy, notifier: FakeNotifier, name: str = "worker-1", **kwargs: Any
) -> ReminderWorker:
    return ReminderWorker(db, policy, notifier, worker_id=name, **kwargs)


def find_reminder(db: Database, key: str) -> Reminder | None:
    with db.transaction() as session:
        return reminders.get_reminder(session, key)


def reminder(db: Database, key: str) -> Reminder:
    row = find_reminder(db, key)
    assert row is not None, f"no reminder {key!r}"
    return row


def reminder_count(db: Database) -> int:
    with db.transaction() as session:
        return len(session.exec(select(Reminder.id)).all())


def events_of(db: Database, incident_id: int, kind: str) -> list[TimelineEvent]:
    with db.transaction() as session:
        return list(
            session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == incident_id, TimelineEvent.kind == kind)
                .order_by(col(TimelineEvent.id))
            ).all()
        )


def at(clock: FrozenDateTimeFactory, delta: timedelta) -> None:
    """Move the frozen clock to ``T0 + delta``."""
    clock.move_to(T0 + delta)
