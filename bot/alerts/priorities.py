"""Priority changes a sender reports (PagerDuty's ``incident.priority_updated``, Opsgenie's
``UpdatePriority``), in the order they happened rather than the order they came.

A priority change is applied to the group's severity (which a Declare from triage opens with;
a declared incident's severity stays with people) only when it is the newest thing its sender
said about the alert: one that comes with a status older than the newest applied to the alert
(``Changes.late``: the rule of ``bot.alerts.model.stale``) is recorded on the timeline, saying
it was not applied, and a retry of one already received (its key, the sender's event id)
changes nothing. Changes with
no time of their own (an Opsgenie ``UpdatePriority``, which carries no alert status) apply in
the order they come. ``firebreak alerts replay`` asks the same function (``newest``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertGroup
from bot.alerts.routing import mapped_severity
from bot.config import Policy
from bot.models import Incident, TimelineEvent


@dataclass(frozen=True)
class Priority:
    """What a message's priority changes do."""

    severity: str | None = None
    """The severity to apply, mapped by the policy; ``None`` when none applies."""
    key: str | None = None
    """The key of the entry that sets it (the sender's event id)."""
    late: frozenset[str] = frozenset()
    """Keys of the entries that are older than what was applied: recorded, not applied."""


NONE = Priority()


def newest(policy: Policy, message: AlertMessage, *, late: bool, seen: Collection[str]) -> Priority:
    """The severity ``message`` sets: its last priority entry not received before (``seen``),
    unless its alert status is older than the newest applied (``late``)."""
    wanted = [
        (info.key, severity)
        for info in message.info
        if (severity := mapped_severity(policy, info.severity)) is not None
    ]
    if not wanted:
        return NONE
    if late:
        return Priority(late=frozenset(key for key, _ in wanted))
    fresh = [(key, severity) for key, severity in wanted if key not in seen]
    if not fresh:
        return NONE  # a retry: applied when it first came
    key, severity = fresh[-1]
    return Priority(severity=severity, key=key)


def assess(
    session: Session, policy: Policy, group: AlertGroup, message: AlertMessage, *, late: bool
) -> Priority:
    """``newest`` for a stored group: an entry it holds, or any incident's timeline has (under
    its key), was received already."""
    keys = [info.key for info in message.info if info.severity]
    if not keys:
        return NONE
    seen = {entry["key"] for entry in group.held} & set(keys)
    found = session.exec(
        select(TimelineEvent.idempotency_key).where(col(TimelineEvent.idempotency_key).in_(keys))
    ).all()
    return newest(policy, message, late=late, seen=seen | {key for key in found if key})


def entry_text(
    text: str, severity: str | None, priority: Priority, key: str, incident: Incident | None = None
) -> str:
    """The timeline's words for an entry: with the severity it set, or saying that it was
    older than what was applied and changed nothing. On an ``incident`` of another severity,
    that the incident keeps its own (people set it, with ``/incident sev``)."""
    if not severity:
        return text
    if key in priority.late:
        return f"{text} (severity {severity} not applied: older than the latest change)"
    if incident is not None and incident.severity != severity:
        stays = f"{incident.ref} stays {incident.severity}: change it with /incident sev"
        return f"{text} (maps to {severity}; {stays})"
    return f"{text} (severity {severity})"
