"""The facts of a postmortem gathered from the database: milestones, metrics, timeline, roles,
handovers, runbooks, responders, action items and links, with readable names."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from functools import cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot import incidents
from bot.alerts.model import SOURCE_TITLES, Status, principal_title
from bot.alerts.models import AlertGroup, AlertRecord, AlertStint
from bot.audit import regulatory
from bot.clock import as_utc, utcnow
from bot.config import COMMANDER, Policy
from bot.durations import humanize_duration
from bot.markup import Markdown, NameResolver, safe_url, slack_to_markdown
from bot.models import ActionItem, EventKind, Incident, RoleAssignment, RunbookRun, RunbookStepState
from bot.postmortem.facts import (
    ActionItemRow,
    AlertFired,
    Handover,
    IncidentFacts,
    Link,
    Metric,
    Milestone,
    PostmortemContext,
    Reopen,
    Responder,
    RoleSpell,
    RunbookStep,
    RunbookUsed,
    TimelineDay,
    TimelineEntry,
)
from bot.runbooks.progress import step_event_markup

logger = logging.getLogger("bot.postmortem")
"""One logger for the package (its name is the one operators filter on)."""


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
        """``@Name`` for a Slack user, ``@U123ABC`` when the name is unknown; an alerting tool
        by its name (``Alertmanager``); other actors (``cli:alice``) as they are; ``Firebreak``
        for the bot's own entries."""
        if not user_id:
            return "Firebreak"
        shown = self._persons.get(user_id)
        if shown is None:
            shown = principal_title(user_id) or user_id
            if _SLACK_ID.match(user_id):
                shown = "@" + (self.user(user_id) or user_id).removeprefix("@")
            self._persons[user_id] = shown
        return shown


class NamesLookedUp:
    """The names a postmortem shows, looked up before its transaction starts: a lookup asks
    Slack, which may take seconds, and the transaction holds the incident (on SQLite, every
    writer). Answers only what was looked up; anything else shows as its id."""

    def __init__(self, resolver: NameResolver) -> None:
        self._resolver = resolver
        self.users: dict[str, str | None] = {}
        self.channels: dict[str, str | None] = {}
        self._asking = True

    def user(self, user_id: str) -> str | None:
        return self._answer(self.users, self._resolver.user, user_id)

    def channel(self, channel_id: str) -> str | None:
        return self._answer(self.channels, self._resolver.channel, channel_id)

    def _answer(
        self, known: dict[str, str | None], lookup: Callable[[str], str | None], ident: str
    ) -> str | None:
        if ident not in known and self._asking:
            known[ident] = None  # a failed lookup is not asked again
            known[ident] = lookup(ident)
        return known.get(ident)

    def stop_asking(self) -> None:
        """From now on only what was looked up is answered."""
        self._asking = False


def look_up_names(
    session: Session, policy: Policy, incident_id: int, resolver: NameResolver | None
) -> NameResolver | None:
    """Every name the incident's postmortem would show, looked up now (outside any write
    transaction): pass the answer to ``generate_postmortem`` as ``names``."""
    if resolver is None:
        return None
    names = NamesLookedUp(resolver)
    incident = incidents.get_incident(session, incident_id)
    build_context(session, policy, incident, version=0, actor="firebreak", names=names)
    names.stop_asking()
    return names


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
        clocks=(
            tuple(regulatory.clock_summary(session, policy, incident, now)) if policy.clocks else ()
        ),
        reopens=_reopens(events, people, policy),
        **_alerts(session, incident.id),
    )


ALERTS_SHOWN = 20
"""Alert names a draft lists (a storm fires hundreds of alerts of a few names)."""


def _alerts(session: Session, incident_id: int) -> dict[str, Any]:
    """``alerts`` and ``alerts_left_out``: the alerts that fired in the incident (those still
    in it, and those that left it for a later incident), by tool and name."""
    rows = session.exec(
        select(AlertRecord, AlertGroup.source)
        .join(AlertGroup, col(AlertGroup.id) == col(AlertRecord.group_id))
        .where(col(AlertRecord.incident_id) == incident_id, col(AlertRecord.dropped).is_(False))
    ).all()
    stints = session.exec(select(AlertStint).where(AlertStint.incident_id == incident_id)).all()
    fired: list[tuple[str, str, datetime | None, datetime | None, bool, list[dict[str, str]]]] = [
        (
            source,
            row.name or row.title or row.key,
            row.starts_at or row.first_seen_at,
            row.resolved_at,
            row.status == Status.FIRING.value,
            list(row.links or []),
        )
        for row, source in rows
    ]
    fired += [
        (
            stint.source,
            stint.name or stint.title or stint.key,
            stint.starts_at,
            stint.resolved_at,
            False,
            [],
        )
        for stint in stints
    ]
    named: dict[tuple[str, str], list[Any]] = {}
    for source, name, started, resolved, firing, links in fired:
        named.setdefault((source, name), []).append((started, resolved, firing, links))
    shown: list[AlertFired] = []
    for (source, name), alerts in sorted(named.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        starts = [as_utc(a[0]) for a in alerts if a[0] is not None]
        ends = [as_utc(a[1]) for a in alerts if a[1] is not None]
        still = any(a[2] for a in alerts)
        urls = dict.fromkeys(
            (link.get("kind", "link"), link["url"]) for a in alerts for link in a[3]
        )
        shown.append(
            AlertFired(
                name=name,
                source=SOURCE_TITLES.get(source, source),
                count=len(alerts),
                started=_utc(min(starts)) if starts else "",
                resolved=_utc(max(ends)) if ends and not still else "",
                links=tuple(Link(kind, url) for kind, url in list(urls)[:3]),
            )
        )
    return {
        "alerts": tuple(shown[:ALERTS_SHOWN]),
        "alerts_left_out": max(len(shown) - ALERTS_SHOWN, 0),
    }


def _reopens(events: list[_Event], people: _People, policy: Policy) -> tuple[Reopen, ...]:
    """Each reopen, with the time the incident had left the active phase before it and the
    time it was next mitigated."""
    found: list[Reopen] = []
    ended: datetime | None = None
    for event in events:
        if event.kind != EventKind.STATUS_CHANGED:
            continue
        if event.data.get("reopened"):
            found.append(
                Reopen(
                    resolved=_short(ended),
                    reopened=_short(event.occurred_at),
                    reopened_at=event.occurred_at,
                    by=people.person(event.actor_id) if event.actor_id else "",
                    reason=str(event.data.get("note") or ""),
                )
            )
            ended = None
            continue
        to = str(event.data.get("to") or "")
        if found and not found[-1].mitigated and policy.impact_mitigated(to):
            found[-1] = replace(found[-1], mitigated=_short(event.occurred_at))
        if event.data.get("phase") != "active" and ended is None:
            ended = event.occurred_at
    return tuple(found)


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
        # A message withdrawn before it went out is shown where the entry that announced it is.
        withdrawn = kind == EventKind.REMINDER_WITHDRAWN
        of_kind = (event.data or {}).get("of_kind") if withdrawn else None
        if kind not in HIDDEN_KINDS and of_kind not in HIDDEN_KINDS:
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
        status_name=status.label if status else incident.status,
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
            value=humanize_duration(value),
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
    for kind, actor_id, at, raw_text, data, source_url in events:
        day = at.date()
        if day != current_day:
            if current_day is not None:
                days.append(TimelineDay(current_day.isoformat(), tuple(current)))
            current_day, current = day, []
        label = _label(kind)
        if kind == EventKind.RUNBOOK_STEP:  # the runbook's words are text, not markup
            raw_text = step_event_markup(raw_text, data.get("assignee"))
        text = Markdown(slack_to_markdown(raw_text, people).strip()) or kind.replace("_", " ")
        time = f"{at.hour:02d}:{at.minute:02d}"  # strftime is slow at 10,000 entries
        current.append(
            TimelineEntry(
                at=f"{day.isoformat()} {time}:{at.second:02d} UTC",
                time=time,
                who=people.person(actor_id),
                kind=kind,
                label=label,
                text=text,
                link=safe_url(source_url),  # a Slack permalink; nothing else becomes a link
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
        # Who marked it, as the timeline says; not whom it was assigned to.
        return state.updated_by or state.assignee_id, state.updated_at
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
        if actor_id and principal_title(actor_id) is None:  # responders are people
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
