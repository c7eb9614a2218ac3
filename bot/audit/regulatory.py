"""Regulatory clocks on an incident: classify it, start its clocks, schedule their warnings
through the durable reminders, complete them, and say where they stand.

Everything is recorded on the timeline through the core (``record_timeline_event``) with
idempotency keys, so the clocks are part of the hash chain and survive restarts; warnings are
``reminders`` rows of kind ``clock`` (one per warning point), sent once by whichever replica
claims them. The rules themselves (deadlines, warning times, texts) are pure functions in
``bot.audit.clocks``.

The Slack layer calls ``classify_incident`` for ``/incident classify <class>`` and
``complete_clock`` for ``/incident notified <clock>``; both raise ``InvalidInput`` /
``NotFound`` with a message for the person and change nothing on bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot import incidents as core
from bot.audit.clocks import (
    Board,
    ClockOutcome,
    ClockPolicy,
    ClockState,
    EventView,
    IncidentTimes,
    classifications,
    clock_board,
    clock_lines,
    evaluate_clock,
    find_clock,
    notice,
    start_time,
    warning_points,
)
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.db import Database
from bot.effects.runner import Done
from bot.effects.store import Claimed
from bot.errors import InvalidInput
from bot.models import EventKind, Incident, TimelineEvent
from bot.reminders import cancel_reminders, get_reminder, schedule_reminder

CLOCK_REMINDER = "clock"
"""``Reminder.kind`` of clock warnings; the reminder worker evaluates it with
``clock_reminder_outcome``."""

_CLOCK_KINDS = {
    EventKind.CLASSIFIED,
    EventKind.CLOCK_STARTED,
    EventKind.CLOCK_COMPLETED,
    EventKind.DECLARED,
    EventKind.SEVERITY_CHANGED,
}


def reminder_key(incident_id: int, clock: str, point: str) -> str:
    return f"clock:{incident_id}:{clock}:{point}"


@dataclass(frozen=True)
class ClockResult:
    """What a classify/complete did, and the line to show the person who asked."""

    change: core.Change
    board: Board
    message: str


# --------------------------------------------------------------------------------------------
# Reading


def _times(incident: Incident) -> IncidentTimes:
    return IncidentTimes(incident.declared_at, incident.detected_at, incident.impact_started_at)


def _views(events: list[TimelineEvent]) -> list[EventView]:
    return [EventView(str(e.kind), as_utc(e.occurred_at), e.data or {}) for e in events]


def _events(session: Session, incident_id: int) -> list[EventView]:
    return _views(core.timeline(session, incident_id, include_retracted=True))


def load_board(session: Session, policy: Policy, incident: Incident) -> Board:
    """The incident's clocks as recorded on its timeline."""
    assert incident.id is not None
    return clock_board(policy.clocks, _times(incident), _events(session, incident.id))


def clock_summary(session: Session, policy: Policy, incident: Incident, now: datetime) -> list[str]:
    """Plain lines for the pinned summary and the postmortem (empty without started clocks)."""
    if not policy.clocks:
        return []
    return clock_lines(load_board(session, policy, incident), now)


# --------------------------------------------------------------------------------------------
# Keeping clocks and their warnings in step with the timeline


def sync_clocks(
    session: Session, policy: Policy, incident_id: int, *, now: datetime | None = None
) -> Board:
    """Start every clock whose trigger has happened (a ``clock_started`` event dated when the
    trigger happened), and schedule the warnings of every running clock; cancel the warnings of
    completed ones. Safe to call any number of times: keys make every write happen once, and a
    warning already scheduled for the same time is left alone (never sent twice)."""
    incident = core.lock_incident(session, incident_id)
    now = as_utc(now or utcnow())  # once locked: stamped in lock order
    times = _times(incident)
    severity_rank = {s.key.casefold(): n for n, s in enumerate(policy.severities)}
    events = _events(session, incident_id)
    board = clock_board(policy.clocks, times, events)
    started = True
    while started:  # a completion can start the next clock, which can start another
        started = False
        for clock in policy.clocks:
            if board[clock.key].started:
                continue
            at = start_time(clock, times, events, board, severity_rank)
            if at is None:
                continue
            _record_start(session, policy, incident, clock, at, now)
            events = _events(session, incident_id)
            board = clock_board(policy.clocks, times, events)
            started = True
    for state in board.values():
        _schedule_warnings(session, incident, state, now)
    return board


def _record_start(
    session: Session,
    policy: Policy,
    incident: Incident,
    clock: ClockPolicy,
    at: datetime,
    now: datetime,
) -> None:
    assert incident.id is not None
    core.record_timeline_event(
        session,
        policy,
        incident.id,
        kind=EventKind.CLOCK_STARTED,
        text=f"{clock.title} clock started ({clock.starts_on})",
        occurred_at=min(at, now),
        data={"clock": clock.key, "starts_on": clock.starts_on},
        key=f"clock-start:{incident.id}:{clock.key}",
        now=now,
    )


def _schedule_warnings(
    session: Session, incident: Incident, state: ClockState, now: datetime
) -> None:
    assert incident.id is not None
    clock = state.policy.key
    points = warning_points(state)
    if not points:
        if state.completions:
            keys = [reminder_key(incident.id, clock, p.point) for p in _all_points(state)]
            cancel_reminders(session, keys, now=now)
        return
    for point in points:
        key = reminder_key(incident.id, clock, point.point)
        existing = get_reminder(session, key)
        if existing is not None and as_utc(existing.due_at) == point.at:
            continue
        assert state.due_at is not None
        schedule_reminder(
            session,
            key=key,
            kind=CLOCK_REMINDER,
            incident_id=incident.id,
            due_at=point.at,
            data={"clock": clock, "point": point.point, "due_at": state.due_at.isoformat()},
            now=now,
        )


def _all_points(state: ClockState) -> list[Any]:
    """Every warning point the clock could have had (to cancel them once it is completed)."""
    running = ClockState(state.policy, state.started_at, [], state.due_at, state.bounds)
    return warning_points(running)


def on_timeline_event(
    session: Session, policy: Policy, incident: Incident, event: TimelineEvent
) -> None:
    """For the core's per-event hook: start clocks whose trigger this event is (declared,
    severity reached, a label from an alert). Does nothing without ``[[clocks]]``."""
    if not policy.clocks or incident.id is None or event.kind == EventKind.CLOCK_STARTED:
        return
    if event.kind in _CLOCK_KINDS or "labels" in (event.data or {}):
        sync_clocks(session, policy, incident.id, now=as_utc(event.recorded_at))


# --------------------------------------------------------------------------------------------
# Commands


def classify_incident(
    session: Session,
    policy: Policy,
    incident_id: int,
    classification: str,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> ClockResult:
    """``/incident classify major``: record the classification and start its clocks."""
    wanted = " ".join(classification.split()).casefold()
    known = classifications(policy.clocks)
    if not known:
        raise InvalidInput(
            "No regulatory clocks are configured, so there is nothing to classify against: "
            'add [[clocks]] (e.g. preset = "dora") to firebreak.toml.'
        )
    if wanted not in known:
        raise InvalidInput(
            f"Unknown classification {classification[:40]!r}. Choose one of: {', '.join(known)}."
        )
    incident, repeat, now = core.begin_change(session, incident_id, key, now)
    if repeat is not None:
        board = load_board(session, policy, incident)
        return ClockResult(repeat, board, f"{incident.ref} is already classified {wanted}.")
    for event in core.timeline(session, incident_id, include_retracted=True):
        if event.kind == EventKind.CLASSIFIED and event.data.get("classification") == wanted:
            raise InvalidInput(
                f"{incident.ref} was already classified {wanted} on "
                f"{as_utc(event.occurred_at):%Y-%m-%d %H:%M} UTC"
                + (f" by <@{event.actor_id}>" if event.actor_id else "")
                + "; nothing changed."
            )
    change = core.record_timeline_event(
        session,
        policy,
        incident_id,
        kind=EventKind.CLASSIFIED,
        text=f"Classified as {wanted}",
        actor=actor,
        data={"classification": wanted},
        key=key or f"classify:{incident_id}:{wanted}",
        now=now,
    )
    board = sync_clocks(session, policy, incident_id, now=now)
    started = [
        s for s in board.values() if s.started and s.policy.trigger == ("classified", wanted)
    ]
    lines = [notice(s, incident.ref, now) for s in started if s.due_at is not None]
    message = f"{incident.ref} classified {wanted}." + (" " + " ".join(lines) if lines else "")
    return ClockResult(change, board, message)


def complete_clock(
    session: Session,
    policy: Policy,
    incident_id: int,
    clock_key: str,
    *,
    actor: str,
    note: str = "",
    key: str | None = None,
    now: datetime | None = None,
) -> ClockResult:
    """``/incident notified initial``: record that the clock's notification was sent."""
    clock = find_clock(policy.clocks, clock_key)
    if clock is None:
        names = ", ".join(c.key for c in policy.clocks) or "none are configured"
        raise InvalidInput(f"Unknown clock {clock_key[:40]!r}. Clocks: {names}.")
    text = core.clean_text(note, label="note", max_length=core.TEXT_MAX)
    incident, repeat, now = core.begin_change(session, incident_id, key, now)
    board = load_board(session, policy, incident)
    if repeat is not None:
        return ClockResult(repeat, board, f"{clock.title} was already recorded.")
    state = board[clock.key]
    if not state.started:
        raise InvalidInput(
            f"The {clock.title} clock has not started on {incident.ref} (it starts on "
            f"{clock.starts_on}); nothing was recorded."
        )
    if state.completions and not clock.repeatable:
        raise InvalidInput(
            f"{clock.title} was already recorded as sent on {incident.ref} at "
            f"{state.completions[0]:%Y-%m-%d %H:%M} UTC; nothing changed."
        )
    late = state.due_at is not None and now > state.due_at
    when = "late" if late else "on time"
    change = core.record_timeline_event(
        session,
        policy,
        incident_id,
        kind=EventKind.CLOCK_COMPLETED,
        text=f"{clock.title} sent ({when})" + (f": {text}" if text else ""),
        actor=actor,
        data={
            "clock": clock.key,
            "due_at": state.due_at.isoformat() if state.due_at else None,
            "late": late,
            "number": len(state.completions) + 1,
        },
        key=key or f"clock-done:{incident_id}:{clock.key}:{len(state.completions) + 1}",
        now=now,
    )
    board = sync_clocks(session, policy, incident_id, now=now)
    follow = [
        notice(s, incident.ref, now)
        for s in board.values()
        if s.policy.trigger == ("completed", clock.key) and s.due_at and not s.completions
    ]
    message = f"{incident.ref}: {clock.title} recorded as sent ({when})." + (
        " " + " ".join(follow) if follow else ""
    )
    return ClockResult(change, board, message)


# --------------------------------------------------------------------------------------------
# The reminder worker's side


def clock_reminder_outcome(
    session: Session,
    policy: Policy,
    incident: Incident,
    data: Mapping[str, Any],
    now: datetime,
) -> ClockOutcome:
    """Evaluate a ``clock`` reminder: the text to post now, or when to look again, or nothing
    (the clock was completed). Reads the clocks from the timeline, so it is right after a
    restart, on any replica."""
    return evaluate_clock(load_board(session, policy, incident), incident.ref, data, now)


def warned_event(data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The timeline kind and data to record once a clock warning was posted."""
    return EventKind.CLOCK_WARNED, {
        "clock": data.get("clock"),
        "point": data.get("point"),
        "due_at": data.get("due_at"),
    }


def sync_handler(database: Database, policy: Policy) -> Callable[[Claimed], Done]:
    """The ``clock.sync`` effect (queued by the core for events that may start a clock):
    start what the event triggered and schedule its warnings, in its own transaction."""

    def run(item: Claimed) -> Done:
        if item.incident_id is None or not policy.clocks:
            return Done()
        with database.transaction() as session:
            sync_clocks(session, policy, item.incident_id)
        return Done()

    return run
