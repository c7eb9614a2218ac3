"""The incident's lifecycle in the policy: severities, statuses and their transitions, roles,
and the defaults an empty ``firebreak.toml`` gets. ``bot.config.policy`` holds the rest."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.durations import Duration


class Strict(BaseModel):
    """A policy table: unknown keys are refused, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def check_key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(f"{value!r} is not a valid key: use up to 32 letters, digits, '-' or '_'")
    return value


class SeverityPolicy(Strict):
    key: str
    """What people type and see (``SEV1``); ``sev 1`` and the name work too."""
    name: str = ""
    """A human name (``Critical``)."""
    description: str = ""
    """When to use this severity; shown in the declare form."""
    update_every: Duration | None = None
    """How often the commander is expected to post a status update (at least 1m); unset: no
    update nudges."""
    ack_within: Duration | None = None
    """Escalate when nobody has acknowledged or taken the commander role after this long (at
    least 1m)."""
    escalate_again_after: Duration | None = None
    """Escalate to the second tier when still unacknowledged this long after the first (at
    least 1m; needs ``ack_within``, which times the first)."""

    _key = field_validator("key")(check_key)

    @model_validator(mode="after")
    def _second_tier(self) -> SeverityPolicy:
        if self.escalate_again_after is not None and self.ack_within is None:
            raise ValueError(
                "escalate_again_after needs ack_within: the second escalation counts from the "
                "first, which ack_within times"
            )
        return self

    @field_validator("update_every", "ack_within", "escalate_again_after")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta | None) -> timedelta | None:
        # Shorter would page people every few seconds: a typo ("30s" for "30m"), not a plan.
        if value is not None and value < timedelta(minutes=1):
            raise ValueError("must be at least 1m: reminders this often are noise, not help")
        return value


class StatusPolicy(Strict):
    key: str
    """What people choose and type (``investigating``)."""
    name: str = ""
    """A human name (``Investigating``)."""
    description: str = ""
    """What the status means, for the people choosing it."""
    phase: Literal["active", "resolved", "closed"] = "active"
    """Where the incident stands: reminders and lists treat every status of a phase alike."""
    milestone: Literal["mitigated", "resolved", "closed"] | None = None
    """Entering this status stamps this milestone (the first time)."""
    next: list[str] = Field(default_factory=list)
    """The statuses an incident may move to from this one."""

    _key = field_validator("key")(check_key)

    @property
    def label(self) -> str:
        """What people read: the name, else the key."""
        return self.name or self.key


class RolePolicy(Strict):
    key: str
    """What people type (``/incident role comms @dana``) and ``role:<key>`` in ``[access]``."""
    name: str
    """A human name (``Comms Lead``); a unique prefix of three letters or more also works. Keys,
    names and short names each name one role (as severities' and statuses' keys and names)."""
    short: str = ""
    """A short name people may type too (``IC``)."""
    description: str = ""
    """What the role does; shown in the role form."""

    _key = field_validator("key")(check_key)


def default_severities() -> list[SeverityPolicy]:
    return [
        SeverityPolicy(
            key="SEV1",
            name="Critical",
            description="Customer-facing outage or data loss; all hands, page now.",
            update_every=timedelta(minutes=15),
            ack_within=timedelta(minutes=5),
            escalate_again_after=timedelta(minutes=10),
        ),
        SeverityPolicy(
            key="SEV2",
            name="Major",
            description="Major feature degraded for many customers; respond immediately.",
            update_every=timedelta(minutes=30),
            ack_within=timedelta(minutes=10),
            escalate_again_after=timedelta(minutes=15),
        ),
        SeverityPolicy(
            key="SEV3",
            name="Minor",
            description="Partial or internal impact with a workaround; respond in hours.",
            update_every=timedelta(hours=1),
            ack_within=timedelta(minutes=30),
            escalate_again_after=timedelta(hours=1),
        ),
        SeverityPolicy(
            key="SEV4",
            name="Low",
            description="Little or no customer impact; track and fix in working hours.",
            update_every=timedelta(hours=4),
        ),
    ]


def _reachable(statuses: list[StatusPolicy], start: str) -> set[str]:
    """The statuses an incident in ``start`` can reach by moves its ``next`` lists allow."""
    following = {s.key: s.next for s in statuses}
    seen = {start}
    todo = [start]
    while todo:
        for target in following.get(todo.pop(), []):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def check_status_graph(statuses: list[StatusPolicy]) -> None:
    """Refuse a graph that strands incidents: a status no incident can enter, or an active one
    from which no incident could ever be resolved or closed (only moves ``next`` lists allow)."""
    phases = {s.key: s.phase for s in statuses}
    for status in statuses:
        if status.phase != "active":
            continue
        reached = {phases[key] for key in _reachable(statuses, status.key)}
        for phase in ("resolved", "closed"):
            if phase not in reached:
                raise ValueError(
                    f"statuses: no {phase} status can be reached from {status.key!r}, so an "
                    f"incident there could never be {phase}: extend its next"
                )
    first = statuses[0].key
    from_first = _reachable(statuses, first)
    for status in statuses:
        if status.key not in from_first:
            raise ValueError(
                f"statuses: {status.key!r} cannot be reached from {first!r}, where incidents "
                "start: list it in the next of a status that can"
            )


def default_statuses() -> list[StatusPolicy]:
    return [
        StatusPolicy(
            key="triage",
            name="Triage",
            description="Declared; establishing scope and impact.",
            next=["investigating", "identified", "monitoring", "resolved"],
        ),
        StatusPolicy(
            key="investigating",
            name="Investigating",
            description="Looking for the cause.",
            next=["identified", "monitoring", "resolved"],
        ),
        StatusPolicy(
            key="identified",
            name="Identified",
            description="Cause found; working on a fix.",
            next=["investigating", "monitoring", "resolved"],
        ),
        StatusPolicy(
            key="monitoring",
            name="Monitoring",
            description="Mitigated; watching that it holds.",
            milestone="mitigated",
            next=["investigating", "identified", "resolved"],
        ),
        StatusPolicy(
            key="resolved",
            name="Resolved",
            description="Impact is over; follow-up and postmortem remain.",
            phase="resolved",
            milestone="resolved",
            next=["closed", "investigating"],
        ),
        StatusPolicy(
            key="closed",
            name="Closed",
            description="Done: postmortem drafted, follow-up tracked as action items.",
            phase="closed",
            milestone="closed",
            next=["investigating"],
        ),
    ]


def default_roles() -> list[RolePolicy]:
    return [
        RolePolicy(
            key="commander",
            name="Incident Commander",
            short="IC",
            description="Owns the incident: decides, delegates, keeps everyone informed.",
        ),
        RolePolicy(
            key="comms",
            name="Comms Lead",
            short="Comms",
            description="Writes status updates for stakeholders and customers.",
        ),
        RolePolicy(
            key="scribe",
            name="Scribe",
            short="Scribe",
            description="Keeps the timeline: captures decisions and findings as they happen.",
        ),
        RolePolicy(
            key="ops",
            name="Ops Lead",
            short="Ops",
            description="Hands on keyboard: runs the commands and the runbook steps.",
        ),
    ]


COMMANDER = "commander"


def check_names(kind: str, items: Sequence[SeverityPolicy | StatusPolicy | RolePolicy]) -> None:
    """People type a key, a name (or a role's short name): each names one item. A name that is
    also another item's key or name would pick whichever comes first."""
    owner: dict[str, int] = {}
    for index, item in enumerate(items):
        names = {item.key, item.name, getattr(item, "short", "")} - {""}
        for name in sorted(names):
            other = owner.setdefault(name.casefold(), index)
            if other != index:
                raise ValueError(
                    f"{kind}.{index}: {name!r} already names {kind} {items[other].key!r}: "
                    "people type keys and names, so each must name one"
                )


_LEVEL = re.compile(r"^\s*([A-Za-z]{1,8})[\s_-]?(\d{1,2})(?![\w.])")


def short_level(text: str) -> str | None:
    """A level's short form at the start of its name, when it is written otherwise:
    ``P1 - Critical`` -> ``P1``, ``SEV-1`` and ``sev 1`` -> ``SEV1``/``sev1``; ``None`` when
    there is none, or it is written so already."""
    match = _LEVEL.match(text or "")
    short = match.group(1) + match.group(2) if match else None
    return short if short != (text or "").strip() else None
