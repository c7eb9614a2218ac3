"""What the console reads: who may see which incidents, the filtered list, one incident's story.

Every query takes a ``Visibility``: the private incidents the viewer may see, decided by the one
rule, ``bot.access.can_see``. Public incidents are visible to every signed-in person.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, func, or_, true, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.orm import load_only
from sqlmodel import Session, col, select

from bot import access, incidents
from bot.access import Directory
from bot.alerts.model import Status
from bot.alerts.models import AlertGroup, AlertRecord, AlertStint
from bot.clock import utcnow
from bot.config import Policy
from bot.db import unicode_lower, whole_number
from bot.errors import InvalidInput
from bot.markup import escape_mrkdwn
from bot.models import (
    ActionItem,
    EventKind,
    Incident,
    Postmortem,
    Reminder,
    RoleAssignment,
    TimelineEvent,
)
from bot.postmortem import list_postmortems
from bot.runbooks.progress import RunView, incident_runs

PAGE_SIZE = 50
SEARCH_MAX = 200
SERVICE_MAX = 200
VISIBILITY_TTL = 30.0
"""Seconds a viewer's set of visible private incidents is reused across pages."""

SORTS: dict[str, Any] = {
    "number": col(Incident.number),
    "declared": col(Incident.declared_at),
    "severity": col(Incident.severity),
    "status": col(Incident.status),
    "title": col(Incident.title),
    "service": col(Incident.service),
}


# --------------------------------------------------------------------------------------------
# Reading many timestamps


def raw_time(column: Any) -> Any:
    """A timestamp column read as the driver gives it (SQLite: its text; PostgreSQL: a
    datetime), skipping the per-value conversion that dominates queries of 10,000+ rows.
    ``as_time`` turns each value into an aware UTC datetime."""
    return type_coerce(column, String)


def as_time(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite stores UTC as "YYYY-MM-DD HH:MM:SS.ffffff"
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Visibility


class MemoDirectory:
    """A ``Directory`` that asks the real one once per question (one page, one viewer)."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self._admin: dict[str, bool] = {}
        self._groups: dict[str, set[str]] = {}
        self._channels: dict[str, set[str]] = {}

    def is_workspace_admin(self, user: str) -> bool:
        if user not in self._admin:
            self._admin[user] = self.inner.is_workspace_admin(user)
        return self._admin[user]

    def group_members(self, group: str) -> set[str]:
        if group not in self._groups:
            self._groups[group] = self.inner.group_members(group)
        return self._groups[group]

    def channel_members(self, channel: str) -> set[str]:
        if channel not in self._channels:
            self._channels[channel] = self.inner.channel_members(channel)
        return self._channels[channel]


@dataclass(frozen=True)
class Visibility:
    private_ids: frozenset[int]
    all_private: bool = False

    def condition(self) -> ColumnElement[bool]:
        if self.all_private:
            return true()
        if not self.private_ids:
            return col(Incident.private).is_(False)
        return or_(col(Incident.private).is_(False), col(Incident.id).in_(self.private_ids))


_RULE_COLUMNS: tuple[Any, ...] = (
    Incident.id,
    Incident.private,
    Incident.slack_channel_id,
    Incident.slack_state,
    Incident.reporter_id,
)


def compute_visibility(
    session: Session, policy: Policy, user: str, directory: Directory
) -> Visibility:
    """Apply ``access.can_see`` to every private incident, asking Slack once per channel.

    Only an admin sees every private incident, those declared later included: the result is
    reused for a few seconds, so for anyone else it names the incidents seen, and one declared
    meanwhile stays hidden until it is worked out again."""
    memo = MemoDirectory(directory)
    if access.is_admin(policy, user, memo):
        return Visibility(frozenset(), all_private=True)
    # Only what the rule reads today is loaded up front; anything else it reads later still
    # loads (lazily) from the same session.
    private = session.exec(
        select(Incident).where(col(Incident.private).is_(True)).options(load_only(*_RULE_COLUMNS))
    ).all()
    seen = frozenset(
        i.id for i in private if i.id is not None and access.can_see(policy, user, i, memo)
    )
    return Visibility(seen)


class VisibilityCache:
    """Visibility per viewer for a few seconds, so paging through a list asks Slack once."""

    def __init__(self, ttl: float = VISIBILITY_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Visibility]] = {}

    def get(self, user: str, compute: Callable[[], Visibility]) -> Visibility:
        now = self.clock()
        with self._lock:
            entry = self._entries.get(user)
            if entry and now - entry[0] < self.ttl:
                return entry[1]
        value = compute()
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[user] = (now, value)
        return value


def visible_incident(
    session: Session, policy: Policy, user: str, directory: Directory, number: int
) -> Incident | None:
    """The incident, or ``None`` when it does not exist or the viewer may not see it (the
    same answer, so a private incident's existence does not leak)."""
    incident = session.exec(select(Incident).where(Incident.number == number)).first()
    if incident is None or not access.can_see(policy, user, incident, MemoDirectory(directory)):
        return None
    return incident


# --------------------------------------------------------------------------------------------
# The list


@dataclass(frozen=True)
class IncidentFilter:
    statuses: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    service: str = ""
    declared_from: date | None = None
    declared_to: date | None = None
    text: str = ""
    sort: str = "number"
    descending: bool = True
    page: int = 1

    def query(self, **changes: Any) -> list[tuple[str, str]]:
        """Query parameters for this filter with ``changes`` applied (links, pagination)."""
        values = {**self.__dict__, **changes}
        params: list[tuple[str, str]] = []
        params += [("status", s) for s in values["statuses"]]
        params += [("severity", s) for s in values["severities"]]
        if values["service"]:
            params.append(("service", values["service"]))
        if values["declared_from"]:
            params.append(("from", values["declared_from"].isoformat()))
        if values["declared_to"]:
            params.append(("to", values["declared_to"].isoformat()))
        if values["text"]:
            params.append(("q", values["text"]))
        if values["sort"] != "number" or not values["descending"]:
            params.append(("sort", values["sort"]))
            params.append(("order", "desc" if values["descending"] else "asc"))
        if values["page"] != 1:
            params.append(("page", str(values["page"])))
        return params


_PARAM_NAMES = {"q": "search text", "from": "from date", "to": "to date"}


def _one(params: Mapping[str, Sequence[str]], name: str) -> str:
    values = params.get(name) or []
    value = values[-1].strip() if values else ""
    if "\x00" in value:
        # No stored text holds one (PostgreSQL's text cannot): a bad request, not a search.
        raise InvalidInput(
            f"The {_PARAM_NAMES.get(name, name)} contains a NUL character (%00): remove it."
        )
    return value


DATE_RANGE = (date(1970, 1, 1), date(9998, 12, 31))
"""Dates a filter takes: the calendar's ends have no day after (or before) them in every
timezone, and no incident is older than 1970."""


def parse_date(value: str, label: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value[:20])
    except ValueError:
        raise InvalidInput(
            f"The {label} date {value[:20]!r} is not a date: use YYYY-MM-DD."
        ) from None
    first, last = DATE_RANGE
    if not first <= day <= last:
        raise InvalidInput(
            f"The {label} date {day.isoformat()} is out of range: use a date from "
            f"{first.isoformat()} to {last.isoformat()}."
        )
    return day


def parse_filter(params: Mapping[str, Sequence[str]], policy: Policy) -> IncidentFilter:
    """Read the list's query string; any bad value is an ``InvalidInput`` saying what to fix."""
    statuses = tuple(dict.fromkeys(v for v in params.get("status", []) if v))
    known_statuses = [s.key for s in policy.statuses]
    for status in statuses:
        if status not in known_statuses:
            raise InvalidInput(
                f"Unknown status {status[:40]!r}: choose from {', '.join(known_statuses)}."
            )
    severities = tuple(dict.fromkeys(v for v in params.get("severity", []) if v))
    known_severities = [s.key for s in policy.severities]
    for severity in severities:
        if severity not in known_severities:
            raise InvalidInput(
                f"Unknown severity {severity[:40]!r}: choose from {', '.join(known_severities)}."
            )
    service = _one(params, "service")
    if len(service) > SERVICE_MAX:
        raise InvalidInput(f"The service is {len(service):,} characters; the limit is 200.")
    text = " ".join(_one(params, "q").split())
    if len(text) > SEARCH_MAX:
        raise InvalidInput(
            f"The search text is {len(text):,} characters long; the limit is {SEARCH_MAX}."
        )
    declared_from = parse_date(_one(params, "from"), "from")
    declared_to = parse_date(_one(params, "to"), "to")
    if declared_from and declared_to and declared_from > declared_to:
        raise InvalidInput("The 'from' date is after the 'to' date.")
    sort = _one(params, "sort") or "number"
    if sort not in SORTS:
        raise InvalidInput(f"Cannot sort by {sort[:40]!r}: choose from {', '.join(SORTS)}.")
    order = _one(params, "order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidInput("The order is 'asc' or 'desc'.")
    page = parse_page(_one(params, "page"))
    return IncidentFilter(
        statuses=statuses,
        severities=severities,
        service=service,
        declared_from=declared_from,
        declared_to=declared_to,
        text=text,
        sort=sort,
        descending=order == "desc",
        page=page,
    )


def parse_page(value: str) -> int:
    if not value:
        return 1
    page = whole_number(value)
    if page is None:
        raise InvalidInput(
            f"The page {value[:20]!r} is not a page number: use a whole number from 1."
        )
    return page


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(flt: IncidentFilter, zone_start: Callable[[date], datetime]) -> list[Any]:
    conditions: list[Any] = []
    if flt.statuses:
        conditions.append(col(Incident.status).in_(flt.statuses))
    if flt.severities:
        conditions.append(col(Incident.severity).in_(flt.severities))
    if flt.service:
        conditions.append(col(Incident.service) == flt.service)
    if flt.declared_from:
        conditions.append(col(Incident.declared_at) >= zone_start(flt.declared_from))
    if flt.declared_to:
        conditions.append(
            col(Incident.declared_at) < zone_start(flt.declared_to + timedelta(days=1))
        )
    if flt.text:
        number = incidents.parse_incident_ref(flt.text)
        pattern = _like(flt.text.lower())
        matches: list[ColumnElement[bool]] = [
            unicode_lower(column).like(pattern, escape="\\")
            for column in (col(Incident.title), col(Incident.service))
        ]
        # The summary is kept in Slack's markup (``<`` as ``&lt;``): searched as it reads.
        shown = _like(escape_mrkdwn(flt.text.lower()))
        matches.append(unicode_lower(col(Incident.summary)).like(shown, escape="\\"))
        if number is not None and number <= incidents.NUMBER_MAX:
            matches.append(col(Incident.number) == number)
        conditions.append(or_(*matches))
    return conditions


@dataclass(frozen=True)
class IncidentPage:
    incidents: list[Incident]
    total: int
    page: int
    pages: int
    services: list[str]


def day_start(zone: Any) -> Callable[[date], datetime]:
    """Dates in filters are days in the team's timezone (``policy.timezone``)."""

    def start(day: date) -> datetime:
        return datetime.combine(day, dtime(0), tzinfo=zone).astimezone(UTC)

    return start


def list_page(
    session: Session, policy: Policy, visibility: Visibility, flt: IncidentFilter
) -> IncidentPage:
    where = and_(visibility.condition(), *_conditions(flt, day_start(policy.zone)))
    total = int(
        session.execute(sa_select(func.count()).select_from(Incident).where(where)).scalar_one()
    )
    pages = max(1, -(-total // PAGE_SIZE))
    services = [
        str(s)
        for s in session.execute(
            sa_select(col(Incident.service))
            .where(visibility.condition(), col(Incident.service).is_not(None))
            .distinct()
            .order_by(col(Incident.service))
        ).scalars()
    ]
    if flt.page > pages:
        return IncidentPage([], total, flt.page, pages, services)
    key = SORTS[flt.sort]
    # Incidents without the value (no service) come last either way, on both backends
    # (PostgreSQL puts NULLs first when descending, SQLite first when ascending).
    order = [(key.desc() if flt.descending else key.asc()).nulls_last()]
    if flt.sort != "number":
        order.append(col(Incident.number).desc())
    rows = session.exec(
        select(Incident)
        .where(where)
        .order_by(*order)
        .offset((flt.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return IncidentPage(list(rows), total, flt.page, pages, services)


# --------------------------------------------------------------------------------------------
# One incident


@dataclass(frozen=True)
class Scheduled:
    """A reminder or escalation that is still to be sent."""

    kind: str
    due_at: datetime
    state: str
    sent_count: int
    last_error: str | None


def pending_messages(session: Session, incident_id: int) -> list[Scheduled]:
    """Reminders and escalations still due for the incident.

    The one place that knows where they are kept (today the ``reminders`` table); what was
    already sent is read from the timeline (``reminder_sent`` / ``escalated`` events)."""
    rows = session.exec(
        select(Reminder)
        .where(Reminder.incident_id == incident_id, col(Reminder.state).in_(("pending", "claimed")))
        .order_by(col(Reminder.due_at))
    ).all()
    return [Scheduled(r.kind, r.due_at, r.state, r.sent_count, r.last_error) for r in rows]


SENT_KINDS = (EventKind.REMINDER_SENT.value, EventKind.ESCALATED.value)


@dataclass(frozen=True)
class AlertView:
    source: str
    name: str
    title: str
    status: str
    severity: str | None
    starts_at: datetime | None
    resolved_at: datetime | None
    links: list[dict[str, str]]


ALERTS_SHOWN = 500


def incident_alerts(session: Session, incident_id: int) -> list[AlertView]:
    """The alerts that fired in this incident, oldest first: those still under it, and those
    that have since fired again under another, as they were here (``alert_stints``); alerts
    the routing rules dropped are left out."""
    current = session.exec(
        select(AlertRecord, AlertGroup.source)
        .join(AlertGroup, col(AlertGroup.id) == col(AlertRecord.group_id))
        .where(AlertRecord.incident_id == incident_id, col(AlertRecord.dropped).is_(False))
        .order_by(col(AlertRecord.first_seen_at), col(AlertRecord.id))
        .limit(ALERTS_SHOWN)
    ).all()
    shown: list[tuple[datetime | None, AlertView]] = [
        (
            alert.starts_at or alert.first_seen_at,
            AlertView(
                source=source,
                name=alert.name,
                title=alert.title,
                status=alert.status,
                severity=alert.severity,
                starts_at=alert.starts_at or alert.first_seen_at,
                resolved_at=alert.resolved_at,
                links=list(alert.links or []),
            ),
        )
        for alert, source in current
    ]
    listed = {alert.id for alert, _ in current}
    stints = session.exec(
        select(AlertStint)
        .where(AlertStint.incident_id == incident_id)
        .order_by(col(AlertStint.id))
        .limit(ALERTS_SHOWN)
    ).all()
    for stint in stints:
        if stint.alert_id in listed:
            continue  # back under this incident: listed as it is now
        listed.add(stint.alert_id)
        view = AlertView(
            source=stint.source,
            name=stint.name,
            title=stint.title,
            status=Status.RESOLVED.value,
            severity=stint.severity,
            starts_at=stint.starts_at,
            resolved_at=stint.resolved_at,
            links=[],
        )
        shown.append((stint.starts_at, view))
    far_past = datetime.min.replace(tzinfo=UTC)
    shown.sort(key=lambda row: row[0] or far_past)
    return [view for _, view in shown[:ALERTS_SHOWN]]


@dataclass(frozen=True)
class PostmortemView:
    versions: list[Postmortem]
    current: Postmortem | None
    compare_to: Postmortem | None
    diff: list[tuple[str, str]] = field(default_factory=list)
    """(css class, line) of a unified diff from ``compare_to`` to ``current``."""


def postmortem_view(
    session: Session, incident_id: int, version: int | None, compare: int | None
) -> PostmortemView:
    versions = list_postmortems(session, incident_id)
    by_version = {p.version: p for p in versions}
    if version is not None and version not in by_version:
        raise InvalidInput(f"There is no postmortem version {version}.")
    if compare is not None and compare not in by_version:
        raise InvalidInput(f"There is no postmortem version {compare} to compare with.")
    current = (
        by_version.get(version) if version is not None else (versions[-1] if versions else None)
    )
    other = by_version.get(compare) if compare is not None else None
    lines: list[tuple[str, str]] = []
    if current is not None and other is not None:
        for line in difflib.unified_diff(
            other.markdown.splitlines(),
            current.markdown.splitlines(),
            fromfile=f"version {other.version}",
            tofile=f"version {current.version}",
            lineterm="",
            n=2,
        ):
            kind = "ctx"
            if line.startswith(("+++", "---")):
                kind = "file"
            elif line.startswith("@@"):
                kind = "hunk"
            elif line.startswith("+"):
                kind = "add"
            elif line.startswith("-"):
                kind = "del"
            lines.append((kind, line))
    return PostmortemView(versions, current, other, lines)


@dataclass(frozen=True, slots=True)
class EventRow:
    """What the page shows of a timeline event."""

    id: int
    occurred_at: datetime
    kind: str
    actor_id: str | None
    text: str
    source_url: str | None


_EVENT_COLUMNS = (
    col(TimelineEvent.id),
    raw_time(col(TimelineEvent.occurred_at)),
    col(TimelineEvent.kind),
    col(TimelineEvent.actor_id),
    col(TimelineEvent.text),
    col(TimelineEvent.source_url),
)


def timeline_rows(session: Session, incident_id: int) -> list[EventRow]:
    """The timeline as responders see it (``incidents.timeline``: retracted events and the
    retractions left out), read as plain columns: an incident with 10,000 events stays quick.

    When the incident has any retraction, the core's ``incidents.timeline`` decides what is
    shown, so the retraction rule lives in one place; without one, every event is shown and
    the columns are enough."""
    retraction = session.execute(
        sa_select(col(TimelineEvent.id))
        .where(
            col(TimelineEvent.incident_id) == incident_id,
            col(TimelineEvent.kind) == EventKind.RETRACTION.value,
        )
        .limit(1)
    ).first()
    if retraction is not None:
        return [
            EventRow(e.id or 0, e.occurred_at, e.kind, e.actor_id, e.text, e.source_url)
            for e in incidents.timeline(session, incident_id)
        ]
    rows = (
        session.connection()
        .execute(
            sa_select(*_EVENT_COLUMNS)
            .where(col(TimelineEvent.incident_id) == incident_id)
            .order_by(col(TimelineEvent.occurred_at), col(TimelineEvent.id))
        )
        .all()
    )
    return [
        EventRow(id_, as_time(at) or datetime.min, kind, actor, text, url)
        for id_, at, kind, actor, text, url in rows
    ]


@dataclass(frozen=True)
class IncidentStory:
    incident: Incident
    metrics: incidents.IncidentMetrics
    roles: dict[str, str]
    role_history: list[RoleAssignment]
    timeline: list[EventRow]
    runs: list[RunView]
    action_items: list[ActionItem]
    overdue: set[int]
    pending: list[Scheduled]
    sent: list[EventRow]
    alerts: list[AlertView]


def incident_story(session: Session, policy: Policy, incident: Incident) -> IncidentStory:
    assert incident.id is not None
    events = timeline_rows(session, incident.id)
    items = incidents.list_action_items(session, incident.id)
    today = utcnow().astimezone(policy.zone).date()
    return IncidentStory(
        incident=incident,
        metrics=incidents.incident_metrics(incident),
        roles=incidents.current_roles(session, incident.id),
        role_history=incidents.role_history(session, incident.id),
        timeline=events,
        runs=incident_runs(session, incident.id),
        action_items=items,
        overdue={i.number for i in items if i.status == "open" and i.due_on and i.due_on < today},
        pending=pending_messages(session, incident.id),
        sent=[e for e in events if e.kind in SENT_KINDS],
        alerts=incident_alerts(session, incident.id),
    )
