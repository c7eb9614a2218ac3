"""Fixtures for the reminder tests: a recording stand-in for Slack, a team policy with escalation
targets, and small helpers that drive the core the way Slack would.

A reminder queues what it says as effects; ``make_worker`` gives a worker whose ``tick`` also
runs the effect runner, posting each message through ``FakeNotifier`` after rendering it with
the Slack layer's renderer, so the tests see what Slack would receive."""

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
from bot.effects import kinds
from bot.effects.runner import Done, EffectRunner, TransientError
from bot.effects.store import Claimed
from bot.models import Incident, Reminder, TimelineEvent
from bot.reminders.worker import ReminderWorker, TickReport
from bot.slack.limits import assert_valid_message, iter_texts
from bot.slack.reminder_blocks import render_notice

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


class NotifierError(Exception):
    """Sending failed (Slack error, network, rate limit)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


class DeliveringWorker:
    """A reminder worker plus the effect runner that posts what it queued."""

    def __init__(
        self, db: Database, policy: Policy, notifier: FakeNotifier, name: str, **kwargs: Any
    ) -> None:
        self.policy = policy
        self.notifier = notifier
        self.reminders = ReminderWorker(db, policy, worker_id=name, **kwargs)
        # Only reminders' messages reach the notifier; the rest of the Slack side (channels,
        # summaries) is tested with the fake Slack, and is done here as nothing.
        handlers = {kind: _nothing for kind in vars(kinds).values() if isinstance(kind, str)}
        self.runner = EffectRunner(
            db, {**handlers, kinds.POST: self._post}, worker_id=name, threads=0
        )

    @property
    def worker_id(self) -> str:
        return self.reminders.worker_id

    def tick(self, **kwargs: Any) -> TickReport:
        report = self.reminders.tick(**kwargs)
        self.runner.run_until_idle()
        return report

    def process(self, item: Any) -> str:
        outcome = self.reminders.process(item)
        self.runner.run_until_idle()
        return outcome

    def release(self) -> int:
        return self.reminders.release()

    def _post(self, item: Claimed) -> Done:
        if not item.key.startswith("reminder:"):
            return Done()
        message = render_notice(self.policy, item.data["notice"], self.notifier.user_groups())
        try:
            self.notifier.post_message(str(item.data["to"]), message.text, message.blocks)
        except NotifierError as exc:
            raise TransientError(str(exc), retry_after=exc.retry_after) from None
        return Done()


def _nothing(item: Claimed) -> Done:
    return Done()


def make_worker(
    db: Database, policy: Policy, notifier: FakeNotifier, name: str = "worker-1", **kwargs: Any
) -> DeliveringWorker:
    return DeliveringWorker(db, policy, notifier, name, **kwargs)


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
