"""Recompute every incident's hash chain and name the first event that does not match.

Rows are streamed in (incident, id) order straight from the table (no ORM objects), so 100,000
events take about a second (``python bench/audit.py``).

What a mismatch means:

* ``content``: the event's stored fields no longer hash to its stored ``hash``: it was edited
  after it was written.
* ``link``: its ``prev_hash`` is not the hash of the event before it on the same incident: an
  event was deleted, inserted out of order, or the previous event was edited and re-hashed.
* ``unchained``: the row has no hash at all (written by a process that bypassed the core).
* ``empty``: the incident has no events at all (every incident has its declaration).

An incident whose first remaining event is a retention tombstone starts its chain there: the
tombstone's ``prev_hash`` is the head of the chain that was exported and removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from bot.audit.chain import GENESIS, event_hash
from bot.models import EventKind, Incident, TimelineEvent

_EVENTS = TimelineEvent.__table__  # type: ignore[attr-defined]
_INCIDENTS = Incident.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Break:
    """The first event of an incident whose chain does not hold."""

    incident_number: int
    event_id: int
    kind: str
    problem: str
    """``content``, ``link``, ``unchained`` or ``empty``."""
    detail: str

    def describe(self) -> str:
        return f"INC-{self.incident_number} event {self.event_id} ({self.kind}): {self.detail}"


@dataclass
class ChainReport:
    incidents: int = 0
    events: int = 0
    heads: dict[int, str] = field(default_factory=dict)
    """Incident number -> hash of its latest event."""
    breaks: list[Break] = field(default_factory=list)
    found: set[int] = field(default_factory=set)
    """Numbers of the incidents checked (with or without events)."""

    @property
    def ok(self) -> bool:
        return not self.breaks


def check_chain(
    incident_number: int, rows: Iterable[Mapping[Any, Any]]
) -> tuple[int, str, Break | None]:
    """Check one incident's events, given in id order. Returns (events seen, head, first break)."""
    expected = GENESIS
    count = 0
    for row in rows:
        count += 1
        stored_prev, stored = row["prev_hash"], row["hash"]
        if stored is None or stored_prev is None:
            return count, expected, _break(incident_number, row, "unchained", "has no hash")
        if count == 1 and row["kind"] == EventKind.RETENTION_TOMBSTONE:
            expected = stored_prev  # the chain removed by retention ended here
        if stored_prev != expected:
            return (
                count,
                expected,
                _break(
                    incident_number,
                    row,
                    "link",
                    f"links to {stored_prev[:12]}… but the event before it hashes to "
                    f"{expected[:12]}…: an event was removed, inserted out of order or rewritten",
                ),
            )
        actual = event_hash(row, stored_prev)
        if actual != stored:
            return (
                count,
                expected,
                _break(
                    incident_number,
                    row,
                    "content",
                    f"content does not match its hash (stored {stored[:12]}…, computed "
                    f"{actual[:12]}…): the row was changed after it was written",
                ),
            )
        expected = stored
    return count, expected, None


def _break(number: int, row: Mapping[Any, Any], problem: str, detail: str) -> Break:
    return Break(number, int(row["id"]), str(row["kind"]), problem, detail)


def verify_chains(
    session: Session, numbers: Sequence[int] | None = None, *, batch: int = 5000
) -> ChainReport:
    """Verify the chains of the incidents numbered ``numbers`` (all incidents when ``None``)."""
    incident_numbers: dict[int, int] = {}
    query = select(_INCIDENTS.c.id, _INCIDENTS.c.number)
    if numbers is not None:
        query = query.where(_INCIDENTS.c.number.in_(list(numbers)))
    for incident_id, number in session.execute(query):
        incident_numbers[int(incident_id)] = int(number)
    report = ChainReport()
    events = select(_EVENTS).order_by(_EVENTS.c.incident_id, _EVENTS.c.id)
    if numbers is not None:
        events = events.where(_EVENTS.c.incident_id.in_(list(incident_numbers)))
    result = session.execute(events.execution_options(yield_per=batch)).mappings()
    for incident_id, group in groupby(result, key=itemgetter("incident_id")):
        number = incident_numbers.get(int(incident_id), -int(incident_id))
        rows = iter(group)
        count, head, broken = check_chain(number, rows)
        count += sum(1 for _ in rows)  # the rest of a broken incident
        report.incidents += 1
        report.events += count
        report.heads[number] = head
        if broken is not None:
            report.breaks.append(broken)
    for number in sorted(set(incident_numbers.values()) - set(report.heads)):
        # Every incident starts with its declaration: no events at all means they were deleted.
        report.incidents += 1
        report.found.add(number)
        report.breaks.append(
            Break(number, 0, "-", "empty", "has no timeline events: its timeline was deleted")
        )
    report.found.update(report.heads)
    report.breaks.sort(key=lambda b: b.incident_number)
    return report


def chain_head(session: Session, incident_id: int) -> tuple[int, str]:
    """(number of events, hash of the latest event) of one incident, as stored."""
    rows = session.execute(
        select(_EVENTS.c.hash).where(_EVENTS.c.incident_id == incident_id).order_by(_EVENTS.c.id)
    ).all()
    return len(rows), (rows[-1][0] if rows else GENESIS) or GENESIS
