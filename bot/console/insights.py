"""Insights: the numbers behind the console's trend charts, per week or month.

Each function returns a ``Table`` (what the chart draws, also shown as a table and served as
CSV). Periods are calendar weeks (Monday to Sunday) or months in the team's timezone
(``policy.timezone``). Incidents are counted in the period they were declared; escalations and
reminders in the period they were sent. Only incidents the viewer may see are counted.

Statistics: the median is the middle value (the mean of the two middle values for an even
count); p90 is the nearest-rank 90th percentile (the smallest value with at least 90 % of the
values at or below it). Durations are the incident metrics of ``bot.incidents.incident_metrics``
(unknown milestones are left out, never counted as zero).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from bot import incidents
from bot.clock import utcnow
from bot.config import Policy
from bot.console.queries import SENT_KINDS, Visibility, as_time, day_start, raw_time
from bot.errors import InvalidInput
from bot.models import ActionItem, EventKind, Incident, RunbookRun, RunbookStepState, TimelineEvent
from bot.runbooks.progress import FINISHED_STATES, RUN_COMPLETED

PeriodKind = Literal["week", "month"]
MAX_BUCKETS = 260
DEFAULT_BUCKETS = 12
TOP_SERVICES = 8
TOP_RUNBOOKS = 10

Cell = str | int | float | None


@dataclass(frozen=True)
class Bucket:
    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Range:
    period: PeriodKind
    first_day: date
    last_day: date
    buckets: tuple[Bucket, ...]

    @property
    def start(self) -> datetime:
        return self.buckets[0].start

    @property
    def end(self) -> datetime:
        return self.buckets[-1].end

    def index(self, when: datetime) -> int | None:
        if when < self.start or when >= self.end:
            return None
        return bisect.bisect_right(self._starts, when) - 1

    @property
    def _starts(self) -> list[datetime]:
        return [b.start for b in self.buckets]

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.buckets]


def _period_start(day: date, period: PeriodKind) -> date:
    return day - timedelta(days=day.weekday()) if period == "week" else day.replace(day=1)


def _next_start(day: date, period: PeriodKind) -> date:
    if period == "week":
        return day + timedelta(days=7)
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def make_range(
    period: str,
    first: date | None,
    last: date | None,
    zone: ZoneInfo,
    *,
    now: datetime | None = None,
) -> Range:
    """Whole weeks or months covering ``first``..``last`` (default: the last 12 periods)."""
    if period not in ("week", "month"):
        raise InvalidInput(f"The period is 'week' or 'month', not {period[:20]!r}.")
    kind: PeriodKind = "week" if period == "week" else "month"
    today = (now or utcnow()).astimezone(zone).date()
    last = last or today
    if first is None:
        first = _period_start(last, kind)
        for _ in range(DEFAULT_BUCKETS - 1):
            first = _period_start(first - timedelta(days=1), kind)
    if first > last:
        raise InvalidInput("The 'from' date is after the 'to' date.")
    to_utc = day_start(zone)
    buckets: list[Bucket] = []
    day = _period_start(first, kind)
    while day <= last:
        following = _next_start(day, kind)
        label = (
            f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}"
            if kind == "week"
            else day.strftime("%Y-%m")
        )
        buckets.append(Bucket(label, to_utc(day), to_utc(following)))
        if len(buckets) > MAX_BUCKETS:
            raise InvalidInput(
                f"That range has more than {MAX_BUCKETS} {kind}s; choose a shorter range or "
                "a longer period."
            )
        day = following
    return Range(kind, first, last, tuple(buckets))


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    unit: str = ""
    note: str = ""
    """What is counted, said under the chart when it is not obvious."""


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)])


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _visible_in(visibility: Visibility, rng: Range) -> Any:
    return and_(
        visibility.condition(),
        col(Incident.declared_at) >= rng.start,
        col(Incident.declared_at) < rng.end,
    )


# --------------------------------------------------------------------------------------------
# Incidents by severity and by service


@dataclass(frozen=True)
class IncidentRow:
    severity: str
    service: str | None
    declared_at: datetime
    metrics: incidents.IncidentMetrics


_METRIC_COLUMNS = (
    col(Incident.severity),
    col(Incident.service),
    *(
        raw_time(col(c))
        for c in (
            Incident.declared_at,
            Incident.impact_started_at,
            Incident.detected_at,
            Incident.acknowledged_at,
            Incident.mitigated_at,
            Incident.resolved_at,
            Incident.closed_at,
        )
    ),
)


@dataclass(frozen=True, slots=True)
class _Milestones:
    """The milestone columns of an incident: all ``incident_metrics`` reads. Building a full
    ``Incident`` per row costs more than the whole query on 10,000 incidents."""

    impact_started_at: datetime | None
    detected_at: datetime | None
    declared_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


def incident_rows(session: Session, visibility: Visibility, rng: Range) -> list[IncidentRow]:
    """The incidents declared in the range with their metrics (the milestone columns only)."""
    rows = (
        session.connection()
        .execute(sa_select(*_METRIC_COLUMNS).where(_visible_in(visibility, rng)))
        .all()
    )
    out = []
    for severity, service, *times in rows:
        declared, impact, detected, acked, mitigated, resolved, closed = map(as_time, times)
        assert declared is not None
        milestones = _Milestones(impact, detected, declared, acked, mitigated, resolved, closed)
        metrics = incidents.incident_metrics(cast(Incident, milestones))
        out.append(IncidentRow(severity, service, declared, metrics))
    return out


def by_severity(policy: Policy, rng: Range, rows: Sequence[IncidentRow]) -> Table:
    keys = [s.key for s in policy.severities]
    counts: list[Counter[str]] = [Counter() for _ in rng.buckets]
    for row in rows:
        i = rng.index(row.declared_at)
        if i is not None:
            counts[i][row.severity] += 1
    extra = sorted({k for c in counts for k in c} - set(keys))
    columns = keys + extra
    return Table(
        "severity",
        "Incidents by severity",
        ["period", *columns, "total"],
        [
            [label, *(c[k] for k in columns), sum(c.values())]
            for label, c in zip(rng.labels, counts, strict=True)
        ],
        unit="incidents",
    )


def by_service(rng: Range, rows: Sequence[IncidentRow]) -> Table:
    totals = Counter(
        row.service or "(none)" for row in rows if rng.index(row.declared_at) is not None
    )
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    top = [name for name, _ in ranked[:TOP_SERVICES]]
    other = "other services" if len(totals) > len(top) else None
    columns = top + ([other] if other else [])
    counts: list[Counter[str]] = [Counter() for _ in rng.buckets]
    for row in rows:
        i = rng.index(row.declared_at)
        if i is None:
            continue
        name = row.service or "(none)"
        counts[i][name if name in top else str(other)] += 1
    return Table(
        "service",
        "Incidents by service",
        ["period", *columns, "total"],
        [
            [label, *(c[k] for k in columns), sum(c.values())]
            for label, c in zip(rng.labels, counts, strict=True)
        ],
        unit="incidents",
    )


RESPONSE_METRICS = {
    "time_to_acknowledge": "Time to acknowledge",
    "time_to_mitigate": "Time to mitigate",
    "time_to_resolve": "Time to resolve",
}


def response_time(rng: Range, rows: Sequence[IncidentRow], metric: str) -> Table:
    """Median and p90 of one metric per period, in minutes."""
    values: list[list[float]] = [[] for _ in rng.buckets]
    for row in rows:
        i = rng.index(row.declared_at)
        value = getattr(row.metrics, metric)
        if i is not None and value is not None:
            values[i].append(value.total_seconds() / 60)
    return Table(
        metric,
        f"{RESPONSE_METRICS[metric]} (minutes)",
        ["period", "incidents measured", "median", "p90"],
        [
            [label, len(v), _round(median(v)), _round(p90(v))]
            for label, v in zip(rng.labels, values, strict=True)
        ],
        unit="minutes",
    )


# --------------------------------------------------------------------------------------------
# Time in each status


_DATA = TimelineEvent.__table__.c.data  # type: ignore[attr-defined]
_NEW_STATUS = func.coalesce(_DATA["to"].as_string(), _DATA["status"].as_string())
"""The status an event moved the incident to: ``to`` of a status change, ``status`` of the
declaration (read in SQL, so no event's JSON is decoded in Python)."""


def time_in_status(
    session: Session,
    policy: Policy,
    visibility: Visibility,
    rng: Range,
    *,
    now: datetime | None = None,
) -> Table:
    """Hours each incident spent in each status, from its declared and status_changed events.

    A status counts until the next change; the current one until the end of the period shown,
    or now if that is sooner: a past period's figures do not change with the day they are read
    (an incident left in Resolved, not closed, would grow forever). Statuses of the closed phase
    are not counted (a closed incident stays closed forever)."""
    now = now or utcnow()
    cap = min(rng.end, now)
    closed = {s.key for s in policy.statuses if s.phase == "closed"}
    events = (
        session.connection()
        .execute(
            sa_select(
                col(TimelineEvent.incident_id),
                raw_time(col(TimelineEvent.occurred_at)),
                _NEW_STATUS,
            )
            .join(Incident, col(Incident.id) == col(TimelineEvent.incident_id))
            .where(
                _visible_in(visibility, rng),
                col(TimelineEvent.kind).in_(
                    (EventKind.DECLARED.value, EventKind.STATUS_CHANGED.value)
                ),
            )
            .order_by(
                col(TimelineEvent.incident_id),
                col(TimelineEvent.occurred_at),
                col(TimelineEvent.id),
            )
        )
        .all()
    )
    per_status: dict[str, list[float]] = defaultdict(list)

    def finish(spent: dict[str, float]) -> None:
        for status, hours in spent.items():
            per_status[status].append(hours)

    current_incident: int | None = None
    status: str | None = None
    since: datetime | None = None
    spent: dict[str, float] = defaultdict(float)

    def count(until: datetime) -> None:
        if status is not None and since is not None and status not in closed:
            spent[status] += max((min(until, cap) - since).total_seconds(), 0) / 3600

    for incident_id, raw_at, new in events:
        occurred_at = as_time(raw_at)
        assert occurred_at is not None
        if incident_id != current_incident:
            count(cap)
            finish(spent)
            current_incident, status, since, spent = incident_id, None, None, defaultdict(float)
        count(occurred_at)
        status, since = (str(new) if new else status), occurred_at
    count(cap)
    finish(spent)
    order = [s.key for s in policy.statuses if s.key not in closed]
    order += sorted(set(per_status) - set(order))
    return Table(
        "time_in_status",
        "Time in each status (hours per incident)",
        ["status", "incidents", "median", "p90", "total"],
        [
            [
                status,
                len(per_status.get(status, [])),
                _round(median(per_status.get(status, []))),
                _round(p90(per_status.get(status, []))),
                _round(sum(per_status.get(status, [])), 1),
            ]
            for status in order
        ],
        unit="hours",
        note=(
            "Hours each incident declared in the period spent in each status, up to the end of "
            "the period shown (or now, if sooner), so a past period's figures do not change: an "
            "incident still open, or left resolved and not closed, counts until then. Closed "
            "statuses are not counted."
        ),
    )


# --------------------------------------------------------------------------------------------
# Action items, escalations, runbooks


def action_items(
    session: Session,
    policy: Policy,
    visibility: Visibility,
    rng: Range,
    *,
    now: datetime | None = None,
) -> Table:
    """Action items by the period they were created in: done, open, and open past their due
    date (in the team's timezone) as of now."""
    today = (now or utcnow()).astimezone(policy.zone).date()
    rows = (
        session.connection()
        .execute(
            sa_select(
                raw_time(col(ActionItem.created_at)), col(ActionItem.status), col(ActionItem.due_on)
            )
            .join(Incident, col(Incident.id) == col(ActionItem.incident_id))
            .where(
                visibility.condition(),
                col(ActionItem.created_at) >= rng.start,
                col(ActionItem.created_at) < rng.end,
            )
        )
        .all()
    )
    counts = [[0, 0, 0] for _ in rng.buckets]
    for created_at, status, due_on in rows:
        i = rng.index(as_time(created_at) or rng.end)
        if i is None:
            continue
        if status != "open":
            counts[i][0] += 1
        elif due_on is not None and due_on < today:
            counts[i][2] += 1
        else:
            counts[i][1] += 1
    return Table(
        "action_items",
        "Action items (by the period they were created in)",
        ["period", "done", "open", "overdue", "total"],
        [[label, *c, sum(c)] for label, c in zip(rng.labels, counts, strict=True)],
        unit="action items",
    )


def escalations(session: Session, visibility: Visibility, rng: Range) -> Table:
    rows = (
        session.connection()
        .execute(
            sa_select(raw_time(col(TimelineEvent.occurred_at)), col(TimelineEvent.kind))
            .join(Incident, col(Incident.id) == col(TimelineEvent.incident_id))
            .where(
                visibility.condition(),
                col(TimelineEvent.kind).in_(SENT_KINDS),
                col(TimelineEvent.occurred_at) >= rng.start,
                col(TimelineEvent.occurred_at) < rng.end,
            )
        )
        .all()
    )
    counts = [[0, 0] for _ in rng.buckets]
    for occurred_at, kind in rows:
        i = rng.index(as_time(occurred_at) or rng.end)
        if i is not None:
            counts[i][0 if kind == EventKind.ESCALATED.value else 1] += 1
    return Table(
        "escalations",
        "Escalations and reminders sent",
        ["period", "escalations", "reminders", "total"],
        [[label, *c, sum(c)] for label, c in zip(rng.labels, counts, strict=True)],
        unit="messages",
    )


def runbooks(session: Session, visibility: Visibility, rng: Range) -> Table:
    """The runbooks started most in the range, how many runs finished, and the share of their
    steps done or skipped."""
    finished_steps = (
        sa_select(col(RunbookStepState.run_id), func.count().label("finished"))
        .where(col(RunbookStepState.state).in_(tuple(FINISHED_STATES)))
        .group_by(col(RunbookStepState.run_id))
        .subquery()
    )
    rows = (
        session.connection()
        .execute(
            sa_select(
                col(RunbookRun.runbook_id),
                col(RunbookRun.title),
                col(RunbookRun.status),
                col(RunbookRun.step_count),
                func.coalesce(finished_steps.c.finished, 0),
            )
            .join(Incident, col(Incident.id) == col(RunbookRun.incident_id))
            .outerjoin(finished_steps, finished_steps.c.run_id == col(RunbookRun.id))
            .where(
                visibility.condition(),
                col(RunbookRun.started_at) >= rng.start,
                col(RunbookRun.started_at) < rng.end,
            )
        )
        .all()
    )
    stats: dict[str, list[Any]] = {}
    for runbook_id, title, status, step_count, finished in rows:
        entry = stats.setdefault(runbook_id, [title, 0, 0, 0, 0])
        entry[1] += 1
        entry[2] += status == RUN_COMPLETED
        entry[3] += int(step_count)
        entry[4] += int(finished)
    ranked = sorted(stats.items(), key=lambda kv: (-kv[1][1], kv[0]))[:TOP_RUNBOOKS]
    return Table(
        "runbooks",
        "Runbooks used most",
        ["runbook", "runs", "completed runs", "steps finished %"],
        [
            [title, runs, completed, _round(100 * done / steps if steps else None, 0)]
            for _, (title, runs, completed, steps, done) in ranked
        ],
        unit="runs",
    )


def all_insights(
    session: Session,
    policy: Policy,
    visibility: Visibility,
    rng: Range,
    *,
    now: datetime | None = None,
) -> list[Table]:
    """Every insight, in the order the page shows them."""
    now = now or utcnow()
    rows = incident_rows(session, visibility, rng)
    return [
        by_severity(policy, rng, rows),
        by_service(rng, rows),
        *(response_time(rng, rows, metric) for metric in RESPONSE_METRICS),
        time_in_status(session, policy, visibility, rng, now=now),
        action_items(session, policy, visibility, rng, now=now),
        escalations(session, visibility, rng),
        runbooks(session, visibility, rng),
    ]
