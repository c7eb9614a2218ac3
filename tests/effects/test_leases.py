"""An attempt that outlives its lease (a replica paused, a Slack call that took too long) does
not repeat what the replica that took the effect over did: it checks its lease before each
Slack call, and the effect is posted once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.clock import utcnow
from bot.db import Database
from bot.effects.models import Effect
from bot.effects.runner import EffectRunner
from bot.leases import LeaseExpired, held_until
from bot.sandbox import SlackSimulator
from bot.slack.gateway import SlackGateway, build_client
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import declare
from tests.service.conftest import HoldingFakeSlack

LEASE = timedelta(seconds=3)


@pytest.fixture
def fake() -> Iterator[HoldingFakeSlack]:
    with HoldingFakeSlack(seed=7) as running:
        yield running
        running.release_all()
    assert running.errors == [], "the fake failed on a request:\n" + "\n".join(running.errors)


def replica(bot: RunningBot, name: str) -> EffectRunner:
    """Another replica's effect runner: the same handlers, its own claims, a short lease."""
    return EffectRunner(
        bot.firebreak.db, bot.runner.handlers, worker_id=name, lease=LEASE, threads=0
    )


def test_an_attempt_that_outlived_its_lease_does_not_post_what_another_replica_posted(
    fake: HoldingFakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    bot.runner.stop()  # from here the two replicas below do the work
    first, second = replica(bot, "first"), replica(bot, "second")
    # The first post fails before Slack did anything, so the next attempt looks for the message
    # before posting it again; that look-up is where the first replica stalls.
    fake.fail("chat.postMessage", mode="reset", times=1)
    stalled = fake.hold("conversations.history", answered=True)  # "no such message yet"
    slack.slash_command("update rolled back the deploy", user="ana.garcia", channel=channel)

    def work_until_stalled() -> None:
        while not stalled.entered.is_set():
            first.run_until_idle()
            time.sleep(0.1)

    worker = threading.Thread(target=work_until_stalled)
    worker.start()
    stalled.wait_entered()
    time.sleep(LEASE.total_seconds() + 0.5)  # the first replica's lease runs out meanwhile

    def posted() -> int:
        return sum(
            1
            for m in fake.messages(channel)
            if "Status update" in texts(m) and "rolled back the deploy" in texts(m)
        )

    deadline = time.monotonic() + 60
    while posted() == 0 and time.monotonic() < deadline:
        second.run_until_idle()
        time.sleep(0.1)
    assert posted() == 1  # the replica that took the effect over posted it
    stalled.release()  # the first replica goes on, its lease long gone
    worker.join(30)
    assert not worker.is_alive()
    first.run_until_idle()
    second.run_until_idle()
    assert posted() == 1
    with db.read() as session:
        [post] = session.exec(select(Effect).where(col(Effect.key).endswith(":update"))).all()
    assert post.state == "done"


def test_past_its_lease_an_attempt_still_reads_but_neither_posts_nor_edits(
    fake: HoldingFakeSlack,
) -> None:
    """A postmortem draft that looks up names late, or an access check, still gets its answers
    (reads are safe to repeat); only posts, edits, channels and uploads are held back."""
    gateway = SlackGateway(build_client(fake.token, fake.api_url))
    user = fake.user_id("ana.garcia")
    with held_until(utcnow() - timedelta(seconds=1)):
        assert gateway.call("users.info", user=user)["user"]["id"] == user
        for method, args in (
            ("chat.postMessage", {"channel": fake.channel_id("general"), "text": "x"}),
            ("chat.update", {"channel": fake.channel_id("general"), "ts": "1.2", "text": "x"}),
            ("conversations.create", {"name": "inc-late"}),
        ):
            with pytest.raises(LeaseExpired):
                gateway.call(method, **args)
    assert [c.method for c in fake.calls] == ["users.info"]
