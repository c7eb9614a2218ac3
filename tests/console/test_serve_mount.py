"""``firebreak serve`` mounts the console, configured from FIREBREAK_CONSOLE_* variables, with
visibility and names from Slack."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.responses import Response
from starlette.testclient import TestClient

from bot import incidents
from bot.cli import main
from bot.config import Policy, Settings
from bot.console.auth import Sessions
from bot.db import Database
from bot.errors import ConfigError
from bot.sandbox import FakeSlack
from bot.server import build_service
from tests.console.conftest import T0

SECRET = "serve-session-secret-0123456789abcdef"


def settings_for(fake: FakeSlack, url: str) -> Settings:
    return Settings(
        DATABASE_URL=url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET="s3cret-s3cret",
        SLACK_API_URL=fake.api_url,
    )


def session_cookie(user: str) -> tuple[str, str]:
    sessions = Sessions(SECRET, max_age=timedelta(hours=1), secure=True)
    response = Response()
    sessions.start(response, user, user, "oidc")
    name, value = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)
    return name, value


def titles(page: str) -> list[str]:
    return [chunk.split("</td>", 1)[0] for chunk in page.split('<td class="title">')[1:]]


def test_serve_mounts_the_console_with_slack_visibility_and_names(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(``db`` empties the tables first.)"""
    monkeypatch.setenv("FIREBREAK_CONSOLE_OIDC_CLIENT_ID", "123.456")
    monkeypatch.setenv("FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET", "shh")
    monkeypatch.setenv("FIREBREAK_CONSOLE_SESSION_SECRET", SECRET)
    policy = Policy()
    with FakeSlack(seed=3) as fake:
        service = build_service(settings_for(fake, database_url), policy, check_slack=False)
        try:
            admin, outsider = fake.user_id("ana.garcia"), fake.user_id("dev.patel")
            with service.firebreak.db.transaction() as session:
                incidents.declare_incident(
                    session, policy, title="Public outage", reporter=admin, now=T0
                )
                incidents.declare_incident(
                    session, policy, title="Leaked key", reporter=admin, private=True, now=T0
                )
            client = TestClient(service.web, base_url="https://testserver", follow_redirects=False)
            assert client.get("/").headers["location"] == "/console/incidents"
            assert "Sign in with Slack" in client.get("/console/auth/login").text
            seen = {}
            for user in (admin, outsider):
                client.cookies.clear()
                client.cookies.set(*session_cookie(user))
                page = client.get("/console/incidents")
                assert page.status_code == 200
                seen[user] = titles(page.text)
            assert seen == {admin: ["Leaked key", "Public outage"], outsider: ["Public outage"]}
            assert "Ana" in client.get("/console/incidents/1").text  # names from Slack
        finally:
            service.stop()


def test_a_bad_console_variable_stops_serve_with_one_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREBREAK_CONSOLE_TRUSTED_PROXIES", "the-proxy")
    with FakeSlack(seed=3) as fake, pytest.raises(ConfigError) as raised:
        build_service(settings_for(fake, database_url), Policy(), check_slack=False)
    assert str(raised.value).startswith("environment: FIREBREAK_CONSOLE_TRUSTED_PROXIES: ")


def test_a_short_session_secret_stops_serve_with_exit_2_without_echoing_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    short = "hunter2-hunter2"
    with FakeSlack(seed=3) as fake:
        for name, value in {
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": fake.token,
            "SLACK_SIGNING_SECRET": "s3cret-s3cret",
            "SLACK_API_URL": fake.api_url,
            "FIREBREAK_CONSOLE_SESSION_SECRET": short,
        }.items():
            monkeypatch.setenv(name, value)
        assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "firebreak: environment: FIREBREAK_CONSOLE_SESSION_SECRET: too short: use at least 32 "
        "random characters (e.g. the output of `openssl rand -hex 32`)\n"
    )
    assert short not in err
