"""Where the incident lives in chat: its channel and the ids of the messages that show it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from bot.clock import utcnow
from bot.config import Policy
from bot.errors import InvalidInput
from bot.incidents.lifecycle import is_active
from bot.incidents.queries import commander_or_reporter
from bot.incidents.text import clean_text, user_id, when
from bot.incidents.timeline import Change, append_event, begin_change, lock_incident
from bot.models import EventKind, Incident, RunbookRun

# --------------------------------------------------------------------------------------------
# Slack bookkeeping: where the incident lives in Slack. Not incident state, except the channel.


def attach_channel(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    channel_id: str,
    channel_name: str,
    actor: str | None,
    now: datetime | None = None,
) -> Change:
    """Record the incident's Slack channel (once; a second attach with another id is refused).
    ``actor`` ``None``: Firebreak made it, as its own entries say (never counted a responder)."""
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


def channel_archived(incident: Incident) -> bool:
    """Whether someone archived the incident's channel (nothing can be posted in it)."""
    return bool(incident.slack_state.get("archived"))


def _older(incident: Incident, fact: str, as_of: datetime | None) -> bool:
    """Whether news of ``fact`` dated ``as_of`` is older than what is known of it: chat
    platforms redeliver an event whose first delivery failed minutes later, after newer ones
    (an archive arriving after the unarchive that followed it). The newest news wins."""
    known = incident.slack_state.get(f"{fact}_as_of")
    return as_of is not None and known is not None and as_of < datetime.fromisoformat(known)


def record_channel_archived(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    archived: bool,
    actor: str | None,
    key: str | None,
    now: datetime | None = None,
    as_of: datetime | None = None,
) -> Change:
    """Someone archived (or unarchived) the incident's channel in chat: remember it and put
    it on the timeline, once per ``key``; a channel already in that state changes nothing, nor
    does news older (``as_of``: when it happened) than what is known."""
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    if _older(incident, "archived", as_of):
        return Change(incident, None)
    dated = {"archived_as_of": as_of.isoformat()} if as_of is not None else {}
    if channel_archived(incident) == archived:
        if dated:
            incident.slack_state = {**incident.slack_state, **dated}
        return Change(incident, None)
    incident.slack_state = {**incident.slack_state, "archived": archived, **dated}
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.CHANNEL_ARCHIVED if archived else EventKind.CHANNEL_UNARCHIVED,
        text=f"Channel #{incident.slack_channel_name} {'archived' if archived else 'unarchived'}",
        actor=user_id(actor) if actor else None,
        now=now,
        key=key,
        data={"channel": incident.slack_channel_id},
    )
    return Change(incident, event)


def record_channel_lost(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    deleted: bool,
    key: str | None,
    now: datetime | None = None,
    tell: bool = True,
) -> Change:
    """Firebreak lost the incident's channel in chat: it was deleted, or Firebreak was removed
    from it. On the timeline, once per ``key``, naming who is told (the commander, else the
    reporter) while the incident is active: nothing posted there will reach anyone. ``tell``
    False: the failure that revealed it is told already."""
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    lost = "deleted" if deleted else "removed"
    if channel_lost(incident) in (lost, "deleted"):
        # Known already: Slack tells an app removed from a channel twice (``channel_left``,
        # then ``member_left_channel`` of its own user), and a deleted channel is left too.
        return Change(incident, None)
    incident.slack_state = {**incident.slack_state, "lost": lost}
    name = f"#{incident.slack_channel_name}"
    # Told while it matters: deleting the channels of closed incidents is tidying up.
    told = (
        commander_or_reporter(session, incident) if tell and is_active(policy, incident) else None
    )
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.CHANNEL_LOST,
        text=f"Channel {name} deleted" if deleted else f"Firebreak was removed from {name}",
        actor=None,
        now=now,
        key=key,
        data={
            "channel": incident.slack_channel_id,
            "deleted": deleted,
            "tell": told,
        },
    )
    return Change(incident, event)


def channel_lost(incident: Incident) -> str | None:
    """``"deleted"`` when the incident's channel was deleted, ``"removed"`` while Firebreak is
    out of it, else ``None``: nothing Firebreak posts there reaches anyone."""
    lost = incident.slack_state.get("lost")
    return str(lost) if lost in ("deleted", "removed") else None


def channel_deleted(incident: Incident) -> bool:
    """The incident's channel was deleted: nothing can be posted, edited or pinned there again
    (a channel Firebreak was removed from, or one archived, can come back)."""
    return channel_lost(incident) == "deleted"


def channel_unusable(incident: Incident) -> bool:
    """Nothing Firebreak posts in the incident's channel reaches anyone: archived, deleted, or
    Firebreak removed from it."""
    return channel_archived(incident) or channel_lost(incident) is not None


def record_channel_regained(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    key: str | None,
    now: datetime | None = None,
) -> Change:
    """Firebreak was invited back into the incident's channel: on the timeline; what failed
    while it was out is tried again (``effects.triggers``)."""
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    if channel_lost(incident) != "removed":
        return Change(incident, None)
    incident.slack_state = {k: v for k, v in incident.slack_state.items() if k != "lost"}
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.CHANNEL_REGAINED,
        text=f"Firebreak is back in #{incident.slack_channel_name}",
        actor=None,
        now=now,
        key=key,
        data={"channel": incident.slack_channel_id},
    )
    return Change(incident, event)


def rename_channel(
    session: Session,
    policy: Policy,
    incident_id: int,
    name: str,
    *,
    actor: str | None = None,
    key: str | None,
    now: datetime | None = None,
    as_of: datetime | None = None,
) -> Change:
    """The incident's channel was renamed in chat: store its new name, on the timeline; news
    older (``as_of``) than the name known changes nothing."""
    name = clean_text(name, label="channel name", max_length=80, multiline=False, required=True)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    if _older(incident, "name", as_of):
        return Change(incident, None)
    if as_of is not None:
        incident.slack_state = {**incident.slack_state, "name_as_of": as_of.isoformat()}
    if incident.slack_channel_name == name:
        return Change(incident, None)
    before = incident.slack_channel_name
    incident.slack_channel_name = name
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.CHANNEL_RENAMED,
        text=f"Channel renamed to #{name}",
        actor=user_id(actor) if actor else None,
        now=now,
        key=key,
        data={"channel": incident.slack_channel_id, "name": name, "before": before},
    )
    return Change(incident, event)


def change_channel_id(
    session: Session,
    policy: Policy,
    incident_id: int,
    new_id: str,
    *,
    key: str | None,
    now: datetime | None = None,
) -> Change:
    """Slack gave the incident's channel a new id (a private channel shared through Slack
    Connect keeps its history under a new id, for good): the incident and its runbook runs
    follow it, on the timeline. Without this, the channel was no longer the incident's: its
    commands answered "not an incident channel" and a title typed there declared another."""
    new_id = clean_text(new_id, label="channel id", max_length=32, multiline=False, required=True)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    before = incident.slack_channel_id
    if before == new_id:
        return Change(incident, None)
    incident.slack_channel_id = new_id
    session.execute(
        update(RunbookRun)
        .where(col(RunbookRun.incident_id) == incident_id)
        .where(col(RunbookRun.slack_channel_id) == before)
        .values(slack_channel_id=new_id)
        .execution_options(synchronize_session=False)
    )
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.CHANNEL_ID_CHANGED,
        text=f"Slack gave #{incident.slack_channel_name} a new channel id",
        actor=None,
        now=now,
        key=key,
        data={"channel": new_id, "before": before},
    )
    return Change(incident, event)


def record_channel_shared(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    shared: bool,
    with_team: str,
    key: str | None,
    removed: bool = False,
    now: datetime | None = None,
    as_of: datetime | None = None,
) -> Change:
    """The incident's channel was shared with another organisation (Slack Connect), or one was
    ``removed`` from it, after which it is still ``shared`` or no longer: on the timeline,
    naming the organisation, and the commander is told of a share while the incident is
    active. People outside the company now read what Firebreak posts there. News older
    (``as_of``) than what is known changes nothing."""
    team = clean_text(with_team, label="team", max_length=64, multiline=False)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    if _older(incident, "shared", as_of):
        return Change(incident, None)
    dated = {"shared_as_of": as_of.isoformat()} if as_of is not None else {}
    incident.slack_state = {**incident.slack_state, "shared": shared, **dated}
    tell = commander_or_reporter(session, incident) if is_active(policy, incident) else None
    name = f"#{incident.slack_channel_name}"
    other = f" ({team})" if team else ""
    if not removed:
        text = f"{name} was shared with another organisation{other}"
    elif shared:
        text = (
            f"{name}: an organisation{other} was removed from it; it is still shared with "
            "another organisation"
        )
    else:
        text = f"{name} is no longer shared with another organisation{other}"
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.CHANNEL_SHARED,
        text=text,
        actor=None,
        now=now,
        key=key,
        data={
            "channel": incident.slack_channel_id,
            "shared": shared,
            "removed": removed,
            "team": team,
            "tell": tell,
        },
    )
    return Change(incident, event)


def channel_shared(incident: Incident) -> bool:
    """Whether the incident's channel is shared with another organisation (Slack Connect)."""
    return bool(incident.slack_state.get("shared"))


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
