"""Priority changes a sender reports (PagerDuty's ``incident.priority_updated``, Opsgenie's
``UpdatePriority``), in the order they happened rather than the order they came.

A priority change is applied to the group's severity (which a Declare from triage opens with;
a declared incident's severity stays with people) only when it is the newest thing its sender
said about the alert: one that comes with a status older than the newest applied to the alert
(``Changes.late``: the rule of ``bot.alerts.model.stale``) is recorded on the timeline, saying
it was not applied, and a retry of one already received (its key, the sender's event id)
changes nothing. Changes with
no alert status (an Opsgenie ``UpdatePriority``) apply in the order they come, but for one that
comes before the alert that opens its group (Opsgenie delivers unordered): the group opens with
the newer of the two priorities by the sender's dates (``prevails``), and a change that loses
is recorded as not applied (``opening_severity``). ``firebreak alerts replay`` asks the same
functions.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
    at: datetime | None = None
    """When the sender dated the change that sets ``severity`` (``Info.at``), if it did."""


NONE = Priority()


def newest(policy: Policy, message: AlertMessage, *, late: bool, seen: Collection[str]) -> Priority:
    """The severity ``message`` sets: its last priority entry not received before (``seen``),
    unless its alert status is older than the newest applied (``late``)."""
    wanted = [
        (info, severity)
        for info in message.info
        if (severity := mapped_severity(policy, info.severity)) is not None
    ]
    if not wanted:
        return NONE
    if late:
        return Priority(late=frozenset(info.key for info, _ in wanted))
    fresh = [(info, severity) for info, severity in wanted if info.key not in seen]
    if not fresh:
        return NONE  # a retry: applied when it first came
    info, severity = fresh[-1]
    return Priority(severity=severity, key=info.key, at=info.at)


def prevails(changed_at: datetime | None, message: AlertMessage) -> bool:
    """Whether a priority change received before the alert that opens its group (``message``)
    is newer than that alert's own priority: both dated, the change after the alert's event.
    Otherwise the alert, which came after it, wins (undated events apply in arrival order)."""
    dated = [alert.event_at for alert in message.alerts if alert.event_at is not None]
    return changed_at is not None and bool(dated) and changed_at > max(dated)


def opening_severity(group: AlertGroup, message: AlertMessage, routed: str) -> str:
    """The severity ``group`` opens with when ``message`` fires it: ``routed`` (its alert's
    own), unless the last priority change the group held is newer (``prevails``). The held
    changes that are not applied say so, so the timeline never claims a severity the incident
    did not get."""
    setting = [entry for entry in group.held if entry.get("severity")]
    if not setting:
        return routed
    last = setting[-1]
    changed_at = last.get("event_at")
    if prevails(datetime.fromisoformat(changed_at) if changed_at else None, message):
        return str(last["severity"])
    lost = Priority(late=frozenset(str(entry["key"]) for entry in setting))
    group.held = [
        _not_applied(entry, lost) if entry.get("severity") else entry for entry in group.held
    ]
    return routed


def _not_applied(entry: dict[str, Any], lost: Priority) -> dict[str, Any]:
    text = entry_text(str(entry["text"]), str(entry["severity"]), lost, str(entry["key"]))
    return {**entry, "text": text, "severity": None}


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
