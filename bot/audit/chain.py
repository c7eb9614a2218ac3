"""The timeline's hash chain: every event carries the SHA-256 of its own canonical content and
of the event before it on the same incident.

``link`` is called by the core's ``_append`` for every event, in the same transaction and under
the incident lock that every change already takes, so two appends to one incident can never
link to the same predecessor. Changing any stored byte of an event changes its hash; deleting,
inserting or reordering events breaks the link of the event after it. ``bot.audit.verify``
recomputes the chains.

After each insert, ``advance`` stores the new head (and the event count) on the incident row,
in the same transaction, so deleting an incident's latest events leaves a head that names an
event that is no longer there.

What a chain cannot show on its own: an attacker with database access who rewrites the *last*
events of an incident, recomputes their hashes and also rewrites the head on the incident row
leaves a valid chain. The evidence bundle records the chain head, so a head kept elsewhere (an
exported, signed bundle) pins the past.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

GENESIS = "0" * 64
"""The ``prev_hash`` of an incident's first event."""

FORMAT = "firebreak-event/1"
"""Names the canonical form, so a later change of form can be told apart."""

# The previous event of the incident: one index look-up on (incident_id, id). Sent straight to
# the driver: appending is the hottest path, and SQLAlchemy's statement machinery costs about
# 40 times the query itself on SQLite (bench/core.py).
_PREVIOUS_HASH = "SELECT hash FROM timeline_events WHERE incident_id = {} ORDER BY id DESC LIMIT 1"
_PREVIOUS_BY_PARAMSTYLE = {"qmark": _PREVIOUS_HASH.format("?")}
_PREVIOUS_DEFAULT = _PREVIOUS_HASH.format("%s")  # psycopg (format / pyformat)
_ADVANCE = "UPDATE incidents SET chain_head = {0}, chain_events = chain_events + 1 WHERE id = {0}"
_ADVANCE_BY_PARAMSTYLE = {"qmark": _ADVANCE.format("?")}
_ADVANCE_DEFAULT = _ADVANCE.format("%s")


def _time(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive UTC when read without the model type
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def canonical(event: Mapping[Any, Any], prev_hash: str) -> bytes:
    """The bytes an event's hash covers: every stored field except the database id and the
    hash itself, in a fixed order, as compact JSON with sorted keys inside ``data``."""
    return json.dumps(
        [
            FORMAT,
            event["incident_id"],
            _time(event["occurred_at"]),
            _time(event["recorded_at"]),
            str(event["kind"]),
            event["actor_id"],
            event["text"],
            {} if event["data"] is None else event["data"],
            event["source_url"],
            event["source_ref"],
            event["idempotency_key"],
            prev_hash,
        ],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    ).encode("utf-8")


def event_hash(event: Mapping[Any, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of the event's canonical content chained to ``prev_hash``."""
    return hashlib.sha256(canonical(event, prev_hash)).hexdigest()


def _driver_cursor(session: Session, by_paramstyle: dict[str, str], default: str) -> Any:
    connection = session.connection()
    sql = by_paramstyle.get(connection.dialect.paramstyle, default)
    driver = connection.connection.dbapi_connection
    assert driver is not None
    return sql, driver.cursor()


def previous_hash(session: Session, incident_id: int) -> str:
    """The hash of the incident's latest event (``GENESIS`` when it has none). A row written
    without a hash (before the chain existed and not backfilled) also links as ``GENESIS``; the
    verifier reports that row."""
    sql, cursor = _driver_cursor(session, _PREVIOUS_BY_PARAMSTYLE, _PREVIOUS_DEFAULT)
    try:
        cursor.execute(sql, (incident_id,))
        row = cursor.fetchone()
    finally:
        cursor.close()
    return (row[0] if row else None) or GENESIS


def advance(session: Session, incident_id: int, head: str) -> None:
    """Record ``head`` (the hash of the event just inserted) as the incident's chain head and
    count the event, in the transaction of the insert (``incidents.chain_head``,
    ``incidents.chain_events``). The verifier compares them with the last stored event, which
    is how a deleted tail shows. Called only after the insert wrote a row (a repeated
    idempotency key writes none). Straight to the driver, like ``previous_hash``."""
    sql, cursor = _driver_cursor(session, _ADVANCE_BY_PARAMSTYLE, _ADVANCE_DEFAULT)
    try:
        cursor.execute(sql, (head, incident_id))
    finally:
        cursor.close()


def link(session: Session, values: dict[str, Any], *, first: bool = False) -> None:
    """Set ``prev_hash`` and ``hash`` on the values of an event about to be inserted.

    The caller holds the incident lock (see ``bot.incidents.lock_incident``). ``first``: the
    incident was created by this transaction and this is its first event, so it links to
    ``GENESIS`` without a look-up."""
    prev = GENESIS if first else previous_hash(session, values["incident_id"])
    hashed = values
    if values["data"]:
        # Hash ``data`` as it will read back from the JSON column (keys become strings), so
        # the verifier, which only sees what was stored, computes the same bytes.
        hashed = {**values, "data": json.loads(json.dumps(values["data"]))}
    values["prev_hash"] = prev
    values["hash"] = event_hash(hashed, prev)
