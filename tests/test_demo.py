"""`firebreak demo` is the README's run command: it must play the whole incident."""

from __future__ import annotations

import io

from sqlmodel import select

from bot.db import Database
from bot.demo import run_demo
from bot.models import Incident, Postmortem, RunbookRun
from tests.conftest import DatabaseFactory


def test_the_demo_plays_an_incident_end_to_end(database_factory: DatabaseFactory) -> None:
    url = database_factory.create()
    out = io.StringIO()
    assert run_demo(url, out) == 0
    text = out.getvalue()
    for expected in (
        "the Declare form opens",
        "Acknowledge / I'm IC",
        "Severity changed from SEV2 to SEV1",
        "Status update",
        "RUNBOOK: DATABASE CONNECTION EXHAUSTION",
        "2/9 done, 1 skipped, 1 in progress",
        "resolved → closed",
        "the postmortem draft",
        "# INC-1: Checkout returns 500s for EU customers",
    ):
        assert expected in text, expected
    assert "Traceback" not in text
    db = Database(url)
    try:
        with db.transaction() as session:
            [incident] = session.exec(select(Incident)).all()
            assert incident.status == "closed"
            assert session.exec(select(Postmortem)).first() is not None
            assert session.exec(select(RunbookRun)).first() is not None
    finally:
        db.dispose()
