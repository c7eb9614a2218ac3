"""Benchmark the effect runner: Slack effects executed per second, one or two runner processes.

    python bench/effects.py                    # SQLite (temporary file), then PostgreSQL
    python bench/effects.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/effects.py --sqlite-only --effects 500
    python bench/effects.py --incidents 1 --effects 200   # one lane: strictly one at a time

For each backend and each number of runner processes (1, then 2), in a fresh scratch database:

1. ``--incidents`` incidents are declared through the core and set up against the fake Slack
   (channel, invites, pinned summary, announcement) by an effect runner in this process.
2. ``--effects`` ``message.post`` effects are written directly with ``bot.effects.store.enqueue``,
   spread evenly over the incidents, in each incident's lane, as the core writes them (a change
   notice naming the incident's ``declared`` event; rendered and posted with its effect key in
   the message metadata, like every post).
3. The runner processes start (``--threads`` claim threads each, the production ``interval``
   of 1 s and the default batch and lease), report that they are ready, and are all told to
   go at once. The figure runs from "go" until the last effect is recorded ``done``
   (``done_at``), and is checked against the fake: exactly one ``chat.postMessage`` per effect.

Effects of one incident run in order (its lane), so at most ``--incidents`` effects are in
flight at once, whatever the number of threads. The fake Slack answers at once, so this is the
runner's own cost: claim, read, render, post, record (two transactions per effect, one claim
per batch). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shlex
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection

from scratch import scratch_database
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot import incidents as core
from bot import migrations
from bot.clock import as_utc, utcnow
from bot.config import Policy, Settings, SlackPolicy
from bot.effects import kinds, store
from bot.effects.models import Effect
from bot.observability import Workers
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack
from bot.slack.app import SlackBot, build_bot

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
KEY_PREFIX = "bench:post:"
INTERVAL = 1.0
"""The runner's poll interval in ``firebreak serve`` (``build_bot``'s default)."""


@dataclass(frozen=True)
class Spec:
    database_url: str
    api_url: str
    token: str
    announce: str
    threads: int


def firebreak(spec: Spec) -> Firebreak:
    settings = Settings(
        DATABASE_URL=spec.database_url,
        SLACK_BOT_TOKEN=spec.token,
        SLACK_SIGNING_SECRET="bench",
        SLACK_API_URL=spec.api_url,
    )
    policy = Policy(slack=SlackPolicy(announcements_channel=spec.announce))
    return Firebreak.create(settings, policy)


def _runner_process(spec: Spec, connection: Connection) -> None:
    """One replica's effect runner: build, say ready, wait for go, run until told to stop."""
    fb = firebreak(spec)
    slack = runner_of(fb, spec.threads)
    connection.send("ready")
    connection.recv()  # go
    slack.start()
    connection.recv()  # stop
    slack.stop()
    fb.close()
    connection.send("stopped")


def runner_of(fb: Firebreak, threads: int) -> SlackBot:
    """The Slack side as ``firebreak serve`` builds it (every effect handler registered), with
    its runner at the production interval."""
    return build_bot(fb, workers=Workers(1), effect_threads=threads, effect_interval=INTERVAL)


def set_up(fb: Firebreak, fake: FakeSlack, incidents: int) -> list[tuple[int, int]]:
    """Declare and set up the incidents; returns (incident id, declared event id) pairs."""
    people = [u.id for u in fake.users() if not u.is_bot and not u.deleted]
    declared = []
    for n in range(incidents):
        with fb.db.transaction() as session:
            change = core.declare_incident(
                session,
                fb.policy,
                title=f"Benchmark incident {n}",
                reporter=people[n % len(people)],
            )
            assert change.incident.id is not None and change.event is not None
            declared.append((change.incident.id, change.event.id or 0))
    slack = runner_of(fb, 1)
    slack.runner.run_until_idle(timeout=300)
    slack.workers.shutdown(wait=True)
    with fb.db.read() as session:
        ready = session.exec(
            select(func.count()).where(
                col(Effect.state) == store.DONE, col(Effect.kind) == kinds.CREATE_CHANNEL
            )
        ).one()
    if ready != incidents:
        raise SystemExit(f"bench/effects.py: only {ready} of {incidents} incidents were set up")
    return declared


def enqueue(fb: Firebreak, declared: list[tuple[int, int]], count: int) -> None:
    now = utcnow()
    with fb.db.transaction() as session:
        for n in range(count):
            incident_id, event_id = declared[n % len(declared)]
            store.enqueue(
                session,
                kind=kinds.POST,
                key=f"{KEY_PREFIX}{n}",
                data={"to": "incident", "notice": {"type": "change", "event": event_id}},
                incident_id=incident_id,
                lane=store.incident_lane(incident_id),
                now=now,
            )


def progress(fb: Firebreak) -> tuple[int, int, datetime | None]:
    """(done, failed, last done_at) of the benchmark's effects."""
    with fb.db.read() as session:
        rows = session.exec(
            select(Effect.state, func.count(), func.max(Effect.done_at))
            .where(col(Effect.key).startswith(KEY_PREFIX))
            .group_by(col(Effect.state))
        ).all()
    done = sum(n for state, n, _ in rows if state == store.DONE)
    failed = sum(n for state, n, _ in rows if state == store.FAILED)
    last = max((as_utc(at) for state, _, at in rows if state == store.DONE and at), default=None)
    return done, failed, last


@dataclass
class Result:
    backend: str
    processes: int
    effects: int
    seconds: float
    failed: int
    posted: int

    def line(self, threads: int, incidents: int) -> str:
        rate = self.effects / self.seconds if self.seconds else 0.0
        return (
            f"{self.backend:<10} {self.processes:>9} {threads:>7} {incidents:>9} "
            f"{self.effects:>7} {self.seconds:>8.2f} {rate:>9.0f} {self.failed:>6} "
            f"{self.posted:>7}"
        )


def measure(url: str, processes: int, args: argparse.Namespace) -> Result:
    backend = make_url(url).get_backend_name()
    migrations.upgrade(url)
    with FakeSlack(seed=7) as fake:
        spec = Spec(url, fake.api_url, fake.token, fake.channel_id("incidents"), args.threads)
        fb = firebreak(spec)
        try:
            declared = set_up(fb, fake, args.incidents)
            posts_before = len(fake.calls_to("chat.postMessage"))
            enqueue(fb, declared, args.effects)
            context = multiprocessing.get_context("spawn")
            children = []
            for n in range(processes):
                mine, theirs = context.Pipe()
                child = context.Process(
                    target=_runner_process, args=(spec, theirs), name=f"runner-{n}", daemon=True
                )
                child.start()
                theirs.close()
                children.append((child, mine))
            try:
                for _, pipe in children:
                    if not pipe.poll(120) or pipe.recv() != "ready":
                        raise SystemExit("bench/effects.py: a runner process did not start")
                started = utcnow()
                for _, pipe in children:
                    pipe.send("go")
                deadline = time.monotonic() + args.timeout
                while True:
                    done, failed, last = progress(fb)
                    if done + failed >= args.effects or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
            finally:
                for child, pipe in children:
                    if child.is_alive():
                        pipe.send("stop")
                for child, pipe in children:
                    child.join(30)
                    if child.is_alive():
                        child.kill()
                    pipe.close()
            if done + failed < args.effects:
                print(
                    f"problem: {backend}, {processes} process(es): only {done + failed} of "
                    f"{args.effects} effects finished in {args.timeout:.0f} s"
                )
            seconds = ((last or utcnow()) - started).total_seconds()
            posted = len(fake.calls_to("chat.postMessage")) - posts_before
            return Result(backend, processes, done, seconds, failed, posted)
        finally:
            fb.close()


HEADER = (
    f"{'backend':<10} {'processes':>9} {'threads':>7} {'incidents':>9} {'effects':>7} "
    f"{'seconds':>8} {'effects/s':>9} {'failed':>6} {'posted':>7}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES,
        help=f"PostgreSQL server to create the scratch databases on (default {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--effects", type=int, default=2000, help="message.post effects (2000)")
    parser.add_argument("--incidents", type=int, default=50, help="incidents (lanes) (50)")
    parser.add_argument("--threads", type=int, default=4, help="claim threads per process (4)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="(1 2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run (600)")
    args = parser.parse_args()
    for name in ("effects", "incidents", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if any(p < 1 for p in args.processes):
        parser.error("--processes must each be at least 1")

    print("command: python " + shlex.join(sys.argv))
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.effects} message.post effects over {args.incidents} incidents; runner processes "
        f"with {args.threads} threads, interval {INTERVAL:.0f} s\n"
    )
    print(HEADER, flush=True)
    with ExitStack() as stack:
        backends: list[str | None] = [None] if args.sqlite_only else [None, args.database_url]
        for server in backends:
            for processes in args.processes:
                url = stack.enter_context(scratch_database(server, script="bench/effects.py"))
                result = measure(url, processes, args)
                print(result.line(args.threads, args.incidents), flush=True)
    print(
        "\nseconds: from telling the runners to go until the last effect was recorded done. "
        "posted: chat.postMessage calls the fake Slack answered (one per effect expected)."
    )


if __name__ == "__main__":
    main()
