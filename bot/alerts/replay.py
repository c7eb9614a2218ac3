"""What payloads would do, without Slack or the database: ``firebreak alerts replay``.

Files are replayed in order against an in-memory picture of the groups, so a sequence (fire,
fire more, resolve) shows the same grouping the receiver would apply: the first firing message
of a group opens an incident, later ones attach to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.alerts.model import AlertMessage, Status
from bot.alerts.routing import Route, route
from bot.config import Policy
from bot.runbooks.catalog import RunbookCatalog


@dataclass
class _Group:
    incident: str | None
    firing: set[str] = field(default_factory=set)
    resolved_at: datetime | None = None


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
            return _step(message, plan, "ignore", None, 0)
        key = (message.source, message.group_key)
        group = self.groups.get(key)
        if group is None and message.same_as is not None:
            group = self.labelled.get((message.source, *message.same_as))
        kept = [a for a in message.alerts if a.key not in plan.dropped]
        firing_keys = {a.key for a in kept if a.status == Status.FIRING}
        resolved_keys = {a.key for a in kept if a.status == Status.RESOLVED}
        if (
            group is not None
            and not group.firing
            and firing_keys
            and group.resolved_at
            and now - group.resolved_at > self.policy.alerts.flap_window
        ):
            group = None
        if group is None:
            group = _Group(incident=self._related(message, now))
            self.groups[key] = group
        for alert in message.alerts:
            for label, value in alert.labels.items():
                self.labelled[(message.source, label, value)] = group
        was_firing = bool(group.firing)
        group.firing = (group.firing | firing_keys) - resolved_keys
        if was_firing and not group.firing:
            group.resolved_at = now
        if group.incident is not None:
            action = "attach"
        elif group.firing and self.policy.alerts.declare == "auto":
            self.incidents += 1
            group.incident = f"new incident #{self.incidents}"
            action = "declare"
        elif group.firing:
            action = "triage"
        elif plan.dropped and message.alerts:
            action = "drop"
        else:
            action = "store"
        return _step(message, plan, action, group.incident, len(group.firing))

    def _related(self, message: AlertMessage, now: datetime) -> str | None:
        """The incident a new group attaches to as the receiver would: that of the latest
        group of the same thing, still firing or resolved within the flap window."""
        if message.related is None:
            return None
        other = self.labelled.get((message.source, *message.related))
        if other is None or other.incident is None:
            return None
        if other.firing or (
            other.resolved_at is not None
            and now - other.resolved_at <= self.policy.alerts.flap_window
        ):
            return other.incident
        return None


def _step(
    message: AlertMessage, plan: Route, action: str, incident: str | None, firing: int
) -> Step:
    return Step(
        source=message.source,
        group_key=message.group_key,
        action=action,
        incident=incident,
        severity=plan.severity,
        service=plan.service,
        runbook=plan.runbook.id if plan.runbook else None,
        runbook_reason=plan.runbook_reason,
        firing=firing,
        alerts=len(message.alerts),
        note=message.note,
    )
