"""Fixtures for the console: a local OIDC provider, consoles over the test database, clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.responses import Response
from starlette.testclient import TestClient

from bot import incidents
from bot.config import Policy
from bot.console import Console, ConsoleSettings
from bot.console.demo import StaticDirectory, StaticNames
from bot.db import Database
from bot.web import create_web_app
from tests.console.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, RunningServer

SECRET = "test-session-secret-0123456789abcdef"
ADMIN = "U0ADMIN"
MEMBER = "U0MEMBER"
OUTSIDER = "U0OUTSIDER"
PRIVATE_CHANNEL = "C0PRIVATE"


@pytest.fixture
def oidc() -> Iterator[OidcProvider]:
    """A provider for one test. Its server thread lives no longer than the test: freezegun
    patches the clock for the whole process, and a server ticking through another test's
    freeze and thaw can crash on freezegun's own bookkeeping."""
    provider = OidcProvider()
    with RunningServer(provider.app()) as running:
        provider.port = running.port
        yield provider


def directory() -> StaticDirectory:
    return StaticDirectory(admins=[ADMIN], channels={PRIVATE_CHANNEL: {MEMBER}})


def settings(issuer: str, **overrides: Any) -> ConsoleSettings:
    values: dict[str, Any] = {
        "session_secret": SECRET,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_issuer": issuer,
        "cookie_secure": True,
    }
    values.update(overrides)
    return ConsoleSettings(_env_file=None, **values)


MakeConsole = Callable[..., Console]


@pytest.fixture
def make_console(db: Database, policy: Policy, oidc: OidcProvider) -> MakeConsole:
    def make(**overrides: Any) -> Console:
        return Console(
            db,
            policy,
            directory(),
            settings(oidc.issuer, **overrides),
            names=StaticNames({ADMIN: "Ada Admin", MEMBER: "Mo Member"}),
        )

    return make


@pytest.fixture
def console(make_console: MakeConsole) -> Console:
    return make_console()


def client_for(console: Console, **kwargs: Any) -> TestClient:
    app = create_web_app(None, console.database, console=console)
    return TestClient(app, base_url="https://testserver", follow_redirects=False, **kwargs)


@pytest.fixture
def client(console: Console) -> Iterator[TestClient]:
    with client_for(console) as c:
        yield c


def sign_in(client: TestClient, console: Console, user: str, name: str = "") -> None:
    """Give the client a valid session cookie for ``user`` (as a finished sign-in would)."""
    response = Response()
    console.sessions.start(response, user, name or user, "oidc")
    cookie = response.headers["set-cookie"].split(";", 1)[0]
    key, value = cookie.split("=", 1)
    client.cookies.set(key, value)


T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def declare(
    db: Database,
    policy: Policy,
    title: str,
    *,
    at: datetime = T0,
    severity: str = "SEV2",
    service: str | None = "checkout",
    private: bool = False,
    reporter: str = ADMIN,
    channel: str | None = None,
) -> int:
    """Declare an incident (at ``at``); a private one can be given its channel. Returns its
    number."""
    with db.transaction() as session:
        change = incidents.declare_incident(
            session,
            policy,
            title=title,
            reporter=reporter,
            severity=severity,
            service=service,
            private=private,
            now=at,
        )
        assert change.incident.id is not None
        if channel is not None:
            incidents.attach_channel(
                session,
                policy,
                change.incident.id,
                channel_id=channel,
                channel_name="inc-private",
                actor=reporter,
                now=at,
            )
        return change.incident.number


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
