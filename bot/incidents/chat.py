"""Where the incident lives in chat: its channel and the ids of the messages that show it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.clock import utcnow
from bot.config import Policy
from bot.errors import InvalidInput
from bot.incidents.text import when
from bot.incidents.timeline import Change, append_event, lock_incident
from bot.models import EventKind, Incident

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
    incident = lock_incident(session, incident_id)
    now = when(now, utcnow())
    if incident.slack_channel_id == channel_id:
        return Change(incident, None)
    if incident.slack_channel_id is not None:
        raise InvalidInput(f"{incident.ref} already has a channel.")
    incident.slack_channel_id = channel_id
    incident.slack_channel_name = channel_name
    event = append_event(
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
