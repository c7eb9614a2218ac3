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
* ``head``: the chain holds but does not end where the incident row says it does
  (``incidents.chain_head`` / ``chain_events``, written in the transaction of every append):
  its latest events were deleted, events were written around the core, or the head was changed.
* ``missing``: an incident number below the highest one handed out (the ``incident_number``
  counter) has no incident: numbers are gap-free (a declare that rolls back gives its number
  back), so the incident was deleted.
* ``orphan``: events whose incident row is gone (named by the incident id they carry).
* ``unreadable``: a stored value cannot be decoded at all (``data`` that is not JSON, a time
  that is not a time, a head count that is not a number): the row was changed outside
  Firebreak. Rows are read as stored text and decoded one by one, so such a row is named and
  the other chains are still checked.

An incident whose first remaining event is a retention tombstone starts its chain there: the
tombstone's ``prev_hash`` is the head of the chain that was exported and removed, and retention
sets the incident's head to the tombstone (one event). Retention keeps the incident row, so its
number is not missing.

What none of this shows: someone with database access who deletes or rewrites events *and*
rewrites the incident's head to match (or deletes the latest incidents and winds the counter
back). Only a head kept outside the database (a signed evidence bundle) shows that.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Text, cast, select
from sqlmodel import Session

from bot.audit.chain import GENESIS, event_hash
from bot.incidents.text import INCIDENT_COUNTER
from bot.models import Counter, EventKind, Incident, TimelineEvent

_EVENTS = TimelineEvent.__table__  # type: ignore[attr-defined]
_INCIDENTS = Incident.__table__  # type: ignore[attr-defined]
_COUNTERS = Counter.__table__  # type: ignore[attr-defined]
_TIMES = ("occurred_at", "recorded_at")
# Read as the stored text and decoded row by row (``stored_event``): a value the column type
# cannot decode would otherwise stop the whole read with an exception.
_AS_TEXT = {*_TIMES, "data"}


@dataclass(frozen=True)
class Break:
    """The first event of an incident whose chain does not hold."""

    incident_number: int
    event_id: int
    kind: str
    problem: str
    """``content``, ``link``, ``unchained``, ``unreadable``, ``empty``, ``head``, ``missing`` or
    ``orphan``."""
    detail: str
    label: str = ""
    """Names the incident when ``INC-<number>`` cannot (events whose incident row is gone)."""

    def describe(self) -> str:
        if self.problem == "missing":
            return self.detail
        who = self.label or f"INC-{self.incident_number}"
        return f"{who} event {self.event_id} ({self.kind}): {self.detail}"


@dataclass
class ChainReport:
    incidents: int = 0
    events: int = 0
    heads: dict[int, str] = field(default_factory=dict)
    """Incident number -> hash of its latest event."""
    breaks: list[Break] = field(default_factory=list)
    found: set[int] = field(default_factory=set)
    """Numbers of the incidents checked (with or without events)."""
    missing: list[int] = field(default_factory=list)
    """Numbers below the highest one handed out that no incident has (deleted incidents)."""

    @property
    def ok(self) -> bool:
        return not self.breaks


def check_chain(
    incident_number: int,
    rows: Iterable[Mapping[Any, Any]],
    decode: Callable[[Mapping[Any, Any]], Mapping[Any, Any]] | None = None,
) -> tuple[int, str, Break | None]:
    """Check one incident's events, given in id order. Returns (events seen, head, first break).

    ``decode`` turns each row as stored into the values its hash covers; a row it cannot
    decode, or whose fields cannot be hashed, is the break (``unreadable``)."""
    expected = GENESIS
    count = 0
    for row in rows:
        count += 1
        try:
            event = decode(row) if decode is not None else row
            stored_prev, stored = event["prev_hash"], event["hash"]
            if stored is None or stored_prev is None:
                return count, expected, _break(incident_number, row, "unchained", "has no hash")
            for name, value in (("prev_hash", stored_prev), ("hash", stored)):
                if not isinstance(value, str):
                    raise ValueError(f"{name} {_short(value)} is not a hash")
            actual = event_hash(event, stored_prev)
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
            return (
                count,
                expected,
                _break(
                    incident_number,
                    row,
                    "unreadable",
                    f"its content cannot be read ({reason}): the row was changed after it was "
                    "written",
                ),
            )
        if count == 1 and event["kind"] == EventKind.RETENTION_TOMBSTONE:
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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _as_int(value: Any) -> int | None:
    """A stored integer, or ``None`` when the value is not one (SQLite stores any text)."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _break(number: int, row: Mapping[Any, Any], problem: str, detail: str) -> Break:
    return Break(number, _as_int(row.get("id")) or 0, str(row.get("kind", "-")), problem, detail)


def _stored_time(name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {_short(value)} is not a time") from None


def stored_event(row: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """A timeline row read with its times and ``data`` as stored text (or an event of a
    bundle's ``timeline.json``, whose ``data`` is JSON already), decoded as the column types
    would (times without an offset are UTC, as SQLite stores them). A value they could not
    decode raises ``ValueError`` naming the column."""
    event = dict(row)
    for name in _TIMES:
        event[name] = _stored_time(name, row[name])
    data = row["data"]
    if isinstance(data, str):
        try:
            event["data"] = json.loads(data)
        except (TypeError, ValueError):
            raise ValueError(f"data {_short(data)} is not JSON") from None
    return event


def verify_chains(
    session: Session, numbers: Sequence[int] | None = None, *, batch: int = 5000
) -> ChainReport:
    """Verify the chains of the incidents numbered ``numbers`` (all incidents when ``None``):
    each chain in itself, against the head stored on its incident row, and the incident numbers
    against the gap-free counter."""
    report = ChainReport()
    # The counter first: every number it has handed out was committed with its incident, so
    # the incidents read next include them all (no false alarm from a declare in between).
    counter = session.execute(
        select(_COUNTERS.c.value).where(_COUNTERS.c.name == INCIDENT_COUNTER)
    ).scalar_one_or_none()
    incident_numbers: dict[int, int] = {}
    unnumbered: list[Break] = []
    for incident_id, stored_number in session.execute(select(_INCIDENTS.c.id, _INCIDENTS.c.number)):
        number = _as_int(stored_number)
        if number is None:
            unnumbered.append(
                Break(
                    0,
                    0,
                    "-",
                    "unreadable",
                    f"its number {_short(stored_number)} cannot be read: the incident row was "
                    "changed outside Firebreak",
                    label=f"incident id {incident_id}",
                )
            )
            continue
        incident_numbers[int(incident_id)] = number
    missing = _missing_numbers(int(counter or 0), set(incident_numbers.values()))
    if numbers is not None:
        wanted = set(numbers)
        incident_numbers = {i: n for i, n in incident_numbers.items() if n in wanted}
        missing = [(n, n) for low, high in missing for n in sorted(wanted) if low <= n <= high]
    report.missing = [n for low, high in missing for n in range(low, min(high, low + 1000) + 1)]
    for low, high in missing:
        report.breaks.append(_missing(low, high))
    if numbers is None:
        report.breaks.extend(unnumbered)
    # Each event row carries its incident's stored head, read in the same statement (one
    # snapshot: an append committed meanwhile cannot make the two disagree).
    events = (
        select(
            *(
                cast(column, Text).label(column.name) if column.name in _AS_TEXT else column
                for column in _EVENTS.c
            ),
            _INCIDENTS.c.number.label("_number"),
            _INCIDENTS.c.chain_head.label("_chain_head"),
            _INCIDENTS.c.chain_events.label("_chain_events"),
            cast(_INCIDENTS.c.impact_started_at, Text).label("_impact_started_at"),
            cast(_INCIDENTS.c.detected_at, Text).label("_detected_at"),
        )
        .select_from(_EVENTS.outerjoin(_INCIDENTS, _INCIDENTS.c.id == _EVENTS.c.incident_id))
        .order_by(_EVENTS.c.incident_id, _EVENTS.c.id)
    )
    if numbers is not None:
        events = events.where(_INCIDENTS.c.number.in_(list(numbers)))
    result = session.execute(events.execution_options(yield_per=batch)).mappings()
    for incident_id, group in groupby(result, key=itemgetter("incident_id")):
        rows = _Tail(group)
        first = rows.peek
        joined = _as_int(first["_number"])
        # Events without a (readable) incident row are named by the incident id they carry.
        number = joined if joined is not None else -(_as_int(incident_id) or 0)
        count, head, broken = check_chain(number, rows, stored_event)
        count += sum(1 for _ in rows)  # the rest of a broken incident
        if broken is None and joined is None:
            broken = _break(
                number,
                first,
                "orphan",
                f"belongs to incident id {incident_id}, whose incident row is gone: the "
                "incident was deleted",
            )
        if broken is None:
            broken = check_head(number, count, head, rows.last)
        if broken is None:
            broken = check_declared_times(number, first)
        if broken is not None and joined is None:
            broken = replace(broken, label=f"incident id {incident_id} (no incident row)")
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


class _Tail:
    """The rows of one incident, remembering the first and the last one read."""

    def __init__(self, rows: Iterable[Mapping[Any, Any]]) -> None:
        self._rows = iter(rows)
        self.peek: Mapping[Any, Any] = next(self._rows)
        self.last: Mapping[Any, Any] = self.peek
        self._first_pending = True

    def __iter__(self) -> Iterator[Mapping[Any, Any]]:
        return self

    def __next__(self) -> Mapping[Any, Any]:
        if self._first_pending:
            self._first_pending = False
            return self.peek
        self.last = next(self._rows)
        return self.last


_DECLARED_TIMES = {"impact_started_at": "impact start", "detected_at": "detection time"}
"""Times on the incident row that the figures (time to detect, mitigate, resolve) are counted
from, which its declared event records in the chain."""


def check_declared_times(number: int, first: Mapping[Any, Any]) -> Break | None:
    """Compare an intact chain's declared event with the times on its incident row (``first``:
    the event, with the row's ``_impact_started_at`` and ``_detected_at``). Events declared
    before the chain recorded them say nothing, and are not compared."""
    if first["kind"] != EventKind.DECLARED:
        return None
    data = stored_event(first)["data"] or {}
    for name, what in _DECLARED_TIMES.items():
        if name not in data:
            continue
        try:
            recorded = _utc_or_none(name, data[name])
            stored = _utc_or_none(name, first[f"_{name}"])
        except ValueError as exc:
            return _break(number, first, "unreadable", f"{exc}: the incident row was changed")
        if recorded != stored:
            return _break(
                number,
                first,
                "content",
                f"the incident row's {what} ({stored.isoformat() if stored else 'none'}) is not "
                f"the one its declaration recorded ({recorded.isoformat() if recorded else 'none'})"
                ": the row was changed outside Firebreak, and the figures counted from it are "
                "not the recorded ones",
            )
    return None


def _utc_or_none(name: str, value: Any) -> datetime | None:
    """A stored time in UTC (SQLite stores UTC without an offset), or None."""
    if value is None:
        return None
    time = _stored_time(name, value)
    return time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)


def check_head(number: int, count: int, head: str, last: Mapping[Any, Any]) -> Break | None:
    """Compare an intact chain's end with the head and count stored on its incident row
    (``last``: its latest event, with the row's ``_chain_head`` and ``_chain_events``)."""
    stored, stored_count = last["_chain_head"], _as_int(last["_chain_events"] or 0)
    unreadable = []
    if stored_count is None:
        unreadable.append(f"chain_events {_short(last['_chain_events'])} is not a count")
    if not isinstance(stored, str | None):
        unreadable.append(f"chain_head {_short(stored)} is not a hash")
    if stored_count is None or unreadable:
        return _break(
            number,
            last,
            "unreadable",
            f"the head on the incident row of INC-{number} cannot be read "
            f"({'; '.join(unreadable)}): the incident row was changed outside Firebreak",
        )
    if stored == head and stored_count == count:
        return None
    names = f"its head names event {stored[:12]}…" if stored else "it has no stored head"
    latest = f"the latest event left hashes to {head[:12]}…"
    if stored_count > count:
        return _break(
            number,
            last,
            "head",
            f"the last {stored_count - count} event(s) of INC-{number} were deleted ({names}, "
            f"{stored_count} events; {latest}, {count} events)",
        )
    if stored_count < count:
        return _break(
            number,
            last,
            "head",
            f"{count - stored_count} event(s) of INC-{number} were written around Firebreak "
            f"after its head ({names}, {stored_count} events; the chain has {count}, ending in "
            f"{head[:12]}…)",
        )
    return _break(
        number,
        last,
        "head",
        f"the chain of INC-{number} does not end at its head ({names}; {latest}): the latest "
        "event was replaced or the head was changed",
    )


def _missing_numbers(counter: int, present: set[int]) -> list[tuple[int, int]]:
    """Runs (first, last) of incident numbers below the highest one handed out (the counter or
    the highest number present) that no incident has. Numbers are gap-free: a declare that
    rolls back gives its number back with the rest of its transaction."""
    highest = max([counter, *present])
    runs: list[tuple[int, int]] = []
    expected = 1
    for number in sorted(present | {highest + 1}):
        if number > expected:
            runs.append((expected, number - 1))
        expected = max(expected, number + 1)
    return runs


def _missing(low: int, high: int) -> Break:
    if low == high:
        detail = f"INC-{low} is missing: incident numbers are gap-free, so it was deleted"
    else:
        detail = (
            f"INC-{low} to INC-{high} are missing ({high - low + 1} incidents): incident "
            "numbers are gap-free, so they were deleted"
        )
    return Break(low, 0, "-", "missing", detail)


def stored_head_break(
    number: int,
    count: int,
    head: str,
    events: Sequence[Mapping[Any, Any]],
    incident: Mapping[Any, Any],
) -> Break | None:
    """``check_head`` for a chain read apart from its incident row (``incident``: the row, or
    a bundle's ``incident.json``)."""
    last = {
        **(events[-1] if events else {}),
        "_chain_head": incident.get("chain_head"),
        "_chain_events": incident.get("chain_events"),
    }
    return check_head(number, count, head, last)


def chain_head(session: Session, incident_id: int) -> tuple[int, str]:
    """(number of events, hash of the latest event) of one incident, as stored."""
    rows = session.execute(
        select(_EVENTS.c.hash).where(_EVENTS.c.incident_id == incident_id).order_by(_EVENTS.c.id)
    ).all()
    return len(rows), (rows[-1][0] if rows else GENESIS) or GENESIS
