"""Shutdown in Socket Mode: the envelopes being handled are acknowledged before the socket
closes (closing first left work done but unacknowledged, shown to the person as an error)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.slack.socket_link import SILENT_SECONDS, CountingHandler, SocketLink


def test_shutdown_lets_the_envelopes_in_hand_be_acknowledged_before_closing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[str] = []

    def slow_handle(self: Any, client: Any, req: Any) -> None:
        time.sleep(0.3)  # the listener runs, then Bolt sends the acknowledgement
        order.append("acknowledged")

    monkeypatch.setattr(SocketModeHandler, "handle", slow_handle)
    app = App(token="xoxb-1", signing_secret="s", token_verification_enabled=False)
    handler = CountingHandler(app, "xapp-1-A1-1-abc")
    monkeypatch.setattr(handler, "close", lambda: order.append("closed"))
    in_hand = threading.Thread(target=handler.handle, args=(None, None))
    in_hand.start()
    time.sleep(0.05)
    SocketLink(handler).stop()
    in_hand.join()
    assert order == ["acknowledged", "closed"]


def test_a_link_that_never_answered_a_ping_is_silent_after_the_same_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A link dropped before its first ping: every ping then fails with a broken pipe, no pong
    ever comes, and the SDK (counting from its first ping sent, which never was) gives up only
    after five failed checks. Before, with no pong to count from, `/readyz` said ready all
    along; now the wait counts from when the link was first seen."""
    session = SimpleNamespace(last_ping_pong_time=None)
    client = SimpleNamespace(current_session=session, is_connected=lambda: True)
    link = SocketLink(SimpleNamespace(client=client, refused=None))  # type: ignore[arg-type]
    link._connected_once = True
    now = [1000.0]
    monkeypatch.setattr("bot.slack.socket_link.time.time", lambda: now[0])
    assert link.current() is None
    now[0] += SILENT_SECONDS - 1
    assert link.current() is None
    now[0] += 2
    assert link.current() == (
        f"slack socket mode silent: no answer to pings for {SILENT_SECONDS + 1:.0f} s; reconnecting"
    )
    client.current_session = SimpleNamespace(last_ping_pong_time=None)  # the SDK reconnected
    assert link.current() is None
    session.last_ping_pong_time = now[0]  # a pong on the first link counts as before
    client.current_session = session
    assert link.current() is None
