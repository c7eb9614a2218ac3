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
from bot.slack import app, inbound
from bot.slack.inbound import Inbox, NotRecorded

EVENT = {
    "type": "event_callback",
    "event_id": "Ev1",
    "event": {"type": "reaction_added", "user": "U1", "item": {"channel": "C1", "ts": "1.2"}},
}


def said_during_outage(caplog: pytest.LogCaptureFixture, *, app_too: bool) -> list[str]:
    """Three Slack events recorded while the database is down (and, with ``app_too``, each
    failure handed to the app's error handler as Bolt does): the log lines the inbox and the
    app wrote (not background threads an earlier test left running), as "LEVEL: message"."""
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
                if app_too:  # Bolt hands the event's failure to the error handler: a 500
                    app._log_error(NotRecorded("the database is unavailable"), EVENT)
        finally:
            down.dispose()
    assert not any(r.exc_info for r in caplog.records)
    return [
        f"{r.levelname}: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith(("bot.slack", "bot.db"))
    ]


def test_an_outage_is_one_warning_not_a_traceback_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    said = said_during_outage(caplog, app_too=True)
    assert len(said) == 1, said
    assert said[0].startswith("WARNING: ")
    assert "the database is unavailable" in said[0]


def test_an_outage_that_outlasts_the_wait_to_save_is_one_warning_too(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection attempts that take longer than a request may wait to be saved (a loaded
    machine, a server that answers slowly as it goes): still an outage, told once, not a
    warning per request that blames a busy SQLite writer."""
    monkeypatch.setattr(inbound, "SAVE_WITHIN", 0.0)  # every wait has run out
    said = said_during_outage(caplog, app_too=False)
    assert len(said) == 1, said
    assert said[0].startswith("WARNING: ")
    assert "the database is unavailable" in said[0]
    assert "busy" not in said[0]
