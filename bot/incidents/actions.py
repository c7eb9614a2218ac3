"""Action items: follow-ups numbered 1, 2, 3... within an incident."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, select

from bot.config import Policy
from bot.errors import NotFound
from bot.incidents.text import ACTION_TEXT_MAX, clean_text, user_id
from bot.incidents.timeline import Change, append_event, begin_change
from bot.models import ActionItem, EventKind

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
    actor = user_id(actor)
    owner_id = user_id(owner, "owner") if owner else None
    incident, repeat, now = begin_change(session, incident_id, key, now)
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
    event = append_event(
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
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Mark action item ``number`` done; doing it again changes nothing."""
    actor = user_id(actor)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    item = session.exec(
        select(ActionItem).where(ActionItem.incident_id == incident_id, ActionItem.number == number)
    ).first()
    if item is None:
        raise NotFound(f"{incident.ref} has no action item {number}.")
    if item.status == "done":
        return Change(incident, None, {"action_item": item})
    item.status = "done"
    item.completed_at = now
    item.completed_by = actor
    session.add(item)
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.ACTION_ITEM_COMPLETED,
        text=f"Action item {number} done: {item.text}",
        actor=actor,
        now=now,
        key=key,
        data={"action_item": item.id, "number": number},
    )
    return Change(incident, event, {"action_item": item})
