"""Slack's side of Socket Mode, on a local websocket server, as Slack documents the protocol.

* ``apps.connections.open``, called with the app-level token (``xapp-...``; ``fake.app_token``),
  answers ``{"ok": true, "url": "ws://127.0.0.1:PORT/link/?ticket=...&app_id=..."}``. Each URL
  is good for one connection (a used or unknown ticket is refused with HTTP 403). Slack's URLs
  are ``wss://``; the local one is ``ws://`` on 127.0.0.1, which slack_sdk's built-in client
  accepts (a port other than 443 connects without TLS).
* On connecting, the app receives ``{"type": "hello", "num_connections": N, "debug_info": {...},
  "connection_info": {"app_id": ...}}``.
* Requests arrive as envelopes ``{"envelope_id", "type", "payload", "accepts_response_payload"}``
  with ``type`` ``slash_commands``, ``interactive`` or ``events_api`` (which also carries
  ``retry_attempt`` and ``retry_reason``), on the newest open connection. The app acknowledges
  each by sending ``{"envelope_id": ...}``, optionally with a ``payload``: a slash command's
  payload is shown to the person as the HTTP acknowledgement's body would be.
* ``disconnect(reason)`` sends ``{"type": "disconnect", "reason": ...}`` (``refresh_requested``,
  ``warning`` or ``link_disabled``) to every open connection and closes them ``close_after``
  seconds later, as Slack does; the client is expected to call ``apps.connections.open`` again
  and connect to the new URL.

Not modelled: Slack re-sending an ``events_api`` envelope that was not acknowledged in time.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from bot.sandbox.people import slash_command_fields
from bot.sandbox.records import JSON, FakeSlackError
from bot.sandbox.scenarios import Scenarios

EnvelopeType = Literal["slash_commands", "interactive", "events_api"]
DisconnectReason = Literal["refresh_requested", "warning", "link_disabled"]
_RESPONSE_PAYLOAD_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})


@dataclass
class Envelope:
    """One request sent to the app, and its acknowledgement once it came."""

    envelope_id: str
    type: EnvelopeType
    payload: JSON
    accepts_response_payload: bool
    connection: int
    sent_at: float
    acked: threading.Event = field(default_factory=threading.Event)
    ack: JSON | None = None


@dataclass
class _Session:
    number: int
    connection: ServerConnection
    open: bool = True
    draining: bool = False


class SocketModeServer:
    """The websocket end of Socket Mode for one fake workspace (``fake.socket_mode``)."""

    def __init__(self, fake: Scenarios, *, close_after: float = 2.0) -> None:
        self.fake = fake
        self.close_after = close_after
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._tickets: dict[str, bool] = {}
        self._sessions: list[_Session] = []
        self._envelopes: dict[str, Envelope] = {}
        self._connected = threading.Condition(self._lock)
        self._timers: list[threading.Timer] = []

    # ----------------------------------------------------------------------------------------
    # Lifecycle

    def _ensure_started(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            server = serve(
                self._serve,
                "127.0.0.1",
                0,
                process_request=self._check_ticket,
                logger=logging.getLogger(__name__),
                compression=None,
                ping_interval=None,
                close_timeout=2,
            )
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, name="fake-slack-socket-mode", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            sessions = list(self._sessions)
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        for session in sessions:
            session.connection.close()
        if server is not None:
            server.shutdown()
        if thread is not None:
            thread.join(10)

    def open_url(self) -> str:
        """A new single-use websocket URL (what ``apps.connections.open`` returns)."""
        self._ensure_started()
        with self._lock:
            assert self._server is not None
            port = self._server.socket.getsockname()[1]
            ticket = str(uuid.uuid4())
            self._tickets[ticket] = False
        return f"ws://127.0.0.1:{port}/link/?ticket={ticket}&app_id={self.fake.app_id}"

    # ----------------------------------------------------------------------------------------
    # Connections

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        ticket = parse_qs(urlsplit(request.path).query).get("ticket", [""])[0]
        with self._lock:
            if self._tickets.get(ticket) is False:
                self._tickets[ticket] = True
                return None
        body = b"invalid or used ticket: call apps.connections.open for a new URL\n"
        headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return Response(403, "Forbidden", headers, body)

    def _serve(self, connection: ServerConnection) -> None:
        with self._lock:
            session = _Session(len(self._sessions) + 1, connection)
            self._sessions.append(session)
            count = sum(1 for s in self._sessions if s.open)
            self._connected.notify_all()
        hello = {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": "applink-local",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.fake.app_id},
        }
        try:
            connection.send(json.dumps(hello))
            for raw in connection:
                self._receive(raw)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                session.open = False
                self._connected.notify_all()

    def _receive(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
            return
        with self._lock:
            envelope = self._envelopes.get(message["envelope_id"])
            if envelope is None or envelope.acked.is_set():
                return
            envelope.ack = message
        payload = message.get("payload")
        if (
            envelope.type == "slash_commands"
            and isinstance(payload, dict)
            and (payload.get("text") is not None or payload.get("blocks"))
        ):
            self.fake.deliver_response(
                payload,
                channel=str(envelope.payload["channel_id"]),
                user=str(envelope.payload["user_id"]),
                source="ack",
            )
        envelope.acked.set()

    @property
    def connections(self) -> int:
        """How many connections were ever opened."""
        with self._lock:
            return len(self._sessions)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for s in self._sessions if s.open)

    def wait_for_connections(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` connections were ever opened and one is open and not draining."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not (len(self._sessions) >= count and self._usable() is not None):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FakeSlackError(
                        f"Socket Mode: {len(self._sessions)} connection(s) opened, "
                        f"waited {timeout:.0f} s for {count}"
                    )
                self._connected.wait(left)

    def _usable(self) -> _Session | None:
        return next((s for s in reversed(self._sessions) if s.open and not s.draining), None)

    def disconnect(self, reason: DisconnectReason = "refresh_requested") -> None:
        """Ask every open connection to go away, and close them ``close_after`` s later."""
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-local"}}
        )
        with self._lock:
            sessions = [s for s in self._sessions if s.open]
            for session in sessions:
                session.draining = True
        for session in sessions:
            try:
                session.connection.send(message)
            except ConnectionClosed:
                continue
            timer = threading.Timer(self.close_after, session.connection.close)
            timer.daemon = True
            with self._lock:
                self._timers.append(timer)
            timer.start()

    def drop(self) -> None:
        """The open connections die without a goodbye: no close frame, the TCP link shut down
        (a load balancer or NAT dropping it). The client learns only from unanswered pings."""
        with self._lock:
            sessions = [s for s in self._sessions if s.open]
        for session in sessions:
            try:
                session.connection.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue

    # ----------------------------------------------------------------------------------------
    # Requests to the app

    def send(
        self,
        type: EnvelopeType,
        payload: JSON,
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Envelope:
        """Send ``payload`` in an envelope on the newest open connection."""
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in _RESPONSE_PAYLOAD_INTERACTIONS
            )
        with self._lock:
            session = self._usable()
            if session is None:
                raise FakeSlackError("Socket Mode: the app has no open connection")
            envelope = Envelope(
                str(uuid.uuid4()),
                type,
                payload,
                accepts_response_payload,
                session.number,
                time.monotonic(),
            )
            self._envelopes[envelope.envelope_id] = envelope
        message: dict[str, Any] = {
            "envelope_id": envelope.envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            message["retry_attempt"] = retry_attempt
            message["retry_reason"] = retry_reason
        session.connection.send(json.dumps(message))
        return envelope

    def slash_command(
        self, text: str, *, user: str, channel: str, command: str = "/incident"
    ) -> Envelope:
        """``command text`` typed by ``user`` in ``channel``, sent over Socket Mode."""
        fields = slash_command_fields(self.fake, text, user=user, channel=channel, command=command)
        return self.send("slash_commands", fields)

    def wait_for_ack(self, envelope: Envelope, timeout: float = 30.0) -> JSON:
        """The app's acknowledgement of ``envelope`` (``{"envelope_id": ..., ...}``)."""
        if not envelope.acked.wait(timeout):
            raise FakeSlackError(
                f"Socket Mode: envelope {envelope.envelope_id} ({envelope.type}) was not "
                f"acknowledged within {timeout:.0f} s"
            )
        assert envelope.ack is not None
        return envelope.ack

    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return list(self._envelopes.values())
