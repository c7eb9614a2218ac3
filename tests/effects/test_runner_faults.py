"""The effect runner when time or the database misbehaves under it: two replicas' runners
against the fake Slack, the clock moved by freezegun, the disk filling up mid-effect.

* The wall clock jumps (an NTP step, a virtual machine resumed from a snapshot): work queued
  for "now" still runs when the clock steps back, and a claim that a forward jump expired is
  taken over as a repeat, which finds the message its first holder posted.
* The database refuses writes after Slack did the work: the outcome cannot be recorded, the
  runner carries on, and once writes work the effect is finished by whoever holds it next,
  without a second message."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from bot import incidents as core
from bot.clock import utcnow
from bot.config import Policy, Settings
from bot.db import Database
from bot.effects import kinds, store
from bot.effects.models import Effect
from bot.effects.runner import EffectRunner, Outcome
from bot.effects.store import Claimed
from bot.models import EventKind, Incident
from bot.observability import Workers
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack
from bot.slack.app import SlackBot, build_bot
from bot.slack.effects import SlackEffects
from bot.slack.flows import IncidentFlows
from bot.slack.inbound import Inbox, Replies
from tests.db_faults import refuse_writes
from tests.e2e.conftest import texts

SECRET = "clock-jump-signing-secret"


@pytest.fixture
def fb(fake: FakeSlack, db: Database, e2e_policy: Policy, database_url: str) -> Firebreak:
    settings = Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
    )
    return Firebreak.create(settings, e2e_policy, database=db)


def replica(fb: Firebreak, name: str) -> Iterator[SlackBot]:
    """One replica's Slack side, its runner driven by the test (no background threads)."""
    bot = build_bot(fb, workers=Workers(1), worker_id=name, effect_threads=0)
    yield bot
    bot.workers.shutdown(wait=True)


@pytest.fixture
def first(fb: Firebreak) -> Iterator[SlackBot]:
    yield from replica(fb, "replica-a")


@pytest.fixture
def second(fb: Firebreak) -> Iterator[SlackBot]:
    yield from replica(fb, "replica-b")


def declared(fb: Firebreak, fake: FakeSlack, bot: SlackBot) -> tuple[int, int, str]:
    """An incident set up in Slack: (incident id, its declared event id, its channel)."""
    with fb.db.transaction() as session:
        change = core.declare_incident(
            session, fb.policy, title="Checkout is down", reporter=fake.user_id("ana.garcia")
        )
    assert change.incident.id is not None and change.event is not None
    bot.runner.run_until_idle()
    with fb.db.read() as session:
        channel = core.get_incident(session, change.incident.id).slack_channel_id
    assert channel is not None
    return change.incident.id, change.event.id or 0, channel


def post_effect(fb: Firebreak, incident_id: int, event_id: int, key: str) -> None:
    with fb.db.transaction() as session:
        store.enqueue(
            session,
            kind=kinds.POST,
            key=key,
            data={"to": "incident", "notice": {"type": "change", "event": event_id}},
            incident_id=incident_id,
            lane=store.incident_lane(incident_id),
            now=utcnow(),
        )


def the_effect(db: Database, key: str) -> Effect:
    with db.read() as session:
        return session.exec(select(Effect).where(col(Effect.key) == key)).one()


def one_post_queued(fake: FakeSlack, fb: Firebreak, bot: SlackBot, key: str) -> tuple[str, int]:
    """A set-up incident with a post queued under ``key``: (its channel, messages so far)."""
    incident_id, event_id, channel = declared(fb, fake, bot)
    before = len(fake.messages(channel))
    post_effect(fb, incident_id, event_id, key)
    return channel, before


def posted_once_by_a_repeat(
    fake: FakeSlack, fb: Firebreak, channel: str, before: int, key: str
) -> None:
    posted = fake.messages(channel)[before:]
    assert len(posted) == 1, [texts(m) for m in posted]
    effect = the_effect(fb.db, key)
    assert effect.state == "done" and effect.attempts == 2
    assert effect.result.get("found") is True  # the repeat found the first post


def test_a_forward_jump_mid_post_hands_the_effect_over_without_posting_twice(
    fake: FakeSlack, fb: Firebreak, first: SlackBot, second: SlackBot
) -> None:
    channel, before = one_post_queued(fake, fb, first, "post:jump-forward")
    real_post = first.runner.handlers[kinds.POST]
    taken_over: list[str] = []

    with freeze_time(utcnow(), tick=True) as clock:

        def post_then_jump(item: Claimed) -> Outcome:
            done = real_post(item)  # Slack has the message...
            # ...and before this replica records it, the clock steps two hours ahead: its
            # claim looks expired, and the other replica takes the effect over.
            clock.move_to(utcnow() + timedelta(hours=2))
            with fb.db.transaction() as session:
                [again] = store.claim(session, "replica-b", now=utcnow())
            taken_over.append(second.runner.execute(again))
            return done

        first.runner.handlers[kinds.POST] = post_then_jump
        with fb.db.transaction() as session:
            [item] = store.claim(session, "replica-a", now=utcnow())
        assert first.runner.execute(item) == "lost"  # its outcome is not recorded

    assert taken_over == ["done"]
    posted_once_by_a_repeat(fake, fb, channel, before, "post:jump-forward")


def test_work_queued_for_now_still_runs_when_the_clock_steps_back(
    fake: FakeSlack, fb: Firebreak, first: SlackBot
) -> None:
    channel, before = one_post_queued(fake, fb, first, "post:jump-back")
    with freeze_time(utcnow() - timedelta(hours=1), tick=True):
        first.runner.run_until_idle()
    assert len(fake.messages(channel)) == before + 1
    assert the_effect(fb.db, "post:jump-back").state == "done"


def test_a_post_queued_before_an_outage_gets_its_hour_of_retries_when_the_replicas_are_back(
    fake: FakeSlack, fb: Firebreak, first: SlackBot
) -> None:
    """Queued, then every replica down for two hours. Back up, Slack answers 503 three times
    (1 s and 2 s apart) and then works: the post goes out. The hour of retries counts time
    spent trying, not the two hours nobody tried (which ended it after three quick tries)."""
    channel, before = one_post_queued(fake, fb, first, "post:after-outage")
    fake.fail("chat.postMessage", mode="html", times=3)
    with freeze_time(utcnow() + timedelta(hours=2)) as clock:
        for _ in range(10):
            first.runner.run_until_idle()
            clock.tick(timedelta(seconds=1))
    effect = the_effect(fb.db, "post:after-outage")
    assert (effect.state, effect.last_error) == ("done", None)
    assert len(fake.messages(channel)) == before + 1


def test_retries_still_end_an_hour_after_the_first_attempt(
    fake: FakeSlack, fb: Firebreak, first: SlackBot
) -> None:
    """Nothing retries forever: Slack failing for good is given up an hour after the first
    try."""
    one_post_queued(fake, fb, first, "post:never")
    fake.fail("chat.postMessage", mode="html", times=None)
    with freeze_time(utcnow() + timedelta(hours=2)) as clock:
        first.runner.run_until_idle()
        clock.tick(timedelta(minutes=59))
        first.runner.run_until_idle()
        assert the_effect(fb.db, "post:never").state == "pending"
        clock.tick(timedelta(minutes=2))
        first.runner.run_until_idle()
    fake.clear_failures()
    effect = the_effect(fb.db, "post:never")
    assert effect.state == "failed" and "over 61 min" in (effect.last_error or "")


def test_the_disk_filling_after_slack_did_the_work_loses_nothing_and_posts_once(
    fake: FakeSlack, fb: Firebreak, first: SlackBot, second: SlackBot
) -> None:
    channel, before = one_post_queued(fake, fb, first, "post:disk-full")
    real_post = first.runner.handlers[kinds.POST]
    allow_writes: list[Callable[[], None]] = []

    def post_then_fill_the_disk(item: Claimed) -> Outcome:
        done = real_post(item)
        allow_writes.append(refuse_writes(fb.db, on="UPDATE"))  # no effect row can change
        return done

    first.runner.handlers[kinds.POST] = post_then_fill_the_disk
    with freeze_time(utcnow(), tick=True) as clock:
        with fb.db.transaction() as session:
            [item] = store.claim(session, "replica-a", now=utcnow())
        assert first.runner.execute(item) == "unrecorded"
        first.runner.handlers[kinds.POST] = real_post
        assert first.runner.run_once() == 0  # still claimed: nothing for anyone yet
        allow_writes[0]()  # space freed
        clock.move_to(utcnow() + store.DEFAULT_LEASE + timedelta(seconds=1))
        second.runner.run_until_idle()
    posted_once_by_a_repeat(fake, fb, channel, before, "post:disk-full")


def test_the_summary_sweep_never_deadlocks_with_a_runner_moving_from_one_refresh_to_the_next(
    fb: Firebreak, db: Database, e2e_policy: Policy
) -> None:
    """A runner finishes one incident's refresh and starts another's in one transaction (both
    incidents locked first, in id order); the periodic sweep re-arms every active incident's
    refresh meanwhile. Each must let the other finish."""
    ids = []
    for title in ("Checkout down", "Search slow"):
        with db.transaction() as session:
            found = core.declare_incident(session, e2e_policy, title=title, reporter="U0ANA")
            assert found.incident.id is not None
            core.save_slack_refs(session, found.incident.id, summary_message_ts="1700000000.0001")
            store.arm(session, kind=kinds.REFRESH, key=f"refresh:{found.incident.id}", now=utcnow())
            ids.append(found.incident.id)
    with db.read() as session:
        rows = {
            e.key: e.id or 0
            for e in session.exec(select(Effect).where(col(Effect.kind) == kinds.REFRESH)).all()
        }
    refreshes = [rows[f"refresh:{i}"] for i in ids]
    with db.transaction() as session:
        earlier, later = store.claim(session, "w", now=utcnow(), ids=refreshes)
        assert store.start(session, earlier.id, "w", until=utcnow() + store.DEFAULT_LEASE)
    finished = threading.Event()
    swept: list[int] = []

    def runner() -> None:
        with db.transaction() as session:
            for incident_id in sorted(ids):
                store.lock_incident_row(session, incident_id)
            assert store.finish(session, earlier.id, "w", result={}, now=utcnow())
            finished.set()
            time.sleep(0.5)  # the sweep reaches the incidents meanwhile
            assert store.start(session, later.id, "w", until=utcnow() + store.DEFAULT_LEASE)

    def sweep() -> None:
        finished.wait(10)
        swept.append(IncidentFlows(fb).refresh_open_summaries())

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(runner), pool.submit(sweep)]:
            future.result(timeout=30)  # a deadlock would raise here (PostgreSQL aborts one)
    assert swept == [2]
    with db.read() as session:
        states = {
            e.key: (e.state, e.rerun)
            for e in session.exec(select(Effect).where(col(Effect.kind) == kinds.REFRESH)).all()
        }
    # The finished refresh runs again for the sweep; the running one once more when it ends.
    assert states == {
        f"refresh:{ids[0]}": ("pending", False),
        f"refresh:{ids[1]}": ("claimed", True),
    }


def test_a_request_cut_off_by_the_database_is_tried_again_without_a_warning(
    fb: Firebreak, db: Database
) -> None:
    """The database drops the connection while a request is processed: that is not a bug, so
    the person is not told something went wrong; the next attempt answers, once."""
    inbox = Inbox(fb)
    attempts: list[int] = []

    def cut_off_once(kind: str, body: dict[str, Any], replies: Replies) -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise OperationalError("UPDATE incidents", {}, Exception("connection closed"))
        replies("Declared INC-7")

    inbox.processors["command"] = cut_off_once
    body = {"user_id": "U0ANA", "channel_id": "C0GENERAL", "response_url": None}
    assert inbox.record("command", "cmd:T2", body)
    runner = EffectRunner(db, {kinds.SLACK_REQUEST: inbox.handle}, worker_id="w", threads=0)
    outcomes = []
    with freeze_time(utcnow()) as clock:
        for _ in range(2):
            with db.transaction() as session:
                (item,) = store.claim(session, "w", now=utcnow(), limit=1)
            outcomes.append(runner.execute(item))
            clock.tick(timedelta(minutes=5))  # past any backoff
    assert outcomes == ["retry", "done"] and attempts == [1, 2]
    with db.read() as session:
        said = session.exec(select(Effect).where(col(Effect.kind) == kinds.REPLY)).all()
    assert [r.data["text"] for r in said] == ["Declared INC-7"]


@pytest.mark.parametrize(
    ("typed", "in_incident_channel", "answers"),
    [
        ("Checkout returns 500s", False, [":rotating_light: Declared *INC-2* (SEV3)"]),
        ("sev 1", True, []),  # announced in the channel, as the first attempt would have
        ("note the pool is full", True, [":memo: Added to INC-1's timeline."]),
    ],
)
def test_a_request_processed_again_after_its_outcome_was_lost_is_answered_as_the_first_time(
    fb: Firebreak,
    fake: FakeSlack,
    first: SlackBot,
    second: SlackBot,
    typed: str,
    in_incident_channel: bool,
    answers: list[str],
) -> None:
    """The request's change was committed, then saving that the request was done failed (a
    dropped connection): another replica processes it again after the lease. The person typed
    it once, and hears what the first attempt would have said, not that it was a duplicate."""
    _, _, channel = declared(fb, fake, first)
    ana = fake.user_id("ana.garcia")
    where = channel if in_incident_channel else fake.channel_id("general")
    body = {
        "command": "/incident",
        "text": typed,
        "user_id": ana,
        "channel_id": where,
        "trigger_id": "1.2.lost-outcome",
        "response_url": fake.issue_response_url(where, ana),
    }
    assert first.inbox.record("command", "cmd:1.2.lost-outcome", body)
    lift = refuse_writes(
        fb.db, on="UPDATE", when="NEW.kind = 'slack.request' AND NEW.state = 'done'"
    )
    try:
        first.runner.run_once()  # processed, but its outcome is not saved
    finally:
        lift()
    with fb.db.read() as session:
        request = session.exec(select(Effect).where(col(Effect.kind) == kinds.SLACK_REQUEST)).one()
    assert request.state == "claimed"
    with freeze_time(utcnow() + store.DEFAULT_LEASE + timedelta(seconds=1)):
        second.runner.run_until_idle()
    with fb.db.read() as session:
        request = session.exec(select(Effect).where(col(Effect.kind) == kinds.SLACK_REQUEST)).one()
        said = session.exec(select(Effect).where(col(Effect.kind) == kinds.REPLY)).all()
        incidents = session.exec(select(Incident)).all()
    assert (request.state, request.attempts) == ("done", 2)
    assert [r.data["text"].split(";")[0].split("\n")[0] for r in said] == answers
    assert len(incidents) == (2 if typed.startswith("Checkout") else 1)


def test_a_request_that_failed_for_good_is_told_to_its_author_and_its_incident(
    fb: Firebreak, db: Database, fake: FakeSlack, e2e_policy: Policy
) -> None:
    """A :pushpin: capture Slack kept turning away until Firebreak gave up: the person who
    pinned it is told it is not on the timeline, and the incident's timeline says so."""
    with db.transaction() as session:
        declared = core.declare_incident(
            session, e2e_policy, title="Queue stuck", reporter="U0DANA"
        )
        incident_id = declared.incident.id or 0
        core.attach_channel(
            session,
            e2e_policy,
            incident_id,
            channel_id="C0INC1",
            channel_name="inc-1",
            actor="U0DANA",
        )
    body = {"event": {"type": "reaction_added", "user": "U0ANA", "item": {"channel": "C0INC1"}}}
    runner = SlackEffects(fb).runner(threads=0)
    assert runner.on_failed is not None
    with db.transaction() as session:
        now = utcnow()
        row = Effect(
            kind=kinds.SLACK_REQUEST,
            key="in:Ev0PIN",
            data={"kind": "event", "body": body},
            due_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        runner.on_failed(session, row, "gave up after 40 attempts over 60 min: ratelimited")
    with db.read() as session:
        failed = [
            e.text for e in core.timeline(session, incident_id) if e.kind == EventKind.SLACK_FAILED
        ]
        told = session.exec(select(Effect).where(col(Effect.key).endswith(":notice"))).all()
    assert failed == [
        "Firebreak could not finish a Slack request: "
        "gave up after 40 attempts over 60 min: ratelimited"
    ]
    assert [(t.data["to"], t.data["notice"]["incident"]) for t in told] == [("U0ANA", "INC-1")]
