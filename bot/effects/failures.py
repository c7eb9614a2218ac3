"""An effect that failed for good lands on its incident's timeline and is shown to the
commander (the reporter while nobody holds the role), in the transaction that records the
failure."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlmodel import Session

from bot.alerts.declaring import gave_up
from bot.alerts.model import PRINCIPAL_PREFIX
from bot.clock import utcnow
from bot.config import Policy
from bot.effects import kinds, store
from bot.effects.models import Effect
from bot.effects.store import Claimed
from bot.incidents.queries import commander_or_reporter, get_incident
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
    kinds.ALERTS_DECLARE: "declare the incident for alerts",
}
QUIET = frozenset({kinds.REPLY})
"""Failures nobody needs to be told about twice: a reply that could not be delivered."""


def describe(kind: str) -> str:
    return WHAT.get(kind, kind)


def on_effect_failed(
    session: Session,
    policy: Policy,
    effect: Effect,
    error: str,
    *,
    incident_id: int | None = None,
    person: str | None = None,
    problem: str | None = None,
) -> None:
    """Record the failure on its incident's timeline and tell someone, once per problem.
    ``problem`` names what the failure is about when it is not only this effect's (the
    channel archived: every effect in it fails alike); by default, what failed and why.

    ``incident_id`` and ``person``, for an effect written before anything was known but the
    request itself (a recorded Slack request): the incident it was about, if any, and who
    made it, as the adapter reads them from the request. They are told; otherwise the
    commander (the reporter while nobody holds the role) is, once per incident for the same
    problem: every change to an incident whose channel was archived fails the same way, and
    the timeline records each."""
    incident_id = effect.incident_id or incident_id
    if effect.kind in QUIET:
        return
    if effect.kind == kinds.ALERTS_DECLARE:
        gave_up(session, policy, int(effect.data["group"]), int(effect.data["episode"]), error)
        return
    if effect.kind == kinds.POST and (effect.data.get("notice") or {}).get("type") == "failure":
        return  # the notice about a failure failed: do not loop
    now = utcnow()
    what = describe(effect.kind)
    notice: dict[str, Any] = {"type": "failure", "what": what, "error": error[:1000]}
    key = f"effect-failed:{effect.id}:{now.isoformat()}:notice"
    if incident_id is not None:
        incident = get_incident(session, incident_id)
        record_timeline_event(
            session,
            policy,
            incident_id,
            kind=EventKind.SLACK_FAILED,
            text=f"Firebreak could not {what}: {error}"[:2000],
            data={"effect": effect.id, "effect_kind": effect.kind, "error": error[:500]},
            key=f"effect-failed:{effect.id}:{now.isoformat()}",
            now=now,
        )
        notice.update(incident=incident.ref, channel=incident.slack_channel_id)
        if person is None:
            person = commander_or_reporter(session, incident)
            about = problem or hashlib.sha256(f"{what}\n{error}".encode()).hexdigest()[:16]
            key = f"effect-failed:{incident_id}:{about}:notice"
    if not person or person.startswith(PRINCIPAL_PREFIX):
        return
    store.enqueue(
        session,
        kind=kinds.POST,
        key=key,
        data={"to": person, "notice": notice, store.MOMENT: True},
        incident_id=incident_id,
        now=now,
    )


def on_effect_recovered(session: Session, policy: Policy, effect: Claimed) -> None:
    """An effect that had failed for good (its failure is on the timeline) was done after all:
    the timeline says so, once per time it was asked for again."""
    if effect.incident_id is None or effect.kind in QUIET:
        return
    asked = str(effect.result.get(store.RETRIED))
    record_timeline_event(
        session,
        policy,
        effect.incident_id,
        kind=EventKind.SLACK_RECOVERED,
        text=f"Firebreak could {describe(effect.kind)} after all, asked again after it had failed",
        data={"effect": effect.id, "effect_kind": effect.kind},
        key=f"effect-recovered:{effect.id}:{asked}",
    )
