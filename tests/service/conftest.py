"""The service as it is deployed: ``firebreak serve`` in a process of its own, spoken to over real
HTTP, with the fake Slack running in the test process.

Nothing here sleeps to let time pass. Waits are bounded polls for something the process does
(start listening, finish a piece of work, exit), so they end as soon as it happens; the bound is
only reached when something is broken.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Self, TypeVar
from urllib.parse import urlsplit

import pytest
import uvicorn

from bot import incidents as core
from bot import migrations
from bot.clock import utcnow
from bot.config import Policy, load_policy
from bot.db import Database
from bot.sandbox import FakeSlack
from bot.sandbox.faults import Answer as ApiAnswer
from bot.testing.harness import SERVER_THREAD
from bot.web import create_web_app
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "5d41402abc4b2a76b9719d911017c592"
"""The signing secret the services under test verify Slack's requests with."""
BOUND = 60.0
"""Seconds a process may take to start, finish its work or exit before the test gives up."""
FIREBREAK = Path(sys.executable).with_name("firebreak")
"""The ``firebreak`` console script of the environment running the tests."""

T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float = BOUND) -> T:
    """Poll ``check`` until it returns something true (a non-empty list, an object, True)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: did not happen within {timeout:.0f} s")
        time.sleep(0.02)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def get(url: str) -> Answer:
    """A plain HTTP GET, as a probe or a Prometheus scrape sends it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        return Answer(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            response.read(),
        )
    finally:
        connection.close()


class ServeProcess:
    """A child process serving HTTP on ``port``. Its stdout and stderr are read continuously on
    threads (so it never blocks on a full pipe) and kept line by line."""

    def __init__(
        self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, port: int
    ) -> None:
        self.port = port
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    @staticmethod
    def _read(stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        with stream:
            for line in stream:
                lines.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return "\n".join([*self.stderr, *self.stdout])

    def wait_ready(self) -> Self:
        """Wait until ``/healthz`` answers 200; fail with the process's output if it exits."""

        def healthy() -> bool:
            if not self.running:
                raise AssertionError(
                    f"the process exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                return get(f"{self.url}/healthz").status == 200
            except OSError:
                return False

        eventually(healthy, "the process answers /healthz")
        return self

    def accepts_connections(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5):
                return True
        except OSError:
            return False

    def terminate(self) -> None:
        """SIGTERM, as Kubernetes and ``docker stop`` send it."""
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = BOUND) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def stop(self) -> None:
        if self.running:
            self.terminate()
            try:
                self.process.wait(BOUND)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.wait()

    def log_records(self) -> list[dict[str, Any]]:
        """stderr as JSON log records (fails on the first line that is not a JSON object)."""
        records = []
        for number, line in enumerate(self.stderr, 1):
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"stderr line {number} is not JSON: {line!r}") from None
            assert isinstance(record, dict), f"stderr line {number} is not an object: {line!r}"
            records.append(record)
        return records


@contextmanager
def web_only(database: Database) -> Iterator[str]:
    """The HTTP app alone (no Slack) on a free port, as ``serve`` runs it: for probing a
    database that a whole process could not even start against."""
    config = uvicorn.Config(
        create_web_app(None, database),
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=SERVER_THREAD, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started or not thread.is_alive(), "the web app starts")
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(BOUND)


# --------------------------------------------------------------------------------------------
# A Slack that can be slow on purpose


class Hold:
    """One Web API call that the fake keeps waiting until the test lets it through."""

    def __init__(self, method: str, mentioning: tuple[str, ...], answered: bool = False) -> None:
        self.method = method
        self.mentioning = mentioning
        self.answered = answered
        """Slack answers at once and the answer is held on its way back (the bot reads an
        answer that is stale by the time it goes on)."""
        self.entered = threading.Event()
        self._go = threading.Event()

    def matches(self, method: str, body: bytes) -> bool:
        if method != self.method or self.entered.is_set():
            return False
        return not self.mentioning or any(m.encode() in body for m in self.mentioning)

    def wait_entered(self) -> None:
        assert self.entered.wait(BOUND), f"the bot did not call {self.method}"

    def wait_released(self) -> None:
        self._go.wait(BOUND)

    def release(self) -> None:
        self._go.set()


class HoldingFakeSlack(FakeSlack):
    """The fake Slack, able to keep one call waiting (a slow Slack) so that a test can act while
    the bot's work is in flight. The call waits before the fake handles it, outside the fake's
    lock, so every other call goes on meanwhile."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._holds: list[Hold] = []
        self._holds_lock = threading.Lock()

    def hold(self, method: str, *, mentioning: Iterable[str] = (), answered: bool = False) -> Hold:
        """Hold the next call to ``method`` (one whose body names any of ``mentioning``);
        ``answered``: hold its answer instead, computed when the call came."""
        hold = Hold(method, tuple(mentioning), answered)
        with self._holds_lock:
            self._holds.append(hold)
        return hold

    def release_all(self) -> None:
        with self._holds_lock:
            for hold in self._holds:
                hold.release()

    def _handle_api(self, method: str, query: str, handler: Any, body: bytes) -> ApiAnswer:
        with self._holds_lock:
            hold = next((h for h in self._holds if h.matches(method, body)), None)
            if hold is not None:
                hold.entered.set()
        if hold is not None and hold.answered:
            answer = super()._handle_api(method, query, handler, body)
            hold.wait_released()
            return answer
        if hold is not None:
            hold.wait_released()
        return super()._handle_api(method, query, handler, body)


# --------------------------------------------------------------------------------------------
# Fixtures


def service_environment(
    fake: FakeSlack, database_url: str, port: int, **extra: str
) -> dict[str, str]:
    """A clean environment (nothing inherited from the shell running the tests) with the
    settings a deployment gives ``firebreak serve``."""
    return {
        "PATH": f"{FIREBREAK.parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "FIREBREAK_HOST": "127.0.0.1",
        "PORT": str(port),
        **extra,
    }


@pytest.fixture
def fake() -> Iterator[HoldingFakeSlack]:
    with HoldingFakeSlack(seed=11) as running:
        try:
            yield running
        finally:
            running.release_all()
    assert running.errors == [], "the fake failed on a request:\n" + "\n".join(running.errors)


@pytest.fixture
def workdir(tmp_path: Path, fake: FakeSlack) -> Path:
    """The service's working directory: the policy and the repository's runbooks, as the image
    has them, with announcements going to the fake's #incidents."""
    path = tmp_path / "app"
    path.mkdir()
    (path / "firebreak.toml").write_text(
        f'[slack]\nannouncements_channel = "{fake.channel_id("incidents")}"\n', encoding="utf-8"
    )
    shutil.copytree(ROOT / "runbooks", path / "runbooks")
    return path


@pytest.fixture
def service_policy(workdir: Path) -> Policy:
    return load_policy(workdir / "firebreak.toml")


@pytest.fixture
def service_database_url(new_database_url: Callable[[], str]) -> str:
    """An empty database on the backend under test; ``serve --migrate`` creates the schema."""
    return new_database_url()


@pytest.fixture
def launch(
    fake: HoldingFakeSlack, workdir: Path, service_database_url: str
) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``firebreak serve --migrate`` (waiting for /healthz unless ``wait=False``)."""
    started: list[ServeProcess] = []

    def start(*, wait: bool = True, **extra_env: str) -> ServeProcess:
        port = free_port()
        env = service_environment(fake, service_database_url, port, **extra_env)
        process = ServeProcess(
            [str(FIREBREAK), "serve", "--migrate"], env=env, cwd=workdir, port=port
        )
        started.append(process)
        return process.wait_ready() if wait else process

    yield start
    fake.release_all()
    for process in started:
        process.stop()


@dataclass(frozen=True)
class Overdue:
    incident_id: int
    channel: str
    declared_at: datetime


def seed_overdue_incidents(
    database_url: str,
    fake: FakeSlack,
    policy: Policy,
    count: int,
    *,
    declared_ago: timedelta = timedelta(hours=3),
) -> list[Overdue]:
    """Incidents declared ``declared_ago`` (the core takes the time it acts at), each with a
    channel in the fake and nobody acknowledging or posting updates: each has an escalation and
    an update nudge overdue, so the service sends them as soon as it starts."""
    migrations.upgrade(database_url)
    database = Database(database_url)
    reporter = fake.user_id("ana.garcia")
    then = utcnow() - declared_ago
    seeded = []
    try:
        for n in range(1, count + 1):
            at = then + timedelta(seconds=n)
            channel = fake.add_channel(f"seeded-{n}", members=[reporter], bot_member=True)
            with database.transaction() as session:
                incident = core.declare_incident(
                    session, policy, title=f"Queue backlog {n}", reporter=reporter, now=at
                ).incident
                assert incident.id is not None
                core.attach_channel(
                    session,
                    policy,
                    incident.id,
                    channel_id=channel,
                    channel_name=f"seeded-{n}",
                    actor=fake.bot_user_id,
                    now=at,
                )
            seeded.append(Overdue(incident.id, channel, at))
    finally:
        database.dispose()
    return seeded


def reminder_messages(fake: HoldingFakeSlack, channel: str) -> list[object]:
    """Messages Firebreak posted for a reminder (named by the effect in their metadata)."""
    return [
        m
        for m in fake.messages(channel)
        if str(((m.metadata or {}).get("event_payload") or {}).get("effect", "")).startswith(
            "reminder:"
        )
    ]
