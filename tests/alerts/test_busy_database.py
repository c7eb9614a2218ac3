"""Another process holds the database's writer longer than an alert sender waits (a backup, a
``firebreak`` CLI run; on PostgreSQL, a migration's lock): the webhook is answered 503 with
nothing stored, soon enough for the sender to retry, and the retry is stored once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bot.alerts import receiver
from bot.db import Database
from tests.alerts.conftest import ServerFactory, load
from tests.alerts.test_receiver import counts
from tests.db_faults import hold_writer

HELD = 8.0
WITHIN = 2.0


@pytest.fixture
def held_writer(database_url: str) -> Iterator[threading.Timer]:
    """Another process holds the writer (on PostgreSQL, a lock on the alert groups) from now
    until ``HELD`` seconds later."""
    timer = threading.Timer(HELD, hold_writer(database_url, table="alert_groups"))
    timer.start()
    yield timer
    timer.join()  # a failed test waits for the other connection to let go too


def test_an_alert_the_busy_database_cannot_store_in_time_is_503_and_stored_once_when_resent(
    db: Database,
    serve: ServerFactory,
    held_writer: threading.Timer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(receiver, "STORE_WITHIN", WITHIN)
    server = serve()
    body = load("alertmanager/zulip-no-generatorurl")
    sent = time.monotonic()
    answer = server.post("/alerts/alertmanager", body)
    waited = time.monotonic() - sent
    assert answer.status == 503, answer.body
    assert answer.json() == {"error": "the alert could not be stored; nothing was kept, retry"}
    # Answered once its own deadline ran out, long before the other writer let go (and not
    # after three busy timeouts, as before).
    assert waited < HELD - 2 * WITHIN
    assert counts(db) == (0, 0, 0)

    held_writer.join(HELD + 30)  # the writer lets go; Alertmanager sends the body again
    assert server.post("/alerts/alertmanager", body).status == 200
    again = server.post("/alerts/alertmanager", body)
    assert again.status == 200 and again.json()["status"] == "stored"
    groups, alerts, incidents = counts(db)
    assert (groups, incidents) == (1, 1)
    assert alerts == len(body["alerts"])
