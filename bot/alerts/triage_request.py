"""The triage request of a group waiting for people to decide (``[alerts] declare = "triage"``):
one live request per group, that says what its alerts do now.

``ask`` posts it when the group opens in triage; a request of an earlier episode of the group
still waiting (its alerts resolved, then fired again after the flap window, with nobody
deciding) is edited to say it was superseded, without buttons, so the triage channel never
offers two decisions on one group. ``restate`` edits the request while it waits when its
alerts resolve or fire again (``0 firing: every alert resolved while it waited``, buttons kept:
people may still declare or ignore). Both are effects written with the change, under the
group's lock, so each is done once whatever the number of replicas.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlmodel import Session

from bot import incidents as core
from bot.alerts.models import AlertGroup
from bot.alerts.notices import (
    TRIAGE,
    TYPE_PREFIX,
    Answered,
    TriageRequest,
    answer_notice,
    notice_from,
    queue_notice,
    restate,
    waiting_triage,
)
from bot.config import Policy

SUPERSEDED = "Superseded: these alerts fired again after resolving; decide on the newer request"
"""What an earlier episode's request says once a newer one is posted."""


def open_incidents(session: Session, policy: Policy) -> list[str]:
    """Active, non-private incidents a triage request offers to attach to (private ones are
    not named in a shared channel)."""
    active = core.list_incidents(session, policy, phases=("active",), limit=10)
    return [i.ref for i in active if not i.private][:5]


def ask(
    session: Session, policy: Policy, group: AlertGroup, severity: str, firing: int, now: datetime
) -> None:
    """Post the group's triage request for this episode; earlier ones still waiting say they
    were superseded."""
    assert group.id is not None
    key = f"triage:{group.id}:{group.episode}"
    for row in waiting_triage(session, group.id):
        if row.dedupe_key != key:
            title = str(row.payload.get("title") or group.title)
            superseded = Answered(group.id, group.source, title, SUPERSEDED, question=TRIAGE)
            answer_notice(session, row.dedupe_key, superseded, now=now)
    request = TriageRequest(
        group_id=group.id,
        channel=policy.alerts.triage_channel or "",
        source=group.source,
        title=group.title,
        severity=severity,
        firing=firing,
        open_incidents=open_incidents(session, policy),
    )
    queue_notice(session, request, dedupe_key=key, now=now)


def refresh(session: Session, group: AlertGroup, firing: int, now: datetime) -> None:
    """The group's waiting request says ``firing`` (its alerts resolved or fired again), if it
    says another count."""
    assert group.id is not None
    for row in waiting_triage(session, group.id):
        request = notice_from({**row.payload, "type": TYPE_PREFIX + TRIAGE})
        if isinstance(request, TriageRequest) and request.firing != firing:
            restate(session, row, replace(request, firing=firing), now=now)
