"""What payloads would do, without Slack or the database: ``firebreak alerts replay``.

Files are replayed in order against an in-memory picture of the groups, so a sequence (fire,
fire more, resolve) shows the same grouping the receiver would apply: the first firing message
of a group opens an incident, later ones attach to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.alerts.model import AlertMessage, Status, stale
from bot.alerts.priorities import Priority, newest, prevails
from bot.alerts.routing import Route, route
from bot.config import Policy
from bot.runbooks.catalog import RunbookCatalog


@dataclass
class _Group:
    """What the receiver keeps of a group (its row and its alerts' rows), in memory."""

    incident: str | None = None
    firing: set[str] = field(default_factory=set)
    resolved_at: datetime | None = None
    applied_at: dict[str, datetime | None] = field(default_factory=dict)
    """Alert key -> the time of the newest event applied to it (the rows' ``event_at``)."""
    dropped: set[str] = field(default_factory=set)
    """Alerts a drop rule removed when first seen (the rows' ``dropped``)."""
    severity: str | None = None
    """The group's severity, as the receiver keeps it: set when the group opens (or a
    PagerDuty priority says so), then reported for every later message of the group."""
    triaged: bool = False
    late: bool = False
    """The last message's status was older than the newest applied (its priority is not)."""
    seen: set[str] = field(default_factory=set)
    """The keys of the timeline entries received (a retry sets no priority)."""
    held: Priority | None = None
    """The last priority change received while the group had no incident, weighed against the
    alert that opens it (``prevails``), as the receiver weighs the one it held."""

    def apply(self, message: AlertMessage, dropped: frozenset[str]) -> bool:
        """Apply the message's alerts as the receiver does (the newest event wins, a key listed
        twice counts once, its last entry); whether any alert newly fired."""
        fired = self.late = False
        latest = {alert.key: alert for alert in message.alerts}
        for key, alert in latest.items():
            if key not in self.applied_at:
                if key in dropped:
                    self.dropped.add(key)
            elif stale(self.applied_at[key], alert):
                self.late = True
                continue  # a late delivery: a newer status was applied already
            if alert.event_at is not None or key not in self.applied_at:
                self.applied_at[key] = alert.event_at
            if key in self.dropped:
                continue
            if alert.status == Status.FIRING and key not in self.firing:
                self.firing.add(key)
                fired = True
            elif alert.status == Status.RESOLVED:
                self.firing.discard(key)
        return fired


@dataclass(frozen=True)
class Step:
    source: str
    group_key: str
    action: str
    """declare, triage, attach, drop, store, ignore."""
    incident: str | None
    severity: str
    service: str | None
    runbook: str | None
    runbook_reason: str
    firing: int
    alerts: int
    note: str | None
    runbook_section: str | None = None
    """The alert whose section of the runbook a run opens at (a runbook covering many alerts:
    Mimir's, kubernetes-mixin's), as the runbook spells it."""

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "group": self.group_key,
            "action": self.action,
            "incident": self.incident,
            "severity": self.severity,
            "service": self.service,
            "runbook": self.runbook,
            "runbook_reason": self.runbook_reason,
            "runbook_section": self.runbook_section,
            "firing": self.firing,
            "alerts": self.alerts,
            "note": self.note,
        }


class Rehearsal:
    def __init__(self, policy: Policy, catalog: RunbookCatalog | None) -> None:
        self.policy = policy
        self.catalog = catalog
        self.groups: dict[tuple[str, str], _Group] = {}
        self.labelled: dict[tuple[str, str, str], _Group] = {}
        """(source, label, value) -> the latest group with an alert carrying it: what the
        receiver looks up for ``same_as`` and ``related``."""
        self.incidents = 0

    def play(self, message: AlertMessage, now: datetime) -> Step:
        plan = route(self.policy, self.catalog, message)
        if message.ignored:
            return _step(message, plan, "ignore", None, 0, plan.severity)
        key = (message.source, message.group_key)
        group = self.groups.get(key)
        if group is None and message.same_as is not None:
            group = self.labelled.get((message.source, *message.same_as))
        if group is None:
            group = self.groups[key] = _Group()
        was_firing = bool(group.firing)
        fired = group.apply(message, plan.dropped)
        priority = newest(self.policy, message, late=group.late, seen=group.seen)
        group.severity = priority.severity or group.severity
        if priority.severity and group.incident is None and not group.triaged:
            group.held = priority
        group.seen.update(info.key for info in message.info)
        if (
            fired
            and not was_firing
            and group.resolved_at is not None
            and now - group.resolved_at > self.policy.alerts.flap_window
        ):
            # Firing again after the flap window: a new episode, as the receiver starts one.
            group.incident, group.severity, group.triaged = None, None, False
            group.held = None
        if group.firing:
            group.resolved_at = None
        elif was_firing and not message.truncated:
            group.resolved_at = now
        if group.incident is None and not group.triaged and group.firing:
            held, group.held = group.held, None
            newer = held is not None and prevails(held.at, message)
            group.severity = held.severity if held is not None and newer else plan.severity
            group.incident = self._related(message, group, now)
        if group.incident is not None:
            action = "attach"
        elif group.firing and self.policy.alerts.declare == "auto":
            self.incidents += 1
            group.incident = f"new incident #{self.incidents}"
            action = "declare"
        elif group.firing:
            group.triaged = True
            action = "triage"
        elif plan.dropped and message.alerts:
            action = "drop"
        else:
            action = "store"
        for alert in message.alerts:
            for label, value in alert.labels.items():
                self.labelled[(message.source, label, value)] = group
        severity = group.severity or plan.severity
        return _step(message, plan, action, group.incident, len(group.firing), severity)

    def _related(self, message: AlertMessage, group: _Group, now: datetime) -> str | None:
        """The incident a new group attaches to as the receiver would: that of the latest
        group of the same thing, still firing or resolved within the flap window."""
        if message.related is None:
            return None
        other = self.labelled.get((message.source, *message.related))
        if other is None or other is group or other.incident is None:
            return None
        if other.firing or (
            other.resolved_at is not None
            and now - other.resolved_at <= self.policy.alerts.flap_window
        ):
            return other.incident
        return None


def _step(
    message: AlertMessage,
    plan: Route,
    action: str,
    incident: str | None,
    firing: int,
    severity: str,
) -> Step:
    return Step(
        source=message.source,
        group_key=message.group_key,
        action=action,
        incident=incident,
        severity=severity,
        service=plan.service,
        runbook=plan.runbook.id if plan.runbook else None,
        runbook_reason=plan.runbook_reason,
        firing=firing,
        alerts=len(message.alerts),
        note=message.note,
        runbook_section=_section(plan),
    )


def _section(plan: Route) -> str | None:
    found = plan.runbook.section_for(plan.runbook_alerts) if plan.runbook else None
    return found[1] if found is not None else None
