"""``firebreak serve``: the production process.

HTTP mode serves ``/slack/events`` (plus health and metrics) with uvicorn. When
``SLACK_APP_TOKEN`` is set, Slack's payloads arrive over Socket Mode instead, and the HTTP server
still serves health and metrics for the orchestrator.

Shutdown on SIGTERM: uvicorn stops accepting connections and finishes the requests in flight;
then the listener threads finish the work they acknowledged, the scheduler stops and releases
its claims on reminders (another replica takes them at once), and the database pool closes.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from sqlalchemy.engine import make_url

from bot import migrations
from bot.alerts.auth import AlertSettings, secret_values
from bot.config import Policy, Settings
from bot.config_reference import unknown_variables
from bot.console import Console, load_console_settings
from bot.errors import ConfigError
from bot.observability import Workers, configure_logging
from bot.postmortem.render import team_template_error
from bot.runbooks.reloading import follow_catalog
from bot.runtime import Firebreak
from bot.slack.app import WORK_THREADS, SlackBot, build_bot
from bot.slack.flows import IncidentFlows, SlackDirectory, SlackNames
from bot.slack.readiness import SlackReadiness
from bot.slack.reminders import start_scheduler
from bot.slack.socket_link import CountingHandler, SocketLink
from bot.web import create_web_app

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 25


@dataclass
class Service:
    """Everything ``serve`` runs, built without starting anything (tests start it themselves)."""

    firebreak: Firebreak
    flows: IncidentFlows
    workers: Workers
    web: Any
    socket_mode: SocketLink | None = None
    scheduler: Any = None
    slack: SlackReadiness | None = None
    bot: SlackBot | None = None
    reminders: bool = True

    def start_background(self) -> None:
        if self.bot is not None:
            self.bot.start()  # effects: finish what this or a dead replica left recorded
        if self.reminders:
            self.scheduler = start_scheduler(self.firebreak, self.flows)
        if self.socket_mode is not None:
            if self.slack is None:
                self.socket_mode.start()
            else:
                self.slack.when_ready(self.socket_mode.start)
        if self.slack is not None:
            self.slack.start()

    def stop(self) -> None:
        # Operators watching a slow shutdown (Slack rate limits in the acknowledged work) see
        # which stage it is in.
        log.info("shutting down: finishing the work already acknowledged")
        if self.slack is not None:
            self.slack.stop()
        if self.socket_mode is not None:
            self.socket_mode.stop()  # the envelopes in hand are acknowledged first
        self.workers.shutdown(wait=True)
        log.info("acknowledged work finished; stopping the reminder scheduler")
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.bot is not None:
            # Effects in hand are finished; the rest is released for another replica.
            self.bot.runner.stop(timeout=GRACEFUL_SECONDS)
        self.firebreak.close()


def check_credentials(settings: Settings) -> None:
    """The Slack credentials serve cannot run without; checked before anything touches the
    database, so a missing secret does not first migrate (or create) one."""
    if settings.slack_bot_token is None:
        raise ConfigError(
            "environment: SLACK_BOT_TOKEN is not set. Create the Slack app from "
            "slack-manifest.yaml (see README), or try `firebreak demo` without "
            "Slack."
        )
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        raise ConfigError(
            "environment: SLACK_SIGNING_SECRET is not set; it is needed to "
            "verify requests from Slack (or set SLACK_APP_TOKEN for Socket Mode)."
        )


def check_listen(host: str, port: int) -> None:
    """Fail start-up with one line when the address cannot be listened on (uvicorn would only
    log it and exit 3 after starting the background work). A trial bind, with the same
    SO_REUSEADDR uvicorn's server sets, on every address the host resolves to."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: unknown host ({exc.strerror}); check "
            "FIREBREAK_HOST or --host"
        ) from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                trial.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        f"cannot listen on {host}:{port}: the address is already in use; stop "
                        "what listens there, or choose another port (PORT or --port)"
                    ) from None
                raise ConfigError(
                    f"cannot listen on {host}:{port}: {exc.strerror or exc} (check "
                    "FIREBREAK_HOST or --host, and PORT or --port)"
                ) from None


def build_service(
    settings: Settings, policy: Policy, *, check_slack: bool = True, scheduler: bool = True
) -> Service:
    """Validate the configuration and assemble the service; raises ``ConfigError``."""
    check_credentials(settings)
    console_settings = load_console_settings()  # a bad FIREBREAK_CONSOLE_ value: exit 2 here
    firebreak = Firebreak.create(settings, policy, catalog=follow_catalog(policy))
    slack = SlackReadiness(firebreak) if check_slack else None
    try:
        if not migrations.is_at_head(firebreak.db.engine):
            raise ConfigError(
                "database: the schema is not at the latest migration; "
                "run `firebreak db upgrade` first."
            )
        if slack is not None:
            # Unreachable: serve unready and retry in the background; a bad token: exit 2.
            slack.check()
    except BaseException:
        firebreak.close()
        raise
    slack_bot = build_bot(firebreak, workers=Workers(WORK_THREADS))
    flows, workers, bolt = slack_bot.flows, slack_bot.workers, slack_bot.app
    socket_mode = None
    if settings.slack_app_token is not None:
        handler = CountingHandler(bolt, settings.slack_app_token.get_secret_value())
        socket_mode = SocketLink(handler)
        if check_slack:
            try:
                socket_mode.check_token()  # refused: exit 2; unreachable: retried later
            except BaseException:
                firebreak.close()
                raise

    def readiness() -> str | None:
        """Why the bot is not ready: Slack not answering, or its payloads not reaching it."""
        return (slack.current() if slack is not None else None) or (
            socket_mode.current() if socket_mode is not None else None
        )

    service = Service(
        firebreak=firebreak,
        flows=flows,
        workers=workers,
        web=None,
        socket_mode=socket_mode,
        slack=slack,
        bot=slack_bot,
        reminders=scheduler,
    )
    service.web = create_web_app(
        None if socket_mode is not None else bolt,
        firebreak.db,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        on_startup=service.start_background,
        on_shutdown=service.stop,
        console=Console(
            firebreak.db,
            policy,
            SlackDirectory(firebreak.gateway),
            console_settings,
            names=SlackNames(firebreak.gateway),
        ),
        readiness=readiness if slack is not None or socket_mode is not None else None,
        policy=policy,
        catalog=firebreak.catalog,
    )
    return service


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret the service is configured with, collected from each of its settings objects
    (Slack and audit, alert receivers, console): what the logs must never show."""
    database_password = make_url(settings.database_url).password
    return [
        *secret_values(settings),
        *AlertSettings().secrets(),
        *secret_values(load_console_settings()),
        *([str(database_password)] if database_password else []),
    ]


class _StoppedStarting(BaseException):
    """SIGTERM arrived before the server was up (a ``BaseException``, as ``KeyboardInterrupt``:
    no ``except Exception`` on the way swallows it)."""


def configure_service_logging(settings: Settings) -> None:
    """JSON logs (or text), with every configured secret redacted wherever it would appear;
    then a warning for each ``FIREBREAK_`` variable Firebreak does not read (a typo in a
    name would otherwise be ignored without a word)."""
    configure_logging(settings.log_level, settings.log_format, configured_secrets(settings))
    for name, close in unknown_variables(os.environ):
        hint = f" (did you mean {close}?)" if close else ""
        log.warning("environment variable %s is not a Firebreak setting%s: ignored", name, hint)


def serve(
    settings: Settings,
    policy: Policy,
    *,
    host: str | None = None,
    port: int | None = None,
    prepare: Callable[[], None] | None = None,
) -> None:
    """Run the service until SIGTERM. ``prepare`` (the migration) runs first, as part of
    starting: a SIGTERM during it stops there as cleanly as one while waiting for Slack."""
    configure_service_logging(settings)
    problem = team_template_error(policy)
    if problem is not None:  # each draft falls back to the built-in template: say so now
        log.warning("the postmortem template cannot be used: %s", problem)
    host = host or settings.host
    port = port if port is not None else settings.port
    check_listen(host, port)

    # A SIGTERM while starting (migrating, waiting for Slack): stop there, cleanly, and say so;
    # the migration's transaction is rolled back and nothing was served.
    def stop_starting(_signum: int, _frame: FrameType | None) -> None:
        raise _StoppedStarting

    previous = signal.signal(signal.SIGTERM, stop_starting)
    try:
        if prepare is not None:
            prepare()
        service = build_service(settings, policy)
    except _StoppedStarting:
        log.info("stopped by SIGTERM while starting; nothing was served")
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
    config = uvicorn.Config(
        service.web,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
        proxy_headers=True,
    )
    log.info(
        "firebreak serving",
        extra={
            "host": config.host,
            "port": config.port,
            "socket_mode": service.socket_mode is not None,
        },
    )
    server = uvicorn.Server(config)

    # uvicorn handles SIGTERM itself (stop accepting, drain, run ``Service.stop``) and then
    # raises the signal again, so after a clean shutdown the process would still end "killed by
    # SIGTERM" (exit 143) and orchestrators would report a failure. This handler, which uvicorn
    # restores before raising, only asks the server to exit: the process then exits 0. It also
    # covers a SIGTERM that arrives before uvicorn installs its own handlers (the one while
    # starting is above).
    def request_exit(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous = signal.signal(signal.SIGTERM, request_exit)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
