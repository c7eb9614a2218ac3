"""The timeline hash chain and the append-only guard, on the backend under test."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot import incidents as core
from bot import migrations
from bot.audit import guard
from bot.audit.chain import GENESIS, event_hash
from bot.audit.verify import verify_chains
from bot.config import Policy
from bot.db import Database
from bot.models import EventKind, Incident, TimelineEvent
from tests.audit.helpers import T0, declare_with_notes, forged_note, tamper, timeline_rows


def raw(db: Database, sql: str, **params: object) -> None:
    """What someone with database access, but not the guard, would run."""
    with db.transaction() as session:
        session.execute(text(sql), params)


def test_every_event_stores_its_hash_chained_to_the_previous_event(
    db: Database, policy: Policy
) -> None:
    first = declare_with_notes(db, policy, 3)
    second = declare_with_notes(db, policy, 1, title="Search")
    events = timeline_rows(db, first)
    assert len(events) == 4
    assert events[0].prev_hash == GENESIS
    for before, after in pairwise(events):
        assert after.prev_hash == before.hash
    for event in events:
        assert event.hash == event_hash(event.model_dump(), event.prev_hash or "")
    other = timeline_rows(db, second)
    assert other[0].prev_hash == GENESIS  # each incident has its own chain
    with db.read() as session:
        report = verify_chains(session)
    assert (report.ok, report.incidents, report.events) == (True, 2, 6)
    assert report.heads == {1: events[-1].hash, 2: other[-1].hash}


def test_data_is_hashed_as_it_reads_back_from_the_database(db: Database, policy: Policy) -> None:
    incident_id = declare_with_notes(db, policy, 0)
    odd: dict[Any, Any] = {2: "two", 10: ("ten", 1.5), "nested": {"b": 1, "a": None}}
    with db.transaction() as session:
        core.record_timeline_event(
            session, policy, incident_id, kind="note", text="odd data", data=odd
        )
    with db.read() as session:
        report = verify_chains(session)
    assert (report.ok, report.events) == (True, 2)


def test_a_repeated_key_writes_nothing_and_keeps_the_chain(db: Database, policy: Policy) -> None:
    incident_id = declare_with_notes(db, policy, 0)
    for _ in range(2):
        with db.transaction() as session:
            core.add_note(session, policy, incident_id, "once", actor="U2", key="k1")
    assert len(timeline_rows(db, incident_id)) == 2
    with db.read() as session:
        assert verify_chains(session).ok


def test_the_database_refuses_update_and_delete_of_timeline_events(
    db: Database, policy: Policy
) -> None:
    incident_id = declare_with_notes(db, policy, 1)
    before = timeline_rows(db, incident_id)
    for sql in (
        "UPDATE timeline_events SET text = 'nothing happened' WHERE incident_id = :i",
        "DELETE FROM timeline_events WHERE incident_id = :i",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            raw(db, sql, i=incident_id)
    if db.backend == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            raw(db, "TRUNCATE timeline_events CASCADE")
    assert [(e.id, e.text, e.hash) for e in timeline_rows(db, incident_id)] == [
        (e.id, e.text, e.hash) for e in before
    ]


def test_the_guard_is_lifted_only_inside_the_lifting_transaction(
    db: Database, policy: Policy
) -> None:
    incident_id = declare_with_notes(db, policy, 1)
    with db.transaction() as session:
        guard.lift(session, "retention")
        session.execute(
            text("UPDATE timeline_events SET text = 'x' WHERE kind = 'note' AND incident_id = :i"),
            {"i": incident_id},
        )
        guard.restore(session)
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text("DELETE FROM timeline_events WHERE incident_id = :i"), {"i": 1})
    with pytest.raises(DBAPIError, match="append-only"):
        raw(db, "DELETE FROM timeline_events WHERE incident_id = :i", i=incident_id)
    assert len(timeline_rows(db, incident_id)) == 2


def test_verify_names_a_row_edited_directly_in_the_database(db: Database, policy: Policy) -> None:
    incident_id = declare_with_notes(db, policy, 3)
    declare_with_notes(db, policy, 2, title="Search")
    target = timeline_rows(db, incident_id)[2]
    tamper(db, "UPDATE timeline_events SET text = 'all fine' WHERE id = :id", id=target.id)
    with db.read() as session:
        report = verify_chains(session)
    assert not report.ok
    [broken] = report.breaks
    assert (broken.incident_number, broken.event_id, broken.problem) == (1, target.id, "content")
    assert broken.describe().startswith(f"INC-1 event {target.id} (note): content does not match")
    assert report.events == 7  # INC-1 read to its end, INC-2 verified as well


@pytest.mark.parametrize("forged", ["[]", "false", "0", '""'])
def test_verify_names_empty_data_replaced_by_another_empty_value(
    db: Database, policy: Policy, forged: str
) -> None:
    incident_id = declare_with_notes(db, policy, 1)
    with db.transaction() as session:
        core.record_timeline_event(
            session, policy, incident_id, kind=EventKind.NOTE, text="no data", data={}
        )
    target = timeline_rows(db, incident_id)[-1]
    assert target.data == {}
    tamper(db, "UPDATE timeline_events SET data = :data WHERE id = :id", data=forged, id=target.id)
    with db.read() as session:
        report = verify_chains(session)
    [broken] = report.breaks
    assert (broken.event_id, broken.problem) == (target.id, "content")


def test_verify_names_the_next_event_when_an_edited_row_was_rehashed(
    db: Database, policy: Policy
) -> None:
    incident_id = declare_with_notes(db, policy, 3)
    events = timeline_rows(db, incident_id)
    target = events[1]
    forged = target.model_dump()
    forged["text"] = "all fine"
    tamper(
        db,
        "UPDATE timeline_events SET text = 'all fine', hash = :h WHERE id = :id",
        h=event_hash(forged, target.prev_hash or ""),
        id=target.id,
    )
    with db.read() as session:
        [broken] = verify_chains(session).breaks
    assert (broken.event_id, broken.problem) == (events[2].id, "link")


def test_verify_names_an_event_inserted_out_of_order(db: Database, policy: Policy) -> None:
    incident_id = declare_with_notes(db, policy, 3)
    events = timeline_rows(db, incident_id)
    # A backdated event that claims to follow the declaration, with a correct content hash.
    fake = forged_note(incident_id, T0 + timedelta(seconds=1))
    prev = events[0].hash or ""
    with db.transaction() as session:
        session.add(TimelineEvent(**fake, prev_hash=prev, hash=event_hash(fake, prev)))
    with db.read() as session:
        report = verify_chains(session, [1])
    [broken] = report.breaks
    assert broken.problem == "link"
    assert broken.event_id == max(e.id or 0 for e in events) + 1
    assert "inserted out of order" in broken.detail


def test_verify_names_the_event_after_a_deleted_one_and_unchained_rows(
    db: Database, policy: Policy
) -> None:
    first = declare_with_notes(db, policy, 3)
    second = declare_with_notes(db, policy, 1, title="Search")
    events = timeline_rows(db, first)
    tamper(db, "DELETE FROM timeline_events WHERE id = :id", id=events[1].id)
    tamper(db, "UPDATE timeline_events SET hash = NULL WHERE incident_id = :i", i=second)
    with db.read() as session:
        report = verify_chains(session)
        only_second = verify_chains(session, [2])
    assert [(b.incident_number, b.event_id, b.problem) for b in report.breaks] == [
        (1, events[2].id, "link"),
        (2, timeline_rows(db, second)[0].id, "unchained"),
    ]
    assert [b.incident_number for b in only_second.breaks] == [2]


def test_verify_names_an_incident_whose_whole_timeline_was_deleted(
    db: Database, policy: Policy
) -> None:
    declare_with_notes(db, policy, 1)
    emptied = declare_with_notes(db, policy, 2, title="Search")
    tamper(db, "DELETE FROM timeline_events WHERE incident_id = :i", i=emptied)
    with db.read() as session:
        report = verify_chains(session)
    assert [(b.incident_number, b.problem) for b in report.breaks] == [(2, "empty")]
    assert report.breaks[0].describe() == (
        "INC-2 event 0 (-): has no timeline events: its timeline was deleted"
    )
    assert (report.incidents, report.found) == (2, {1, 2})


def test_concurrent_appends_to_one_incident_keep_one_chain(db: Database, policy: Policy) -> None:
    incident_id = declare_with_notes(db, policy, 0)

    def work(worker: int) -> None:
        for n in range(15):
            with db.transaction() as session:
                core.record_timeline_event(
                    session, policy, incident_id, kind="note", text=f"{worker}-{n}", actor="U1"
                )

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(work, range(6)))
    with db.read() as session:
        report = verify_chains(session)
    assert (report.ok, report.events) == (True, 91)


def test_the_migration_backfills_hashes_of_existing_events(
    new_database_url: Callable[[], str],
) -> None:
    url = new_database_url()
    migrations.upgrade(url, "0003")
    database = Database(url)
    try:
        with database.transaction() as session:
            for number in (1, 2):
                session.execute(
                    text(
                        "INSERT INTO incidents (number, title, summary, severity, status, private,"
                        " reporter_id, declared_at, updated_at, slack_state) VALUES (:n, 't', '',"
                        " 'SEV1', 'triage', false, 'U1', :t, :t, '{}')"
                    ),
                    {"n": number, "t": T0},
                )
            for n in range(5):
                session.execute(
                    text(
                        "INSERT INTO timeline_events (incident_id, occurred_at, recorded_at, kind,"
                        " actor_id, text, data, idempotency_key) VALUES (:i, :t, :t, 'note', 'U1',"
                        " :x, '{\"n\": 1}', :k)"
                    ),
                    {"i": 1 + n % 2, "t": T0 + timedelta(minutes=n), "x": f"old {n}", "k": f"k{n}"},
                )
        migrations.upgrade(url)
        with database.read() as session:
            report = verify_chains(session)
            first = session.get(Incident, 1)
        assert first is not None
        assert (report.ok, report.incidents, report.events) == (True, 2, 5)
        with database.transaction() as session:  # and the core chains on from the backfill
            core.add_note(session, Policy(), 1, "new", actor="U1")
        with database.read() as session:
            assert verify_chains(session).events == 6
            assert verify_chains(session).ok
    finally:
        database.dispose()
