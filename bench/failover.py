"""Benchmark failover: from ``kill -9`` of the replica holding a stranded set-up to another
replica finishing it.

    python bench/failover.py                   # SQLite (temporary file), then PostgreSQL
    python bench/failover.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/failover.py --sqlite-only --runs 1

Two real ``firebreak serve`` processes (HTTP, default settings: effect runner interval 1 s,
leases 30 s, reminders scheduler on) share one database and the fake Slack. Each run:

1. Slack is made to hang on the next ``conversations.invite`` (the fake holds the connection).
2. ``/incident <title>`` is sent to replica A. A records the request, acknowledges it, declares
   the incident, creates the channel and hangs on inviting the reporter (part of the channel's
   effect, so the channel is not yet recorded): the set-up is stranded in A.
   Both replicas are up (answering ``/readyz``) before the declare, as in production; A
   records and acknowledges the request and, woken by its own commit, almost always executes
   it; the replica whose claim holds the channel's effect (its pid is in the claim's worker id)
   is the one killed.
3. It is killed with SIGKILL while the invite hangs (well inside the Slack client's 10 s
   timeout). The clock starts.
4. The figure: until the fake has recorded the reporter invited into the incident channel, the
   summary posted and pinned, and the announcement posted (ready), read from the fake's
   record of Web API calls. Also checked: one channel, one summary, one announcement.

Then the survivor is stopped (SIGTERM) and the next run starts with fresh replicas on the
same database.
The target is < 60 s: a claim's lease is 30 s, so expect about 30 s plus up to the runner's
interval. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from scratch import percentile, scratch_database
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from bot import migrations
from bot.effects import kinds
from bot.sandbox import ApiCall, FakeSlack, SlackSimulator

REPO = Path(__file__).resolve().parents[1]
SECRET = "2c4e6a8b0d1f3e5a7c9b1d3f5a7c9e1b"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_SECONDS = 60.0
PATIENCE = 180.0
HANG_SECONDS = 110.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """``firebreak serve`` in its own process."""

    def __init__(self, url: str, fake: FakeSlack, policy: Path, log: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SLACK_BOT_TOKEN": fake.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "FIREBREAK_POLICY_FILE": str(policy),
            "PORT": str(self.port),
            "FIREBREAK_HOST": "127.0.0.1",
            "FIREBREAK_LOG_LEVEL": "WARNING",
        }
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.flush()
                tail = Path(self.log.name).read_text(errors="replace")[-2000:]
                raise SystemExit(f"bench/failover.py: a replica exited:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"bench/failover.py: a replica was not ready in {timeout:.0f} s")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self) -> None:
        """SIGTERM: drain and release claims (the next run starts clean)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(60)
        self.kill()


@dataclass
class Run:
    seconds: float | None
    problem: str = ""


def wait_for(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def claim_holder(engine: Engine) -> int | None:
    """The pid in the worker id (``host:pid:random``) of the claim on the channel's effect (it
    invites the first people)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            holder = connection.execute(
                text("SELECT claimed_by FROM effects WHERE kind = :kind AND state = 'claimed'"),
                {"kind": kinds.CREATE_CHANNEL},
            ).scalar()
        if holder:
            return int(str(holder).split(":")[-2])
        time.sleep(0.02)
    return None


def one_run(
    n: int, url: str, engine: Engine, fake: FakeSlack, policy: Path, log: Path, announce: str
) -> Run:
    reporter = "ana.garcia"
    title = f"Checkout is down ({n})"
    invites_before = len(fake.calls_to("conversations.invite"))
    fake.fail("conversations.invite", mode="hang", hang_seconds=HANG_SECONDS, times=1)
    replicas: list[Replica] = []
    try:
        for _ in range(2):  # one after the other: each migrates the database at start-up
            replicas.append(Replica(url, fake, policy, log))
            replicas[-1].wait_ready()
        slack = SlackSimulator(fake, f"{replicas[0].url}/slack/events", SECRET)
        reply = slack.slash_command(title, user=reporter, channel="general")
        if reply.status != 200:
            return Run(None, f"the declare was answered HTTP {reply.status}")
        if not wait_for(
            lambda: len(fake.calls_to("conversations.invite")) > invites_before, PATIENCE
        ):
            return Run(None, "the set-up never reached the invite")
        # The replica whose claim holds the hanging invite (its worker id names its pid); the
        # Slack client gives up after 10 s, so it is killed well before that.
        holder = claim_holder(engine)
        doomed = [r for r in replicas if r.process.pid == holder]
        if not doomed:
            return Run(None, f"no replica holds the channel's effect (claimed by pid {holder})")
        killed_at = time.time()
        doomed[0].kill()
        created = [
            c
            for c in fake.calls_to("conversations.create")
            if c.ok and str(c.args.get("name", "")).startswith("inc-")
        ][-1]
        channel = str(created.response["channel"]["id"])
        reporter_id = fake.user_id(reporter)

        def ok_calls(method: str, match: Callable[[ApiCall], bool]) -> list[ApiCall]:
            return [c for c in fake.calls_to(method) if c.ok and match(c)]

        def finished() -> bool:
            return bool(
                reporter_id in fake.members(channel)
                and fake.pins(channel)
                and ok_calls("chat.postMessage", lambda c: c.args.get("channel") == announce)
                and any(
                    title in str(c.args.get("text", ""))
                    for c in ok_calls(
                        "chat.postMessage", lambda c: c.args.get("channel") == announce
                    )
                )
            )

        if not wait_for(finished, PATIENCE):
            return Run(None, f"the set-up was not finished {PATIENCE:.0f} s after the kill")
        calls = [
            c
            for c in fake.calls
            if c.ok
            and c.at.timestamp() >= killed_at
            and c.method in ("conversations.invite", "pins.add", "chat.postMessage")
        ]
        done_at = max(c.at.timestamp() for c in calls)
        problems = []
        channels = [c for c in fake.channels() if c.name.startswith(str(created.args.get("name")))]
        if len(channels) != 1:
            problems.append(f"{len(channels)} channels")
        summaries = [
            m
            for m in fake.messages(channel)
            if m.user == fake.bot_user_id and m.text.startswith("INC-") and title in m.text
        ]
        if len(summaries) != 1 or len(fake.pins(channel)) != 1:
            problems.append(f"{len(summaries)} summaries, {len(fake.pins(channel))} pins")
        announced = [m for m in fake.messages(announce) if title in m.text]
        if len(announced) != 1:
            problems.append(f"{len(announced)} announcements")
        return Run(done_at - killed_at, "; ".join(problems))
    finally:
        fake.clear_failures()
        for replica in replicas:
            replica.stop()


def measure(url: str, args: argparse.Namespace, log: Path) -> list[Run]:
    migrations.upgrade(url)
    with FakeSlack(seed=7) as fake, tempfile.TemporaryDirectory() as tmp:
        announce = fake.channel_id("incidents")
        policy = Path(tmp) / "firebreak.toml"
        policy.write_text(
            f'[slack]\nannouncements_channel = "{announce}"\n\n'
            f'[runbooks]\npaths = ["{REPO / "runbooks"}"]\n'
        )
        engine = create_engine(url, poolclass=NullPool)
        try:
            return [
                one_run(n + 1, url, engine, fake, policy, log, announce) for n in range(args.runs)
            ]
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES,
        help=f"PostgreSQL server to create the scratch database on (default {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--runs", type=int, default=3, help="kills per backend (3)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print("command: python " + shlex.join(sys.argv))
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; two `firebreak "
        f"serve` replicas; target: set-up finished < {TARGET_SECONDS:.0f} s after kill -9\n"
    )
    print(f"{'backend':<10} {'runs':>4} {'min s':>6} {'p50 s':>6} {'max s':>6}  each / problems")
    with ExitStack() as stack:
        log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "replicas.log"
        servers: list[str | None] = [None] if args.sqlite_only else [None, args.database_url]
        for server in servers:
            url = stack.enter_context(scratch_database(server, script="bench/failover.py"))
            backend = make_url(url).get_backend_name()
            runs = measure(url, args, log)
            times = [r.seconds for r in runs if r.seconds is not None]
            shown = ", ".join(f"{t:.1f}" for t in times)
            problems = "; ".join(r.problem for r in runs if r.problem)
            if times:
                print(
                    f"{backend:<10} {len(runs):>4} {min(times):>6.1f} "
                    f"{percentile(times, 0.5):>6.1f} {max(times):>6.1f}  {shown}"
                    + (f"  problems: {problems}" if problems else ""),
                    flush=True,
                )
                verdict = "met" if max(times) < TARGET_SECONDS else "MISSED"
                print(f"target: {backend}: slowest {max(times):.1f} s ({verdict})", flush=True)
            else:
                print(f"{backend:<10} {len(runs):>4} no run finished: {problems}", flush=True)
        noise = "`token` will be unused"  # Bolt's warning when given a client
        text_logged = log.read_text() if log.exists() else ""
        logged = [line for line in text_logged.splitlines() if noise not in line]
        if logged:
            print("\nreplica logs (warnings and errors):")
            print("\n".join(logged[-30:]))


if __name__ == "__main__":
    main()
