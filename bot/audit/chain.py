"""The timeline's hash chain: every event carries the SHA-256 of its own canonical content and
of the event before it on the same incident.

``link`` is called by the core's ``_append`` for every event, in the same transaction and under
the incident lock that every change already takes, so two appends to one incident can never
link to the same predecessor. Changing any stored byte of an event changes its hash; deleting,
inserting or reordering events breaks the link of the event after it. ``bot.audit.verify``
recomputes the chains.

What a chain cannot show on its own: an attacker with database access who rewrites the *last*
events of an incident and recomputes their hashes leaves a valid chain. The evidence bundle
records the chain head, so a head kept elsewhere (an exported, signed bundle) pins the past.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session

from bot.models import TimelineEvent

GENESIS = "0" * 64
"""The ``prev_hash`` of an incident's first event."""

FORMAT = "firebreak-event/1"
"""Names the canonical form, so a later change of form can be told apart."""

_TABLE = TimelineEvent.__table__  # type: ignore[attr-defined]

# The previous event of the incident: one index look-up on (incident_id, id).
_PREVIOUS_HASH = (
    select(_TABLE.c.hash)
    .where(_TABLE.c.incident_id == bindparam("incident_id"))
    .order_by(_TABLE.c.id.desc())
    .limit(1)
)


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
            event["data"] or {},
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


def previous_hash(session: Session, incident_id: int) -> str:
    """The hash of the incident's latest event (``GENESIS`` when it has none). A row written
    without a hash (before the chain existed and not backfilled) also links as ``GENESIS``; the
    verifier reports that row."""
    value = session.execute(_PREVIOUS_HASH, {"incident_id": incident_id}).scalar_one_or_none()
    return value or GENESIS


def link(session: Session, values: dict[str, Any]) -> None:
    """Set ``prev_hash`` and ``hash`` on the values of an event about to be inserted.

    The caller holds the incident lock (see ``bot.incidents.lock_incident``)."""
    prev = previous_hash(session, values["incident_id"])
    values["prev_hash"] = prev
    values["hash"] = event_hash(values, prev)
