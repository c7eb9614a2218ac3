"""Helpers for the alerts tests: the corpus, and the receivers served over real HTTP."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.alerts.auth import AlertSettings
from bot.alerts.model import AlertMessage
from bot.alerts.receiver import alert_routes
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.runbooks.catalog import RunbookCatalog
from bot.testing.harness import SERVER_THREAD
from tests.ports import free_port

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "alerts"
TOKEN = "test-alerts-token-6f1e"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*/*.json"))


REFUSED = {
    "zulip-v8-webhook-test-message-alert-without-labels.json": (
        "no alert in the message has labels or annotations"
    ),
}
"""Corpus files a receiver answers 400, with what the answer says: real bodies, kept to show
that they are refused clearly."""


def load(name: str) -> Any:
    """A corpus file by ``source/name`` (without .json)."""
    return json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))


def message(name: str, now: datetime = NOW) -> AlertMessage:
    source = name.split("/")[0]
    return parse(source, load(name), now=now)


def datadog_cycle(transition: str, cycle: str, minutes: float) -> dict[str, Any]:
    """A Datadog webhook of monitor 8248529 on host:web-1, in alert cycle ``cycle``, dated
    ``minutes`` after NOW."""
    at = str(int((NOW + timedelta(minutes=minutes)).timestamp() * 1000))
    return {
        "id": f"{cycle}-{transition}",
        "title": f"[{transition} on {{host:web-1}}] CPU high on web",
        "alert_transition": transition,
        "alert_cycle_key": cycle,
        "alert_id": "8248529",
        "alert_scope": "host:web-1",
        "date": at,
        "last_updated": at,
    }


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Server:
    """The alert routes on a real uvicorn server in a thread."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=SERVER_THREAD, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def post(
        self,
        path: str,
        body: bytes | str | Any,
        *,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> Answer:
        if isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode("utf-8")
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, response.read(), dict(response.getheaders()))
        finally:
            connection.close()


ServerFactory = Callable[..., Server]


@pytest.fixture
def serve(db: Database) -> Iterator[ServerFactory]:
    """``serve(policy=..., settings=..., catalog=..., database=...)`` -> a started
    :class:`Server` (``database``: another pool on the same database, i.e. a second replica)."""
    started: list[Server] = []

    def start(
        *,
        policy: Policy | None = None,
        settings: AlertSettings | None = None,
        catalog: RunbookCatalog | None = None,
        database: Database | None = None,
    ) -> Server:
        async def healthz(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        app = Starlette(
            routes=[
                *alert_routes(
                    database or db,
                    policy=policy or Policy(),
                    catalog=catalog or RunbookCatalog.of([]),
                    settings=settings or AlertSettings(token=TOKEN),
                ),
                Route("/healthz", healthz),
            ]
        )
        server = Server(app).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


@pytest.fixture
def replicas(serve: ServerFactory, database_url: str) -> Iterator[list[Server]]:
    """Two receivers on one database, each with its own connection pool (two replicas)."""
    second = Database(database_url, pool_size=5)
    try:
        yield [serve(), serve(database=second)]
    finally:
        second.dispose()


def send(replicas: list[Server], source: str, body: dict[str, Any]) -> dict[str, Any]:
    """Deliver to one replica, then the same body again to the other (a retry)."""
    first = replicas[0].post(f"/alerts/{source}", body)
    again = replicas[1].post(f"/alerts/{source}", body)
    assert first.status == again.status == 200, (first.body, again.body)
    answer: dict[str, Any] = first.json()
    assert again.json()["incident"] == answer["incident"]
    return answer
