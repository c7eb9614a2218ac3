"""A database outage while Slack requests arrive: each is answered as not saved (an event with
a 500, for Slack to send again), and the log says so once when it starts and once when it
ends, not an error and a traceback per request."""

from __future__ import annotations

import logging
import socket
from types import SimpleNamespace
from typing import cast

import pytest

from bot.db import Database
from bot.runtime import Firebreak
from bot.slack import app
from bot.slack.inbound import Inbox, NotRecorded

EVENT = {
    "type": "event_callback",
    "event_id": "Ev1",
    "event": {"type": "reaction_added", "user": "U1", "item": {"channel": "C1", "ts": "1.2"}},
}


def test_an_outage_is_one_warning_not_a_traceback_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A port bound and never listened on: connections to it are refused, and no server of a
    # test running beside this one can take it meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = Database(f"postgresql://postgres@127.0.0.1:{closed.getsockname()[1]}/firebreak")
        inbox = Inbox(cast(Firebreak, SimpleNamespace(db=down)))
        caplog.set_level(logging.INFO)
        try:
            for n in range(3):
                with pytest.raises(NotRecorded):
                    inbox.record("event", f"event:Ev{n}", EVENT)
                # Bolt hands the event's failure to the app's error handler, which answers 500.
                app._log_error(NotRecorded("the database is unavailable"), EVENT)
        finally:
            down.dispose()
    # What the inbox and the app said (not background threads an earlier test left running).
    said = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name.startswith(("bot.slack", "bot.db"))
    ]
    assert [level for level, _ in said] == ["WARNING"], said
    assert "the database is unavailable" in said[0][1]
    assert not any(r.exc_info for r in caplog.records)
