"""``audit verify`` against what the chain alone cannot show: a whole incident deleted (incident
numbers are gap-free) and an incident's latest events deleted (the incident row keeps the
chain's head), on the backend under test. Legitimate operations leave nothing to report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import text

from bot import incidents as core
from bot import migrations
from bot.audit import retention
from bot.audit.chain import GENESIS, event_hash
from bot.audit.verify import verify_chains
from bot.config import Policy, load_policy
from bot.db import Database
from bot.models import EventKind, Incident, TimelineEvent
from tests.audit.helpers import T0, forged_note, tamper
from tests.audit.helpers import declare_with_notes as declare
from tests.conftest import Run


def delete_incident(db: Database, incident_id: int) -> None:
    tamper(
        db,
        "DELETE FROM timeline_events WHERE incident_id = :i",
        "DELETE FROM reminders WHERE incident_id = :i",
        "DELETE FROM effects WHERE incident_id = :i",
        "DELETE FROM role_assignments WHERE incident_id = :i",
        "DELETE FROM incidents WHERE id = :i",
        i=incident_id,
    )


def events(db: Database, incident_id: int) -> list[TimelineEvent]:
    with db.read() as session:
        return core.timeline(session, incident_id, include_retracted=True)


def stored_head(db: Database, incident_id: int) -> tuple[str | None, int]:
    with db.read() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.chain_head, incident.chain_events


def verify(run: Run, monkeypatch: pytest.MonkeyPatch, url: str, *refs: str) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", url)
    code, out, err = run("audit", "verify", *refs)
    return code, out + err


def test_verify_names_a_whole_incident_that_was_deleted(
    db: Database,
    policy: Policy,
    database_url: str,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [declare(db, policy, 2, title=f"Incident {n}") for n in range(4)]
    delete_incident(db, ids[1])
    code, out = verify(run, monkeypatch, database_url)
    assert code == 1
    assert (
        out.splitlines()[0] == "INC-2 is missing: incident numbers are gap-free, so it was deleted"
    )
    assert "3 incidents, 9 events checked" in out
    code, out = verify(run, monkeypatch, database_url, "INC-2")
    assert code == 1
    assert "INC-2 is missing: incident numbers are gap-free" in out
    assert "no such incident" not in out
    assert verify(run, monkeypatch, database_url, "INC-3")[0] == 0
    # The latest incident too: the counter says it was handed out.
    delete_incident(db, ids[3])
    with db.read() as session:
        report = verify_chains(session)
    assert [b.describe() for b in report.breaks] == [
        "INC-2 is missing: incident numbers are gap-free, so it was deleted",
        "INC-4 is missing: incident numbers are gap-free, so it was deleted",
    ]
    assert report.missing == [2, 4]
    delete_incident(db, ids[2])
    with db.read() as session:
        report = verify_chains(session)
    assert [b.describe() for b in report.breaks] == [
        "INC-2 to INC-4 are missing (3 incidents): incident numbers are gap-free, so they were "
        "deleted"
    ]


def test_verify_names_an_incident_whose_latest_events_were_deleted(
    db: Database,
    policy: Policy,
    database_url: str,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    declare(db, policy, 2)
    second = declare(db, policy, 4, title="Search")
    timeline = events(db, second)
    tamper(db, "DELETE FROM timeline_events WHERE id = :id", id=timeline[-1].id)
    code, out = verify(run, monkeypatch, database_url)
    assert code == 1
    head = timeline[-1].hash or ""
    assert out.splitlines()[0] == (
        f"INC-2 event {timeline[-2].id} (note): the last 1 event(s) of INC-2 were deleted (its "
        f"head names event {head[:12]}…, 5 events; the latest event left hashes to "
        f"{(timeline[-2].hash or '')[:12]}…, 4 events)"
    )
    assert "2 incidents, 7 events checked" in out
    assert verify(run, monkeypatch, database_url, "INC-1")[0] == 0
    assert stored_head(db, second) == (timeline[-1].hash, 5)  # the row still names it
    tamper(db, "DELETE FROM timeline_events WHERE id = :id", id=timeline[-2].id)
    with db.read() as session:
        [broken] = verify_chains(session, [2]).breaks
    assert (broken.incident_number, broken.problem) == (2, "head")
    assert "the last 2 event(s) of INC-2 were deleted" in broken.detail


def test_verify_names_events_written_after_the_head_or_a_replaced_head(
    db: Database, policy: Policy
) -> None:
    incident_id = declare(db, policy, 1)
    last = events(db, incident_id)[-1]
    # A correctly linked and hashed event, inserted around Firebreak (the head is not moved).
    fake = forged_note(incident_id, T0 + timedelta(minutes=5))
    prev = last.hash or ""
    with db.transaction() as session:
        session.add(TimelineEvent(**fake, prev_hash=prev, hash=event_hash(fake, prev)))
    with db.read() as session:
        [broken] = verify_chains(session).breaks
    assert broken.problem == "head"
    assert "1 event(s) of INC-1 were written around Firebreak after its head" in broken.detail
    # The head itself changed (the row is not append-only; the chain's end is).
    with db.transaction() as session:
        session.execute(
            text("UPDATE incidents SET chain_head = :h, chain_events = 3 WHERE id = :i"),
            {"h": "ab" * 32, "i": incident_id},
        )
    with db.read() as session:
        [broken] = verify_chains(session).breaks
    assert "does not end at its head (its head names event abababababab…" in broken.detail


def test_legitimate_operations_verify_clean(
    db: Database,
    policy: Policy,
    database_url: str,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = declare(db, policy, 1)
    with db.transaction() as session:
        core.resolve_incident(session, policy, first, actor="U2")
        core.reopen_incident(session, policy, first, actor="U2")
        note = core.add_note(session, policy, first, "to retract", actor="U2").event
        assert note is not None and note.id is not None
        core.retract_event(session, policy, first, note.id, actor="U2")
    for _ in range(2):  # a repeated key writes nothing and does not move the head
        with db.transaction() as session:
            core.add_note(session, policy, first, "once", actor="U2", key="k1")
    # A declare that rolls back gives its number back; so does a repeated declare key.
    with pytest.raises(RuntimeError), db.transaction() as session:
        core.declare_incident(session, policy, title="Rolled back", reporter="U1")
        raise RuntimeError("the request failed after the declare")
    with db.transaction() as session:
        keyed = core.declare_incident(session, policy, title="Keyed", reporter="U1", key="t1")
    with db.transaction() as session:
        again = core.declare_incident(session, policy, title="Keyed", reporter="U1", key="t1")
    assert keyed.incident.number == again.incident.number == 2
    third = declare(db, policy, 0, title="After")
    with db.read() as session:
        assert session.get(Incident, third).number == 3  # type: ignore[union-attr]
    for incident_id in (first, keyed.incident.id, third):
        assert incident_id is not None
        timeline = events(db, incident_id)
        assert stored_head(db, incident_id) == (timeline[-1].hash, len(timeline))
    code, out = verify(run, monkeypatch, database_url)
    assert (code, out.split(" in ")[0]) == (0, "3 incidents, 9 events checked")
    assert "every chain intact" in out


def test_retention_removal_moves_the_head_to_the_tombstone(
    db: Database,
    tmp_path: Path,
    database_url: str,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy_file = tmp_path / "firebreak.toml"
    policy_file.write_text(
        '[retention]\nexport_after = "30d"\nremove_after = "90d"\n'
        f'archive_dir = "{tmp_path / "archive"}"\n'
    )
    (tmp_path / "archive").mkdir()
    policy = load_policy(policy_file)
    now = T0 + timedelta(days=200)
    old = declare(db, policy, 3, title="Old")
    kept = declare(db, policy, 1, title="Kept")
    with freeze_time(T0 + timedelta(hours=1)), db.transaction() as session:
        core.close_incident(session, policy, old, actor="U1")
    with db.read() as session:
        [item] = [d for d in retention.due(session, policy, now=now) if d.number == 1]
    retention.export_incident(db, policy, item, None)
    assert retention.remove_incident(db, policy, item, now=now) == 6
    [tombstone] = events(db, old)
    assert tombstone.kind == EventKind.RETENTION_TOMBSTONE
    assert stored_head(db, old) == (tombstone.hash, 1)
    code, out = verify(run, monkeypatch, database_url)
    assert (code, out.split(" in ")[0]) == (0, "2 incidents, 3 events checked")
    # A removed incident keeps its row and number: deleting another one is still named.
    delete_incident(db, kept)
    code, out = verify(run, monkeypatch, database_url)
    assert code == 1
    assert (
        out.splitlines()[0] == "INC-2 is missing: incident numbers are gap-free, so it was deleted"
    )


def test_the_migration_backfills_the_head_of_existing_incidents(
    new_database_url: Callable[[], str],
) -> None:
    url = new_database_url()
    migrations.upgrade(url, "0006")
    database = Database(url)
    last: dict[int, str] = {}
    try:
        with database.transaction() as session:
            session.execute(text("UPDATE counters SET value = 2 WHERE name = 'incident_number'"))
            for number in (1, 2):
                session.execute(
                    text(
                        "INSERT INTO incidents (number, title, summary, severity, status, private,"
                        " reporter_id, declared_at, updated_at, slack_state) VALUES (:n, 't', '',"
                        " 'SEV1', 'triage', false, 'U1', :t, :t, '{}')"
                    ),
                    {"n": number, "t": T0},
                )
            prev = {1: GENESIS, 2: GENESIS}
            for n in range(5):
                incident_id = 1 + n % 2
                values: dict[str, Any] = {
                    "incident_id": incident_id,
                    "occurred_at": T0 + timedelta(minutes=n),
                    "recorded_at": T0 + timedelta(minutes=n),
                    "kind": "note",
                    "actor_id": "U1",
                    "text": f"old {n}",
                    "data": {},
                    "source_url": None,
                    "source_ref": None,
                    "idempotency_key": f"k{n}",
                }
                digest = event_hash(values, prev[incident_id])
                session.execute(
                    text(
                        "INSERT INTO timeline_events (incident_id, occurred_at, recorded_at, kind,"
                        " actor_id, text, data, idempotency_key, prev_hash, hash) VALUES (:i, :t,"
                        " :t, 'note', 'U1', :x, '{}', :k, :p, :h)"
                    ),
                    {
                        "i": incident_id,
                        "t": values["occurred_at"],
                        "x": values["text"],
                        "k": values["idempotency_key"],
                        "p": prev[incident_id],
                        "h": digest,
                    },
                )
                prev[incident_id] = last[incident_id] = digest
        migrations.upgrade(url)
        with database.read() as session:
            report = verify_chains(session)
            heads = [
                (i.chain_head, i.chain_events)
                for i in (session.get(Incident, 1), session.get(Incident, 2))
                if i is not None
            ]
        assert (report.ok, report.incidents, report.events) == (True, 2, 5)
        assert heads == [(last[1], 3), (last[2], 2)]
        with database.transaction() as session:  # the core moves the backfilled head on
            core.add_note(session, Policy(), 1, "new", actor="U1")
        with database.read() as session:
            assert verify_chains(session).ok
        tamper(database, "DELETE FROM timeline_events WHERE hash = :h", h=last[2])
        with database.read() as session:
            [broken] = verify_chains(session).breaks
        assert "the last 1 event(s) of INC-2 were deleted" in broken.detail
    finally:
        database.dispose()


def test_verify_names_an_impact_start_changed_on_the_incident_row(
    db: Database, policy: Policy, database_url: str, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The times to detect, mitigate and resolve are counted from the incident row's impact
    start and detection time; its declared event records them in the chain, so a row edited to
    make the figures look better does not verify."""
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(
            session,
            policy,
            title="Checkout errors",
            reporter="U1",
            impact_started_at=T0 - timedelta(minutes=40),
            detected_at=T0 - timedelta(minutes=10),
        ).incident
    assert verify(run, monkeypatch, database_url)[0] == 0
    moved = T0 - timedelta(minutes=15)
    # The attacker needs no guard lifted: only timeline events are guarded.
    with db.transaction() as session:
        session.execute(
            text("UPDATE incidents SET impact_started_at = :t WHERE id = :i"),
            {"t": moved, "i": incident.id},
        )
    code, out = verify(run, monkeypatch, database_url)
    assert code == 1
    assert (
        "INC-1 event 1 (declared): the incident row's impact start (2026-03-04T02:40:00+00:00) "
        "is not the one its declaration recorded (2026-03-04T02:15:00+00:00)"
    ) in out
