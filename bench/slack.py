"""Benchmark Firebreak as Slack meets it: acknowledgement latency and declare-to-channel-ready.

    python bench/slack.py                      # SQLite (temporary file), then PostgreSQL
    python bench/slack.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/slack.py --sqlite-only --rounds 2
    python bench/slack.py --concurrency 1 --rounds 20 --sqlite-only   # unloaded floor
    python bench/slack.py --in-process         # bot, fake Slack and senders in one process
    python bench/slack.py --https              # the fake Slack over TLS, as the real one is

The real bot (Bolt + Starlette + uvicorn, ``LocalBot``) serves HTTP against the fake Slack. The
bot runs in a process of its own, as in production: the fake Slack and the threads playing
Slack's senders share a process (and its GIL), and would otherwise slow the very thing measured.
``--in-process`` puts everything in one process, as the end-to-end tests do. For PostgreSQL a
throwaway database is created next to the one given and dropped afterwards; either database is
migrated with ``bot.migrations.upgrade``.

1. Acknowledgement latency: bursts of ``--concurrency`` signed requests released at once (a
   barrier) from as many threads, ``--rounds`` bursts per kind, the bot left to finish its work
   between bursts. ``p50/p99/max`` run from sending the request to reading the whole HTTP
   response, as Slack waits for it; ``bot p50/p99`` is the part spent inside the bot's web app
   (the rest is the TCP accept queue and the senders' own scheduling). ``url_verification`` is
   answered by Bolt with no listener and no database: the floor that HTTP, the signature check
   and Bolt set, measured in the same run; ``x floor`` is each kind's p50 over the floor's p50.
   Targets: p50 <= 1.5 x the floor for every kind, p99 < 300 ms; Slack gives up after 3,000 ms.
   Kinds: ``/incident status`` (answered on a worker pool after the ack), ``/incident <title>``
   (recorded as a ``slack.request`` effect before the ack), a click on Change severity
   (recorded), a click on Add note (opens a modal on the fast path), a :pushpin: reaction
   (an event, recorded). Every request is then checked for its effect (the status answer
   arrived, the modal opened, the channel is ready, the severity changed, the message is on the
   timeline): one acknowledged that then failed counts as failed.
2. Declare-to-channel-ready: ``/incident <title>`` typed in #general, ``--declares`` times one
   after another, and every declare of the bursts above (``--concurrency`` at once, each from a
   different person, so no two are ordered behind each other in one person's lane). Ready is
   when the fake has recorded the last of: the channel created, the reporter invited, the
   summary posted and pinned (the fake stamps each Web API call as it handles it). Target: p99
   < 1 s with 50 at once.

Figures are printed, never asserted: run it by hand on the machine you care about.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import re
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol, cast

from scratch import percentile, scratch_database
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot import migrations
from bot.clock import utcnow
from bot.config import Policy, Settings, SlackPolicy
from bot.models import EventKind
from bot.runbooks.catalog import load_catalog
from bot.runtime import Firebreak
from bot.sandbox import ApiCall, BotReply, FakeSlack, SlackSimulator
from bot.sandbox.tls import self_signed, trust_store
from bot.slack import blocks
from bot.slack.app import EFFECT_INTERVAL, WORK_THREADS
from bot.slack.limits import iter_texts
from bot.testing.harness import LocalBot

REPO = Path(__file__).resolve().parents[1]
SECRET = "5f2b9c0e8a7d4c1f9e3b6a2d8c4f0e1a"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SETTLE_TIMEOUT = 120.0

ACK_P50_TARGET_RATIO = 1.5
ACK_P99_TARGET_MS = 300
ACK_HARD_LIMIT_MS = 3000
READY_TARGET_MS = 1000

TITLES = [
    "Checkout returns 500s",
    "Payments API timing out",
    "Search latency above 2s",
    "Login fails for SSO users",
    "Kafka consumer lag on orders",
    "Database connections exhausted",
    "Disk full on logging cluster",
    "Certificate expired on api gateway",
    "Image uploads failing",
    "Elevated error rate in billing",
]
FAILED_ANSWER = (":no_entry:", ":warning:", ":grey_question:")
DECLARED = re.compile(r"Declared \*INC-(\d+)\*")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --------------------------------------------------------------------------------------------
# Databases


# --------------------------------------------------------------------------------------------
# The bot, in this process or in its own


@dataclass(frozen=True)
class BotSpec:
    """Everything needed to build the bot; plain values, so it crosses to a child process."""

    database_url: str
    api_url: str
    token: str
    announcements_channel: str
    threads: int


class TimedApp:
    """Wraps the bot's ASGI app and records how long each HTTP request spent inside it (until
    the last byte of the response was handed to uvicorn)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._times: list[float] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                with self._lock:
                    self._times.append(time.perf_counter() - started)

        await self.app(scope, receive, timed_send)

    def take(self) -> list[float]:
        with self._lock:
            taken, self._times = self._times, []
        return taken


def build_bot(spec: BotSpec) -> tuple[LocalBot, TimedApp]:
    """The bot as ``firebreak serve`` builds it: the production number of work threads,
    the repository's runbooks (declares suggest some), announcements on."""
    settings = Settings(
        DATABASE_URL=spec.database_url,
        SLACK_BOT_TOKEN=spec.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=spec.api_url,
    )
    policy = Policy(slack=SlackPolicy(announcements_channel=spec.announcements_channel))
    catalog = load_catalog(policy, extra=[REPO / "runbooks"])
    firebreak = Firebreak.create(settings, policy, catalog=catalog)
    # The effect threads look for work as often as `firebreak serve`'s do (tests look 20
    # times as often, to see retries at once: 80 idle claims a second on the bench's cores).
    bot = LocalBot(
        firebreak, signing_secret=SECRET, threads=spec.threads, effect_interval=EFFECT_INTERVAL
    )
    # LocalBot hands uvicorn the Starlette app itself, never an import string.
    timed = TimedApp(cast(ASGIApp, bot.server.config.app))
    bot.server.config.app = timed  # uvicorn loads the app when the server starts
    return bot, timed


class RunningBot(Protocol):
    events_url: str

    def settle(self) -> None:
        """Wait until the bot has finished all the work it acknowledged."""

    def take_app_times(self) -> list[float]:
        """Seconds each request spent in the bot's web app since the last call."""

    def cpu_seconds(self) -> float:
        """CPU time the bot's process has used so far (in process: this whole process)."""

    def stop(self) -> None: ...


class InProcessBot:
    def __init__(self, spec: BotSpec) -> None:
        self.bot, self.timed = build_bot(spec)
        self.bot.start()
        self.events_url = self.bot.events_url

    def settle(self) -> None:
        self.bot.settle(SETTLE_TIMEOUT)

    def take_app_times(self) -> list[float]:
        return self.timed.take()

    def cpu_seconds(self) -> float:
        return time.process_time()

    def stop(self) -> None:
        self.bot.stop()
        self.bot.firebreak.close()


def _serve_in_child(spec: BotSpec, connection: Connection) -> None:
    """The bot's process: start, report the URL, then answer ``settle``, ``times``, ``stop``."""
    bot, timed = build_bot(spec)
    bot.start()
    connection.send(bot.events_url)
    try:
        while True:
            command = connection.recv()
            if command == "settle":
                try:
                    bot.settle(SETTLE_TIMEOUT)
                    connection.send("")
                except RuntimeError as exc:
                    connection.send(str(exc))
            elif command == "times":
                connection.send(timed.take())
            else:
                break
    finally:
        bot.stop()
        bot.firebreak.close()
        connection.send("stopped")


class ChildProcessBot:
    def __init__(self, spec: BotSpec) -> None:
        # spawn, not fork: this process already runs the fake Slack's threads.
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_serve_in_child, args=(spec, child), name="firebreak-bot", daemon=True
        )
        self.process.start()
        child.close()
        if not self.connection.poll(60):
            self.process.kill()
            raise RuntimeError("the bot process did not start within 60 s")
        self.events_url = str(self._receive())

    def _receive(self) -> Any:
        try:
            return self.connection.recv()
        except EOFError:
            raise RuntimeError("the bot process died (its traceback is above)") from None

    def settle(self) -> None:
        self.connection.send("settle")
        problem = self._receive()
        if problem:
            raise RuntimeError(problem)

    def take_app_times(self) -> list[float]:
        self.connection.send("times")
        return list(self._receive())

    def cpu_seconds(self) -> float:
        # utime and stime, the 14th and 15th fields of /proc/<pid>/stat (after the name).
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.is_alive():
            self.connection.send("stop")
            if self.connection.poll(30):
                self._receive()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# --------------------------------------------------------------------------------------------
# Figures


@dataclass
class Figures:
    name: str
    latencies: list[float] = field(default_factory=list)
    app_times: list[float] = field(default_factory=list)
    sent: int = 0
    non_200: int = 0
    failed: int = 0
    peak_in_flight: int = 1
    problems: dict[str, int] = field(default_factory=dict)

    def problem(self, text: str) -> None:
        self.failed += 1
        key = text[:160]
        self.problems[key] = self.problems.get(key, 0) + 1


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """How many requests were in flight at once, at most."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


# --------------------------------------------------------------------------------------------
# What the bot did, read from the fake


@dataclass(frozen=True)
class ReadyIncident:
    channel: str
    reporter: str
    summary_ts: str


@dataclass(frozen=True)
class Sent:
    """One request of a burst: when it left, and the bot's answer."""

    index: int
    at: datetime
    reply: BotReply


def answers(fake: FakeSlack, reply: BotReply) -> list[str]:
    """What the bot posted back to the person through the request's response_url."""
    url = reply.request.response_url
    if url is None:
        return []
    return [
        "\n".join([str(p.payload.get("text") or ""), *iter_texts(p.payload.get("blocks") or [])])
        for p in fake.response_posts(url)
        if p.status == 200
    ]


def failed_answer(fake: FakeSlack, reply: BotReply) -> str | None:
    for answer in answers(fake, reply):
        if answer.startswith(FAILED_ANSWER):
            return answer.splitlines()[0]
    return None


def declared_channel(fake: FakeSlack, reply: BotReply) -> str | None:
    """The channel of the incident the bot's "Declared *INC-n*" answer names (the answer says
    the channel is being created; the channel is the one Slack created as ``inc-n-...``)."""
    for answer in answers(fake, reply):
        if found := DECLARED.search(answer):
            prefix = f"inc-{found.group(1)}-"
            for call in fake.calls_to("conversations.create"):
                if call.ok and str(call.args.get("name", "")).startswith(prefix):
                    return str(call.response["channel"]["id"])
    return None


def channel_ready(
    fake: FakeSlack, calls: list[ApiCall], channel: str, reporter: str
) -> tuple[ReadyIncident, datetime] | str:
    """When the incident channel became ready (created, reporter invited, summary posted and
    pinned), from the fake's record of Web API calls; or what is missing."""

    def first(method: str, match: Callable[[ApiCall], bool]) -> ApiCall | None:
        return next((c for c in calls if c.method == method and c.ok and match(c)), None)

    created = first("conversations.create", lambda c: c.response["channel"]["id"] == channel)
    invited = first(
        "conversations.invite",
        lambda c: c.args.get("channel") == channel and reporter in str(c.args.get("users")),
    )
    pinned = first("pins.add", lambda c: c.args.get("channel") == channel)
    if created is None or invited is None or pinned is None:
        missing = [
            what
            for what, call in (("created", created), ("invited", invited), ("pinned", pinned))
            if call is None
        ]
        return "channel not " + "/".join(missing)
    summary_ts = str(pinned.args.get("timestamp"))
    posted = first(
        "chat.postMessage",
        lambda c: c.args.get("channel") == channel and c.response.get("ts") == summary_ts,
    )
    if posted is None:
        return "the pinned message is not the bot's summary"
    if reporter not in fake.members(channel) or fake.pins(channel) != [summary_ts]:
        return "the channel does not show the reporter and the pinned summary"
    ready_at = max(c.at for c in (created, invited, posted, pinned))
    return ReadyIncident(channel, reporter, summary_ts), ready_at


# --------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(
        self, fake: FakeSlack, bot: RunningBot, url: str, *, concurrency: int, rounds: int
    ) -> None:
        self.fake = fake
        self.bot = bot
        self.database = create_engine(url, poolclass=NullPool)
        self.slack = SlackSimulator(fake, bot.events_url, SECRET, timeout=30.0, seed=11)
        self.concurrency = concurrency
        self.rounds = rounds
        self.general = fake.channel_id("general")
        # One person per request of a burst: one person's requests in one channel are processed
        # in order (a lane), and the benchmark measures requests that do not wait for each other.
        people = [u.id for u in fake.users() if not u.is_bot and not u.deleted]
        for n in range(len(people), concurrency):
            person = fake.add_user(f"responder.{n:03d}", real_name=f"Responder {n}")
            fake.join(self.general, person)
            people.append(person)
        self.users = people
        self.kinds: dict[str, Figures] = {}
        self.bursts = rounds
        """Bursts per call of a kind's method; ``round`` counts the calls."""
        self.round = 0
        self.severities = [s.key for s in Policy().severities]
        self.incidents: list[ReadyIncident] = []
        self.ready_in_bursts = Figures(f"declare → channel ready ({concurrency} at once)")
        self.declare_cpu = 0.0
        """CPU seconds the bot used for the bursts of declares (until every one was settled)."""
        self._titles = 0

    def kind(self, name: str) -> Figures:
        """The figures of one kind of request, gathered over several calls."""
        return self.kinds.setdefault(name, Figures(name))

    def title(self) -> str:
        self._titles += 1
        return f"{TITLES[self._titles % len(TITLES)]} ({self._titles})"

    def reporter(self, i: int) -> str:
        return self.users[i % len(self.users)]

    def target(self, i: int) -> ReadyIncident:
        return self.incidents[i % len(self.incidents)]

    # -- declare to channel ready, one after another -----------------------------------------

    def declare_to_ready(self, count: int) -> tuple[Figures, Figures]:
        ready = Figures("declare → channel ready")
        finished = Figures("declare → set-up finished")
        for i in range(count):
            reporter = self.reporter(i)
            before = len(self.fake.calls)
            sent_at = utcnow()
            reply = self.slack.slash_command(self.title(), user=reporter, channel=self.general)
            self.bot.settle()
            calls = self.fake.calls[before:]
            for figures in (ready, finished):
                figures.sent += 1
                figures.non_200 += reply.status != 200
            channel = declared_channel(self.fake, reply)
            outcome = (
                channel_ready(self.fake, calls, channel, reporter)
                if channel
                else failed_answer(self.fake, reply) or "no 'Declared' answer"
            )
            if isinstance(outcome, str):
                ready.problem(outcome)
                finished.problem(outcome)
                continue
            incident, ready_at = outcome
            self.incidents.append(incident)
            ready.latencies.append((ready_at - sent_at).total_seconds())
            # Finished: the announcement, runbook suggestions and the answer to the reporter.
            told = [p.at for p in self.fake.response_posts(reply.request.response_url)]
            done_at = max([c.at for c in calls] + told)
            finished.latencies.append((done_at - sent_at).total_seconds())
        return ready, finished

    # -- bursts ------------------------------------------------------------------------------

    def burst(
        self,
        figures: Figures,
        send: Callable[[int], BotReply],
        check: Callable[[Sent], str | None],
    ) -> list[Sent]:
        """Send ``concurrency`` requests at once, let the bot finish, check every effect."""
        count = self.concurrency
        # Each thread builds and signs its request, then all go out at once: Slack builds its
        # requests on its own machines, so building them is not part of the burst.
        gate = threading.Barrier(count, timeout=30)  # broken if one request cannot be built

        def one(i: int) -> tuple[Sent | None, float, str]:
            sent_at = utcnow()
            try:
                reply = send(i)
            except Exception as exc:  # a refused connection or a timeout is a figure too
                return None, time.perf_counter(), f"{type(exc).__name__}: {exc}"
            return Sent(i, sent_at, reply), time.perf_counter(), ""

        self.bot.take_app_times()
        self.slack.before_send = gate.wait
        try:
            with ThreadPoolExecutor(count) as pool:
                results = list(pool.map(one, range(count)))
        finally:
            self.slack.before_send = None
        figures.app_times.extend(self.bot.take_app_times())
        self.bot.settle()
        intervals = []
        answered = []
        for sent, ended, error in results:
            figures.sent += 1
            if sent is None:
                figures.non_200 += 1
                figures.problem(error)
                continue
            reply = sent.reply
            intervals.append((ended - reply.elapsed, ended))
            figures.latencies.append(reply.elapsed)
            if reply.status != 200:
                figures.non_200 += 1
                figures.problem(f"HTTP {reply.status}")
                continue
            problem = "; ".join(reply.problems) or check(sent)
            if problem:
                figures.problem(problem)
            else:
                answered.append(sent)
        figures.peak_in_flight = max(figures.peak_in_flight, peak_overlap(intervals))
        return answered

    def handshakes(self) -> Figures:
        figures = self.kind("url_verification (no listener)")

        def check(sent: Sent) -> str | None:
            try:
                answer = sent.reply.json()
            except ValueError:
                return f"not JSON: {sent.reply.text[:80]!r}"
            echoed = answer.get("challenge") if isinstance(answer, dict) else None
            return None if echoed == sent.reply.request.payload["challenge"] else "not echoed"

        for _ in range(self.bursts):
            self.burst(figures, lambda _: self.slack.url_verification(), check)
        return figures

    def status_commands(self) -> Figures:
        figures = self.kind("/incident status (in channel)")

        def send(i: int) -> BotReply:
            incident = self.target(i)
            return self.slack.slash_command(
                "status", user=incident.reporter, channel=incident.channel
            )

        def check(sent: Sent) -> str | None:
            if not answers(self.fake, sent.reply):
                return "no status answer"
            return failed_answer(self.fake, sent.reply)

        for _ in range(self.bursts):
            self.burst(figures, send, check)
        return figures

    def declares(self) -> Figures:
        figures = self.kind("/incident <title> (declare)")
        for _ in range(self.bursts):
            titles = [self.title() for _ in range(self.concurrency)]
            before = len(self.fake.calls)

            def send(i: int, titles: list[str] = titles) -> BotReply:
                return self.slack.slash_command(
                    titles[i], user=self.reporter(i), channel=self.general
                )

            def check(sent: Sent) -> str | None:
                if declared_channel(self.fake, sent.reply) is None:
                    return failed_answer(self.fake, sent.reply) or "no 'Declared' answer"
                return None

            cpu = self.bot.cpu_seconds()
            declared = self.burst(figures, send, check)
            self.declare_cpu += self.bot.cpu_seconds() - cpu
            calls = self.fake.calls[before:]
            for sent in declared:
                ready = self.ready_in_bursts
                ready.sent += 1
                channel = declared_channel(self.fake, sent.reply) or ""
                outcome = channel_ready(self.fake, calls, channel, self.reporter(sent.index))
                if isinstance(outcome, str):
                    ready.problem(outcome)
                else:
                    ready.latencies.append((outcome[1] - sent.at).total_seconds())
        self.ready_in_bursts.peak_in_flight = figures.peak_in_flight
        return figures

    def severity_clicks(self) -> Figures:
        figures = self.kind("click: Change severity")
        for round_ in range(self.round, self.round + self.bursts):

            def send(i: int, round_: int = round_) -> BotReply:
                incident = self.target(i)
                return self.slack.click(
                    incident.channel,
                    incident.summary_ts,
                    blocks.SEVERITY,
                    user=self.reporter(i),
                    value=self.severities[(i + round_) % len(self.severities)],
                )

            self.burst(figures, send, lambda sent: failed_answer(self.fake, sent.reply))
        return figures

    def note_clicks(self) -> Figures:
        figures = self.kind("click: Add note (opens modal)")

        def send(i: int) -> BotReply:
            incident = self.target(i)
            return self.slack.click(
                incident.channel, incident.summary_ts, blocks.ADD_NOTE, user=self.reporter(i)
            )

        def check(sent: Sent) -> str | None:
            trigger = sent.reply.request.trigger_id
            opened = [
                c for c in self.fake.calls_to("views.open") if c.args.get("trigger_id") == trigger
            ]
            if any(c.ok for c in opened):
                return None
            if opened:
                return f"views.open failed: {opened[-1].error}"
            return failed_answer(self.fake, sent.reply) or "no modal opened"

        for _ in range(self.bursts):
            self.burst(figures, send, check)
        return figures

    def captured(self) -> int:
        """Messages on incident timelines (what :pushpin: reactions add)."""
        with self.database.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM timeline_events WHERE kind = :kind"),
                    {"kind": EventKind.MESSAGE},
                ).scalar_one()
            )

    def reactions(self) -> Figures:
        figures = self.kind("event: :pushpin: reaction (capture)")
        capture = Policy().slack.capture_reaction
        for round_ in range(self.round, self.round + self.bursts):
            said: list[tuple[str, str, str]] = []
            for i in range(self.concurrency):
                incident = self.target(i)
                ts = self.fake.user_says(
                    incident.channel, incident.reporter, f"clue {round_}.{i}: the pool is full"
                )
                said.append((incident.channel, ts, incident.reporter))

            def send(i: int, said: list[tuple[str, str, str]] = said) -> BotReply:
                channel, ts, user = said[i]
                return self.slack.react(channel, ts, user=user, reaction=capture)

            before = self.captured()
            answered = self.burst(figures, send, lambda sent: failed_answer(self.fake, sent.reply))
            missing = len(answered) - (self.captured() - before)
            for _ in range(max(missing, 0)):
                figures.problem("acknowledged, but the message is not on the timeline")
        return figures

    def warm_up(self) -> None:
        """One of each request first: the first of a kind pays for imports and first calls."""
        incident = self.incidents[0]
        self.slack.url_verification()
        self.slack.slash_command("status", user=incident.reporter, channel=incident.channel)
        self.slack.click(
            incident.channel, incident.summary_ts, blocks.ADD_NOTE, user=incident.reporter
        )
        ts = self.fake.user_says(incident.channel, incident.reporter, "warm-up clue")
        self.slack.react(
            incident.channel, ts, user=incident.reporter, reaction=Policy().slack.capture_reaction
        )
        self.bot.settle()


# --------------------------------------------------------------------------------------------
# Running and printing

HEADER = (
    f"{'backend':<10} {'request':<38} {'n':>4} {'peak':>4} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'max ms':>7} {'x floor':>7} {'bot p50':>7} {'bot p99':>7} {'non-200':>7} {'failed':>6}"
)


def ms(values: list[float], q: float | None) -> str:
    if not values:
        return f"{'-':>7}"
    value = max(values) if q is None else percentile(values, q)
    return f"{value * 1000:7.1f}"


def ratio(figures: Figures, floor: Figures | None) -> float | None:
    """A kind's p50 over the floor's p50 (the same run)."""
    if floor is None or not floor.latencies or not figures.latencies:
        return None
    return percentile(figures.latencies, 0.5) / percentile(floor.latencies, 0.5)


def row(backend: str, figures: Figures, floor: Figures | None = None) -> str:
    times = ratio(figures, floor)
    return (
        f"{backend:<10} {figures.name:<38} {figures.sent:>4} {figures.peak_in_flight:>4} "
        f"{ms(figures.latencies, 0.5)} {ms(figures.latencies, 0.99)} "
        f"{ms(figures.latencies, None)} {f'{times:.2f}' if times else '-':>7} "
        f"{ms(figures.app_times, 0.5)} "
        f"{ms(figures.app_times, 0.99)} {figures.non_200:>7} {figures.failed:>6}"
    )


def verdicts(backend: str, floor: Figures, acks: list[Figures], ready: Figures) -> list[str]:
    """Each target, met or not, in words."""
    lines = []
    for figures in acks:
        times = ratio(figures, floor)
        p99 = percentile(figures.latencies, 0.99) * 1000 if figures.latencies else None
        p50_ok = times is not None and times <= ACK_P50_TARGET_RATIO
        p99_ok = p99 is not None and p99 < ACK_P99_TARGET_MS
        lines.append(
            f"{backend:<10} {figures.name:<38} p50 {f'{times:.2f}' if times else '-'} x floor "
            f"({'met' if p50_ok else 'MISSED'}), p99 "
            f"{f'{p99:.0f}' if p99 is not None else '-'} ms ({'met' if p99_ok else 'MISSED'})"
        )
    if ready.latencies:
        p99 = percentile(ready.latencies, 0.99) * 1000
        lines.append(
            f"{backend:<10} {ready.name:<38} p99 {p99:.0f} ms "
            f"({'met' if p99 < READY_TARGET_MS else 'MISSED'})"
        )
    return lines


def run(url: str, args: argparse.Namespace) -> list[str]:
    """Benchmark one backend; prints its rows and returns the problems seen."""
    backend = make_url(url).get_backend_name()
    migrations.upgrade(url)
    started = time.perf_counter()
    with ExitStack() as stack:
        tls = None
        if args.https:
            # Slack is HTTPS only: the fake serves TLS, and the bot's process (spawned with
            # this environment) trusts it through a store as large as the system's.
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            tls = self_signed(directory)
            os.environ["SSL_CERT_FILE"] = str(trust_store(tls, directory))
        fake = stack.enter_context(FakeSlack(seed=7, tls=tls))
        spec = BotSpec(
            database_url=url,
            api_url=fake.api_url,
            token=fake.token,
            announcements_channel=fake.channel_id("incidents"),
            threads=args.threads,
        )
        bot: RunningBot = InProcessBot(spec) if args.in_process else ChildProcessBot(spec)
        bench = Bench(fake, bot, url, concurrency=args.concurrency, rounds=1)
        try:
            bench.declare_to_ready(1)  # the first declare pays for start-up
            # At least one incident per request of a burst: two clicks on one incident's
            # summary in the same burst are a real conflict, and the second is refused.
            ready, finished = bench.declare_to_ready(max(args.declares, args.concurrency))
            if not bench.incidents:
                return [f"{backend}: no incident channel became ready, nothing else to measure"]
            bench.warm_up()
            # Round-robin: one burst of each kind per round, so the floor and every kind
            # meet the same machine (a noisy minute does not land on one kind only).
            for _ in range(args.rounds):
                floor = bench.handshakes()
                acks = [
                    bench.status_commands(),
                    bench.declares(),
                    bench.severity_clicks(),
                    bench.note_clicks(),
                    bench.reactions(),
                ]
                bench.round += 1
            results = [floor, *acks, ready, finished, bench.ready_in_bursts]
        finally:
            bot.stop()
            bench.database.dispose()
        errors = fake.errors
    for figures in results:
        print(row(backend, figures, floor if figures in (floor, *acks) else None))
    if bench.ready_in_bursts.sent:
        per = bench.declare_cpu / bench.ready_in_bursts.sent * 1000
        where = "this process, the fake Slack included" if args.in_process else "its process"
        print(f"{backend:<10} bot CPU per declare in bursts: {per:.1f} ms ({where})")
    print(f"{backend:<10} ({time.perf_counter() - started:.0f} s)")
    for line in verdicts(backend, floor, acks, bench.ready_in_bursts):
        print("target:", line)
    print(flush=True)
    problems = [
        f"{backend}: {figures.name}: {count} × {what}"
        for figures in results
        for what, count in figures.problems.items()
    ]
    return problems + [f"{backend}: the fake Slack failed on a request:\n{e}" for e in errors]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES,
        help=f"PostgreSQL server to create the scratch database on (default {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--concurrency", type=int, default=50, help="requests per burst (50)")
    parser.add_argument("--rounds", type=int, default=4, help="bursts per kind of request (4)")
    parser.add_argument(
        "--declares",
        type=int,
        default=30,
        help="declares one after another (at least --concurrency: a burst clicks each once)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=WORK_THREADS,
        help=f"the bot's work threads (default {WORK_THREADS}, as `firebreak serve`)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run the bot in this process (as e2e tests do)"
    )
    parser.add_argument(
        "--https", action="store_true", help="the fake Slack over TLS, as the real one is"
    )
    args = parser.parse_args()
    for name in ("concurrency", "rounds", "declares", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")

    print("command: python " + shlex.join(sys.argv))
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; bot "
        f"{'in this process' if args.in_process else 'in its own process'} with "
        f"{args.threads} work threads; Slack over {'HTTPS' if args.https else 'HTTP'}"
    )
    print(
        f"targets: acknowledgement p50 <= {ACK_P50_TARGET_RATIO} x the url_verification floor, "
        f"p99 < {ACK_P99_TARGET_MS} ms (Slack gives up at {ACK_HARD_LIMIT_MS} ms); declare → "
        f"channel ready p99 < {READY_TARGET_MS} ms with {args.concurrency} at once"
    )
    print(
        f"{args.rounds} bursts of {args.concurrency} concurrent requests per kind; "
        f"{args.declares} declares one after another\n"
    )
    problems: list[str] = []
    with ExitStack() as databases:
        # The PostgreSQL scratch database first, so an unreachable server stops the run at once.
        urls = (
            []
            if args.sqlite_only
            else [
                databases.enter_context(
                    scratch_database(args.database_url, script="bench/slack.py")
                )
            ]
        )
        urls.insert(0, databases.enter_context(scratch_database(None)))
        print(HEADER, flush=True)
        for url in urls:
            problems += run(url, args)
    print(
        "\npeak: requests in flight at once. p50/p99/max: send → whole response read; bot: "
        "inside the bot's web app.\nfailed: non-200, later than 3 s, or acknowledged without "
        "its effect (answer, modal, ready channel, timeline).\nx floor: p50 over the p50 of "
        "url_verification in the same run."
    )
    for problem in problems:
        print("problem:", problem)


if __name__ == "__main__":
    main()
