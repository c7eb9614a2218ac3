"""Reading incidents: lookups by number and channel, lists, roles, the timeline."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from bot.config import COMMANDER, Policy
from bot.errors import InvalidInput, NotFound
from bot.incidents.text import TITLE_MAX, clean_text
from bot.keys import fit_key
from bot.models import ActionItem, EventKind, Incident, RoleAssignment, TimelineEvent

# --------------------------------------------------------------------------------------------
# Lookups


def get_incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"No incident with id {incident_id}.")
    return incident


REF_DIGITS = r"\d{1,100}"
"""The digits of an incident reference: any number someone types (one past ``NUMBER_MAX`` is
no incident's, and says so) and short enough to convert."""
_REF = re.compile(rf"^\s*(?:inc-?)?\s*#?({REF_DIGITS})\s*$", re.IGNORECASE)


def parse_incident_ref(text: str) -> int | None:
    """``INC-42``, ``inc42``, ``#42`` or ``42`` -> 42."""
    match = _REF.match(unicodedata.normalize("NFKC", text or ""))
    return int(match.group(1)) if match else None


NUMBER_MAX = 2**31 - 1
"""The largest incident number the database holds (a 32-bit integer column): a larger one is
no incident's, and PostgreSQL refuses to compare the column with it."""


def find_incident(session: Session, ref: str | int) -> Incident:
    """Find an incident by its number (``INC-42``, ``42``)."""
    number = ref if isinstance(ref, int) else parse_incident_ref(ref)
    if number is None:
        raise InvalidInput(f"{str(ref)[:40]!r} is not an incident number; write it like INC-42.")
    if not 0 < number <= NUMBER_MAX:
        raise NotFound(f"There is no incident INC-{number}.")
    incident = session.exec(select(Incident).where(Incident.number == number)).first()
    if incident is None:
        raise NotFound(f"There is no incident INC-{number}.")
    return incident


def find_incident_by_channel(session: Session, channel_id: str) -> Incident | None:
    return session.exec(select(Incident).where(Incident.slack_channel_id == channel_id)).first()


def find_incident_by_channel_name(session: Session, name: str) -> Incident | None:
    """The incident whose channel is named ``name`` (unique in a workspace at any moment; the
    newest incident if an archived channel's name was reused)."""
    return session.exec(
        select(Incident)
        .where(Incident.slack_channel_name == name)
        .order_by(col(Incident.number).desc())
    ).first()


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


def commander_or_reporter(session: Session, incident: Incident) -> str:
    """Who answers for the incident now: its commander, else (nobody holds the role) whoever
    reported it. Told what went wrong in Slack, or that its channel is lost."""
    assert incident.id is not None
    return current_roles(session, incident.id).get(COMMANDER) or incident.reporter_id


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


def earlier_event(session: Session, key: str | None) -> TimelineEvent | None:
    """The timeline event recorded with idempotency ``key``, if any."""
    if key is None:
        return None
    return session.exec(
        select(TimelineEvent).where(TimelineEvent.idempotency_key == fit_key(key))
    ).first()


def latest_events(
    session: Session, incident_id: int, kind: str, *, limit: int | None = None
) -> list[TimelineEvent]:
    """The incident's events of ``kind``, the last recorded first."""
    query = (
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id, TimelineEvent.kind == kind)
        .order_by(col(TimelineEvent.id).desc())
    )
    return list(session.exec(query if limit is None else query.limit(limit)).all())


def incident_by_key(session: Session, key: str) -> Incident | None:
    return session.exec(select(Incident).where(Incident.declare_key == fit_key(key))).first()


def current_assignment(session: Session, incident_id: int, role: str) -> RoleAssignment | None:
    return session.exec(
        select(RoleAssignment).where(
            RoleAssignment.incident_id == incident_id,
            RoleAssignment.role == role,
            col(RoleAssignment.unassigned_at).is_(None),
        )
    ).first()


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
        if not is_retracted(session, incident_id, event):
            return event
    return None


def is_retracted(session: Session, incident_id: int, event: TimelineEvent) -> bool:
    retractions = session.exec(
        select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id,
            TimelineEvent.kind == EventKind.RETRACTION,
            TimelineEvent.source_ref == f"event:{event.id}",
        )
    ).first()
    return retractions is not None


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
