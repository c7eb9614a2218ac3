"""A tampered row that cannot even be decoded (``data`` that is not JSON, a time that is not a
time, a head count that is not a number, a bundle event without its hash) is reported like any
other break, naming the incident and the event; it never stops ``audit verify``,
``audit export`` or ``audit verify-bundle`` with a traceback."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.audit.bundle import write_bundle
from bot.config import Policy
from bot.db import Database
from tests.audit.helpers import T0, tamper, timeline_rows
from tests.audit.helpers import declare_with_notes as declare
from tests.conftest import Run

READ = "its content cannot be read"
CHANGED = "the row was changed after it was written"


def tamper_unchecked(db: Database, sql: str) -> None:
    """With the append-only triggers and the foreign keys off: PostgreSQL's replica role (a
    superuser's), SQLite's own connection, which does not enforce foreign keys."""
    if db.backend == "postgresql":
        with db.transaction() as session:
            session.execute(text("SET LOCAL session_replication_role = replica"))
            session.execute(text(sql))
        return
    connection = sqlite3.connect(str(db.url.database))
    try:
        connection.execute("INSERT INTO audit_unlock (reason) VALUES ('attack')")
        connection.execute(sql)
        connection.execute("DELETE FROM audit_unlock")
        connection.commit()
    finally:
        connection.close()


def verify(run: Run, monkeypatch: pytest.MonkeyPatch, url: str) -> tuple[int, list[str]]:
    monkeypatch.setenv("DATABASE_URL", url)
    code, out, err = run("audit", "verify")
    assert "Traceback" not in out + err
    return code, (out + err).splitlines()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("data", "{not json", "data '{not json' is not JSON"),
        ("occurred_at", "garbage", "occurred_at 'garbage' is not a time"),
        ("recorded_at", "infinity", "recorded_at 'infinity' is not a time"),
        ("occurred_at", "infinity", "occurred_at 'infinity' is not a time"),
    ],
    ids=["data-not-json", "time-garbage", "recorded-infinity", "occurred-infinity"],
)
def test_verify_names_an_event_whose_stored_value_cannot_be_decoded(
    db: Database,
    policy: Policy,
    database_url: str,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
    column: str,
    value: str,
    reason: str,
) -> None:
    first = declare(db, policy, 3, "Checkout")
    declare(db, policy, 1, "Search")
    target = timeline_rows(db, first)[2]
    change = f"UPDATE timeline_events SET {column} = :v WHERE id = :id"
    if db.backend == "postgresql" and value != "infinity":
        # The column's type refuses it (only 'infinity' is a timestamp Python lacks): the
        # chain stays whole.
        with pytest.raises(DBAPIError):
            tamper(db, change, v=value, id=target.id)
        assert verify(run, monkeypatch, database_url)[0] == 0
        return
    tamper(db, change, v=value, id=target.id)
    code, lines = verify(run, monkeypatch, database_url)
    assert code == 1
    assert lines == [
        f"INC-1 event {target.id} (note): {READ} ({reason}): {CHANGED}",
        lines[1],
    ]
    assert lines[1].startswith("2 incidents, 6 events checked in ")  # INC-2 checked as well
    assert lines[1].endswith(": 1 chains broken")


def test_verify_names_an_incident_whose_head_count_cannot_be_read(
    db: Database, policy: Policy, database_url: str, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(db, policy, 1, "Checkout")
    second = declare(db, policy, 2, "Search")
    last = timeline_rows(db, second)[-1]
    change = "UPDATE incidents SET chain_events = 'abc' WHERE id = :i"
    if db.backend == "postgresql":
        with pytest.raises(DBAPIError):  # text in an integer column: refused, chain whole
            tamper(db, change, i=second)
        assert verify(run, monkeypatch, database_url)[0] == 0
        return
    tamper(db, change, i=second)
    code, lines = verify(run, monkeypatch, database_url)
    assert code == 1
    assert lines[0] == (
        f"INC-2 event {last.id} (note): the head on the incident row of INC-2 cannot be read "
        "(chain_events 'abc' is not a count): the incident row was changed outside Firebreak"
    )
    assert lines[1].startswith("2 incidents, 5 events checked in ")


def test_export_of_an_unreadable_incident_is_one_line_and_writes_nothing(
    db: Database,
    policy: Policy,
    database_url: str,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    first = declare(db, policy, 2, "Checkout")
    target = timeline_rows(db, first)[1]
    if db.backend == "postgresql":
        tamper(
            db, "UPDATE timeline_events SET occurred_at = 'infinity' WHERE id = :id", id=target.id
        )
    else:
        tamper(db, "UPDATE timeline_events SET data = '{not json' WHERE id = :id", id=target.id)
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "INC-1.zip"
    code, stdout, stderr = run("audit", "export", "INC-1", "-o", str(out))
    assert (code, stdout) == (1, "")
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()
    assert line.startswith(f"firebreak: incident id {first}: a stored row cannot be read (")
    assert line.endswith(
        "): the database was changed outside Firebreak; `firebreak audit verify` names the row"
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".toml") == []


def test_events_of_a_deleted_incident_row_are_named_by_its_id(
    db: Database, policy: Policy, database_url: str, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(db, policy, 1, "Checkout")
    second = declare(db, policy, 1, "Search")
    first_event = timeline_rows(db, second)[0]
    tamper_unchecked(db, f"DELETE FROM incidents WHERE id = {second}")
    code, lines = verify(run, monkeypatch, database_url)
    assert code == 1
    assert (
        f"incident id {second} (no incident row) event {first_event.id} (declared): belongs to "
        f"incident id {second}, whose incident row is gone: the incident was deleted"
    ) in lines
    assert not any("INC--" in line for line in lines)


# --------------------------------------------------------------------------------------------
# verify-bundle


def bundle(db: Database, policy: Policy, path: Path) -> None:
    incident_id = declare(db, policy, 4, "Checkout")
    with freeze_time(T0), db.read() as session:
        write_bundle(session, policy, incident_id, path)


def rewrite(path: Path, name: str, change: Callable[[Any], None]) -> None:
    """Change one JSON file of the bundle, leaving the manifest as it was."""
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    value = json.loads(files[name])
    change(value)
    files[name] = json.dumps(value).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for n, data in files.items():
            archive.writestr(n, data)


def _drop(field: str) -> Callable[[Any], None]:
    return lambda timeline: timeline[3].pop(field)


def _set(field: str, value: object) -> Callable[[Any], None]:
    return lambda timeline: timeline[3].__setitem__(field, value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_drop("hash"), "no field 'hash'"),
        (_drop("text"), "no field 'text'"),
        (_set("prev_hash", 5), "prev_hash 5 is not a hash"),
        (_set("occurred_at", 7), "occurred_at 7 is not a time"),
    ],
    ids=["no-hash", "no-text", "prev-hash-a-number", "time-a-number"],
)
def test_verify_bundle_names_an_event_it_cannot_read(
    db: Database,
    policy: Policy,
    run: Run,
    tmp_path: Path,
    change: Callable[[Any], None],
    reason: str,
) -> None:
    path = tmp_path / "INC-1.zip"
    bundle(db, policy, path)
    event_id = json.loads(zipfile.ZipFile(path).read("timeline.json"))[3]["id"]
    rewrite(path, "timeline.json", change)
    code, out, err = run("audit", "verify-bundle", str(path))
    assert (code, err) == (1, "")
    assert "Traceback" not in out
    sha, broken = out.splitlines()
    assert sha.startswith(f"{path}: timeline.json: SHA-256 ")  # found before it, still printed
    assert broken.startswith(f"{path}: timeline.json: INC-1 event {event_id} (note): {READ} (")
    assert reason in broken
    assert broken.endswith(f"): {CHANGED}")


def test_verify_bundle_names_a_manifest_incident_that_is_not_a_number(
    db: Database, policy: Policy, run: Run, tmp_path: Path
) -> None:
    path = tmp_path / "INC-1.zip"
    bundle(db, policy, path)
    rewrite(path, "manifest.json", lambda manifest: manifest.__setitem__("incident", "INC-x"))
    code, out, err = run("audit", "verify-bundle", str(path))
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        f"{path}: manifest.json: incident 'INC-x' is not an incident number like INC-42"
    ]
