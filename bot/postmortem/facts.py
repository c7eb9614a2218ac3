"""What a postmortem template receives: plain, frozen data, nothing a template can call
back into."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Milestone:
    name: str
    at: datetime | None
    utc: str
    """``2026-03-04 02:55 UTC``, or ``unknown``."""
    local: str
    """The same time in the team's timezone; empty when the team works in UTC or it is unknown."""

    @property
    def known(self) -> bool:
        return self.at is not None


@dataclass(frozen=True)
class Metric:
    name: str
    value: str
    """Human-readable (``1h 5m``), or ``unknown`` when a milestone is missing (never ``0``)."""
    measured: str
    """What it is measured from and to."""
    known: bool


@dataclass(frozen=True)
class IncidentFacts:
    ref: str
    number: int
    title: str
    severity: str
    severity_name: str
    severity_description: str
    severity_path: str
    """``SEV2 → SEV1`` when the severity changed, else empty."""
    status: str
    status_name: str
    phase: str
    service: str | None
    summary: str
    private: bool
    reporter: str
    commander: str | None
    acknowledged_by: str | None
    status_updates: int
    channel: str | None
    channel_url: str | None
    started: str
    """Start of impact: the earliest known of impact started, detected, declared."""
    ended: str
    """When the impact was over (resolved), or ``ongoing``."""


@dataclass(frozen=True)
class TimelineEntry:
    at: str
    """``2026-03-04 02:55:12 UTC``"""
    time: str
    """``02:55`` (the day is the heading above it)."""
    who: str
    kind: str
    label: str
    """What the entry is (``note``, ``message``) when its text does not say so; else empty."""
    text: str
    link: str | None
    link_text: str


@dataclass(frozen=True)
class TimelineDay:
    date: str
    entries: tuple[TimelineEntry, ...]


@dataclass(frozen=True)
class RoleSpell:
    role: str
    person: str
    since: str
    until: str
    """Empty while the person still holds the role."""
    assigned_by: str


@dataclass(frozen=True)
class Reopen:
    """The incident was reopened: when it had been resolved (or closed), when it was
    reopened, by whom, why if said, and when it was next mitigated (a mitigated status or a
    resolve; empty if never) (``YYYY-MM-DD HH:MM``, UTC)."""

    resolved: str
    reopened: str
    by: str
    reason: str
    mitigated: str = ""
    reopened_at: datetime | None = None
    """When it was reopened, as a datetime (UTC): ``milestones.mitigated.at`` before it means
    the time to mitigate counts to a mitigation the reopen kept."""


@dataclass(frozen=True)
class Handover:
    role: str
    from_person: str
    to_person: str
    at: str
    by: str


@dataclass(frozen=True)
class Responder:
    person: str
    roles: tuple[str, ...]
    first_seen: str
    events: int
    """How many timeline entries are theirs."""


@dataclass(frozen=True)
class RunbookStep:
    number: int
    title: str
    state: str
    """``done``, ``skipped``, ``in_progress`` or ``pending``."""
    outcome: str
    who: str
    when: str


@dataclass(frozen=True)
class RunbookUsed:
    title: str
    runbook_id: str
    status: str
    started: str
    started_by: str
    completed: str
    total: int
    done: int
    skipped: int
    open: int
    steps: tuple[RunbookStep, ...]


@dataclass(frozen=True)
class ActionItemRow:
    number: int
    text: str
    owner: str
    due: str
    status: str
    done: bool
    overdue: bool


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class AlertFired:
    """Alerts of one name from one tool that fired in the incident: how many, when the first
    started firing and the last resolved (empty: one still fired when this was drafted), and
    the tool's links (the first three: the rule's graph, a dashboard, a silence)."""

    name: str
    source: str
    count: int
    started: str
    resolved: str
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class PostmortemContext:
    incident: IncidentFacts
    version: int
    generated_at: str
    generated_by: str
    timezone: str
    authors: tuple[str, ...]
    milestones: dict[str, Milestone]
    metrics: dict[str, Metric]
    timeline: tuple[TimelineDay, ...]
    timeline_count: int
    responders: tuple[Responder, ...]
    roles: tuple[RoleSpell, ...]
    handovers: tuple[Handover, ...]
    runbooks: tuple[RunbookUsed, ...]
    action_items: tuple[ActionItemRow, ...]
    links: tuple[Link, ...]
    clocks: tuple[str, ...] = ()
    """Regulatory clocks (``[[clocks]]``): one line each, its state and deadlines."""
    alerts: tuple[AlertFired, ...] = ()
    """The alerts that fired in the incident, by name and tool, most first (at most
    ``ALERTS_SHOWN``); ``alerts_left_out`` names are not shown."""
    alerts_left_out: int = 0
    reopens: tuple[Reopen, ...] = ()
    """Each reopen, in order: the impact window and the time to resolve run to the last
    resolve, across the time it was resolved in between; the time to mitigate to the last
    resolve too, unless a mitigation apart from a resolve was recorded before the reopen."""

    def variables(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
