"""Shutdown in Socket Mode: the envelopes being handled are acknowledged before the socket
closes (closing first left work done but unacknowledged, shown to the person as an error)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.slack.socket_link import CountingHandler, SocketLink


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
