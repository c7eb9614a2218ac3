"""A request body that trickles in (anyone can send one, before any authentication) neither
holds up Firebreak's background work nor keeps its connection for long."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from bot import http_body, priority
from tests.e2e.conftest import RunningBot


@pytest.mark.parametrize("path", ["/alerts/generic", "/slack/events"])
def test_a_trickling_body_is_refused_and_holds_up_no_background_work(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr(priority, "LONGEST_PAUSE", 60.0)
    monkeypatch.setattr(http_body, "BODY_SECONDS", 6.0)
    where = urlsplit(bot.url)
    with socket.create_connection((where.hostname or "", where.port or 80), timeout=30) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: firebreak\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        time.sleep(0.3)  # the server has the headers: the request has started

        done = threading.Event()

        def background_step() -> None:
            priority.run_in_background()
            priority.pause_point()  # would wait up to 60 s while a request is in flight
            done.set()

        threading.Thread(target=background_step, daemon=True).start()
        assert done.wait(3)  # at once, not when the body is refused
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    # Alert senders retry a 5xx only (Alertmanager, Datadog): the alert must not be dropped.
    assert status_line.split()[1] == (b"503" if path.startswith("/alerts/") else b"408")
