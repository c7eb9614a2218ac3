"""Fixtures: a running fake Slack, a real ``WebClient`` pointed at it, and a minimal Bolt app
served over HTTP (as the bot is) for the simulator to talk to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient

from bot.sandbox import FakeSlack, SlackSimulator

SIGNING_SECRET = "3a1f0c9e6b5d4e2f8a7c6b5d4e3f2a1b"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(seed=1234) as running:
        yield running
    assert running.errors == [], "the fake failed on a request:\n" + "\n".join(running.errors)


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.token, base_url=fake.api_url)


class _BoltHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: App


class _BoltHandler(BaseHTTPRequestHandler):
    """Hands each request to Bolt exactly as it arrived: raw body, query and headers."""

    server: _BoltHTTPServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        request = BoltRequest(
            body=body, query=urlsplit(self.path).query, headers=dict(self.headers.items())
        )
        response = self.server.app.dispatch(request)
        payload = (response.body or "").encode("utf-8")
        self.send_response(response.status)
        for name, values in response.headers.items():
            if name.lower() != "content-length":
                for value in values:
                    self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: failures show up in the assertions instead."""


class BoltHarness:
    """A Bolt app (verification on, ``process_before_response``) listening on a free port."""

    def __init__(self, fake: FakeSlack) -> None:
        self.app = App(
            signing_secret=SIGNING_SECRET,
            client=WebClient(token=fake.token, base_url=fake.api_url),
            process_before_response=True,
            token_verification_enabled=False,
            request_verification_enabled=True,
        )
        self.received: list[dict[str, Any]] = []
        self._server = _BoltHTTPServer(("127.0.0.1", 0), _BoltHandler)
        self._server.app = self.app
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/slack/events"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def bolt(fake: FakeSlack) -> Iterator[BoltHarness]:
    harness = BoltHarness(fake)
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture
def slack(fake: FakeSlack, bolt: BoltHarness) -> SlackSimulator:
    return SlackSimulator(fake, bolt.url, SIGNING_SECRET)
