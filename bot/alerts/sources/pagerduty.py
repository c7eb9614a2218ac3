"""PagerDuty v3 webhooks (``{"event": {...}}``). One PagerDuty incident is one group, keyed by
the incident id (present on every event type, while ``incident_key`` is missing on older ones).
Triggered, reopened and acknowledged incidents are firing; resolved ones are resolved; notes,
status updates, responders and priority changes are recorded on the timeline. Events about no
incident (the ``pagey.ping`` test event, ``service.updated``) are ignored, never refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.alerts.model import (
    TITLE_MAX,
    Alert,
    AlertMessage,
    Info,
    Link,
    PayloadError,
    Status,
    clean,
    event_time,
    parse_time,
    short_key,
)
from bot.markup import safe_url


def _text(node: object, name: str) -> str | None:
    if not isinstance(node, dict):
        return None
    value = node.get(name)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dict | list):
        raise PayloadError(f"event.data.{name} must be a string")
    return str(value)


def _details(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """What an event about the incident says: who it names (the responder of
    ``responder.added``), its words (a note's ``content``, a status update's ``message``), the
    workflow it started (``workflow.started``) and the bridge's address
    (``conference_bridge.updated``: an http(s) link only)."""
    who = _text(body.get("user"), "summary") or _text(body.get("escalation_policy"), "summary")
    words = _text(body, "content") or _text(body, "message")
    workflow = _text(body.get("incident_workflow"), "summary")
    bridge = safe_url(_text(body, "conference_url"))
    return (
        clean(who or "", 200, multiline=False),
        clean(words or "", 2000),
        f"workflow {clean(workflow, 200, multiline=False)}" if workflow else "",
        f"bridge {bridge}" if bridge else "",
    )


def _ignored(event_type: str) -> AlertMessage:
    """An event that is about no incident (the subscription's ``pagey.ping`` test, a
    ``service.updated``): answered 2xx and kept nowhere, since PagerDuty disables a
    subscription whose deliveries keep failing."""
    name = clean(event_type, 100, multiline=False)
    return AlertMessage(
        source="pagerduty",
        group_key=short_key(f"event:{event_type}"),
        title=f"PagerDuty {name}",
        note=f"{name} is not about an incident: nothing stored",
        ignored=True,
    )


def parse(data: dict[str, Any], now: datetime) -> AlertMessage:
    event = data.get("event")
    if not isinstance(event, dict):
        raise PayloadError(
            "no 'event' object: this is not a PagerDuty v3 webhook body "
            '(expected {"event": {"event_type": ..., "data": {...}}})'
        )
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("event.event_type must be a string such as incident.triggered")
    body = event.get("data")
    if not isinstance(body, dict):
        raise PayloadError("event.data must be an object")
    incident = body if body.get("type") in ("incident", None) else body.get("incident")
    incident_id = _text(incident, "id")
    if not incident_id and not event_type.startswith("incident."):
        return _ignored(event_type)
    if not incident_id:
        raise PayloadError("event.data has no incident id: only incident events are supported")
    event_id = _text(event, "id") or f"{event_type}:{incident_id}:{event.get('occurred_at')}"
    title = _text(incident, "title") or _text(incident, "summary") or f"PagerDuty {incident_id}"
    title = clean(title, TITLE_MAX, multiline=False)
    agent = clean(_text(event.get("agent"), "summary") or "", 200, multiline=False)
    by = f" by {agent}" if agent else ""
    verb = event_type.removeprefix("incident.").replace("_", " ").replace(".", " ")
    verb = clean(verb, 100, multiline=False)  # the sender's word: neutralised like all its text
    info: list[Info] = []
    alerts: tuple[Alert, ...] = ()
    status = _text(incident, "status") if incident is body else None
    if status in ("triggered", "acknowledged", "resolved"):
        priority = body.get("priority")
        severity = _text(priority, "summary") if isinstance(priority, dict) else None
        labels = {
            k: clean(v, 1000, multiline=False)
            for k, v in (
                ("incident_key", _text(body, "incident_key")),
                ("number", _text(body, "number")),
                ("urgency", _text(body, "urgency")),
                ("status", status),
            )
            if v
        }
        service = _text(body.get("service"), "summary")
        link = safe_url(_text(body, "html_url"))
        alerts = (
            Alert(
                key=short_key(incident_id),
                status=Status.RESOLVED if status == "resolved" else Status.FIRING,
                name=title,
                title=title,
                labels=labels,
                severity=severity or _text(body, "urgency"),
                service=clean(service, 200, multiline=False) if service else None,
                starts_at=parse_time(_text(body, "created_at"), now=now),
                links=(Link("pagerduty", link),) if link else (),
                # PagerDuty does not deliver in order: the event's own time orders it.
                event_at=event_time(event.get("occurred_at"), now=now),
            ),
        )
        merged_into = _merged_into(body) if status == "resolved" else None
        if merged_into is not None:
            into = f" into {merged_into}" if merged_into else ""
            text = f"PagerDuty: merged{into}{by}; the impact goes on there"
            info.append(Info(key=short_key(f"pagerduty:{event_id}"), text=text))
        elif event_type == "incident.priority_updated":
            text = f"PagerDuty: {verb}{by}" + (f": {severity}" if severity else "")
            info.append(Info(key=short_key(f"pagerduty:{event_id}"), text=text, severity=severity))
        elif status == "acknowledged" or event_type not in (
            "incident.triggered",
            "incident.resolved",
        ):
            to = _assignees(body) if event_type in _HANDED_OVER else ""
            text = f"PagerDuty: {verb}{by}" + (f" to {to}" if to else "")
            info.append(Info(key=short_key(f"pagerduty:{event_id}"), text=text))
    else:
        text = f"PagerDuty: {verb}{by}" + "".join(f": {part}" for part in _details(body) if part)
        info.append(Info(key=short_key(f"pagerduty:{event_id}"), text=text))
    return AlertMessage(
        source="pagerduty",
        group_key=short_key(incident_id),
        title=title,
        alerts=alerts,
        info=tuple(info),
        merged=status == "resolved" and _merged_into(body) is not None,
    )


_HANDED_OVER = frozenset({"incident.escalated", "incident.reassigned", "incident.delegated"})
"""Events that hand the incident to other people: the entry says to whom."""


def _assignees(body: dict[str, Any]) -> str:
    """Who the incident is assigned to now (``assignees``, else ``assignments``), by name."""
    people = body.get("assignees")
    if not isinstance(people, list) or not people:
        assignments = body.get("assignments")
        people = (
            [a.get("assignee") for a in assignments if isinstance(a, dict)]
            if isinstance(assignments, list)
            else []
        )
    names = [_text(person, "summary") for person in people[:5] if isinstance(person, dict)]
    shown = ", ".join(clean(n, 100, multiline=False) for n in names if n)
    return shown + (f" and {len(people) - 5} more" if len(people) > 5 and shown else "")


def _merged_into(body: dict[str, Any]) -> str | None:
    """The incident this one was merged into, when PagerDuty resolved it by a merge
    (``resolve_reason.type`` ``merge_resolve_reason``): its title, else its id, else ``""``;
    ``None`` for any other resolve."""
    reason = body.get("resolve_reason")
    if not isinstance(reason, dict) or reason.get("type") != "merge_resolve_reason":
        return None
    into = reason.get("incident")
    found = _text(into, "summary") or _text(into, "title") or _text(into, "id") or ""
    return clean(found, 200, multiline=False)
