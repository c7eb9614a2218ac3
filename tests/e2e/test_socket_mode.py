"""The bot in Socket Mode, end to end: ``firebreak serve``'s service with an app-level token
connects to the local Slack's websocket, acknowledges ``/incident`` by envelope id, declares,
and keeps working after Slack asks it to reconnect."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from sqlmodel import col, select

from bot.config import Policy, Settings
from bot.db import Database
from bot.errors import ConfigError
from bot.models import Incident
from bot.sandbox import Envelope, FakeSlack
from bot.server import Service, build_service
from tests.e2e.conftest import texts

BOUND = 60.0
"""Seconds the bot may take to connect, acknowledge or finish its work before the test fails."""

T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + BOUND
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: did not happen within {BOUND:.0f} s")
        time.sleep(0.02)


def socket_settings(fake: FakeSlack, database_url: str) -> Settings:
    """The service's settings in Socket Mode, against the local Slack."""
    return Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_APP_TOKEN=fake.app_token,
        SLACK_API_URL=fake.api_url,
    )


@pytest.fixture
def service(
    fake: FakeSlack, db: Database, e2e_policy: Policy, database_url: str
) -> Iterator[Service]:
    settings = socket_settings(fake, database_url)
    running = build_service(settings, e2e_policy, scheduler=False)
    running.start_background()
    try:
        fake.socket_mode.wait_for_connections(1, BOUND)
        yield running
    finally:
        running.stop()


def incident_titled(db: Database, title: str) -> Incident | None:
    with db.transaction() as session:
        found = session.exec(
            select(Incident).where(col(Incident.title) == title).order_by(col(Incident.number))
        ).first()
    return found if found is not None and found.slack_channel_id else None


def what_the_person_saw(fake: FakeSlack, envelope: Envelope) -> str:
    """The acknowledgement's message, response_url posts and ephemeral messages."""
    seen = [texts(p.payload) for p in fake.response_posts(str(envelope.payload["response_url"]))]
    seen += [texts(e) for e in fake.ephemerals(user=str(envelope.payload["user_id"]))]
    return "\n".join(seen)


def declare(fake: FakeSlack, title: str) -> tuple[Envelope, dict[str, object]]:
    envelope = fake.socket_mode.slash_command(title, user="ana.garcia", channel="general")
    return envelope, fake.socket_mode.wait_for_ack(envelope, BOUND)


def test_declare_over_socket_mode_then_again_after_a_reconnect(
    fake: FakeSlack, service: Service, db: Database
) -> None:
    envelope, ack = declare(fake, "Checkout returns 500s")
    assert ack["envelope_id"] == envelope.envelope_id
    first = eventually(lambda: incident_titled(db, "Checkout returns 500s"), "INC-1 declared")
    assert first.ref == "INC-1"
    channel = fake.channel_json(first.slack_channel_id or "")
    assert channel["name"] == "inc-1-checkout-returns-500s"
    ana = fake.user_id("ana.garcia")
    eventually(lambda: ana in fake.members(channel["id"]), "the declarer is in the channel")
    eventually(lambda: "INC-1" in what_the_person_saw(fake, envelope), "the person is told")
    # One at start-up, to refuse a wrong app-level token there (exit 2), one to connect.
    assert len(fake.calls_to("apps.connections.open")) == 2

    fake.socket_mode.disconnect("refresh_requested")
    fake.socket_mode.wait_for_connections(2, BOUND)
    again, ack = declare(fake, "Search is slow")
    assert ack["envelope_id"] == again.envelope_id
    assert again.connection == 2
    second = eventually(lambda: incident_titled(db, "Search is slow"), "INC-2 declared")
    assert second.ref == "INC-2"
    assert fake.channel_json(second.slack_channel_id or "")["name"] == "inc-2-search-is-slow"
    assert len(fake.calls_to("apps.connections.open")) == 3
    names = [c.name for c in fake.channels()]
    assert (names.count("inc-1-checkout-returns-500s"), names.count("inc-2-search-is-slow")) == (
        1,
        1,
    )


def test_a_first_connection_that_fails_is_retried_and_readyz_says_why(
    fake: FakeSlack, db: Database, e2e_policy: Policy, database_url: str
) -> None:
    """Slack answers 500 to ``apps.connections.open`` twice when the bot starts: it keeps
    trying (the SDK reconnects only after a first connection), unready meanwhile, then takes
    commands. Before, the process either crashed at start-up or stayed deaf and "ready"."""
    settings = socket_settings(fake, database_url)
    running = build_service(settings, e2e_policy, scheduler=False)
    assert running.socket_mode is not None
    fake.fail("apps.connections.open", status=500, times=2)
    try:
        running.start_background()
        eventually(
            lambda: (running.socket_mode.current() or "").startswith(  # type: ignore[union-attr]
                "slack socket mode not connected (internal_error); retrying"
            ),
            "unready, saying why",
        )
        fake.socket_mode.wait_for_connections(1, BOUND)
        eventually(lambda: running.socket_mode.current() is None, "ready")  # type: ignore[union-attr]
        _, ack = declare(fake, "Checkout returns 500s")
        assert ack
        eventually(lambda: incident_titled(db, "Checkout returns 500s"), "INC-1 declared")
    finally:
        running.stop()


def test_an_app_token_slack_refuses_stops_start_up_with_one_line(
    fake: FakeSlack, e2e_policy: Policy, database_url: str
) -> None:
    settings = socket_settings(fake, database_url)
    fake.fail("apps.connections.open", error="invalid_auth")
    with pytest.raises(ConfigError) as refused:
        build_service(settings, e2e_policy, scheduler=False)
    assert str(refused.value) == (
        "environment: SLACK_APP_TOKEN: Slack refused it (invalid_auth): use this app's "
        "app-level token (xapp-...), with the connections:write scope"
    )


def test_a_rate_limit_at_start_up_neither_hangs_it_nor_is_ignored(
    fake: FakeSlack, db: Database, e2e_policy: Policy, database_url: str
) -> None:
    """Rolling restarts call ``apps.connections.open`` (Tier 1) often. While Slack answers 429,
    start-up goes on (the health endpoints answer), the bot says it is not ready and why, and it
    connects once Slack lets it. Before, start-up slept out each Retry-After and asked again,
    for as long as the limit lasted."""
    settings = socket_settings(fake, database_url)
    fake.fail("apps.connections.open", status=429, retry_after=1, times=None)
    built: list[Service] = []
    starting = threading.Thread(
        target=lambda: built.append(build_service(settings, e2e_policy, scheduler=False)),
        daemon=True,
    )
    starting.start()
    starting.join(BOUND)
    assert built, "start-up hung on Slack's rate limit"
    running = built[0]
    assert running.socket_mode is not None
    try:
        running.start_background()
        eventually(
            lambda: (running.socket_mode.current() or "").startswith(  # type: ignore[union-attr]
                "slack socket mode not connected (ratelimited); retrying"
            ),
            "unready, saying why",
        )
        fake.clear_failures()
        fake.socket_mode.wait_for_connections(1, BOUND)
        eventually(lambda: running.socket_mode.current() is None, "ready")  # type: ignore[union-attr]
        _, ack = declare(fake, "Checkout returns 500s")
        assert ack
        eventually(lambda: incident_titled(db, "Checkout returns 500s"), "INC-1 declared")
    finally:
        running.stop()


def test_a_link_that_died_without_a_goodbye_is_unready_then_reconnected(
    fake: FakeSlack, service: Service, db: Database
) -> None:
    """A load balancer or NAT drops the websocket without a close frame. The process still has
    its socket, so it looked connected: `/readyz` said ready while no command could reach it,
    for about a minute. Unanswered pings now make it unready, and the SDK reconnects."""
    link = service.socket_mode
    assert link is not None
    eventually(lambda: link.current() is None, "ready")
    fake.socket_mode.drop()
    said = eventually(link.current, "unready once the pings go unanswered")
    assert said.startswith("slack socket mode "), said
    fake.socket_mode.wait_for_connections(2, BOUND)
    eventually(lambda: link.current() is None, "ready again")
    _, ack = declare(fake, "Checkout returns 500s")
    assert ack
    eventually(lambda: incident_titled(db, "Checkout returns 500s"), "INC-1 declared")


def test_reconnecting_waits_as_slack_asks_and_says_why(fake: FakeSlack, service: Service) -> None:
    """Slack refuses new connections for a while (a rate limit with Retry-After, then the
    app-level token revoked): the SDK's monitor would ask at every check (every 5 s); Firebreak
    asks again only after Retry-After and a growing back-off, and `/readyz` names the refusal."""
    link = service.socket_mode
    assert link is not None
    opened = len(fake.calls_to("apps.connections.open"))
    fake.fail("apps.connections.open", status=429, retry_after=12, times=None)
    fake.socket_mode.disconnect("refresh_requested")
    said = eventually(
        lambda: "refused" in (link.current() or "") and link.current(),
        "unready, naming the rate limit",
    )
    assert said == (
        "slack socket mode disconnected (Slack refused a new connection: ratelimited); reconnecting"
    )
    time.sleep(8)  # past the SDK's next check, within Slack's 12 s
    assert len(fake.calls_to("apps.connections.open")) == opened + 1
    fake.clear_failures()
    fake.fail("apps.connections.open", error="invalid_auth", times=None)
    eventually(
        lambda: (link.current() or "").endswith(
            "a new connection: invalid_auth); check SLACK_APP_TOKEN; reconnecting"
        ),
        "unready, naming the token",
    )
    fake.clear_failures()
    fake.socket_mode.wait_for_connections(2, BOUND)
    eventually(lambda: link.current() is None, "ready again")


def test_a_large_envelope_is_acknowledged_on_the_same_connection(
    fake: FakeSlack, service: Service
) -> None:
    """Slack sends a click with the whole message clicked on, a form with its state: large
    frames. The SDK read a frame 1 KB at a time, recursing for each, and one of about 1 MB
    broke the connection (with every acknowledgement in flight on it)."""
    payload = {
        "type": "event_callback",
        "event_id": "EvLARGE1",
        "team_id": fake.team_id,
        "api_app_id": fake.app_id,
        "event": {
            "type": "app_home_opened",
            "user": fake.user_id("ana.garcia"),
            "tab": "messages",
            "padding": "x" * 1_500_000,
        },
    }
    envelope = fake.socket_mode.send("events_api", payload)
    fake.socket_mode.wait_for_ack(envelope, BOUND)
    assert fake.socket_mode.connections == 1
