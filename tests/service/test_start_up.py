"""`firebreak serve` on a first run: it migrates the schema itself, and a Slack that cannot be
reached (refused, DNS, 5xx) leaves it serving, unready with the reason, until Slack answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bot.config import Policy, Settings
from bot.sandbox import FakeSlack
from bot.server import build_service
from tests.ports import free_port
from tests.service.conftest import (
    FIREBREAK,
    ServeProcess,
    eventually,
    get,
    service_environment,
)


class SlackOutage:
    """A Slack Web API that answers 503 while ``down``, then answers ``auth.test``."""

    def __init__(self, port: int = 0, *, down: bool = True) -> None:
        self.down = down
        self.calls = 0
        outage = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                outage.calls += 1
                if outage.down:
                    body, status = b"upstream unavailable", 503
                else:
                    answer = {"ok": True, "user_id": "UFIREBREAK", "team_id": "T1"}
                    body, status = json.dumps(answer).encode(), 200
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    @contextmanager
    def running(self) -> Iterator[SlackOutage]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def settings(url: str, api_url: str) -> Settings:
    return Settings(
        DATABASE_URL=url,
        SLACK_BOT_TOKEN="xoxb-1-test",
        SLACK_SIGNING_SECRET="s3cret-s3cret",
        SLACK_API_URL=api_url,
    )


def readyz(process: ServeProcess) -> tuple[int, str]:
    answer = get(f"{process.url}/readyz")
    return answer.status, str(answer.json()["detail"])


def test_serve_migrates_a_fresh_sqlite_database_itself(tmp_path: Path) -> None:
    """The README's first run: no `db upgrade`, no DATABASE_URL, no flags."""
    port = free_port()
    with FakeSlack(seed=5) as fake:
        env = service_environment(fake, "unused", port)
        del env["DATABASE_URL"]
        process = ServeProcess([str(FIREBREAK), "serve"], env=env, cwd=tmp_path, port=port)
        try:
            process.wait_ready()
            assert readyz(process) == (200, "ok")
        finally:
            process.stop()
    assert process.process.returncode == 0
    assert (tmp_path / "firebreak.db").is_file()
    assert "Traceback" not in process.output()


def test_slack_refusing_connections_leaves_serve_unready_until_it_answers(
    tmp_path: Path, service_database_url: str
) -> None:
    slack_port = free_port()  # nothing listens there yet: connection refused
    port = free_port()
    with FakeSlack(seed=5) as fake:
        env = service_environment(
            fake,
            service_database_url,
            port,
            SLACK_API_URL=f"http://127.0.0.1:{slack_port}/api/",
            FIREBREAK_LOG_FORMAT="text",
        )
    process = ServeProcess([str(FIREBREAK), "serve"], env=env, cwd=tmp_path, port=port)
    try:
        process.wait_ready()
        status, detail = readyz(process)
        assert status == 503
        assert detail.startswith("slack unreachable (")
        with SlackOutage(slack_port, down=False).running() as slack:
            eventually(lambda: readyz(process) == (200, "ok"), "ready once Slack answers")
            assert slack.calls >= 1
        assert process.running
    finally:
        process.stop()
    assert process.process.returncode == 0
    assert "Traceback" not in process.output()


def test_slack_answering_5xx_at_start_up_is_retried_in_the_background(database_url: str) -> None:
    with SlackOutage().running() as slack:
        service = build_service(settings(database_url, slack.api_url), Policy(), scheduler=False)
        try:
            assert service.slack is not None
            assert str(service.slack.reason).startswith("slack unreachable (")
            connected: list[bool] = []
            service.slack.when_ready(lambda: connected.append(True))
            assert connected == []
            service.slack.first_delay = 0.01
            service.slack.start()
            slack.down = False
            eventually(lambda: service.slack is not None and service.slack.ready, "ready")
            assert connected == [True]
            assert service.slack.reason is None
        finally:
            service.stop()


def test_slack_unknown_to_dns_leaves_serve_unready(database_url: str) -> None:
    service = build_service(
        settings(database_url, "http://slack.invalid/api/"), Policy(), scheduler=False
    )
    try:
        assert service.slack is not None
        assert service.slack.reason is not None
        assert service.slack.reason.startswith("slack unreachable (")
    finally:
        service.stop()


def test_no_migrate_leaves_an_empty_database_alone(
    tmp_path: Path, service_database_url: str
) -> None:
    port = free_port()
    with FakeSlack(seed=5) as fake:
        env = service_environment(fake, service_database_url, port)
        process = ServeProcess(
            [str(FIREBREAK), "serve", "--no-migrate"], env=env, cwd=tmp_path, port=port
        )
        assert process.wait() == 2
    assert process.stderr[-1] == (
        "firebreak: database: the schema is not at the latest migration; "
        "run `firebreak db upgrade` first."
    )
