"""The incident lifecycle: declare, severity, status, roles, notes, timeline, action items.

This module is the domain core. It knows nothing of Slack: it takes plain values (user ids, text,
times), changes state and appends the matching timeline event in the caller's transaction, and
returns what changed. Callers wrap each call in ``Database.transaction()``.

Concurrency and repeats:

* Every change first locks the incident row (``FOR UPDATE`` on PostgreSQL; SQLite transactions
  already hold the write lock), so two people resolving at once are serialised: the first
  resolves, the second sees "already resolved" and nothing is written twice.
* Every change accepts an idempotency ``key`` (a Slack ``trigger_id``, ``event_id``, ...). A key
  that is already on the timeline returns the earlier result and writes nothing. Changes that
  would not change anything (acknowledging twice, assigning the current holder) write nothing.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.clock import as_utc, utcnow
from bot.config import COMMANDER, Policy, StatusPolicy
from bot.errors import InvalidInput, InvalidTransition, NotFound
from bot.models import ActionItem, Counter, EventKind, Incident, RoleAssignment, TimelineEvent

INCIDENT_COUNTER = "incident_number"
TITLE_MAX = 300
SUMMARY_MAX = 10_000
TEXT_MAX = 40_000
SERVICE_MAX = 200
ACTION_TEXT_MAX = 2_000


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


# --------------------------------------------------------------------------------------------
# Input hygiene

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(
    value: str | None,
    *,
    label: str,
    max_length: int,
    multiline: bool = True,
    required: bool = False,
) -> str:
    """Normalise user text: NFC, no control characters (PostgreSQL rejects NUL), trimmed.

    Emoji and right-to-left scripts pass through untouched. Too long is an error, not a silent
    cut: the caller decides whether to shorten and keep the rest elsewhere."""
    text = unicodedata.normalize("NFC", value or "")
    text = _CONTROL.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        text = " ".join(text.split())
    text = text.strip()
    if required and not text:
        raise InvalidInput(f"The {label} is empty: give a few words that say what is wrong.")
    if len(text) > max_length:
        raise InvalidInput(
            f"The {label} is {len(text):,} characters long; the limit is {max_length:,}."
        )
    return text


def _user(value: str, label: str = "user") -> str:
    value = (value or "").strip()
    if not value or len(value) > 64 or _CONTROL.search(value):
        raise InvalidInput(f"Not a valid {label} id: {value[:40]!r}.")
    return value


def _when(value: datetime | None, now: datetime) -> datetime:
    return now if value is None else as_utc(value)


# --------------------------------------------------------------------------------------------
# Lookups


def get_incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"No incident with id {incident_id}.")
    return incident


_REF = re.compile(r"^\s*(?:inc-?)?\s*#?(\d{1,9})\s*$", re.IGNORECASE)


def parse_incident_ref(text: str) -> int | None:
    """``INC-42``, ``inc42``, ``#42`` or ``42`` -> 42."""
    match = _REF.match(text or "")
    return int(match.group(1)) if match else None


def find_incident(session: Session, ref: str | int) -> Incident:
    """Find an incident by its number (``INC-42``, ``42``)."""
    number = ref if isinstance(ref, int) else parse_incident_ref(ref)
    if number is None:
        raise InvalidInput(f"{str(ref)[:40]!r} is not an incident number; write it like INC-42.")
    incident = session.exec(select(Incident).where(Incident.number == number)).first()
    if incident is None:
        raise NotFound(f"There is no incident INC-{number}.")
    return incident


def find_incident_by_channel(session: Session, channel_id: str) -> Incident | None:
    return session.exec(select(Incident).where(Incident.slack_channel_id == channel_id)).first()


def list_incidents(
    session: Session,
    policy: Policy,
    *,
    phases: Sequence[str] | None = ("active", "resolved"),
    limit: int = 100,
) -> list[Incident]:
    """Incidents whose status is in one of ``phases`` (all when ``None``), newest first."""
    query = select(Incident).order_by(col(Incident.number).desc()).limit(limit)
    if phases is not None:
        statuses = [s.key for s in policy.statuses if s.phase in phases]
        query = query.where(col(Incident.status).in_(statuses))
    return list(session.exec(query).all())


def current_roles(session: Session, incident_id: int) -> dict[str, str]:
    """``{role key: user id}`` for the roles held right now."""
    rows = session.exec(
        select(RoleAssignment).where(
            RoleAssignment.incident_id == incident_id,
            col(RoleAssignment.unassigned_at).is_(None),
        )
    ).all()
    return {row.role: row.user_id for row in rows}


def role_history(session: Session, incident_id: int) -> list[RoleAssignment]:
    return list(
        session.exec(
            select(RoleAssignment)
            .where(RoleAssignment.incident_id == incident_id)
            .order_by(col(RoleAssignment.assigned_at), col(RoleAssignment.id))
        ).all()
    )


def timeline(
    session: Session, incident_id: int, *, include_retracted: bool = False
) -> list[TimelineEvent]:
    """The incident's timeline in the order things happened.

    By default a retracted event and the retraction itself are left out: that is what responders
    and the postmortem see. The audit export passes ``include_retracted=True``."""
    events = list(
        session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id)
            .order_by(col(TimelineEvent.occurred_at), col(TimelineEvent.id))
        ).all()
    )
    if include_retracted:
        return events
    retracted = {e.data.get("retracts") for e in events if e.kind == EventKind.RETRACTION}
    return [e for e in events if e.kind != EventKind.RETRACTION and e.id not in retracted]


def list_action_items(session: Session, incident_id: int) -> list[ActionItem]:
    return list(
        session.exec(
            select(ActionItem)
            .where(ActionItem.incident_id == incident_id)
            .order_by(col(ActionItem.number))
        ).all()
    )


# --------------------------------------------------------------------------------------------
# Internals shared by every change


_LOCK_INCIDENT = (
    select(Incident)
    .where(col(Incident.id) == bindparam("incident_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


_INCIDENTS = Incident.__table__  # type: ignore[attr-defined]
_LOCK_INCIDENT_ROW = (
    sa_select(_INCIDENTS).where(_INCIDENTS.c.id == bindparam("incident_id")).with_for_update()
)


def lock_incident(session: Session, incident_id: int) -> Incident:
    """The incident, locked for this transaction (``FOR UPDATE`` on PostgreSQL; SQLite
    transactions already hold the write lock). Every change to an incident, here or in other
    modules, takes this lock first, so changes to one incident are serialised."""
    incident = session.exec(_LOCK_INCIDENT, params={"incident_id": incident_id}).first()
    if incident is None:
        raise NotFound(f"No incident with id {incident_id}.")
    return incident


def earlier_event(session: Session, key: str | None) -> TimelineEvent | None:
    """The timeline event recorded with idempotency ``key``, if any."""
    if key is None:
        return None
    return session.exec(select(TimelineEvent).where(TimelineEvent.idempotency_key == key)).first()


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


def _append(
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
) -> TimelineEvent | None:
    """Append one event; ``None`` if an event with ``key`` already exists (a repeat that
    raced past the earlier check; nothing is written)."""
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
        "idempotency_key": key or f"auto:{uuid.uuid4()}",
    }
    if attached:
        if session.is_modified(incident):
            incident.updated_at = now
        session.flush()
    dialect = session.get_bind().dialect.name
    new_id = session.execute(_INSERT_EVENT[dialect], values).scalar_one_or_none()
    if new_id is None:
        earlier = earlier_event(session, key)
        if earlier is not None and earlier.incident_id != incident.id:
            raise InvalidInput("That request was already used for another incident.")
        return None
    # A detached copy of the row just written (model_construct skips validation: the values
    # were checked above and accepted by the database).
    event = TimelineEvent.model_construct(id=new_id, **values)
    from bot import reminders

    reminders.on_timeline_event(session, policy, incident, event)
    return event


def _begin_change(
    session: Session, incident_id: int, key: str | None
) -> tuple[Incident, Change | None]:
    """Lock the incident; if ``key`` was seen before, also return the earlier result."""
    incident = lock_incident(session, incident_id)
    earlier = earlier_event(session, key)
    if earlier is not None:
        if earlier.incident_id != incident_id:
            raise InvalidInput("That request was already used for another incident.")
        return incident, Change(incident, None, {"repeat": True})
    return incident, None


# --------------------------------------------------------------------------------------------
# Declare


def declare_incident(
    session: Session,
    policy: Policy,
    *,
    title: str,
    reporter: str,
    severity: str | None = None,
    summary: str = "",
    service: str | None = None,
    private: bool = False,
    impact_started_at: datetime | None = None,
    detected_at: datetime | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Open a new incident with the next number. A repeated ``key`` returns the same incident."""
    now = _when(now, utcnow())
    title = clean_text(title, label="title", max_length=TITLE_MAX, multiline=False, required=True)
    summary = clean_text(summary, label="summary", max_length=SUMMARY_MAX)
    service_text = clean_text(service, label="service", max_length=SERVICE_MAX, multiline=False)
    reporter = _user(reporter, "reporter")
    sev = policy.find_severity(severity or policy.default_severity)
    if sev is None:
        raise InvalidInput(_unknown("severity", severity or "", [s.key for s in policy.severities]))
    impact = as_utc(impact_started_at) if impact_started_at else None
    detected = as_utc(detected_at) if detected_at else None
    if impact and impact > now:
        raise InvalidInput("Impact cannot start in the future.")
    if impact and detected and detected < impact:
        raise InvalidInput("Detection cannot come before the impact started.")
    if key is not None:
        key = key[:255]
        existing = _incident_by_key(session, key)
        if existing is not None:
            return Change(existing, None, {"repeat": True})

    # Locking the counter row serialises concurrent declares, so a repeat of the same key that
    # was committed while we waited is seen here, before a number is taken.
    number = _lock_next_number(session)
    if key is not None:
        existing = _incident_by_key(session, key)
        if existing is not None:
            return Change(existing, None, {"repeat": True})
    _store_number(session, number)

    incident = Incident(
        number=number,
        title=title,
        summary=summary,
        severity=sev.key,
        status=policy.initial_status.key,
        private=private,
        service=service_text or None,
        reporter_id=reporter,
        declare_key=key,
        impact_started_at=impact,
        detected_at=detected,
        declared_at=now,
        updated_at=now,
    )
    session.add(incident)
    session.flush()
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.DECLARED,
        text=f"{incident.ref} declared as {sev.key}: {title}",
        actor=reporter,
        now=now,
        key=f"declare:{key}" if key else None,
        data={
            "severity": sev.key,
            "status": incident.status,
            "private": private,
            "service": incident.service,
        },
    )
    return Change(incident, event)


def _incident_by_key(session: Session, key: str) -> Incident | None:
    return session.exec(select(Incident).where(Incident.declare_key == key)).first()


def _lock_next_number(session: Session) -> int:
    counter = session.exec(
        select(Counter)
        .where(Counter.name == INCIDENT_COUNTER)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if counter is None:
        # A database whose seed row is missing: continue after the highest number in use.
        highest = session.exec(select(func.max(Incident.number))).one() or 0
        session.add(Counter(name=INCIDENT_COUNTER, value=int(highest)))
        session.flush()
        return int(highest) + 1
    return counter.value + 1


def _store_number(session: Session, number: int) -> None:
    session.execute(
        update(Counter).where(col(Counter.name) == INCIDENT_COUNTER).values(value=number)
    )


def _unknown(what: str, given: str, choices: list[str]) -> str:
    return f"Unknown {what} {given[:40]!r}. Choose one of: {', '.join(choices)}."


# --------------------------------------------------------------------------------------------
# Severity, status, acknowledgement


def change_severity(
    session: Session,
    policy: Policy,
    incident_id: int,
    severity: str,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    sev = policy.find_severity(severity)
    if sev is None:
        raise InvalidInput(_unknown("severity", severity, [s.key for s in policy.severities]))
    actor = _user(actor)
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    if incident.severity == sev.key:
        return Change(incident, None)
    previous = incident.severity
    incident.severity = sev.key
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.SEVERITY_CHANGED,
        text=f"Severity changed from {previous} to {sev.key}",
        actor=actor,
        now=now,
        key=key,
        data={"from": previous, "to": sev.key},
    )
    return Change(incident, event, {"from": previous})


def allowed_next_statuses(policy: Policy, incident: Incident) -> list[StatusPolicy]:
    current = policy.find_status(incident.status)
    if current is None:  # a status removed from the policy: allow every status
        return [s for s in policy.statuses if s.key != incident.status]
    return [policy.status(key) for key in current.next]


def change_status(
    session: Session,
    policy: Policy,
    incident_id: int,
    status: str,
    *,
    actor: str,
    text: str = "",
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Move the incident to ``status`` if the policy allows it from the current status.

    Entering a status with a milestone stamps it the first time (``mitigated_at`` ...).
    Moving from a resolved/closed status back to an active one is a reopen: the resolved and
    closed stamps are cleared, the earlier ones stay on the timeline."""
    target = policy.find_status(status)
    if target is None:
        raise InvalidInput(_unknown("status", status, [s.key for s in policy.statuses]))
    actor = _user(actor)
    note = clean_text(text, label="note", max_length=TEXT_MAX)
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    if incident.status == target.key:
        return Change(incident, None)
    allowed = allowed_next_statuses(policy, incident)
    if target.key not in {s.key for s in allowed}:
        choices = ", ".join(s.key for s in allowed) or "none"
        raise InvalidTransition(
            f"{incident.ref} is {incident.status}; it cannot move to {target.key}. "
            f"From {incident.status} it can move to: {choices}."
        )
    previous = policy.find_status(incident.status)
    reopened = previous is not None and previous.phase != "active" and target.phase == "active"
    incident.status = target.key
    if reopened:
        incident.resolved_at = None
        incident.closed_at = None
    if target.milestone == "mitigated" and incident.mitigated_at is None:
        incident.mitigated_at = now
    if target.milestone == "resolved" and incident.resolved_at is None:
        incident.resolved_at = now
        if incident.mitigated_at is None:
            incident.mitigated_at = now
    if target.milestone == "closed" and incident.closed_at is None:
        incident.closed_at = now
        if incident.resolved_at is None:
            incident.resolved_at = now
    verb = "reopened" if reopened else "status changed"
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.STATUS_CHANGED,
        text=(
            f"{incident.ref} {verb}: {previous.key if previous else '?'} → {target.key}"
            + (f" — {note}" if note else "")
        ),
        actor=actor,
        now=now,
        key=key,
        data={
            "from": previous.key if previous else None,
            "to": target.key,
            "phase": target.phase,
            "reopened": reopened,
        },
    )
    return Change(
        incident, event, {"from": previous.key if previous else None, "reopened": reopened}
    )


def _status_in_phase(policy: Policy, phase: str) -> StatusPolicy:
    return next(s for s in policy.statuses if s.phase == phase)


def mitigate_incident(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Mark the impact as mitigated: move to the status that carries the mitigated milestone."""
    target = next((s for s in policy.statuses if s.milestone == "mitigated"), None)
    if target is None:
        raise InvalidInput("The incident policy has no status with milestone = 'mitigated'.")
    return change_status(session, policy, incident_id, target.key, actor=actor, key=key, now=now)


def resolve_incident(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    text: str = "",
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    return change_status(
        session,
        policy,
        incident_id,
        _status_in_phase(policy, "resolved").key,
        actor=actor,
        text=text,
        key=key,
        now=now,
    )


def close_incident(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Close the incident. An active incident (a false alarm, say) is resolved first, so the
    timeline shows both steps and the resolved milestone is set."""
    incident = get_incident(session, incident_id)
    current = policy.find_status(incident.status)
    closed = _status_in_phase(policy, "closed")
    resolved = _status_in_phase(policy, "resolved")
    if (
        current is not None
        and current.phase == "active"
        and closed.key not in current.next
        and resolved.key in current.next
    ):
        change_status(
            session,
            policy,
            incident_id,
            resolved.key,
            actor=actor,
            key=f"{key}:resolve" if key else None,
            now=now,
        )
    return change_status(session, policy, incident_id, closed.key, actor=actor, key=key, now=now)


def reopen_incident(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    text: str = "",
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    incident = get_incident(session, incident_id)
    current = policy.find_status(incident.status)
    if current is not None and current.phase == "active":
        return Change(incident, None)
    target = next((s for s in allowed_next_statuses(policy, incident) if s.phase == "active"), None)
    if target is None:
        raise InvalidTransition(
            f"The policy does not allow reopening {incident.ref} from {incident.status}."
        )
    return change_status(
        session, policy, incident_id, target.key, actor=actor, text=text, key=key, now=now
    )


def acknowledge_incident(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Someone has taken the incident. Only the first acknowledgement is a milestone."""
    actor = _user(actor)
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    if incident.acknowledged_at is not None:
        return Change(incident, None)
    incident.acknowledged_at = now
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.ACKNOWLEDGED,
        text=f"{incident.ref} acknowledged",
        actor=actor,
        now=now,
        key=key,
    )
    return Change(incident, event)


# --------------------------------------------------------------------------------------------
# Roles


def assign_role(
    session: Session,
    policy: Policy,
    incident_id: int,
    role: str,
    user: str,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Give ``role`` to ``user``, replacing the current holder. Naming a commander also
    acknowledges the incident, since someone now owns it."""
    found = policy.find_role(role)
    if found is None:
        raise InvalidInput(_unknown("role", role, [r.key for r in policy.roles]))
    user = _user(user)
    actor = _user(actor)
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    assert incident.id is not None
    current = _current_assignment(session, incident.id, found.key)
    if current is not None and current.user_id == user:
        return Change(incident, None)
    previous = None
    if current is not None:
        previous = current.user_id
        current.unassigned_at = now
        current.unassigned_by = actor
        session.add(current)
        session.flush()
    session.add(
        RoleAssignment(
            incident_id=incident.id,
            role=found.key,
            user_id=user,
            assigned_at=now,
            assigned_by=actor,
        )
    )
    acknowledged = False
    if found.key == COMMANDER and incident.acknowledged_at is None:
        incident.acknowledged_at = now
        acknowledged = True
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.ROLE_ASSIGNED,
        text=f"{found.name}: <@{user}>" + (f" (was <@{previous}>)" if previous else ""),
        actor=actor,
        now=now,
        key=key,
        data={"role": found.key, "user": user, "previous": previous, "acknowledged": acknowledged},
    )
    return Change(incident, event, {"role": found.key, "previous": previous})


def unassign_role(
    session: Session,
    policy: Policy,
    incident_id: int,
    role: str,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    found = policy.find_role(role)
    if found is None:
        raise InvalidInput(_unknown("role", role, [r.key for r in policy.roles]))
    actor = _user(actor)
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    assert incident.id is not None
    current = _current_assignment(session, incident.id, found.key)
    if current is None:
        return Change(incident, None)
    current.unassigned_at = now
    current.unassigned_by = actor
    session.add(current)
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.ROLE_UNASSIGNED,
        text=f"{found.name}: <@{current.user_id}> stepped down",
        actor=actor,
        now=now,
        key=key,
        data={"role": found.key, "user": current.user_id},
    )
    return Change(incident, event, {"role": found.key})


def _current_assignment(session: Session, incident_id: int, role: str) -> RoleAssignment | None:
    return session.exec(
        select(RoleAssignment).where(
            RoleAssignment.incident_id == incident_id,
            RoleAssignment.role == role,
            col(RoleAssignment.unassigned_at).is_(None),
        )
    ).first()


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
        actor=_user(actor),
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
        actor=_user(actor),
        key=key,
        now=now,
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
) -> Change:
    """Record something that happened elsewhere (a captured Slack message, a deploy, an alert).

    ``occurred_at`` is when it happened (the message's own time); ``recorded_at`` is now."""
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
        actor=_user(actor) if actor else None,
        key=key,
        now=now,
        occurred_at=as_utc(occurred_at) if occurred_at else None,
        data=data,
        source_url=source_url,
        source_ref=(source_ref or None) and source_ref[:255],
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
    **extra: Any,
) -> Change:
    now = _when(now, utcnow())
    # No state changes here, so a repeated key is caught by the insert itself (ON CONFLICT DO
    # NOTHING) instead of a separate look-up first, and the incident is read as a detached row
    # rather than an ORM object: this is the hottest path (captures, notes, steps, reminders).
    row = session.execute(_LOCK_INCIDENT_ROW, {"incident_id": incident_id}).mappings().first()
    if row is None:
        raise NotFound(f"No incident with id {incident_id}.")
    incident = Incident.model_construct(**row)
    event = _append(
        session,
        policy,
        incident,
        kind=kind,
        text=text,
        actor=actor,
        now=now,
        key=key,
        attached=False,
        **extra,
    )
    return Change(incident, event, {} if event is not None else {"repeat": True})


def find_event_by_source(
    session: Session, incident_id: int, source_ref: str, kind: str = EventKind.MESSAGE
) -> TimelineEvent | None:
    """The visible (not retracted) event recorded from ``source_ref``, if any."""
    events = session.exec(
        select(TimelineEvent)
        .where(
            TimelineEvent.incident_id == incident_id,
            TimelineEvent.source_ref == source_ref,
            TimelineEvent.kind == kind,
        )
        .order_by(col(TimelineEvent.id).desc())
    ).all()
    for event in events:
        if not _is_retracted(session, incident_id, event):
            return event
    return None


def _is_retracted(session: Session, incident_id: int, event: TimelineEvent) -> bool:
    retractions = session.exec(
        select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id,
            TimelineEvent.kind == EventKind.RETRACTION,
            TimelineEvent.source_ref == f"event:{event.id}",
        )
    ).first()
    return retractions is not None


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
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    if find_event_by_source(session, incident_id, source_ref) is not None:
        return Change(incident, None)
    body = clean_text(text, label="message", max_length=TEXT_MAX) or "(message without text)"
    event = _append(
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
        data={"captured_by": _user(captured_by), **(data or {})},
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
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    target = session.get(TimelineEvent, event_id)
    if target is None or target.incident_id != incident_id:
        raise NotFound(f"No timeline event {event_id} on {incident.ref}.")
    if target.kind == EventKind.RETRACTION:
        raise InvalidInput("A retraction cannot itself be retracted; record a new event instead.")
    if _is_retracted(session, incident_id, target):
        return Change(incident, None)
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.RETRACTION,
        text=clean_text(reason, label="reason", max_length=TEXT_MAX) or "Removed from the timeline",
        actor=_user(actor),
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
    """Undo ``capture_message`` for ``source_ref`` (the reaction was removed)."""
    incident = get_incident(session, incident_id)
    event = find_event_by_source(session, incident_id, source_ref)
    if event is None or event.id is None:
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


def edit_details(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    title: str | None = None,
    summary: str | None = None,
    service: str | None = None,
    impact_started_at: datetime | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Change title, summary, affected service or impact start; the old values stay on the
    timeline."""
    actor = _user(actor)
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    changes: dict[str, Any] = {}
    if title is not None:
        new = clean_text(title, label="title", max_length=TITLE_MAX, multiline=False, required=True)
        if new != incident.title:
            changes["title"] = {"from": incident.title, "to": new}
            incident.title = new
    if summary is not None:
        new = clean_text(summary, label="summary", max_length=SUMMARY_MAX)
        if new != incident.summary:
            changes["summary"] = {"from": incident.summary, "to": new}
            incident.summary = new
    if service is not None:
        new = clean_text(service, label="service", max_length=SERVICE_MAX, multiline=False) or None  # type: ignore[assignment]
        if new != incident.service:
            changes["service"] = {"from": incident.service, "to": new}
            incident.service = new
    if impact_started_at is not None:
        new_time = as_utc(impact_started_at)
        if new_time > now:
            raise InvalidInput("Impact cannot start in the future.")
        if new_time != incident.impact_started_at:
            changes["impact_started_at"] = {
                "from": incident.impact_started_at.isoformat()
                if incident.impact_started_at
                else None,
                "to": new_time.isoformat(),
            }
            incident.impact_started_at = new_time
    if not changes:
        return Change(incident, None)
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.DETAILS_CHANGED,
        text="Changed " + ", ".join(k.replace("_", " ") for k in changes),
        actor=actor,
        now=now,
        key=key,
        data=changes,
    )
    return Change(incident, event)


# --------------------------------------------------------------------------------------------
# Slack bookkeeping: where the incident lives in Slack. Not incident state, except the channel.


def attach_channel(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    channel_id: str,
    channel_name: str,
    actor: str,
    now: datetime | None = None,
) -> Change:
    """Record the incident's Slack channel (once; a second attach with another id is refused)."""
    now = _when(now, utcnow())
    incident = lock_incident(session, incident_id)
    if incident.slack_channel_id == channel_id:
        return Change(incident, None)
    if incident.slack_channel_id is not None:
        raise InvalidInput(f"{incident.ref} already has a channel.")
    incident.slack_channel_id = channel_id
    incident.slack_channel_name = channel_name
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.CHANNEL_CREATED,
        text=f"Incident channel #{channel_name} created",
        actor=actor,
        now=now,
        key=f"channel:{incident_id}",
        data={"channel": channel_id, "name": channel_name},
    )
    return Change(incident, event)


_SLACK_REFS = {
    "summary_message_ts",
    "announcement_channel_id",
    "announcement_ts",
    "slack_setup_error",
    "slack_lease_until",
}


def save_slack_refs(
    session: Session, incident_id: int, *, state: dict[str, Any] | None = None, **refs: Any
) -> Incident:
    """Remember Slack message timestamps and set-up progress, so retries resume, not repeat."""
    unknown = set(refs) - _SLACK_REFS
    if unknown:
        raise ValueError(f"not Slack bookkeeping fields: {sorted(unknown)}")
    incident = lock_incident(session, incident_id)
    for name, value in refs.items():
        setattr(incident, name, value)
    if state:
        incident.slack_state = {**incident.slack_state, **state}
    session.add(incident)
    session.flush()
    return incident


def find_recent_duplicate(
    session: Session, *, reporter: str, title: str, since: datetime
) -> Incident | None:
    """An incident the same person declared with the same title since ``since`` (a double
    submit or a pasted command sent twice)."""
    cleaned = clean_text(title, label="title", max_length=TITLE_MAX, multiline=False)
    return session.exec(
        select(Incident)
        .where(
            Incident.reporter_id == reporter,
            Incident.title == cleaned,
            col(Incident.declared_at) >= since,
        )
        .order_by(col(Incident.number).desc())
    ).first()


# --------------------------------------------------------------------------------------------
# Action items


def add_action_item(
    session: Session,
    policy: Policy,
    incident_id: int,
    text: str,
    *,
    actor: str,
    owner: str | None = None,
    due_on: date | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    body = clean_text(text, label="action item", max_length=ACTION_TEXT_MAX, required=True)
    actor = _user(actor)
    owner_id = _user(owner, "owner") if owner else None
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    assert incident.id is not None
    number = (
        session.exec(
            select(func.max(ActionItem.number)).where(ActionItem.incident_id == incident.id)
        ).one()
        or 0
    ) + 1
    item = ActionItem(
        incident_id=incident.id,
        number=number,
        text=body,
        owner_id=owner_id,
        due_on=due_on,
        created_at=now,
        created_by=actor,
    )
    session.add(item)
    session.flush()
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.ACTION_ITEM_ADDED,
        text=f"Action item {number}: {body}",
        actor=actor,
        now=now,
        key=key,
        data={
            "action_item": item.id,
            "number": number,
            "owner": owner_id,
            "due_on": due_on.isoformat() if due_on else None,
        },
    )
    return Change(incident, event, {"action_item": item})


def complete_action_item(
    session: Session,
    policy: Policy,
    incident_id: int,
    number: int,
    *,
    actor: str,
    done: bool = True,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Mark action item ``number`` done (or open again with ``done=False``)."""
    actor = _user(actor)
    now = _when(now, utcnow())
    incident, repeat = _begin_change(session, incident_id, key)
    if repeat:
        return repeat
    item = session.exec(
        select(ActionItem).where(ActionItem.incident_id == incident_id, ActionItem.number == number)
    ).first()
    if item is None:
        raise NotFound(f"{incident.ref} has no action item {number}.")
    wanted = "done" if done else "open"
    if item.status == wanted:
        return Change(incident, None, {"action_item": item})
    item.status = wanted
    item.completed_at = now if done else None
    item.completed_by = actor if done else None
    session.add(item)
    event = _append(
        session,
        policy,
        incident,
        kind=EventKind.ACTION_ITEM_COMPLETED if done else EventKind.ACTION_ITEM_REOPENED,
        text=f"Action item {number} {'done' if done else 'reopened'}: {item.text}",
        actor=actor,
        now=now,
        key=key,
        data={"action_item": item.id, "number": number},
    )
    return Change(incident, event, {"action_item": item})


# --------------------------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True)
class IncidentMetrics:
    """Durations derived from milestones; ``None`` where a milestone is missing (unknown, which
    is not the same as zero)."""

    time_to_detect: timedelta | None
    time_to_acknowledge: timedelta | None
    time_to_mitigate: timedelta | None
    time_to_resolve: timedelta | None
    duration: timedelta | None


def _between(start: datetime | None, end: datetime | None) -> timedelta | None:
    if start is None or end is None:
        return None
    return max(end - start, timedelta(0))


def incident_metrics(incident: Incident) -> IncidentMetrics:
    """Metrics as documented in the README:

    * time to detect: impact started -> detected
    * time to acknowledge: declared -> acknowledged
    * time to mitigate / resolve: start of impact -> mitigated / resolved, where the start is the
      earliest known of impact started, detected, declared
    * duration: start of impact -> closed
    """
    known = [
        t
        for t in (incident.impact_started_at, incident.detected_at, incident.declared_at)
        if t is not None
    ]
    start = min(known) if known else None
    return IncidentMetrics(
        time_to_detect=_between(incident.impact_started_at, incident.detected_at),
        time_to_acknowledge=_between(incident.declared_at, incident.acknowledged_at),
        time_to_mitigate=_between(start, incident.mitigated_at),
        time_to_resolve=_between(start, incident.resolved_at),
        duration=_between(start, incident.closed_at),
    )


def humanize_duration(value: timedelta | None) -> str:
    """``1h 5m``; ``unknown`` for a missing value; seconds only under a minute."""
    if value is None:
        return "unknown"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes and not days:
        parts.append(f"{minutes}m")
    return " ".join(parts) or "0m"
