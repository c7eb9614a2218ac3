"""Postmortem drafts generated from what really happened.

When an incident is closed (and whenever someone asks) Firebreak writes a postmortem draft in
Markdown from the incident's milestones, roles, timeline, runbooks and action items. The facts
are filled in; the questions only people can answer are left as prompts in italics.

Why it is built this way:

* **Versions, never overwrites.** Each generation stores a new ``Postmortem`` row (v1, v2, ...)
  and keeps the earlier ones, because people edit a draft while the timeline keeps growing.
  The incident row is locked while the next number is taken, so two generations at once get
  two numbers instead of colliding.
* **Idempotent.** Every generation carries a key (``generation_key``). Closing twice, a retried
  Slack command or a second replica hand in the same key and get the stored version back; no
  second row, file or timeline entry is written.
* **Templates are the team's, data stays data.** The draft is rendered with Jinja2 from
  ``postmortem.md.j2`` in ``[postmortem] template_dir`` (the built-in one otherwise), in a
  sandbox with strict undefined variables and no autoescaping (this is Markdown, not HTML). The
  template receives plain dataclasses; incident text is only ever a value, so a title such as
  ``{{ 7*7 }}`` prints as written. A team template that fails (syntax error, unknown variable,
  runtime error) never costs the postmortem: the error, with file and line, is logged and
  stored on the version, and the built-in template is used.
* **Files are a copy.** The database row is the record. The file in ``[postmortem] output_dir``
  (``INC-42-v2.md``) is written atomically (temporary file, then rename) after the row is
  stored; if writing fails the version is kept and the failure is reported. If the transaction
  is rolled back after the write, the file stays and is replaced by the next generation of that
  version number.

Variables a template receives (see ``PostmortemContext``): ``incident``, ``version``,
``generated_at``, ``generated_by``, ``timezone``, ``authors``, ``milestones`` and ``metrics``
(dicts by key), ``timeline`` (days of entries, UTC), ``timeline_count``, ``responders``,
``roles``, ``handovers``, ``runbooks``, ``action_items``, ``links``. Filters: ``cell`` (a table
cell), ``inline`` (one line), ``block`` (a paragraph), ``item`` (a list item's text), ``url``
and ``label`` (a Markdown link). A team template can also ``{% extends
"firebreak/postmortem.md.j2" %}`` and override one block of the built-in template.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import logging
import os
import re
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func
from sqlmodel import Session, col, select

from bot import incidents
from bot.cli import check_output_file
from bot.clock import as_utc, utcnow
from bot.config import COMMANDER, Policy, load_configuration
from bot.db import Database
from bot.errors import InvalidInput
from bot.incidents import Change
from bot.markup import (
    NameResolver,
    escape_block,
    escape_inline,
    escape_link_label,
    escape_link_url,
    escape_table_cell,
    slack_to_markdown,
)
from bot.models import (
    ActionItem,
    EventKind,
    Incident,
    Postmortem,
    RoleAssignment,
    RunbookRun,
    RunbookStepState,
    TimelineEvent,
)

__all__ = [
    "NameResolver",
    "PostmortemContext",
    "Rendered",
    "build_context",
    "close_generation_key",
    "generate_on_close",
    "generate_postmortem",
    "list_postmortems",
    "register",
    "render_postmortem",
]

logger = logging.getLogger(__name__)
# The command line reports problems itself; without this, Python's last-resort handler would
# print each warning a second time when logging is not configured.
logger.addHandler(logging.NullHandler())

TEMPLATE_NAME = "postmortem.md.j2"
BUILTIN_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
BUILTIN_PREFIX = "firebreak"
DEFAULT_TEMPLATE = "default"
KEY_MAX = 255

# Bookkeeping by the bot itself, not part of what happened in the incident.
HIDDEN_KINDS = frozenset(
    {EventKind.POSTMORTEM_GENERATED, EventKind.REMINDER_SENT, EventKind.PERMISSION_DENIED}
)
# Kinds whose text does not say what it is on its own.
_LABELS: dict[str, str] = {
    EventKind.NOTE: "note",
    EventKind.MESSAGE: "message",
    EventKind.STATUS_UPDATE: "status update",
    EventKind.ESCALATED: "escalation",
}
_SELF_DESCRIBING = {str(kind) for kind in EventKind} - {str(kind) for kind in _LABELS}
_SLACK_ID = re.compile(r"^[UWB][A-Z0-9]{2,}$")
_STEP_STATES = {
    "done": "done",
    "skipped": "skipped",
    "in_progress": "in progress",
    "pending": "not started",
}


# --------------------------------------------------------------------------------------------
# What a template receives. Plain, frozen data: nothing a template can call back into.


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

    def variables(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------------------------
# Names


class _People:
    """Names for Slack ids, asked once per id. A lookup that fails (Slack down, a deleted
    user) shows the id instead: a name is never worth losing the postmortem over."""

    def __init__(self, resolver: NameResolver | None) -> None:
        self._resolver = resolver
        self._users: dict[str, str | None] = {}
        self._channels: dict[str, str | None] = {}
        self._persons: dict[str, str] = {}

    def user(self, user_id: str) -> str | None:
        if user_id not in self._users:
            self._users[user_id] = self._ask("user", user_id)
        return self._users[user_id]

    def channel(self, channel_id: str) -> str | None:
        if channel_id not in self._channels:
            self._channels[channel_id] = self._ask("channel", channel_id)
        return self._channels[channel_id]

    def _ask(self, what: str, ident: str) -> str | None:
        if self._resolver is None:
            return None
        lookup: Callable[[str], str | None] = getattr(self._resolver, what)
        try:
            name = lookup(ident)
        except Exception as exc:  # whatever the Slack layer's lookup raises
            logger.warning("cannot look up %s %s (%s); showing the id", what, ident, exc)
            return None
        cleaned = " ".join((name or "").split())
        return cleaned or None

    def person(self, user_id: str | None) -> str:
        """``@Name`` for a Slack user, ``@U123ABC`` when the name is unknown; other actors
        (``cli:alice``) as they are; ``Firebreak`` for the bot's own entries."""
        if not user_id:
            return "Firebreak"
        shown = self._persons.get(user_id)
        if shown is None:
            shown = user_id
            if _SLACK_ID.match(user_id):
                shown = "@" + (self.user(user_id) or user_id).removeprefix("@")
            self._persons[user_id] = shown
        return shown


# --------------------------------------------------------------------------------------------
# Building the context


def _utc(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M UTC") -> str:
    return "unknown" if value is None else as_utc(value).strftime(pattern)


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None or zone.key == "UTC":
        return ""
    return as_utc(value).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _short(value: datetime | None) -> str:
    return "" if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M")


def build_context(
    session: Session,
    policy: Policy,
    incident: Incident,
    *,
    version: int,
    actor: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> PostmortemContext:
    """Everything the template shows, read from the incident's tables."""
    assert incident.id is not None
    now = as_utc(now) if now is not None else utcnow()
    people = _People(names)
    zone = policy.zone
    events = _visible_events(session, incident.id)
    history = incidents.role_history(session, incident.id)
    runbooks = _runbooks(session, incident.id, people)
    items = incidents.list_action_items(session, incident.id)

    milestones = _milestones(incident, zone)
    metrics = _metrics(incident)
    roles = tuple(
        RoleSpell(
            role=_role_name(policy, row.role),
            person=people.person(row.user_id),
            since=_short(row.assigned_at),
            until=_short(row.unassigned_at),
            assigned_by=people.person(row.assigned_by),
        )
        for row in history
    )
    commander = next(
        (people.person(r.user_id) for r in history if r.role == COMMANDER and not r.unassigned_at),
        None,
    )
    authors = tuple(dict.fromkeys(p for p in (commander, people.person(actor)) if p))
    facts = _facts(policy, incident, events, people, commander, milestones)
    today = now.astimezone(zone).date()
    return PostmortemContext(
        incident=facts,
        version=version,
        generated_at=_utc(now),
        generated_by=people.person(actor),
        timezone=policy.timezone,
        authors=authors,
        milestones=milestones,
        metrics=metrics,
        timeline=_timeline(events, people),
        timeline_count=len(events),
        responders=_responders(policy, events, history, runbooks, people),
        roles=roles,
        handovers=_handovers(policy, history, people),
        runbooks=tuple(run for run, _ in runbooks),
        action_items=tuple(_action_item(item, people, today) for item in items),
        links=_links(incident, facts.channel),
    )


class _Event(NamedTuple):
    """The fields of a timeline event the draft uses, read once: at 10,000 events, reading
    ORM attributes again and again costs more than rendering."""

    kind: str
    actor_id: str | None
    occurred_at: datetime
    text: str
    data: dict[str, Any]
    source_url: str | None


def _visible_events(session: Session, incident_id: int) -> list[_Event]:
    result = []
    for event in incidents.timeline(session, incident_id):
        kind = event.kind
        if kind not in HIDDEN_KINDS:
            result.append(
                _Event(
                    kind,
                    event.actor_id,
                    as_utc(event.occurred_at),
                    event.text,
                    event.data,
                    event.source_url,
                )
            )
    return result


def _facts(
    policy: Policy,
    incident: Incident,
    events: list[_Event],
    people: _People,
    commander: str | None,
    milestones: dict[str, Milestone],
) -> IncidentFacts:
    severity = policy.find_severity(incident.severity)
    status = policy.find_status(incident.status)
    path = [str(e.data.get(key, "")) for e in events for key in _severity_keys(e)]
    acknowledged_by = next(
        (
            people.person(e.actor_id if e.kind == EventKind.ACKNOWLEDGED else e.data.get("user"))
            for e in events
            if e.kind == EventKind.ACKNOWLEDGED
            or (e.kind == EventKind.ROLE_ASSIGNED and e.data.get("acknowledged"))
        ),
        None,
    )
    channel = None
    if incident.slack_channel_id:
        name = incident.slack_channel_name or people.channel(incident.slack_channel_id)
        channel = "#" + (name or incident.slack_channel_id).removeprefix("#")
    return IncidentFacts(
        ref=incident.ref,
        number=incident.number,
        title=incident.title,
        severity=incident.severity,
        severity_name=severity.name if severity else "",
        severity_description=severity.description if severity else "",
        severity_path=" → ".join(path) if len(path) > 1 else "",
        status=incident.status,
        status_name=(status.name or status.key) if status else incident.status,
        phase=status.phase if status else "",
        service=incident.service,
        summary=slack_to_markdown(incident.summary, people),
        private=incident.private,
        reporter=people.person(incident.reporter_id),
        commander=commander,
        acknowledged_by=acknowledged_by,
        status_updates=sum(1 for e in events if e.kind == EventKind.STATUS_UPDATE),
        channel=channel,
        channel_url=_channel_url(incident),
        started=milestones["start"].utc,
        ended=milestones["resolved"].utc if milestones["resolved"].known else "ongoing",
    )


def _severity_keys(event: _Event) -> tuple[str, ...]:
    if event.kind == EventKind.DECLARED and event.data.get("severity"):
        return ("severity",)
    if event.kind == EventKind.SEVERITY_CHANGED and event.data.get("to"):
        return ("to",)
    return ()


def _channel_url(incident: Incident) -> str | None:
    if not incident.slack_channel_id:
        return None
    # Opens the channel in whichever workspace the reader is signed in to; needs no team id.
    return f"https://slack.com/app_redirect?channel={incident.slack_channel_id}"


def _milestones(incident: Incident, zone: ZoneInfo) -> dict[str, Milestone]:
    known = [
        t
        for t in (incident.impact_started_at, incident.detected_at, incident.declared_at)
        if t is not None
    ]
    times = {
        "start": ("Start of impact", min(known) if known else None),
        "impact_started": ("Impact started", incident.impact_started_at),
        "detected": ("Detected", incident.detected_at),
        "declared": ("Declared", incident.declared_at),
        "acknowledged": ("Acknowledged", incident.acknowledged_at),
        "mitigated": ("Mitigated", incident.mitigated_at),
        "resolved": ("Resolved", incident.resolved_at),
        "closed": ("Closed", incident.closed_at),
    }
    return {
        key: Milestone(name=name, at=at, utc=_utc(at), local=_local(at, zone))
        for key, (name, at) in times.items()
    }


def _metrics(incident: Incident) -> dict[str, Metric]:
    values = incidents.incident_metrics(incident)
    rows = {
        "time_to_detect": ("Time to detect", values.time_to_detect, "impact started → detected"),
        "time_to_acknowledge": (
            "Time to acknowledge",
            values.time_to_acknowledge,
            "declared → acknowledged",
        ),
        "time_to_mitigate": ("Time to mitigate", values.time_to_mitigate, "start → mitigated"),
        "time_to_resolve": ("Time to resolve", values.time_to_resolve, "start → resolved"),
        "duration": ("Total duration", values.duration, "start → closed"),
    }
    return {
        key: Metric(
            name=name,
            value=incidents.humanize_duration(value),
            measured=measured,
            known=value is not None,
        )
        for key, (name, value, measured) in rows.items()
    }


@cache
def _label(kind: str) -> str:
    """What an entry is, for kinds whose text does not say (events recorded from outside,
    such as ``deploy``, are labelled with their kind)."""
    if kind in _SELF_DESCRIBING:
        return ""
    return _LABELS.get(kind) or kind.replace("_", " ")


def _timeline(events: list[_Event], people: _People) -> tuple[TimelineDay, ...]:
    days: list[TimelineDay] = []
    current: list[TimelineEntry] = []
    current_day: date | None = None
    for kind, actor_id, at, raw_text, _, source_url in events:
        day = at.date()
        if day != current_day:
            if current_day is not None:
                days.append(TimelineDay(current_day.isoformat(), tuple(current)))
            current_day, current = day, []
        label = _label(kind)
        text = slack_to_markdown(raw_text, people).strip() or kind.replace("_", " ")
        time = f"{at.hour:02d}:{at.minute:02d}"  # strftime is slow at 10,000 entries
        current.append(
            TimelineEntry(
                at=f"{day.isoformat()} {time}:{at.second:02d} UTC",
                time=time,
                who=people.person(actor_id),
                kind=kind,
                label=label,
                text=text,
                link=source_url or None,
                link_text="in Slack" if kind == EventKind.MESSAGE else "source",
            )
        )
    if current_day is not None:
        days.append(TimelineDay(current_day.isoformat(), tuple(current)))
    return tuple(days)


def _role_name(policy: Policy, key: str) -> str:
    role = policy.find_role(key)
    return role.name if role else key


def _handovers(
    policy: Policy, history: list[RoleAssignment], people: _People
) -> tuple[Handover, ...]:
    previous: dict[str, RoleAssignment] = {}
    result: list[Handover] = []
    for row in history:
        before = previous.get(row.role)
        if before is not None and before.user_id != row.user_id:
            result.append(
                Handover(
                    role=_role_name(policy, row.role),
                    from_person=people.person(before.user_id),
                    to_person=people.person(row.user_id),
                    at=_short(row.assigned_at),
                    by=people.person(row.assigned_by),
                )
            )
        previous[row.role] = row
    return tuple(result)


def _runbooks(
    session: Session, incident_id: int, people: _People
) -> list[tuple[RunbookUsed, list[tuple[str, datetime]]]]:
    """Runbooks used, with who did which step (for the responders list)."""
    runs = session.exec(
        select(RunbookRun)
        .where(RunbookRun.incident_id == incident_id)
        .order_by(col(RunbookRun.started_at), col(RunbookRun.id))
    ).all()
    if not runs:
        return []
    states: dict[tuple[int, int], RunbookStepState] = {
        (s.run_id, s.step_index): s
        for s in session.exec(
            select(RunbookStepState).where(
                col(RunbookStepState.run_id).in_([run.id for run in runs])
            )
        ).all()
    }
    result = []
    for run in runs:
        assert run.id is not None
        raw_steps = run.snapshot.get("steps")
        snapshot_steps = raw_steps if isinstance(raw_steps, list) else []
        steps: list[RunbookStep] = []
        doers: list[tuple[str, datetime]] = []
        for index in range(max(len(snapshot_steps), run.step_count)):
            spec = snapshot_steps[index] if index < len(snapshot_steps) else {}
            title = str(spec.get("title") or "") if isinstance(spec, dict) else str(spec)
            state = states.get((run.id, index))
            key = state.state if state is not None and state.state in _STEP_STATES else "pending"
            who_id, when = _step_doer(state, key)
            if who_id and when:
                doers.append((who_id, when))
            steps.append(
                RunbookStep(
                    number=index + 1,
                    title=title or f"Step {index + 1}",
                    state=key,
                    outcome=_STEP_STATES[key],
                    who=people.person(who_id) if who_id else "",
                    when=_short(when),
                )
            )
        done = sum(1 for s in steps if s.state == "done")
        skipped = sum(1 for s in steps if s.state == "skipped")
        used = RunbookUsed(
            title=run.title,
            runbook_id=run.runbook_id,
            status=run.status,
            started=_short(run.started_at),
            started_by=people.person(run.started_by),
            completed=_short(run.completed_at),
            total=len(steps),
            done=done,
            skipped=skipped,
            open=len(steps) - done - skipped,
            steps=tuple(steps),
        )
        doers.append((run.started_by, run.started_at))
        result.append((used, doers))
    return result


def _step_doer(state: RunbookStepState | None, key: str) -> tuple[str | None, datetime | None]:
    if state is None:
        return None, None
    if key in ("done", "skipped"):
        return state.assignee_id or state.updated_by, state.updated_at
    if key == "in_progress":
        return state.assignee_id, state.started_at or state.updated_at
    return None, None


def _responders(
    policy: Policy,
    events: list[_Event],
    history: list[RoleAssignment],
    runbooks: list[tuple[RunbookUsed, list[tuple[str, datetime]]]],
    people: _People,
) -> tuple[Responder, ...]:
    first: dict[str, datetime] = {}
    counts: dict[str, int] = {}
    roles: dict[str, list[str]] = {}

    def seen(user_id: str | None, at: datetime) -> None:
        if user_id and (user_id not in first or at < first[user_id]):
            first[user_id] = at

    for event in events:
        actor_id = event.actor_id
        if actor_id:
            seen(actor_id, event.occurred_at)
            counts[actor_id] = counts.get(actor_id, 0) + 1
    for row in history:
        seen(row.user_id, row.assigned_at)
        held = roles.setdefault(row.user_id, [])
        name = _role_name(policy, row.role)
        if name not in held:
            held.append(name)
    for _, doers in runbooks:
        for user_id, at in doers:
            seen(user_id, at)
    order = sorted(first, key=lambda user_id: (first[user_id], user_id))
    return tuple(
        Responder(
            person=people.person(user_id),
            roles=tuple(roles.get(user_id, ())),
            first_seen=_short(first[user_id]),
            events=counts.get(user_id, 0),
        )
        for user_id in order
    )


def _action_item(item: ActionItem, people: _People, today: date) -> ActionItemRow:
    done = item.status == "done"
    overdue = not done and item.due_on is not None and item.due_on < today
    if done:
        status = "done" + (f" ({item.completed_at:%Y-%m-%d})" if item.completed_at else "")
    else:
        status = item.status + (" (overdue)" if overdue else "")
    return ActionItemRow(
        number=item.number,
        text=slack_to_markdown(item.text, people),
        owner=people.person(item.owner_id) if item.owner_id else "",
        due=item.due_on.isoformat() if item.due_on else "",
        status=status,
        done=done,
        overdue=overdue,
    )


def _links(incident: Incident, channel: str | None) -> tuple[Link, ...]:
    url = _channel_url(incident)
    return (
        (Link(f"Incident channel {channel}" if channel else "Incident channel", url),)
        if url
        else ()
    )


# --------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class Rendered:
    markdown: str
    template: str
    """``default`` or the path of the team's template that was used."""
    template_error: str | None
    """Why the team's template was not used (``file:line: message``), if it failed."""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _list_item(value: object) -> str:
    """Text after ``- **02:55** @name — ``: one line stays on the bullet; several lines start
    on the next line, indented into the item, so a code block or a heading in a message stays
    inside its entry."""
    text = escape_block(_text(value).strip("\n"))
    if "\n" not in text:
        return text
    return "\n" + "\n".join(f"  {line}" if line.strip() else "" for line in text.split("\n"))


_FILTERS: dict[str, Callable[[object], str]] = {
    "cell": lambda v: escape_table_cell(_text(v)),
    "inline": lambda v: escape_inline(_text(v)),
    "block": lambda v: escape_block(_text(v)),
    "item": _list_item,
    "url": lambda v: escape_link_url(_text(v)),
    "label": lambda v: escape_link_label(_text(v)),
}


def _environment(loader: BaseLoader) -> SandboxedEnvironment:
    environment = SandboxedEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    environment.filters.update(_FILTERS)
    return environment


@cache
def _builtin_template() -> Template:
    return _environment(FileSystemLoader(BUILTIN_TEMPLATE_DIR)).get_template(TEMPLATE_NAME)


def _team_template(directory: Path) -> Template:
    """Compiled afresh each time, so an edited template is used at once."""
    loader = ChoiceLoader(
        [
            FileSystemLoader(directory),
            PrefixLoader({BUILTIN_PREFIX: FileSystemLoader(BUILTIN_TEMPLATE_DIR)}),
        ]
    )
    return _environment(loader).get_template(TEMPLATE_NAME)


def _finish(markdown: str) -> str:
    """One trailing newline, no trailing spaces (which Markdown would read as line breaks)."""
    return "\n".join(line.rstrip() for line in markdown.rstrip().split("\n")) + "\n"


def render_context(policy: Policy, context: PostmortemContext) -> Rendered:
    """Render with the team's template, falling back to the built-in one if it fails."""
    variables = context.variables()
    error = None
    if policy.postmortem.template_dir is not None:
        directory = policy.resolve_path(policy.postmortem.template_dir)
        path = directory / TEMPLATE_NAME
        try:
            markdown = _team_template(directory).render(variables)
            return Rendered(_finish(markdown), str(path)[:1000], None)
        except TemplateSyntaxError as exc:
            error = f"{exc.filename or path}:{exc.lineno}: syntax error: {exc.message}"
        except TemplateNotFound as exc:
            if exc.name == TEMPLATE_NAME:
                error = (
                    f"{path}: template not found; create it or unset "
                    "[postmortem] template_dir in the policy file"
                )
            else:
                error = _located(exc, path, directory, f"template {exc.name!r} not found")
        except Exception as exc:  # a team template can fail in any way while rendering
            error = _located(exc, path, directory, _describe(exc))
        logger.warning("postmortem template failed, the built-in one was used: %s", error)
    markdown = _builtin_template().render(variables)
    return Rendered(_finish(markdown), DEFAULT_TEMPLATE, error)


def _describe(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, UndefinedError):
        return f"undefined: {message}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {message}"
    return f"{type(exc).__name__}: {message}"


def _located(exc: BaseException, path: Path, directory: Path, message: str) -> str:
    """``file:line: message`` for an error raised while rendering. Jinja rewrites tracebacks so
    that template code shows up as frames of the template file at the template's line."""
    roots = (str(directory.resolve()) + os.sep, str(BUILTIN_TEMPLATE_DIR) + os.sep)
    where = f"{path}"
    for frame in traceback.extract_tb(exc.__traceback__):
        filename = frame.filename
        if not filename.endswith(".py") and (
            filename.startswith(roots) or str(Path(filename).resolve()).startswith(roots)
        ):
            where = f"{filename}:{frame.lineno}"
    return f"{where}: {message}"


def render_postmortem(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    version: int,
    actor: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> Rendered:
    """Render a draft without storing it (a preview, or a benchmark)."""
    incident = incidents.get_incident(session, incident_id)
    context = build_context(
        session, policy, incident, version=version, actor=actor, names=names, now=now
    )
    return render_context(policy, context)


# --------------------------------------------------------------------------------------------
# Generating and storing versions


def _bounded(key: str, label: str) -> str:
    key = (key or "").strip()
    if not key:
        raise InvalidInput(f"The {label} is empty.")
    if len(key) <= KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def close_generation_key(incident: Incident, closed_event: TimelineEvent) -> str:
    """The key for the draft generated when an incident is closed.

    It names the event that closed the incident, so a repeated close (a retried Slack command,
    a double click, a second replica) asks for the same version, while closing again after a
    reopen asks for a new one."""
    if closed_event.id is None or incident.id is None:
        raise InvalidInput("The closing event has not been stored yet.")
    return f"postmortem:close:{incident.id}:{closed_event.id}"


def generate_on_close(
    session: Session,
    policy: Policy,
    change: Change,
    *,
    actor: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> Postmortem | None:
    """Call with the result of ``incidents.close_incident`` in the same transaction.

    Returns the draft when the policy asks for one on close and this change closed the
    incident; ``None`` when nothing was closed (already closed, a repeat) or ``on_close`` is
    off."""
    event = change.event
    if (
        not policy.postmortem.on_close
        or event is None
        or event.kind != EventKind.STATUS_CHANGED
        or event.data.get("phase") != "closed"
        or change.incident.id is None
    ):
        return None
    return generate_postmortem(
        session,
        policy,
        change.incident.id,
        actor=actor,
        key=close_generation_key(change.incident, event),
        names=names,
        now=now,
    )


@dataclass(frozen=True)
class _Generation:
    postmortem: Postmortem
    created: bool
    file_error: str | None


def generate_postmortem(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    key: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> Postmortem:
    """Render and store the next version of the incident's postmortem draft.

    A ``key`` seen before returns that version and writes nothing. Otherwise the incident row
    is locked, the version number taken, the draft stored, the file written (a failure is
    logged and recorded on the timeline entry; the version is kept) and a
    ``postmortem_generated`` event recorded, all in the caller's transaction."""
    return _generate(
        session, policy, incident_id, actor=actor, key=key, names=names, now=now
    ).postmortem


def _generate(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    key: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> _Generation:
    key = _bounded(key, "postmortem generation key")
    actor = (actor or "").strip()
    if not actor or len(actor) > 64:
        raise InvalidInput(f"Not a valid user id: {actor[:40]!r}.")
    now = as_utc(now) if now is not None else utcnow()

    earlier = _by_key(session, key, incident_id)
    if earlier is not None:
        return _Generation(earlier, False, None)
    incident = incidents.lock_incident(session, incident_id)
    # The same key may have been committed while we waited for the lock.
    earlier = _by_key(session, key, incident_id)
    if earlier is not None:
        return _Generation(earlier, False, None)

    version = 1 + (
        session.exec(
            select(func.max(Postmortem.version)).where(Postmortem.incident_id == incident_id)
        ).one()
        or 0
    )
    context = build_context(
        session, policy, incident, version=version, actor=actor, names=names, now=now
    )
    rendered = render_context(policy, context)
    postmortem = Postmortem(
        incident_id=incident_id,
        version=version,
        generation_key=key,
        markdown=rendered.markdown,
        template=rendered.template,
        template_error=rendered.template_error,
        created_at=now,
        created_by=actor,
    )
    session.add(postmortem)
    session.flush()  # the row is valid before anything is written to disk

    file_error = None
    if policy.postmortem.output_dir is not None:
        path = policy.resolve_path(policy.postmortem.output_dir) / postmortem_file_name(
            incident, version
        )
        try:
            write_file_atomically(path, rendered.markdown)
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            file_error = f"{path}: cannot write the postmortem draft: {reason}"
            logger.warning("%s (version %d is stored)", file_error, version)
        else:
            postmortem.file_path = str(path)[:1000]
            session.add(postmortem)
            session.flush()

    incidents.record_timeline_event(
        session,
        policy,
        incident_id,
        kind=EventKind.POSTMORTEM_GENERATED,
        text=f"Postmortem draft v{version} generated",
        actor=actor,
        data={
            "postmortem": postmortem.id,
            "version": version,
            "template": rendered.template,
            "template_error": rendered.template_error,
            "file": postmortem.file_path,
            "file_error": file_error,
        },
        key=_bounded(f"postmortem:{key}", "timeline key"),
        now=now,
    )
    return _Generation(postmortem, True, file_error)


def _by_key(session: Session, key: str, incident_id: int) -> Postmortem | None:
    earlier = session.exec(select(Postmortem).where(Postmortem.generation_key == key)).first()
    if earlier is not None and earlier.incident_id != incident_id:
        raise InvalidInput("That request was already used for another incident.")
    return earlier


def list_postmortems(session: Session, incident_id: int) -> list[Postmortem]:
    """Every stored version of the incident's postmortem, oldest first."""
    return list(
        session.exec(
            select(Postmortem)
            .where(Postmortem.incident_id == incident_id)
            .order_by(col(Postmortem.version))
        ).all()
    )


def postmortem_file_name(incident: Incident, version: int) -> str:
    return f"{incident.ref}-v{version}.md"


def write_file_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# --------------------------------------------------------------------------------------------
# Command line: firebreak postmortem INC-42 [--output FILE]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``postmortem`` to the ``firebreak`` command line (``bot/cli.py``)."""
    parser = commands.add_parser(
        "postmortem",
        help="generate a new version of an incident's postmortem draft",
        description="Generate a new version of the postmortem draft from the database. The "
        "draft is stored (earlier versions are kept) and written to [postmortem] output_dir; "
        "the path is printed.",
    )
    parser.add_argument("incident", help="incident number, e.g. INC-42")
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="also write the draft to FILE ('-' for standard output)",
    )
    parser.set_defaults(handler=cmd_postmortem)


def _cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return "cli"
    return f"cli:{user}"[:64] if user.isprintable() and user.strip() else "cli"


def cmd_postmortem(args: argparse.Namespace) -> int:
    """Exit 0 when the draft was produced; 1 when it is stored but a file could not be
    written (or the incident does not exist)."""
    settings, policy = load_configuration(getattr(args, "policy", None))
    if args.output and args.output != "-":
        check_output_file(Path(args.output))
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            incident = incidents.find_incident(session, args.incident)
            assert incident.id is not None
            result = _generate(
                session, policy, incident.id, actor=_cli_actor(), key=f"cli:{uuid.uuid4()}"
            )
    finally:
        database.dispose()
    postmortem = result.postmortem
    label = f"{incident.ref} postmortem v{postmortem.version}"
    if postmortem.template_error:
        print(
            f"firebreak: warning: {postmortem.template_error} (the built-in template was used)",
            file=sys.stderr,
        )
    status = 0
    if result.file_error:
        print(f"firebreak: {label} is stored, but {result.file_error}", file=sys.stderr)
        status = 1
    if args.output == "-":
        sys.stdout.write(postmortem.markdown)
    elif args.output:
        try:
            write_file_atomically(Path(args.output), postmortem.markdown)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(f"firebreak: {args.output}: cannot write: {reason}", file=sys.stderr)
            return 1
        print(f"wrote {args.output}")
    elif postmortem.file_path:
        print(postmortem.file_path)
    elif not result.file_error:
        # No output directory configured: the terminal is the only place to show it.
        sys.stdout.write(postmortem.markdown)
    return status
