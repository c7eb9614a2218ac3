"""What an acknowledgement costs, part by part: CPU per request in Firebreak's own process.

    python bench/ack_parts.py               # SQLite
    python bench/ack_parts.py --database-url postgresql://postgres@127.0.0.1:5432/test

``bench/slack.py`` measures acknowledgements end to end; this script explains its ratios. Real
signed requests are built by the Slack simulator against a running bot (a click carries the
whole message clicked on, as Slack sends it), then each part of answering them is timed alone,
one call after another, as CPU time of this thread:

* ``parse``: ``BoltRequest`` reading the body (a click's payload is percent-encoded JSON);
* ``dispatch``: Bolt's middleware and listener matching, the listener included, with the
  durable write left out (``url_verification`` is the floor: no listener, no database);
* ``record``: the durable write that must finish before the 200 (one group-commit
  transaction, as a request arriving alone gets).

What the HTTP server, Starlette and the signature check cost is the same for every kind and is
not in these figures. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import os
import platform
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from scratch import scratch_database
from slack_bolt.request import BoltRequest

from bot import migrations
from bot.config import Policy, Settings
from bot.observability import Workers
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks
from bot.slack.app import build_bot
from bot.testing.harness import LocalBot

SECRET = "ack-parts-signing-secret"


def cpu_ms(work: Callable[[], object], count: int) -> float:
    for _ in range(max(count // 20, 5)):
        work()
    started = time.thread_time()
    for _ in range(count):
        work()
    return (time.thread_time() - started) / count * 1000


def requests(fake: FakeSlack, url: str) -> dict[str, tuple[str, str, str]]:
    """A real request of each kind, as Slack sends it: kind -> (body, content type, kind of
    record)."""
    sent: list[tuple[bytes, str]] = []

    class Capturing(SlackSimulator):
        def _send(self, body: bytes, content_type: str, *args: Any, **kwargs: Any) -> Any:
            sent.append((body, content_type))
            return super()._send(body, content_type, *args, **kwargs)

    settings = Settings(
        DATABASE_URL=url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
    )
    firebreak = Firebreak.create(settings, Policy())
    bot = LocalBot(firebreak, signing_secret=SECRET).start()
    try:
        slack = Capturing(fake, bot.events_url, SECRET)
        ana = fake.user_id("ana.garcia")
        general = fake.channel_id("general")
        slack.slash_command("Checkout returns 500s", user=ana, channel=general)
        bot.settle()
        (channel,) = [c for c in fake.channels() if c.name.startswith("inc-1")]
        (summary_ts,) = fake.pins(channel.id)
        wanted: dict[str, tuple[str, str, str]] = {}

        def take(name: str, record: str) -> None:
            body, content_type = sent[-1]
            wanted[name] = (body.decode(), content_type, record)

        slack.url_verification()
        take("url_verification (the floor)", "")
        slack.slash_command("status", user=ana, channel=channel.id)
        take("/incident status", "")
        slack.slash_command("Payments are slow", user=ana, channel=general)
        take("/incident <title> (declare)", "command")
        slack.click(channel.id, summary_ts, blocks.SEVERITY, user=ana, value="SEV1")
        take("click: Change severity", "action")
        ts = fake.user_says(channel.id, ana, "the pool is full")
        slack.react(channel.id, ts, user=ana, reaction=Policy().slack.capture_reaction)
        take("event: :pushpin: reaction", "event")
        bot.settle()
    finally:
        bot.stop()
        firebreak.close()
    return wanted


def signed(body: str, content_type: str) -> dict[str, list[str]]:
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256)
    return {
        "content-type": [content_type],
        "x-slack-request-timestamp": [stamp],
        "x-slack-signature": ["v0=" + digest.hexdigest()],
    }


def run(url: str, count: int) -> None:
    migrations.upgrade(url)
    with FakeSlack(seed=7) as fake:
        kinds = requests(fake, url)
        settings = Settings(
            DATABASE_URL=url,
            SLACK_BOT_TOKEN=fake.token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.api_url,
        )
        firebreak = Firebreak.create(settings, Policy())
        bot = build_bot(firebreak, workers=Workers(1), effect_threads=0)
        record = bot.inbox.record
        keys = itertools.count()
        rows: list[tuple[str, int, float, float, float]] = []
        try:
            for name, (body, content_type, kind) in kinds.items():
                headers = signed(body, content_type)
                request = BoltRequest(body=body, headers=headers)
                parse = cpu_ms(lambda b=body, h=headers: BoltRequest(body=b, headers=h), count)
                bot.inbox.record = lambda *_: True  # type: ignore[method-assign]

                def dispatch(
                    b: str = body, h: dict[str, list[str]] = headers, n: str = name
                ) -> None:
                    answer = bot.app.dispatch(BoltRequest(body=b, headers=h))
                    if answer.status != 200:
                        raise SystemExit(f"{n}: HTTP {answer.status} {answer.body[:200]}")

                dispatched = cpu_ms(dispatch, count) - parse
                bot.inbox.record = record  # type: ignore[method-assign]
                write = 0.0
                if kind:
                    stored = request.body
                    if "payload" in stored:
                        stored = dict(parse_qsl(body)) | stored
                    write = cpu_ms(
                        lambda k=kind, s=stored: record(k, f"bench:{next(keys)}", s),
                        max(count // 4, 50),
                    )
                rows.append((name, len(body), parse, dispatched, write))
        finally:
            bot.workers.shutdown(wait=True)
            firebreak.close()
    floor = sum(rows[0][2:])
    print(
        f"{'request':<32} {'bytes':>6} {'parse':>7} {'dispatch':>8} {'record':>7} "
        f"{'total ms':>8} {'x floor':>7}"
    )
    for name, size, parse, dispatched, write in rows:
        total = parse + dispatched + write
        print(
            f"{name:<32} {size:6d} {parse:7.3f} {dispatched:8.3f} {write:7.3f} "
            f"{total:8.3f} {total / floor:7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--count", type=int, default=1000, help="calls per figure (1000)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with scratch_database(args.database_url, script="ack_parts") as url:
        print(f"database: {url.split('://')[0]}")
        run(url, args.count)


if __name__ == "__main__":
    main()
