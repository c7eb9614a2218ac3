"""An effect that failed for good lands on its incident's timeline and is shown to the
commander (the reporter while nobody holds the role), in the transaction that records the
failure."""

from __future__ import annotations

from sqlmodel import Session

from bot.clock import utcnow
from bot.config import COMMANDER, Policy
from bot.effects import kinds, store
from bot.effects.models import Effect
from bot.incidents.queries import current_roles, get_incident
from bot.incidents.timeline import record_timeline_event
from bot.models import EventKind

WHAT = {
    kinds.CREATE_CHANNEL: "create the incident channel",
    kinds.INVITE: "invite people to the incident channel",
    kinds.REFRESH: "update the pinned summary",
    kinds.ANNOUNCE: "announce the incident",
    kinds.POST: "post a message",
    kinds.UPDATE: "edit a message",
    kinds.RUNBOOK_MESSAGE: "update the runbook message",
    kinds.POSTMORTEM_DRAFT: "draft the postmortem",
    kinds.POSTMORTEM_UPLOAD: "upload the postmortem draft",
    kinds.SLACK_REQUEST: "finish a Slack request",
}
QUIET = frozenset({kinds.REPLY})
"""Failures nobody needs to be told about twice: a reply that could not be delivered."""


def describe(kind: str) -> str:
    return WHAT.get(kind, kind)


def on_effect_failed(session: Session, policy: Policy, effect: Effect, error: str) -> None:
    if effect.incident_id is None or effect.kind in QUIET:
        return
    if effect.kind == kinds.POST and (effect.data.get("notice") or {}).get("type") == "failure":
        return  # the notice about a failure failed: do not loop
    now = utcnow()
    incident = get_incident(session, effect.incident_id)
    text = f"Firebreak could not {describe(effect.kind)}: {error}"
    record_timeline_event(
        session,
        policy,
        effect.incident_id,
        kind=EventKind.SLACK_FAILED,
        text=text[:2000],
        data={"effect": effect.id, "effect_kind": effect.kind, "error": error[:500]},
        key=f"effect-failed:{effect.id}:{now.isoformat()}",
        now=now,
    )
    person = current_roles(session, effect.incident_id).get(COMMANDER) or incident.reporter_id
    if not person or person.startswith("alerts:"):
        return
    store.enqueue(
        session,
        kind=kinds.POST,
        key=f"effect-failed:{effect.id}:{now.isoformat()}:notice",
        data={
            "to": person,
            "notice": {
                "type": "failure",
                "what": describe(effect.kind),
                "error": error[:1000],
                "incident": incident.ref,
                "channel": incident.slack_channel_id,
            },
        },
        incident_id=effect.incident_id,
        now=now,
    )
