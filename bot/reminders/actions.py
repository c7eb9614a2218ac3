"""Snooze and stop: the buttons on a reminder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.clock import as_utc, utcnow
from bot.config import Policy, format_duration
from bot.errors import InvalidInput, NotFound
from bot.incidents.queries import earlier_event, latest_events
from bot.incidents.text import user_id
from bot.incidents.timeline import lock_incident, record_timeline_event
from bot.models import (
    EventKind,
    Incident,
    Reminder,
    TimelineEvent,
)
from bot.reminders.schedule import (
    _LABELS,
    CANCELLED,
    CLOSE,
    PENDING,
    SENT,
    SNOOZABLE,
    STOPPED,
    UPDATE,
    _iso,
    _lock_reminder,
    _parse_time,
    _phase,
    snooze_minutes,
)

# --------------------------------------------------------------------------------------------
# Snooze and stop (the buttons on a reminder)

log = logging.getLogger(__name__)

REPEAT_WINDOW = timedelta(minutes=1)
"""A Snooze clicked again on the same message, for the same time, this soon after the first is
the same intent (a double click, two people reacting at once): one snooze, not two."""


@dataclass(frozen=True)
class ReminderChange:
    reminder: Reminder
    event: TimelineEvent | None
    """The timeline event written, or ``None`` when nothing changed (a repeat)."""

    note: str | None = None
    """What to say when nothing changed because it was already done (``already snoozed``)."""

    @property
    def changed(self) -> bool:
        return self.event is not None


def _reminder_for_action(session: Session, reminder_id: int) -> tuple[Reminder, Incident]:
    row = session.get(Reminder, reminder_id)
    if row is None or row.incident_id is None:
        raise NotFound("That reminder no longer exists.")
    try:
        incident = lock_incident(session, row.incident_id)
    except NotFound:
        raise NotFound("That reminder no longer exists.") from None
    locked = _lock_reminder(session, reminder_id)
    if incident is None or locked is None:
        raise NotFound("That reminder no longer exists.")
    return locked, incident


def _seen_key(session: Session, key: str | None, incident_id: int) -> bool:
    """The one idempotency guard of the core (a key used for another incident is refused)."""
    earlier = earlier_event(session, key)
    if earlier is not None and earlier.incident_id != incident_id:
        raise InvalidInput("That request was already used for another incident.")
    return earlier is not None


def _cycle_start(session: Session, incident_id: int) -> TimelineEvent | None:
    """The change that began the reminders' current cycle: the last reopen or resolve (each
    arms the incident's reminders afresh); ``None`` if there was none since the declare."""
    changes = latest_events(session, incident_id, EventKind.STATUS_CHANGED)
    return next(
        (e for e in changes if e.data.get("reopened") or e.data.get("phase") == "resolved"), None
    )


def _refuse_earlier_cycle(
    session: Session, row: Reminder, incident: Incident, seq: int | None
) -> None:
    """Snooze and Stop are on the messages a reminder sends. A click on a message of an earlier
    cycle (sent before the incident reopened, or resolved again) must not silence the new
    cycle. ``seq`` says which of the reminder's messages the button is on: the message was sent
    before the current cycle began, or (a reminder armed again that has sent nothing yet) any
    message is. Buttons without ``seq`` (posted before it was added) only have the second test."""
    earlier = row.last_sent_at is None
    if not earlier and seq is not None:
        assert incident.id is not None
        sent = earlier_event(session, f"reminder:{row.id}:{seq}:{incident.id}")
        start = _cycle_start(session, incident.id)
        earlier = sent is None or (start is not None and (sent.id or 0) < (start.id or 0))
    if earlier:
        raise InvalidInput(
            f"That button is on an earlier reminder: {incident.ref} changed since "
            "(reopened or resolved again). Use the buttons on its next reminder."
        )


def _repeated_snooze(
    session: Session, row: Reminder, minutes: int, seq: int | None, now: datetime
) -> datetime | None:
    """When the reminder's last snooze was this one again (same message, same duration, moments
    ago, and still in force), until when it snoozed; else ``None``."""
    assert row.incident_id is not None
    snoozes = latest_events(session, row.incident_id, EventKind.REMINDER_SNOOZED)
    last = next((e for e in snoozes if e.data.get("reminder_id") == row.id), None)
    if last is None or last.data.get("minutes") != minutes or last.data.get("seq") != seq:
        return None
    until = _parse_time(last.data.get("until"))
    in_force = row.state == PENDING and row.data.get("snoozed_until") == last.data.get("until")
    if until is None or not in_force or now - as_utc(last.occurred_at) > REPEAT_WINDOW:
        return None
    return until


def _stopper(session: Session, row: Reminder, incident: Incident) -> str | None:
    stops = latest_events(session, incident.id or 0, EventKind.REMINDER_STOPPED)
    return next((e.actor_id for e in stops if e.data.get("reminder_id") == row.id), None)


def _stopped_by(session: Session, row: Reminder, incident: Incident) -> str:
    """What to tell someone who snoozes or stops a stopped reminder: who stopped it, and what
    (if anything) starts it again."""
    actor = _stopper(session, row, incident)
    by = f" by <@{actor}>" if actor else ""
    if row.kind == UPDATE:
        return f"These reminders were stopped{by}; reopening {incident.ref} starts them again."
    return f"This reminder was stopped{by}."


def snooze_reminder(
    session: Session,
    policy: Policy,
    reminder_id: int,
    duration: timedelta,
    *,
    actor: str,
    now: datetime | None = None,
    key: str | None = None,
    seq: int | None = None,
) -> ReminderChange:
    """Postpone a reminder by one of ``reminders.snooze_choices``; recorded on the timeline.

    A stopped reminder stays stopped (refused, saying who stopped it). A repeated ``key``
    (Slack retry) changes nothing the second time, and neither does the same snooze clicked
    again on the same message within ``REPEAT_WINDOW`` (a double click: two Slack actions; its
    ``note`` says until when it is snoozed). ``seq``: which of the
    reminder's messages the button is on (``None``: not known); a message of an earlier cycle
    is refused."""
    allowed = snooze_minutes(policy.reminders.snooze_choices)
    minutes = int(duration.total_seconds() // 60)
    if duration != timedelta(minutes=minutes) or minutes not in allowed:
        choices = ", ".join(format_duration(timedelta(minutes=m)) for m in allowed)
        raise InvalidInput(f"Snooze for one of: {choices}.")
    row, incident = _reminder_for_action(session, reminder_id)
    now = as_utc(now) if now is not None else utcnow()  # once locked: in lock order
    if _seen_key(session, key, incident.id or 0):
        return ReminderChange(row, None)
    label = SNOOZABLE.get(row.kind)
    if label is None:
        raise InvalidInput(
            f"{_LABELS.get(row.kind, 'This')} reminders cannot be snoozed: "
            f"acknowledge {incident.ref} or take the Incident Commander role instead."
        )
    wanted_phase = "resolved" if row.kind == CLOSE else "active"
    if row.state == CANCELLED or _phase(policy, incident) != wanted_phase:
        raise InvalidInput(
            f"This reminder is no longer active: {incident.ref} is {incident.status}."
        )
    if row.state == STOPPED:
        # Stop is for good (update nudges: until a reopen); a Snooze button left on an older
        # message, clicked by anyone, must not switch the reminder back on.
        raise InvalidInput(_stopped_by(session, row, incident))
    _refuse_earlier_cycle(session, row, incident, seq)
    already = _repeated_snooze(session, row, minutes, seq, now)
    if already is not None:
        return ReminderChange(row, None, f"Already snoozed until {already:%H:%M} UTC.")
    until = now + duration
    row.state = PENDING
    row.due_at = until
    row.data = {**row.data, "snoozed_until": _iso(until)}
    row.attempts = 0
    row.last_error = None
    row.claimed_by = None
    row.claimed_until = None
    row.updated_at = now
    session.add(row)
    session.flush()
    assert incident.id is not None and row.id is not None
    change = record_timeline_event(
        session,
        policy,
        incident.id,
        kind=EventKind.REMINDER_SNOOZED,
        text=f"{label} reminder snoozed for {format_duration(duration)}",
        actor=actor,
        data={
            "reminder_id": row.id,
            "reminder": row.kind,
            "until": _iso(until),
            "minutes": minutes,
            "seq": seq,
        },
        key=key,
        now=now,
    )
    return ReminderChange(row, change.event)


def stop_reminder(
    session: Session,
    policy: Policy,
    reminder_id: int,
    *,
    actor: str,
    now: datetime | None = None,
    key: str | None = None,
    seq: int | None = None,
) -> ReminderChange:
    """Stop a reminder for good (update nudges: until the incident is reopened); recorded on the
    timeline. A stopped or finished reminder is refused, saying why (who stopped it, or that
    it is no longer active); a repeated ``key`` changes nothing. ``seq`` as for
    ``snooze_reminder``."""
    row, incident = _reminder_for_action(session, reminder_id)
    now = as_utc(now) if now is not None else utcnow()  # once locked: in lock order
    if _seen_key(session, key, incident.id or 0):
        return ReminderChange(row, None)
    if row.state == STOPPED:
        if _stopper(session, row, incident) == user_id(actor):  # their own double click
            return ReminderChange(row, None)
        raise InvalidInput(_stopped_by(session, row, incident))
    wanted_phase = "resolved" if row.kind == CLOSE else "active"
    if row.state in (CANCELLED, SENT) or _phase(policy, incident) != wanted_phase:
        raise InvalidInput(
            f"This reminder is no longer active: {incident.ref} is {incident.status}."
        )
    _refuse_earlier_cycle(session, row, incident, seq)
    row.state = STOPPED
    row.claimed_by = None
    row.claimed_until = None
    row.updated_at = now
    session.add(row)
    session.flush()
    assert incident.id is not None and row.id is not None
    change = record_timeline_event(
        session,
        policy,
        incident.id,
        kind=EventKind.REMINDER_STOPPED,
        text=f"{_LABELS.get(row.kind, 'A')} reminder stopped",
        actor=actor,
        data={"reminder_id": row.id, "reminder": row.kind},
        key=key,
        now=now,
    )
    return ReminderChange(row, change.event)
