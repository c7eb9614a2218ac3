"""What payloads would do, without Slack or the database: ``firebreak alerts replay``.

Files are replayed in order against an in-memory picture of the groups, so a sequence (fire,
fire more, resolve) shows the same grouping the receiver would apply: the first firing message
of a group opens an incident, later ones attach to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.alerts.model import AlertMessage, Status
from bot.alerts.routing import route
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
    """declare, triage, attach, drop, store."""
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
        self.incidents = 0

    def play(self, message: AlertMessage, now: datetime) -> Step:
        plan = route(self.policy, self.catalog, message)
        key = (message.source, message.group_key)
        group = self.groups.get(key)
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
            group = _Group(incident=None)
            self.groups[key] = group
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
        return Step(
            source=message.source,
            group_key=message.group_key,
            action=action,
            incident=group.incident,
            severity=plan.severity,
            service=plan.service,
            runbook=plan.runbook.id if plan.runbook else None,
            runbook_reason=plan.runbook_reason,
            firing=len(group.firing),
            alerts=len(message.alerts),
            note=message.note,
        )
