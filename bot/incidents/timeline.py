"""The incident lifecycle: declare, severity, status, roles, notes, timeline, action items.

This module is the domain core. It knows nothing of Slack: it takes plain values (user ids, text,
times), changes state and appends the matching timeline event in the caller's transaction, and
returns what changed. Callers wrap each call in ``Database.transaction()``.

Concurrency and repeats:

* Every change first locks the incident row (``FOR NO KEY UPDATE`` on PostgreSQL, which rows
  pointing at it need not wait for; SQLite transactions already hold the write lock), so two
  people resolving at once are serialised: the first resolves, the second sees "already
  resolved" and nothing is written twice.
* Every change accepts an idempotency ``key`` (a Slack ``trigger_id``, ``event_id``, ...). A key
  that is already on the timeline returns the earlier result and writes nothing. Changes that
  would not change anything (acknowledging twice, assigning the current holder) write nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.audit import chain
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.db import locked_for_change
from bot.effects import store as effects_store
from bot.effects import triggers as effect_triggers
from bot.errors import InvalidInput, InvalidTransition, NotFound
from bot.incidents.queries import earlier_event, find_event_by_source, get_incident, is_retracted
from bot.incidents.text import TEXT_MAX, clean_text, user_id, when
from bot.keys import fit_key
from bot.models import EventKind, Incident, TimelineEvent
from bot.reminders import schedule as reminder_schedule


@dataclass(frozen=True)
class Change:
    """The result of a core operation.

    ``event`` is the timeline event written, or ``None`` when nothing changed (a repeat of an
    earlier request, or a change to the state the incident was already in)."""

    incident: Incident
    event: TimelineEvent | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.event is not None

    @property
    def kind(self) -> str | None:
        """The kind of event written, now or by the earlier request with the same key."""
        if self.event is not None:
            return str(self.event.kind)
        kind = self.detail.get("kind")
        return str(kind) if kind else None


# --------------------------------------------------------------------------------------------
# Internals shared by every change


_LOCK_INCIDENT = locked_for_change(
    select(Incident).where(col(Incident.id) == bindparam("incident_id"))
).execution_options(populate_existing=True)


_INCIDENTS = Incident.__table__  # type: ignore[attr-defined]
_LOCK_INCIDENT_ROW = locked_for_change(
    sa_select(_INCIDENTS).where(_INCIDENTS.c.id == bindparam("incident_id"))
)


def lock_incident(session: Session, incident_id: int) -> Incident:
    """The incident, locked for this transaction (``FOR NO KEY UPDATE`` on PostgreSQL; SQLite
    transactions already hold the write lock). Every change to an incident, here or in other
    modules, takes this lock first, so changes to one incident are serialised."""
    incident = session.exec(_LOCK_INCIDENT, params={"incident_id": incident_id}).first()
    if incident is None:
        raise NotFound(f"No incident with id {incident_id}.")
    return incident


def _insert_event_statement(dialect: str) -> Any:
    table = TimelineEvent.__table__  # type: ignore[attr-defined]
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id)
    )


# Built once: appending is the hottest path in Firebreak (every click, note, capture, reminder).
_INSERT_EVENT = {name: _insert_event_statement(name) for name in ("sqlite", "postgresql")}


def append_event(
    session: Session,
    policy: Policy,
    incident: Incident,
    *,
    kind: EventKind | str,
    text: str,
    actor: str | None,
    now: datetime,
    key: str | None,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
    source_url: str | None = None,
    source_ref: str | None = None,
    attached: bool = True,
    first: bool = False,
) -> TimelineEvent | None:
    """Append one event; ``None`` if an event with ``key`` already exists (a repeat that
    raced past the earlier check; nothing is written). ``first``: the incident's first event,
    in the transaction that created it (``declare_incident``)."""
    assert incident.id is not None
    values: dict[str, Any] = {
        "incident_id": incident.id,
        "occurred_at": occurred_at or now,
        "recorded_at": now,
        "kind": str(kind),
        "actor_id": actor,
        "text": text,
        "data": data or {},
        "source_url": source_url,
        "source_ref": source_ref,
        "idempotency_key": fit_key(key) if key else f"auto:{uuid.uuid4()}",
    }
    if attached:
        if session.is_modified(incident):
            incident.updated_at = now
        session.flush()
    dialect = session.get_bind().dialect.name
    chain.link(session, values, first=first)  # prev_hash and hash, under the incident lock
    new_id = session.execute(_INSERT_EVENT[dialect], values).scalar_one_or_none()
    if new_id is None:
        earlier = earlier_event(session, key)
        if earlier is not None and earlier.incident_id != incident.id:
            raise InvalidInput("That request was already used for another incident.")
        return None
    chain.advance(session, incident.id, values["hash"])  # the incident row keeps the head
    # A detached copy of the row just written (model_construct skips validation: the values
    # were checked above and accepted by the database).
    event = TimelineEvent.model_construct(id=new_id, **values)
    # What the event causes, in the same transaction: reminders re-timed, Slack effects queued.
    reminder_schedule.on_timeline_event(session, policy, incident, event)
    effect_triggers.on_timeline_event(session, policy, incident, event)
    _say_what_was_withdrawn(session, policy, incident, now)
    return event


def _say_what_was_withdrawn(
    session: Session, policy: Policy, incident: Incident, now: datetime
) -> None:
    """A reminder's timeline entry ("Escalated to @oncall") is written when it is due, with
    its messages queued; messages the change just withdrew (no longer true, not yet taken by
    Slack) never went out, and the timeline says so next to the entry that announced them."""
    occurrences: dict[str, list[str]] = {}
    for key, data in effects_store.take_withdrawn(session):
        occurrence = key.rsplit(":", 1)[0]  # reminder:<id>:<occurrence>:<where>
        occurrences.setdefault(occurrence, []).append(str(data.get("to") or ""))
    for occurrence, channels in sorted(occurrences.items()):
        said = earlier_event(session, f"{occurrence}:{incident.id}")
        if said is None or said.incident_id != incident.id:
            continue
        where = ", ".join(f"<#{c}>" for c in sorted(channels) if c.startswith(("C", "G")))
        append_event(
            session,
            policy,
            incident,
            kind=EventKind.REMINDER_WITHDRAWN,
            text=f"Not posted (withdrawn before it reached Slack: no longer true)"
            f"{f' in {where}' if where else ''}: {said.text}"[:TEXT_MAX],
            actor=None,
            now=now,
            key=f"withdrawn:{occurrence}:{incident.id}",
            data={"event": said.id, "of_kind": said.kind, "channels": channels},
        )


def require_open(policy: Policy, incident: Incident, doing: str) -> None:
    """Refuse ``doing`` on a closed incident: it is over and its record is being reviewed, and
    nothing (reminders, escalations, the summary's buttons) follows a closed incident any more.
    Notes and action items are still taken; anything else is done after a reopen, which the
    timeline then shows."""
    status = policy.find_status(incident.status)
    if status is not None and status.phase == "closed":
        raise InvalidTransition(
            f"{incident.ref} is closed: reopen it (`/incident {incident.ref} reopen`) "
            f"before you {doing}."
        )


class Begun(NamedTuple):
    incident: Incident
    repeat: Change | None
    now: datetime


def begin_change(
    session: Session, incident_id: int, key: str | None, now: datetime | None = None
) -> Begun:
    """Lock the incident; if ``key`` was seen before, also return the earlier result.

    ``now`` is the time of the change: the one given, else the clock read once the lock is
    held, so that changes to one incident are stamped in the order they were made."""
    incident = lock_incident(session, incident_id)
    now = when(now, utcnow())
    earlier = earlier_event(session, key)
    if earlier is not None:
        if earlier.incident_id != incident_id:
            raise InvalidInput("That request was already used for another incident.")
        return Begun(incident, Change(incident, None, {"repeat": True, "kind": earlier.kind}), now)
    return Begun(incident, None, now)


# --------------------------------------------------------------------------------------------
# Notes, status updates and events recorded from outside


def add_note(
    session: Session,
    policy: Policy,
    incident_id: int,
    text: str,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    body = clean_text(text, label="note", max_length=TEXT_MAX, required=True)
    return _record(
        session,
        policy,
        incident_id,
        kind=EventKind.NOTE,
        text=body,
        actor=user_id(actor),
        key=key,
        now=now,
    )


def post_status_update(
    session: Session,
    policy: Policy,
    incident_id: int,
    text: str,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """A status update for stakeholders. Reminder cadences count from the latest one."""
    body = clean_text(text, label="status update", max_length=TEXT_MAX, required=True)
    return _record(
        session,
        policy,
        incident_id,
        kind=EventKind.STATUS_UPDATE,
        text=body,
        actor=user_id(actor),
        key=key,
        now=now,
        open_for="post an update",
    )


def record_timeline_event(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    kind: EventKind | str,
    text: str,
    actor: str | None = None,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
    source_url: str | None = None,
    source_ref: str | None = None,
    key: str | None = None,
    now: datetime | None = None,
    held: Incident | None = None,
) -> Change:
    """Record something that happened elsewhere (a captured Slack message, a deploy, an alert).

    ``occurred_at`` is when it happened (the message's own time); ``recorded_at`` is now.
    ``held``: the incident, when this transaction already holds its lock (``lock_incident``,
    or declared in it), so it is not read and locked again."""
    body = clean_text(text, label="event text", max_length=TEXT_MAX)
    kind_text = str(kind).strip()
    if not kind_text or len(kind_text) > 40:
        raise InvalidInput("An event kind is 1 to 40 characters.")
    if source_url is not None and len(source_url) > 2000:
        raise InvalidInput("The source link is longer than 2,000 characters.")
    return _record(
        session,
        policy,
        incident_id,
        kind=kind_text,
        text=body,
        actor=user_id(actor) if actor else None,
        key=key,
        now=now,
        occurred_at=as_utc(occurred_at) if occurred_at else None,
        data=data,
        source_url=source_url,
        source_ref=(source_ref or None) and source_ref[:255],
        held=held,
    )


def _record(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    kind: EventKind | str,
    text: str,
    actor: str | None,
    key: str | None,
    now: datetime | None,
    held: Incident | None = None,
    open_for: str | None = None,
    **extra: Any,
) -> Change:
    """``open_for``: what is being done, refused on a closed incident (``require_open``),
    unless it repeats a request already recorded."""
    # No state changes here, so a repeated key is caught by the insert itself (ON CONFLICT DO
    # NOTHING) instead of a separate look-up first, and the incident is read as a detached row
    # rather than an ORM object: this is the hottest path (captures, notes, steps, reminders).
    if held is not None and held.id == incident_id:
        incident = held
    else:
        row = session.execute(_LOCK_INCIDENT_ROW, {"incident_id": incident_id}).mappings().first()
        if row is None:
            raise NotFound(f"No incident with id {incident_id}.")
        incident = Incident.model_construct(**row)
    now = when(now, utcnow())  # read once the incident is locked: events land in lock order
    if open_for is not None:
        try:
            require_open(policy, incident, open_for)
        except InvalidTransition:
            if earlier_event(session, key) is None:  # not a repeat of a request it took
                raise
    event = append_event(
        session,
        policy,
        incident,
        kind=kind,
        text=text,
        actor=actor,
        now=now,
        key=key,
        attached=incident is held,
        **extra,
    )
    return Change(incident, event, {} if event is not None else {"repeat": True})


def capture_message(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    source_ref: str,
    text: str,
    author: str | None,
    occurred_at: datetime,
    captured_by: str,
    source_url: str | None = None,
    data: dict[str, Any] | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Put a message on the timeline once, however many times it is captured."""
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    if find_event_by_source(session, incident_id, source_ref) is not None:
        return Change(incident, None)
    body = clean_text(text, label="message", max_length=TEXT_MAX) or "(message without text)"
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.MESSAGE,
        text=body,
        actor=author,
        now=now,
        key=key,
        occurred_at=as_utc(occurred_at),
        source_url=source_url,
        source_ref=source_ref,
        data={"captured_by": user_id(captured_by), **(data or {})},
    )
    return Change(incident, event)


def retract_event(
    session: Session,
    policy: Policy,
    incident_id: int,
    event_id: int,
    *,
    actor: str,
    reason: str = "",
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Withdraw an event from the visible timeline by appending a retraction (never deleting)."""
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    target = session.get(TimelineEvent, event_id)
    if target is None or target.incident_id != incident_id:
        raise NotFound(f"No timeline event {event_id} on {incident.ref}.")
    if target.kind == EventKind.RETRACTION:
        raise InvalidInput("A retraction cannot itself be retracted; record a new event instead.")
    if is_retracted(session, incident_id, target):
        return Change(incident, None)
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.RETRACTION,
        text=clean_text(reason, label="reason", max_length=TEXT_MAX) or "Removed from the timeline",
        actor=user_id(actor),
        now=now,
        key=key,
        source_ref=f"event:{target.id}",
        data={"retracts": target.id},
    )
    return Change(incident, event)


def withdraw_capture(
    session: Session,
    policy: Policy,
    incident_id: int,
    source_ref: str,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Undo ``capture_message`` for ``source_ref`` (the reaction was removed). A message put
    on the timeline on purpose with the shortcut stays: a reaction removed takes off only what
    a reaction put on."""
    incident = get_incident(session, incident_id)
    event = find_event_by_source(session, incident_id, source_ref)
    if event is None or event.id is None or (event.data or {}).get("via") == "shortcut":
        return Change(incident, None)
    return retract_event(
        session,
        policy,
        incident_id,
        event.id,
        actor=actor,
        reason="Capture withdrawn",
        key=key,
        now=now,
    )
