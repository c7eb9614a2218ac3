"""The incident lifecycle: declare, severity, status, acknowledgement, roles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from bot.clock import as_utc, said_at, utcnow
from bot.config import COMMANDER, Policy, StatusPolicy
from bot.errors import InvalidInput, InvalidTransition, NotAllowed
from bot.incidents.numbers import counted_once_committed, give_back_number, take_next_number
from bot.incidents.queries import (
    current_assignment,
    current_roles,
    get_incident,
    incident_by_key,
    latest_events,
)
from bot.incidents.text import (
    SERVICE_MAX,
    SUMMARY_MAX,
    TEXT_MAX,
    TITLE_MAX,
    clean_text,
    user_id,
    when,
)
from bot.incidents.timeline import Change, append_event, begin_change, require_open
from bot.keys import fit_key
from bot.markup import escape_mrkdwn
from bot.models import EventKind, Incident, RoleAssignment, TimelineEvent

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
    invite: Sequence[str] = (),
    now: datetime | None = None,
) -> Change:
    """Open a new incident with the next number. A repeated ``key`` returns the same incident.
    ``invite``: the people its channel is created with (the reporter first)."""
    given, now = now, when(now, utcnow())
    title = clean_text(title, label="title", max_length=TITLE_MAX, multiline=False, required=True)
    summary = clean_text(summary, label="summary", max_length=SUMMARY_MAX)
    service_text = clean_text(service, label="service", max_length=SERVICE_MAX, multiline=False)
    reporter = user_id(reporter, "reporter")
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
        key = fit_key(key)
        existing = incident_by_key(session, key)
        if existing is not None:
            return Change(existing, None, {"repeat": True})

    # Taking a number locks the counter row until the commit, which serialises concurrent
    # declares: a repeat of the same key that was committed while we waited is seen here (and
    # its number given back, so numbers stay gap-free).
    number = take_next_number(session)
    if key is not None:
        existing = incident_by_key(session, key)
        if existing is not None:
            give_back_number(session)
            return Change(existing, None, {"repeat": True})

    # Read again now that the number is ours, so that incidents are stamped in number order.
    now = when(given, utcnow())
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
        slack_state={"invite": list(dict.fromkeys(invite))} if invite else {},
        impact_started_at=impact,
        detected_at=detected,
        declared_at=now,
        updated_at=now,
    )
    session.add(incident)
    session.flush()
    counted_once_committed(session, sev.key)
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.DECLARED,
        text=f"{incident.ref} declared as {sev.key}: {title}",
        actor=reporter,
        now=now,
        key=f"declare:{key}" if key else None,
        first=True,
        data={
            "severity": sev.key,
            "status": incident.status,
            "private": private,
            "service": incident.service,
            # Chained with the rest: the times the figures (time to detect, to mitigate, ...)
            # are counted from.
            "impact_started_at": impact.isoformat() if impact else None,
            "detected_at": detected.isoformat() if detected else None,
        },
    )
    return Change(incident, event)


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
    seen: str | None = None,
) -> Change:
    """``seen``: the severity the person was shown when they chose (a summary's menu). When it
    has changed since, nothing is changed: they chose against a severity that is gone."""
    sev = policy.find_severity(severity)
    if sev is None:
        raise InvalidInput(_unknown("severity", severity, [s.key for s in policy.severities]))
    actor = user_id(actor)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    require_open(policy, incident, "change its severity")
    if incident.severity == sev.key:
        return Change(incident, None)
    if seen is not None and seen != incident.severity:
        latest = _latest_change(session, incident, EventKind.SEVERITY_CHANGED)
        # Someone else changed it since their copy was made: they chose without seeing that.
        # Their own change they know of (a quick correction of their own choice goes through).
        if latest is None or latest.actor_id != actor:
            raise InvalidTransition(
                f"{incident.ref} is {incident.severity} now, not {seen[:20]} as your copy "
                f"showed{_changed_by(latest)}: nothing changed. If you still mean {sev.key}: "
                f"`/incident {incident.ref} sev {sev.key}`."
            )
    previous = incident.severity
    incident.severity = sev.key
    event = append_event(
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


def _latest_change(session: Session, incident: Incident, kind: EventKind) -> TimelineEvent | None:
    assert incident.id is not None
    found = latest_events(session, incident.id, kind, limit=1)
    return found[0] if found else None


def _changed_by(latest: TimelineEvent | None) -> str:
    """`` (changed by @x at 03:12 UTC)`` from the incident's latest change, if any."""
    if latest is None:
        return ""
    by = f" by <@{latest.actor_id}>" if latest.actor_id else ""
    return f" (changed{by} {said_at(latest.occurred_at)})"


def allowed_next_statuses(policy: Policy, incident: Incident) -> list[StatusPolicy]:
    current = policy.find_status(incident.status)
    if current is None:  # a status removed from the policy: allow every status
        return [s for s in policy.statuses if s.key != incident.status]
    return [policy.status(key) for key in current.next]


def _stale_status(
    incident: Incident,
    policy: Policy,
    target: StatusPolicy,
    seen: str,
    latest: TimelineEvent | None,
) -> InvalidTransition:
    """A status picked on a copy of the summary that showed ``seen``, out of date since."""
    now_status = policy.find_status(incident.status)
    was = policy.find_status(seen)
    return InvalidTransition(
        f"{incident.ref} is {_name(now_status) if now_status else incident.status} now, "
        f"not {_name(was) if was else escape_mrkdwn(seen[:20])} as your copy showed"
        f"{_changed_by(latest)}: nothing changed. If you still mean {_name(target)}, "
        "pick it again from the summary as it is now."
    )


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
    seen: str | None = None,
    may_reopen: bool = True,
) -> Change:
    """Move the incident to ``status`` if the policy allows it from the current status.

    Entering a status with a milestone stamps it the first time (``mitigated_at`` ...).
    Moving from a resolved/closed status back to an active one is a reopen: the resolved and
    closed stamps are cleared, the earlier ones stay on the timeline; so is a mitigated stamp
    that only the resolve implied (stamped with it), while a mitigation before it stays.

    ``seen``: the status the person was shown when they chose (a summary's menu). When someone
    else changed it since, nothing is changed: a pick on an old copy must not undo a resolve
    or reopen a closed incident.

    ``may_reopen``: whether the actor may reopen it (``[access] reopen``), decided here, under
    the incident's lock, from where it stands: ``ReopenRefused`` when the move would reopen
    it, or take a closed incident out of its closed status."""
    target = policy.find_status(status)
    if target is None:
        raise InvalidInput(_unknown("status", status, [s.key for s in policy.statuses]))
    actor = user_id(actor)
    note = clean_text(text, label="note", max_length=TEXT_MAX)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    if incident.status == target.key:
        return Change(incident, None)
    previous = policy.find_status(incident.status)
    reopened = previous is not None and previous.phase != "active" and target.phase == "active"
    unclosed = previous is not None and previous.phase == "closed" and target.phase != "closed"
    if (reopened or unclosed) and not may_reopen:
        raise ReopenRefused(f"{incident.ref} is {_name(previous) if previous else incident.status}")
    stale = seen is not None and seen != incident.status
    latest = _latest_change(session, incident, EventKind.STATUS_CHANGED) if stale else None
    if stale and (latest is None or latest.actor_id != actor):
        raise _stale_status(incident, policy, target, seen or "", latest)
    allowed = allowed_next_statuses(policy, incident)
    if target.key not in {s.key for s in allowed}:
        choices = ", ".join(s.key for s in allowed) or "none"
        raise InvalidTransition(
            f"{incident.ref} is {incident.status}; it cannot move to {target.key}. "
            f"From {incident.status} it can move to: {choices}."
        )
    if stale and reopened:
        # One's own change one may correct from one's copy; never a reopen, unseen by all.
        raise _stale_status(incident, policy, target, seen or "", latest)
    was = incident.status  # kept as stored: a status the policy no longer has is still named
    incident.status = target.key
    if unclosed:
        incident.closed_at = None  # out of its closed status: closed again later, stamped again
    if reopened:
        if incident.mitigated_at is not None and incident.mitigated_at == incident.resolved_at:
            incident.mitigated_at = None  # only the resolve said so, and the impact is back
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
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.STATUS_CHANGED,
        text=(
            # Said with the names people see on the summary ("Triage → Monitoring").
            f"{incident.ref} {verb}: {_name(previous) if previous else escape_mrkdwn(was)} → "
            f"{_name(target)}" + (f" — {note}" if note else "")
        ),
        actor=actor,
        now=now,
        key=key,
        data={
            "from": previous.key if previous else was,
            "to": target.key,
            "phase": target.phase,
            "reopened": reopened,
            **({"note": note} if note else {}),
        },
    )
    return Change(
        incident, event, {"from": previous.key if previous else was, "reopened": reopened}
    )


def _name(status: StatusPolicy) -> str:
    return escape_mrkdwn(status.label)


def _status_in_phase(policy: Policy, phase: str) -> StatusPolicy:
    return next(s for s in policy.statuses if s.phase == phase)


def can_resolve(policy: Policy, incident: Incident) -> bool:
    """Whether ``resolve_incident`` may move the incident from where it stands."""
    resolved = _status_in_phase(policy, "resolved")
    return resolved.key in {s.key for s in allowed_next_statuses(policy, incident)}


def can_close(policy: Policy, incident: Incident) -> bool:
    """Whether ``close_incident`` may close the incident from where it stands (an active one
    through the resolved status, as it does)."""
    allowed = {s.key for s in allowed_next_statuses(policy, incident)}
    closed, resolved = _status_in_phase(policy, "closed"), _status_in_phase(policy, "resolved")
    if closed.key in allowed:
        return True
    current = policy.find_status(incident.status)
    through = current is not None and current.phase == "active" and resolved.key in allowed
    return through and closed.key in resolved.next


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
        raise InvalidInput(
            "This team's statuses have none for mitigated: move the incident with the "
            "summary's status menu, or `/incident status` and the status's name."
        )
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
    seen: str | None = None,
) -> Change:
    """``seen``: the status on the summary whose Resolve was clicked (see ``change_status``)."""
    return change_status(
        session,
        policy,
        incident_id,
        _status_in_phase(policy, "resolved").key,
        actor=actor,
        text=text,
        key=key,
        now=now,
        seen=seen,
    )


def close_incident(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
    seen: str | None = None,
) -> Change:
    """Close the incident. An active incident (a false alarm, say) is resolved first, so the
    timeline shows both steps and the resolved milestone is set. ``seen``: the status on the
    summary whose Close was clicked (see ``change_status``)."""
    incident = get_incident(session, incident_id)
    current = policy.find_status(incident.status)
    closed = _status_in_phase(policy, "closed")
    resolved = _status_in_phase(policy, "resolved")
    stale = seen is not None and seen != incident.status
    if not stale and closed.key != incident.status and not can_close(policy, incident):
        # Said before anything moves: a resolve that the close then undoes is never shown.
        choices = ", ".join(s.key for s in allowed_next_statuses(policy, incident)) or "none"
        raise InvalidTransition(
            f"{incident.ref} is {incident.status}; it cannot be closed from there. From "
            f"{incident.status} it can move to: {choices}."
        )
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
            seen=seen,
        )
        seen = None  # checked by the resolve, under the lock the close keeps
    return change_status(
        session, policy, incident_id, closed.key, actor=actor, key=key, now=now, seen=seen
    )


def reopen_incident(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    text: str = "",
    key: str | None = None,
    now: datetime | None = None,
    seen: str | None = None,
) -> Change:
    """``seen``: the status on the summary whose Reopen was clicked (see ``change_status``)."""
    incident = get_incident(session, incident_id)
    current = policy.find_status(incident.status)
    target = next((s for s in allowed_next_statuses(policy, incident) if s.phase == "active"), None)
    if seen is not None and seen != incident.status:
        # The copy is out of date (reopened since, perhaps resolved again): a reopen is never
        # made unseen, whoever changed it.
        latest = _latest_change(session, incident, EventKind.STATUS_CHANGED)
        raise _stale_status(incident, policy, target or policy.initial_status, seen, latest)
    if current is not None and current.phase == "active":
        return Change(incident, None)
    if target is None:
        raise InvalidTransition(
            f"The policy does not allow reopening {incident.ref} from {incident.status}."
        )
    return change_status(
        session, policy, incident_id, target.key, actor=actor, text=text, key=key, now=now
    )


class ReopenRefused(NotAllowed):
    """A move that would reopen the incident, by someone ``[access] reopen`` does not name."""


def is_active(policy: Policy, incident: Incident) -> bool:
    """Still being worked on (not resolved, not closed). A status the policy no longer has
    counts as active: nothing is refused because of a policy edit."""
    status = policy.find_status(incident.status)
    return status is None or status.phase == "active"


def require_active(policy: Policy, incident: Incident, doing: str) -> None:
    """Refuse ``doing`` on an incident that is over: an acknowledgement stamped after the
    resolution would say it was acknowledged late, and skew time to acknowledge."""
    if not is_active(policy, incident):
        raise InvalidTransition(
            f"{incident.ref} is {incident.status}: there is nothing to {doing}. "
            f"If it is not over, `/incident {incident.ref} reopen` first."
        )


def take_command(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    user: str,
    key: str | None = None,
    now: datetime | None = None,
) -> Change:
    """ "Acknowledge / I'm IC": ``user`` becomes the commander if nobody is, and the incident
    is acknowledged. Refused once the incident is over."""
    incident, repeat, _ = begin_change(session, incident_id, key)
    if repeat:
        return repeat
    require_active(policy, incident, "take command of")
    if COMMANDER in current_roles(session, incident_id):
        return acknowledge_incident(session, policy, incident_id, actor=user, key=key, now=now)
    return assign_role(session, policy, incident_id, COMMANDER, user, actor=user, key=key, now=now)


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
    actor = user_id(actor)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    require_active(policy, incident, "acknowledge")
    if incident.acknowledged_at is not None:
        return Change(incident, None)
    incident.acknowledged_at = now
    event = append_event(
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
    user = user_id(user)
    actor = user_id(actor)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    require_open(policy, incident, "change who holds its roles")
    assert incident.id is not None
    current = current_assignment(session, incident.id, found.key)
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
    if found.key == COMMANDER and incident.acknowledged_at is None and is_active(policy, incident):
        incident.acknowledged_at = now
        acknowledged = True
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.ROLE_ASSIGNED,
        text=f"{escape_mrkdwn(found.name)}: <@{user}>"
        + (f" (was <@{previous}>)" if previous else ""),
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
    actor = user_id(actor)
    incident, repeat, now = begin_change(session, incident_id, key, now)
    if repeat:
        return repeat
    require_open(policy, incident, "change who holds its roles")
    assert incident.id is not None
    current = current_assignment(session, incident.id, found.key)
    if current is None:
        return Change(incident, None)
    current.unassigned_at = now
    current.unassigned_by = actor
    session.add(current)
    event = append_event(
        session,
        policy,
        incident,
        kind=EventKind.ROLE_UNASSIGNED,
        text=f"{escape_mrkdwn(found.name)}: <@{current.user_id}> stepped down",
        actor=actor,
        now=now,
        key=key,
        data={"role": found.key, "user": current.user_id},
    )
    return Change(incident, event, {"role": found.key})
