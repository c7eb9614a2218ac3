"""Regulatory clocks: the policy model (``[[clocks]]`` in firebreak.toml), the shipped presets
(``dora``, ``gdpr``) and the pure rules: when a clock starts, when it is due, when to warn, and
what to say.

A clock starts on something that happened to the incident (``starts_on``), is due at the
*earliest* of its deadlines (each one an offset after the clock's start, the incident's
awareness/declared/detected/impact time, or another clock's completion) and is completed by a
person (``/incident notified <clock>``). Everything here is a pure function of the incident's
times and its timeline; ``bot.audit.regulatory`` records the events and schedules the warnings.

Times are calendar time in UTC: a 72-hour deadline runs through nights, weekends and public
holidays (as DORA and GDPR count them), and ``1mo`` is the same day and time next month (the
last day of the month when that day does not exist).

This module imports nothing from ``bot.config`` or ``bot.incidents``: the policy imports it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.durations import format_duration
from bot.errors import PlacedValueError

# --------------------------------------------------------------------------------------------
# Offsets: "4h", "72h", "1mo", "1d12h". Months are calendar months, so they are not timedeltas.

_PART = re.compile(r"(\d+)\s*(mo|d|h|m|s)", re.IGNORECASE)
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True, order=True)
class Offset:
    months: int = 0
    delta: timedelta = timedelta(0)
    text: str = field(default="", compare=False)
    """As written in the policy (``24h`` stays ``24h`` in notices)."""

    def after(self, when: datetime) -> datetime:
        """``when`` plus this offset, in calendar time (UTC)."""
        return _add_months(when.astimezone(UTC), self.months) + self.delta

    def before(self, when: datetime) -> datetime:
        """``when`` minus this offset, in calendar time (warnings: "1mo before the deadline" of
        31 March is 28 or 29 February, the month before's last day)."""
        return _add_months(when.astimezone(UTC) - self.delta, -self.months)

    def __str__(self) -> str:
        if self.text:
            return self.text
        months = f"{self.months}mo" if self.months else ""
        if months and self.delta < timedelta(seconds=1):
            return months
        return months + format_duration(self.delta)


def _add_months(when: datetime, months: int) -> datetime:
    """``when`` moved by calendar months, on the same day or the month's last."""
    if not months:
        return when
    month_index = when.month - 1 + months
    year, month = when.year + month_index // 12, month_index % 12 + 1
    return when.replace(
        year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1])
    )


LONGEST_MONTHS = 120
LONGEST_OFFSET = timedelta(days=3653)
"""Deadlines run to years at most; dates much further out overflow (past the year 9999)."""


def parse_offset(value: object) -> Offset:
    """``4h``, ``24h``, ``72h``, ``1mo`` (a calendar month), ``1d12h``: positive, with units."""
    if isinstance(value, Offset):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: write it with a unit, e.g. 4h, 72h, 1mo")
    compact = value.strip().replace(" ", "").lower()
    if compact.startswith("-"):
        raise ValueError(f"duration {value!r} is negative: deadlines and warnings count forward")
    if not compact or _PART.sub("", compact) != "":
        raise ValueError(f"invalid duration {value!r}: use e.g. 15m, 4h, 72h, 3d, 1mo")
    months, seconds = 0, 0
    for amount, unit in _PART.findall(compact):
        if unit == "mo":
            months += int(amount)
        else:
            seconds += int(amount) * _SECONDS[unit]
    if months == 0 and seconds == 0:
        raise ValueError(f"duration {value!r} is zero: a deadline needs a positive duration")
    if months > LONGEST_MONTHS or seconds > LONGEST_OFFSET.total_seconds():
        raise ValueError(f"duration {value!r} is over 10 years: no regulator gives that long")
    return Offset(months, timedelta(seconds=seconds), compact)


OffsetField = Annotated[Offset, BeforeValidator(parse_offset)]

# --------------------------------------------------------------------------------------------
# The policy model

TIME_REFERENCES = {
    "start": "the clock's start",
    "awareness": "awareness (detected, else declared)",
    "declared": "declaration",
    "detected": "detection",
    "impact": "impact start",
}
"""What a deadline can count from besides another clock's completion (named by its key)."""

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_TRIGGER = re.compile(r"^(declared|detected|(classified|severity|label|completed):(.{1,64}))$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeadlinePolicy(_Strict):
    after: OffsetField
    """How long after ``since``."""
    since: str = "start"
    """``start``, ``awareness``, ``declared``, ``detected``, ``impact`` or another clock's key
    (its latest completion)."""


class ClockPolicy(_Strict):
    key: str
    """What people type: ``/incident notified <key>``."""
    name: str = ""
    """A human name shown in reminders and the console (``Initial notification``); unset: the
    key."""
    starts_on: str
    """``classified:<class>``, ``severity:<key>`` (that severity or a more severe one),
    ``label:<name>`` (an event carrying that label, e.g. from an alert), ``declared``,
    ``detected`` or ``completed:<clock>``."""
    deadlines: list[DeadlinePolicy] = Field(min_length=1)
    """The clock is due at the earliest of these (DORA: "whichever is earlier")."""
    warn_before: list[OffsetField] = Field(default_factory=lambda: [parse_offset("1h")])
    """Warn this long before the deadline (and always at it)."""
    repeatable: bool = False
    """May be completed again (DORA intermediate reports: the final report counts from the
    latest)."""

    _entry: int | None = PrivateAttr(default=None)  # its [[clocks]] entry, for error lines
    _preset: bool = PrivateAttr(default=False)

    def at(self, *key: str | int) -> tuple[str | int, ...]:
        """Where ``key`` of this clock is written under ``clocks``: the entry and the key, or
        the entry alone for a preset's clock (its keys are not written)."""
        if self._entry is None:
            return ()
        return (self._entry,) if self._preset else (self._entry, *key)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(
                f"{value!r} is not a valid clock key: up to 32 lower-case letters, digits, - or _"
            )
        return value

    @field_validator("starts_on")
    @classmethod
    def _trigger(cls, value: str) -> str:
        if not _TRIGGER.match(value.strip()):
            raise ValueError(
                f"starts_on {value!r}: use classified:<class>, severity:<key>, label:<name>, "
                "declared, detected or completed:<clock>"
            )
        return value.strip()

    @property
    def title(self) -> str:
        return self.name or self.key

    @property
    def trigger(self) -> tuple[str, str]:
        """(``classified``, ``major``); (``declared``, ``""``)."""
        kind, _, value = self.starts_on.partition(":")
        return kind, value


def _dora() -> list[dict[str, Any]]:
    return [
        {
            "key": "initial",
            "name": "DORA initial notification",
            "starts_on": "classified:major",
            "deadlines": [
                {"after": "4h", "since": "start"},
                {"after": "24h", "since": "awareness"},
            ],
            "warn_before": ["1h", "15m"],
        },
        {
            "key": "intermediate",
            "name": "DORA intermediate report",
            "starts_on": "completed:initial",
            "deadlines": [{"after": "72h", "since": "initial"}],
            "warn_before": ["12h", "1h"],
            "repeatable": True,
        },
        {
            "key": "final",
            "name": "DORA final report",
            "starts_on": "completed:intermediate",
            "deadlines": [{"after": "1mo", "since": "intermediate"}],
            "warn_before": ["3d", "1d"],
        },
    ]


def _gdpr() -> list[dict[str, Any]]:
    return [
        {
            "key": "gdpr",
            "name": "GDPR notification to the supervisory authority",
            "starts_on": "classified:personal-data-breach",
            "deadlines": [{"after": "72h", "since": "awareness"}],
            "warn_before": ["24h", "4h", "1h"],
        }
    ]


PRESETS = {"dora": _dora, "gdpr": _gdpr}


def _expand(value: object) -> object:
    """``[[clocks]] preset = "dora"`` becomes the preset's clocks; every clock is validated here
    so an error names the clock's key."""
    if not isinstance(value, list):
        return value
    out: list[ClockPolicy] = []
    for index, item in enumerate(value):
        if isinstance(item, ClockPolicy):
            out.append(item)
            continue
        preset = False
        if isinstance(item, dict) and "preset" in item:
            preset, name = True, item["preset"]
            if set(item) != {"preset"} or name not in PRESETS:
                raise PlacedValueError(
                    f"[[clocks]] {index + 1}: preset must be one of {', '.join(PRESETS)} "
                    "and stand alone",
                    (index, "preset"),
                )
            raws: list[Any] = PRESETS[name]()
        else:
            raws = [item]
        for raw in raws:
            label = raw.get("key", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
            try:
                clock = ClockPolicy.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                message = first["msg"].removeprefix("Value error, ")
                if first["type"] == "extra_forbidden":
                    message = "unknown key"
                raise PlacedValueError(
                    f"clock {label!r}: {where}: {message}", (index, *first["loc"])
                ) from None
            clock._entry, clock._preset = index, preset
            out.append(clock)
    return out


def _completion_loop(clock: ClockPolicy, by_key: dict[str, ClockPolicy]) -> list[str]:
    """The clocks from ``clock`` back to itself when each starts on the completion of the next
    (``a -> b -> a``); empty when the chain ends at another trigger."""
    path = [clock.key]
    kind, value = clock.trigger
    while kind == "completed" and value in by_key:
        path.append(value)
        if value == clock.key:
            return path
        if value in path[:-1]:
            return []  # a loop further on: named at one of its own clocks
        kind, value = by_key[value].trigger
    return []


def _consistent(clocks: list[ClockPolicy], info: ValidationInfo) -> list[ClockPolicy]:
    keys = [c.key for c in clocks]
    for n, clock in enumerate(clocks):
        if clock.key in keys[:n]:  # named at its second definition
            raise PlacedValueError(
                f"clock {clock.key!r} is defined twice (a preset and a clock of yours?)",
                clock.at("key"),
            )
    known = set(keys)
    severities = {str(getattr(s, "key", "")).casefold() for s in info.data.get("severities", [])}
    for clock in clocks:
        kind, value = clock.trigger
        if kind == "completed" and value not in known:
            raise PlacedValueError(
                f"clock {clock.key!r}: starts_on refers to unknown clock {value!r}; "
                f"clocks are {', '.join(keys)}",
                clock.at("starts_on"),
            )
        if kind == "completed" and value == clock.key:
            raise PlacedValueError(
                f"clock {clock.key!r}: starts_on cannot be its own completion",
                clock.at("starts_on"),
            )
        loop = _completion_loop(clock, {c.key: c for c in clocks})
        if loop:
            raise PlacedValueError(
                f"clock {clock.key!r}: starts_on waits for a clock that waits for it "
                f"({' -> '.join(loop)}): none of them can ever start",
                clock.at("starts_on"),
            )
        if kind == "severity" and severities and value.casefold() not in severities:
            raise PlacedValueError(
                f"clock {clock.key!r}: starts_on names unknown severity {value!r}",
                clock.at("starts_on"),
            )
        for n, deadline in enumerate(clock.deadlines):
            since = deadline.since
            if since in TIME_REFERENCES:
                continue
            if since not in known or since == clock.key:
                raise PlacedValueError(
                    f"clock {clock.key!r}: deadlines.{n}.since refers to unknown clock {since!r}; "
                    f"use {', '.join(TIME_REFERENCES)} or another clock's key "
                    f"({', '.join(k for k in keys if k != clock.key) or 'none'})",
                    clock.at("deadlines", n, "since"),
                )
    return clocks


ClockList = Annotated[list[ClockPolicy], BeforeValidator(_expand), AfterValidator(_consistent)]
"""The type of ``Policy.clocks``."""


def classifications(clocks: Iterable[ClockPolicy]) -> list[str]:
    """The classifications some clock starts on (``major``, ``personal-data-breach``)."""
    seen: list[str] = []
    for clock in clocks:
        kind, value = clock.trigger
        if kind == "classified" and value not in seen:
            seen.append(value)
    return seen


def find_clock(clocks: Iterable[ClockPolicy], text: str) -> ClockPolicy | None:
    wanted = text.strip().casefold()
    for clock in clocks:
        if wanted in (clock.key, clock.name.casefold()):
            return clock
    return None


# --------------------------------------------------------------------------------------------
# State, from the incident's times and timeline


@dataclass(frozen=True)
class IncidentTimes:
    declared_at: datetime
    detected_at: datetime | None = None
    impact_started_at: datetime | None = None

    @property
    def awareness(self) -> datetime:
        """When the organisation became aware: detection, else the declaration."""
        return self.detected_at or self.declared_at

    def reference(self, name: str) -> datetime | None:
        return {
            "awareness": self.awareness,
            "declared": self.declared_at,
            "detected": self.detected_at,
            "impact": self.impact_started_at,
        }.get(name)


@dataclass(frozen=True)
class EventView:
    """What the clock rules read from a timeline event."""

    kind: str
    occurred_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Bound:
    """One deadline rule with its counting base known: due ``at``."""

    deadline: DeadlinePolicy
    base: datetime
    at: datetime

    def describe(self) -> str:
        since = self.deadline.since
        what = TIME_REFERENCES.get(since, f"the {since} completion").split(" (")[0]
        return f"{self.deadline.after} after {what} {_fmt(self.base)} = {_fmt(self.at)}"


@dataclass
class ClockState:
    policy: ClockPolicy
    started_at: datetime | None = None
    completions: list[datetime] = field(default_factory=list)
    due_at: datetime | None = None
    bounds: list[Bound] = field(default_factory=list)

    @property
    def started(self) -> bool:
        return self.started_at is not None

    @property
    def completed_at(self) -> datetime | None:
        return self.completions[0] if self.completions else None

    @property
    def latest_completion(self) -> datetime | None:
        return self.completions[-1] if self.completions else None

    def status(self, now: datetime) -> str:
        if not self.started:
            return "not started"
        done = self.completed_at
        if done is not None:
            return "done late" if self.due_at is not None and done > self.due_at else "done"
        if self.due_at is not None and now > self.due_at:
            return "overdue"
        return "running"


Board = dict[str, ClockState]


def clock_board(
    clocks: Sequence[ClockPolicy], times: IncidentTimes, events: Iterable[EventView]
) -> Board:
    """Every clock's state from the recorded ``clock_started`` / ``clock_completed`` events."""
    board: Board = {c.key: ClockState(c) for c in clocks}
    for event in events:
        key = event.data.get("clock")
        state = board.get(key) if isinstance(key, str) else None
        if state is None:
            continue
        if event.kind == "clock_started" and state.started_at is None:
            state.started_at = event.occurred_at
        elif event.kind == "clock_completed":
            state.completions.append(event.occurred_at)
    for state in board.values():
        state.due_at, state.bounds = deadline(state, times, board)
    return board


def deadline(
    state: ClockState, times: IncidentTimes, board: Mapping[str, ClockState]
) -> tuple[datetime | None, list[Bound]]:
    """The clock's deadline: the earliest of its bounds that are known yet."""
    if state.started_at is None:
        return None, []
    bounds: list[Bound] = []
    for rule in state.policy.deadlines:
        if rule.since == "start":
            base: datetime | None = state.started_at
        elif rule.since in TIME_REFERENCES:
            base = times.reference(rule.since)
        else:
            other = board.get(rule.since)
            base = other.latest_completion if other is not None else None
        if base is not None:
            bounds.append(Bound(rule, base, rule.after.after(base)))
    return (min(b.at for b in bounds) if bounds else None), bounds


def start_time(
    clock: ClockPolicy,
    times: IncidentTimes,
    events: Sequence[EventView],
    board: Mapping[str, ClockState],
    severity_rank: Mapping[str, int],
) -> datetime | None:
    """When ``clock`` should have started, or ``None`` if its trigger has not happened."""
    kind, value = clock.trigger
    if kind == "declared":
        return times.declared_at
    if kind == "detected":
        return times.awareness
    if kind == "completed":
        other = board.get(value)
        return other.completed_at if other is not None else None
    wanted_rank = severity_rank.get(value.casefold())
    for event in events:
        data = event.data
        if kind == "classified" and event.kind == "classified":
            if data.get("classification") == value:
                return event.occurred_at
        elif kind == "severity" and event.kind in ("declared", "severity_changed"):
            sev = data.get("severity") if event.kind == "declared" else data.get("to")
            rank = severity_rank.get(str(sev).casefold())
            if rank is not None and wanted_rank is not None and rank <= wanted_rank:
                return event.occurred_at
        elif kind == "label" and _has_label(data.get("labels"), value):
            return event.occurred_at
    return None


def _has_label(labels: object, wanted: str) -> bool:
    """``labels`` as a list (``["gdpr"]``) or a mapping (``{"gdpr": "true"}``); ``name=value``
    matches a mapping entry."""
    name, _, value = wanted.partition("=")
    if isinstance(labels, Mapping):
        return name in labels and (not value or str(labels[name]) == value)
    if isinstance(labels, list):
        return wanted in labels
    return False


# --------------------------------------------------------------------------------------------
# Warnings


@dataclass(frozen=True)
class WarningPoint:
    point: str
    """``before-1h``, ``before-15m`` or ``due``."""
    at: datetime


def warning_points(state: ClockState) -> list[WarningPoint]:
    """When to post about a running clock: each ``warn_before`` ahead of the deadline and at it.

    Warnings that were already past when the clock started collapse into one, posted at the
    start; a deadline already past at the start (a classification made after the 24 hours)
    posts its overdue notice at the start."""
    if state.started_at is None or state.due_at is None or state.completions:
        return []
    start, due = state.started_at, state.due_at
    points: list[WarningPoint] = []
    past: WarningPoint | None = None
    for offset in sorted(state.policy.warn_before, reverse=True):
        at = offset.before(due)
        point = WarningPoint(f"before-{offset}", at)
        if at >= start:
            points.append(point)
        elif due > start:
            past = WarningPoint(point.point, start)
    if past is not None:
        points.insert(0, past)
    points.append(WarningPoint("due", max(due, start)))
    return points


@dataclass(frozen=True)
class ClockOutcome:
    """What a clock reminder does when it fires: post ``text`` now, or (``text`` None) look
    again at ``retry_at``, or nothing at all when both are None (the clock is done)."""

    text: str | None = None
    retry_at: datetime | None = None


def evaluate_clock(
    board: Mapping[str, ClockState], incident_ref: str, data: Mapping[str, Any], now: datetime
) -> ClockOutcome:
    """The notice for the clock reminder ``data`` (``{"clock", "point", "due_at"}``) at ``now``:
    plain text naming the clock, its deadline, the time left or overdue, and the command that
    completes it. Nothing once the clock is completed; a later look when the deadline moved."""
    state = board.get(str(data.get("clock")))
    if state is None or not state.started or state.completions or state.due_at is None:
        return ClockOutcome()
    points = {p.point: p for p in warning_points(state)}
    point = points.get(str(data.get("point")))
    if point is None:
        return ClockOutcome()
    if point.at > now + timedelta(seconds=1):
        return ClockOutcome(retry_at=point.at)
    return ClockOutcome(text=notice(state, incident_ref, now))


def notice(state: ClockState, incident_ref: str, now: datetime) -> str:
    assert state.due_at is not None
    clock, due = state.policy, state.due_at
    left = due - now
    if left > timedelta(seconds=59):
        head = f"{incident_ref}: {clock.title} is due in {_span(left)}, at {_fmt(due)}."
    elif left >= -timedelta(seconds=59):
        head = f"{incident_ref}: {clock.title} is due now ({_fmt(due)})."
    else:
        head = f"{incident_ref}: {clock.title} is OVERDUE by {_span(-left)} (was due {_fmt(due)})."
    why = ""
    if len(state.bounds) > 1:
        why = " Deadline: the earlier of " + ", ".join(b.describe() for b in state.bounds)
        why += "."
    return f"{head}{why} When it is sent, record it with /incident notified {clock.key}"


def clock_lines(board: Mapping[str, ClockState], now: datetime) -> list[str]:
    """One plain line per started clock, for the summary, the postmortem and the bundle."""
    lines = []
    for state in board.values():
        if not state.started:
            continue
        clock, due, status = state.policy, state.due_at, state.status(now)
        if status in ("done", "done late"):
            done, latest = state.completed_at, state.latest_completion
            assert done is not None and latest is not None
            late = f", {_span(done - due)} late" if due and status == "done late" else ""
            count = len(state.completions)
            extra = f"; latest {_fmt(latest)} ({count} recorded)" if count > 1 else ""
            lines.append(f"{clock.title}: sent {_fmt(done)}{late}{extra}")
        elif due is None:
            lines.append(f"{clock.title}: started {_fmt(state.started_at)}; deadline not known yet")
        elif status == "overdue":
            lines.append(f"{clock.title}: OVERDUE by {_span(now - due)} (due {_fmt(due)})")
        else:
            lines.append(f"{clock.title}: due {_fmt(due)} (in {_span(due - now)})")
    return lines


def clock_records(board: Mapping[str, ClockState], now: datetime) -> list[dict[str, Any]]:
    """The clocks as JSON-ready records (evidence bundle)."""
    return [
        {
            "clock": s.policy.key,
            "name": s.policy.title,
            "status": s.status(now),
            "started_at": _iso(s.started_at),
            "due_at": _iso(s.due_at),
            "completions": [_iso(c) for c in s.completions],
            "deadlines": [
                {"after": str(b.deadline.after), "since": b.deadline.since, "at": _iso(b.at)}
                for b in s.bounds
            ],
        }
        for s in board.values()
        if s.started
    ]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _fmt(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def _span(value: timedelta) -> str:
    minutes = max(int(value.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if mins and not days:
        parts.append(f"{mins}m")
    return " ".join(parts) or "under a minute"
