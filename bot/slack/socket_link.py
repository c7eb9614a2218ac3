"""Socket Mode's connection to Slack: opened in the background until Slack lets it, watched for
``/readyz``, and drained on shutdown.

Slack's SDK reconnects by itself once a first connection was made, but not before: a refused
or failed ``apps.connections.open`` at start-up would leave the process running and deaf. So
the first connection is retried here with exponential back-off (a ``Retry-After`` honoured),
and until it is made, or while the SDK is reconnecting, ``/readyz`` says why the bot is not
ready. An app-level token Slack refuses is a configuration error, found at start-up (exit 2).

On shutdown the envelopes being handled are given time to send their acknowledgements before
the socket closes: closing first would leave work done but unacknowledged, and Slack would
show the person an error for it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.errors import ConfigError

log = logging.getLogger(__name__)

APP_TOKEN_REFUSED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "not_allowed_token_type",
        "token_revoked",
        "token_expired",
        "account_inactive",
    }
)
"""Answers no retry fixes: the app-level token is wrong, revoked or not an app token."""

DRAIN_SECONDS = 10.0
"""How long shutdown waits for envelopes in hand to be acknowledged (Slack allows 3 s each)."""

PING_SECONDS = 5.0
"""How often the SDK pings Slack (Bolt's default is 10 s). A link that died without a close
(a load balancer or NAT dropping it) is noticed from the missing pongs: ``/readyz`` says so
after ``SILENT_SECONDS`` (counted from when the link was first seen if no pong ever came: a
link dropped before its first ping fails every ping with a broken pipe, and the SDK, which
counts from its first ping sent, only gives up after five failed checks), and the SDK
reconnects."""
SILENT_SECONDS = 3 * PING_SECONDS
RECEIVE_BUFFER = 64 * 1024
"""The SDK reads a frame in chunks of this size, recursing once per chunk: with its default
(1 KB) a frame of about 1 MB exhausted Python's recursion limit and dropped the connection."""
MAX_RECONNECT_DELAY = 60.0


class LinkRefused(Exception):
    """A reconnect not attempted yet: Slack asked to wait (``Retry-After``) or refused lately."""


class CountingHandler(SocketModeHandler):
    """Bolt's Socket Mode handler, counting the envelopes it is handling."""

    def __init__(self, app: App, app_token: str) -> None:
        self._in_hand = 0
        self._idle = threading.Condition()
        self.refused: str | None = None
        """Why Slack last refused a new connection (``None`` once one was opened)."""
        self._not_before = 0.0
        self._delay = 1.0
        super().__init__(
            app, app_token, ping_interval=PING_SECONDS, receive_buffer_size=RECEIVE_BUFFER
        )
        # The SDK's own version sleeps out a rate limit's Retry-After (whatever it says) and
        # asks again, without end: start-up would hang in it. Here a rate limit is an error
        # like any other: the first connection's back-off honours Retry-After (capped), and
        # later reconnects (the SDK's monitor asks at every check) wait out Retry-After and a
        # back-off that doubles up to a minute, instead of asking every few seconds.
        self.client.issue_new_wss_url = self._new_wss_url  # type: ignore[method-assign]

    def _new_wss_url(self) -> str:
        if time.monotonic() < self._not_before:
            raise LinkRefused(self.refused or "waiting before reconnecting")
        try:
            response = self.client.web_client.apps_connections_open(app_token=self.client.app_token)
        except Exception as exc:  # whatever the HTTP call raised
            error, wait = _why(exc)
            if self.refused != error:
                log.warning(
                    "Socket Mode connection refused by Slack"
                    + ("; check SLACK_APP_TOKEN" if error in APP_TOKEN_REFUSED else ""),
                    extra={"error": error},
                )
            self.refused = error
            self._not_before = time.monotonic() + max(self._delay, min(wait or 0, 3600.0))
            self._delay = min(self._delay * 2, MAX_RECONNECT_DELAY)
            raise
        self.refused = None
        self._delay = 1.0
        return str(response["url"])

    def handle(self, client: Any, req: Any) -> None:
        with self._idle:
            self._in_hand += 1
        try:
            super().handle(client, req)
        finally:
            with self._idle:
                self._in_hand -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until no envelope is being handled (or ``timeout``); whether it got there."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_hand == 0, timeout)


def _why(exc: Exception) -> tuple[str, float | None]:
    """What went wrong opening the connection, and the ``Retry-After`` Slack asked for."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = str(response.get("error") or f"HTTP {response.status_code}")
        after = response.headers.get("Retry-After") or response.headers.get("retry-after")
        try:
            wait = float(after) if after is not None else None
        except ValueError:
            wait = None
        return error, wait
    if isinstance(exc, LinkRefused):
        return str(exc), None
    return f"{type(exc).__name__}: {exc}"[:200], None


class SocketLink:
    def __init__(
        self, handler: CountingHandler, *, first_delay: float = 1.0, max_delay: float = 60.0
    ) -> None:
        self.handler = handler
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.reason: str | None = "slack socket mode not connected yet"
        self._connected_once = False
        self._first_seen: tuple[object, float] | None = None
        """The session first seen without a pong yet, and when."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_token(self) -> None:
        """At start-up: ``ConfigError`` if Slack refuses the app-level token. Any other failure
        (Slack down, a rate limit) is left to the background retries."""
        try:
            self.handler.client.issue_new_wss_url()
        except SlackApiError as exc:
            error, _ = _why(exc)
            if error in APP_TOKEN_REFUSED:
                raise ConfigError(
                    f"environment: SLACK_APP_TOKEN: Slack refused it ({error}): use this app's "
                    "app-level token (xapp-...), with the connections:write scope"
                ) from None
        except OSError:
            pass

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._connect, name="slack-socket-mode", daemon=True
            )
            self._thread.start()

    def _connect(self) -> None:
        delay = self.first_delay
        while not self._stop.is_set():
            try:
                self.handler.connect()  # type: ignore[no-untyped-call]
            except Exception as exc:  # the SDK raises whatever its HTTP call raised
                error, wait = _why(exc)
                self.reason = f"slack socket mode not connected ({error}); retrying"
                if error in APP_TOKEN_REFUSED:
                    self.reason += ": check SLACK_APP_TOKEN"
                log.warning(
                    "Socket Mode connection not opened; retrying",
                    extra={"error": error, "retry_in": round(max(delay, wait or 0), 1)},
                )
                self._stop.wait(max(delay, min(wait or 0, self.max_delay)))
                delay = min(delay * 2, self.max_delay)
                continue
            self._connected_once = True
            self.reason = None
            log.info("Socket Mode connected")
            return

    def current(self) -> str | None:
        """Why Slack's payloads cannot reach the bot now, or ``None``."""
        if not self._connected_once:
            return self.reason
        client = self.handler.client
        refused = self.handler.refused
        because = f" (Slack refused a new connection: {refused})" if refused else ""
        if refused in APP_TOKEN_REFUSED:
            because += "; check SLACK_APP_TOKEN"
        if not client.is_connected():
            return f"slack socket mode disconnected{because}; reconnecting"
        session = client.current_session
        last_pong = getattr(session, "last_ping_pong_time", None)
        if last_pong is None:  # no pong yet on this link: silent since it was first seen
            if self._first_seen is None or self._first_seen[0] is not session:
                self._first_seen = (session, time.time())
            last_pong = self._first_seen[1]
        if time.time() - last_pong > SILENT_SECONDS:
            return (
                f"slack socket mode silent: no answer to pings for "
                f"{time.time() - last_pong:.0f} s{because}; reconnecting"
            )
        return None

    def stop(self) -> None:
        """Stop connecting; let the envelopes in hand be acknowledged; close."""
        self._stop.set()
        if not self.handler.drain(DRAIN_SECONDS):
            log.warning("Socket Mode closed with envelopes still being handled")
        self.handler.close()  # type: ignore[no-untyped-call]
