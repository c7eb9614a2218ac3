"""Triage: what people decide, with the buttons of a triage message, for a group of alerts
that opened no incident by itself (``[alerts] declare = "triage"``): declare one, attach the
group to an incident, or ignore it. Each decision edits the triage message to say what was
decided and by whom; a decision on a group decided already is refused, saying where it is."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot import incidents as core
from bot.alerts.changes import as_moved, names
from bot.alerts.declaring import alerts_since, group_plan, impact_started
from bot.alerts.held import carry_over
from bot.alerts.intake import (
    _all_resolved,
    _announce,
    _declare,
    firing_again,
    lock_group,
)
from bot.alerts.model import AlertMessage, Status
from bot.alerts.models import AlertGroup, AlertNotice, AlertRecord
from bot.alerts.notices import TRIAGE, Answered, answer_triage
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.errors import InvalidInput
from bot.models import EventKind, Incident, TimelineEvent
from bot.runbooks.catalog import RunbookCatalog


def triage_declare(
    session: Session,
    policy: Policy,
    group_id: int,
    *,
    actor: str,
    catalog: RunbookCatalog | None = None,
    now: datetime | None = None,
) -> Incident:
    """Declare an incident for a group waiting in triage (or return the one it already has).
    It opens with the runbook its alerts named when they came in (found in ``catalog``),
    suggested or started as the policy says, as an incident the alerts declared does."""
    now = now or utcnow()
    group = lock_group(session, group_id)
    declared = _declared_by(session, group, actor)
    if declared is not None:
        return declared  # this person's Declare, processed again (its answer was lost)
    _undecided(session, group)
    rows = session.exec(
        select(AlertRecord)
        .where(AlertRecord.group_id == group_id, AlertRecord.status == Status.FIRING.value)
        .order_by(col(AlertRecord.id))
    ).all()
    message = AlertMessage(source=group.source, group_key=group.group_key, title=group.title)
    plan = group_plan(policy, group, list(rows), catalog)
    # Detected when the alerts came (the request was asked then), not at the click; the impact
    # started when they started firing.
    since = _asked_at(session, group) or now
    incident = _declare(
        session,
        policy,
        group,
        message,
        plan,
        len(rows),
        reporter=actor,
        now=now,
        invite_also=(actor,),
        since=since,
        started=impact_started(alerts_since(session, group_id, since), since),
        description=next((r.description for r in rows if r.description), None),
    )
    assert incident.id is not None
    firing = (
        f"{group.firing_count} firing"
        if group.firing_count
        else "none firing: every alert resolved while it waited in triage"
    )
    _record(
        session,
        policy,
        group,
        incident.id,
        f"Declared from triage: {group.title} ({firing})",
        actor=actor,
        key=_declare_key(group),
        now=now,
    )
    _announce(session, policy, group, incident, plan, group.firing_count, now)
    if not group.firing_count and group.alert_count:
        # Every alert resolved while it waited: asked (or mitigated) as when the alerts of an
        # incident they declared all resolve.
        _all_resolved(session, policy, group, incident, now)
    _answer_triage(session, group, f"Declared {incident.ref}", actor, incident.id, now)
    return incident


def _asked_at(session: Session, group: AlertGroup) -> datetime | None:
    """When this episode of the group was put to triage: when its alerts came."""
    asked = session.exec(
        select(AlertNotice.created_at).where(
            AlertNotice.dedupe_key == f"triage:{group.id}:{group.episode}"
        )
    ).first()
    return as_utc(asked) if asked is not None else None


def _record(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    incident_id: int,
    text: str,
    *,
    actor: str,
    key: str,
    now: datetime,
) -> None:
    """A triage decision on the incident's timeline, by whom, with the group's count."""
    core.record_timeline_event(
        session,
        policy,
        incident_id,
        kind=EventKind.ALERT_FIRING,
        text=text,
        actor=actor,
        data={"source": group.source, "group_id": group.id, "firing": group.firing_count},
        key=key,
        now=now,
    )


def _declare_key(group: AlertGroup) -> str:
    """The timeline key of a Declare from triage: one per episode of the group."""
    return f"alerts:triage-declare:{group.id}:{group.episode}"


def _declared_by(session: Session, group: AlertGroup, actor: str) -> Incident | None:
    """The incident ``actor`` declared for this episode of the group from triage, if any."""
    if group.incident_id is None:
        return None
    mine = session.exec(
        select(TimelineEvent.id).where(
            TimelineEvent.incident_id == group.incident_id,
            TimelineEvent.idempotency_key == _declare_key(group),
            TimelineEvent.actor_id == actor,
        )
    ).first()
    return core.get_incident(session, group.incident_id) if mine is not None else None


def _undecided(session: Session, group: AlertGroup) -> None:
    """Refuse a triage decision on a group decided already (another person clicked first, or
    an older message's button): the answer says where the alerts are, or that they were
    ignored."""
    if group.incident_id is not None:
        ref = core.get_incident(session, group.incident_id).ref
        raise InvalidInput(f"These alerts already belong to {ref}.")
    if group.disposition == "ignored":
        raise InvalidInput(
            "These alerts were ignored; they come back to triage if they fire again after "
            "resolving. To open an incident for them now: `/incident <title>`."
        )


def _answer_triage(
    session: Session,
    group: AlertGroup,
    outcome: str,
    actor: str,
    incident_id: int | None,
    now: datetime,
) -> None:
    """The group's triage messages say what was decided, and by whom, instead of offering
    buttons."""
    assert group.id is not None
    answer_triage(
        session,
        Answered(
            group_id=group.id,
            source=group.source,
            title=group.title,
            outcome=outcome,
            actor=actor,
            question=TRIAGE,
            incident_id=incident_id,
        ),
        now=now,
    )


def triage_attach(
    session: Session,
    policy: Policy,
    group_id: int,
    incident_ref: str | int,
    *,
    actor: str,
    now: datetime | None = None,
) -> Incident:
    """Attach a group waiting in triage to an existing incident, never a closed one (a stale
    button: refused, the group still waiting). Its firing alerts are alerts firing in the
    incident, as its own firing again are (``firing_again``)."""
    now = now or utcnow()
    group = lock_group(session, group_id)
    incident = core.find_incident(session, incident_ref)
    assert incident.id is not None and group.id is not None
    _undecided(session, group)
    if policy.phase_of(incident.status) == "closed":
        raise InvalidInput(
            f"{incident.ref} is closed: a closed incident is never reused. "
            "Declare a new incident for these alerts instead."
        )
    group.incident_id = incident.id
    group.disposition = "incident"
    text = f"Alerts attached from triage: {group.title} ({group.firing_count} firing)"
    _record(
        session,
        policy,
        group,
        incident.id,
        text,
        actor=actor,
        key=f"alerts:attach:{group.id}:{group.episode}",
        now=now,
    )
    carry_over(session, policy, group, incident, now)
    if group.firing_count:
        rows = session.exec(
            select(AlertRecord).where(
                AlertRecord.group_id == group.id,
                AlertRecord.status == Status.FIRING.value,
                col(AlertRecord.dropped).is_(False),
            )
        ).all()
        fired = (names([as_moved(r) for r in rows]), f"alerts:attach:{group.id}:{group.episode}")
        firing_again(session, policy, group, incident, fired, True, now)
    _answer_triage(session, group, f"Attached to {incident.ref}", actor, incident.id, now)
    return incident


def triage_ignore(
    session: Session,
    group_id: int,
    *,
    actor: str,
    now: datetime | None = None,
    seen_firing: int | None = None,
) -> AlertGroup:
    """Ignore a group waiting in triage until it fires again after its flap window.
    ``seen_firing``: how many alerts the request clicked said were firing; more firing now
    (they fired again since, perhaps a new episode's request replaced it) is refused: nobody
    ignores alerts they have not seen fire."""
    group = lock_group(session, group_id)
    if group.disposition == "ignored":
        return group  # ignored already (a double click, or processed again): the same answer
    _undecided(session, group)
    if seen_firing is not None and group.firing_count > seen_firing:
        raise InvalidInput(
            f"These alerts fired again since your copy of the request ({group.firing_count} "
            "firing now, not "
            f"{seen_firing}): nothing was ignored. Decide on the request as it is now."
        )
    group.disposition = "ignored"
    _answer_triage(session, group, "Ignored", actor, None, now or utcnow())
    return group
