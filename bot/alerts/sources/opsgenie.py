"""Opsgenie's outgoing webhook (``{"action": ..., "alert": {...}}``). An alert's ``alias`` is its
group (Opsgenie's own dedupe key); ``Create`` fires it, ``Close`` resolves it, other actions
(Acknowledge, UnAcknowledge, AddNote with its note, Escalate, custom actions) are recorded on the
timeline. A body with only the ``alertId`` joins the group whose Create carried that id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.alerts.model import (
    TITLE_MAX,
    Alert,
    AlertMessage,
    Info,
    PayloadError,
    Status,
    body_digest,
    clean,
    event_time,
    labels_of,
    parse_time,
    short_key,
)

_FIRE = {"create", "unacknowledge", "reopen"}
_RESOLVE = {"close", "delete"}
_STATE_ONLY = {"create", "reopen", "close", "delete"}
"""Actions the alert's status says all about; every other one is also recorded as text."""


def _text(node: dict[str, Any], name: str) -> str | None:
    value = node.get(name)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dict | list):
        raise PayloadError(f"alert.{name} must be a string")
    text = str(value).strip()
    return text or None


_ABOUT = {
    "assignownership": (("alert", "owner", "to"),),
    "addteam": (("alert", "team", "team"),),
    "addrecipient": (("alert", "recipient", "recipient"),),
    "addtags": (("alert", "addedTags", "added"),),
    "removetags": (("alert", "removedTags", "removed"),),
    "escalate": (("", "escalationName", "escalation"), ("escalationNotify", "name", "to")),
    "snooze": (("alert", "snoozeEndDate", "until"),),
}
"""What an action is about, for its timeline entry: ``(object, field, word)``, the object
``""`` for the body itself (Opsgenie's alert action data: the owner assigned, the team or
recipient added, the tags, the escalation and whom it notified, the end of a snooze)."""


def _about(data: dict[str, Any], action: str) -> str:
    """``to ana@example.com`` or ``escalation dba, to ana@example.com``; parts that are absent,
    or not text, are left out rather than refusing the event."""
    parts = []
    for holder, name, word in _ABOUT.get(action, ()):
        node = data.get(holder) if holder else data
        value = node.get(name) if isinstance(node, dict) else None
        if isinstance(value, list):  # tags, as a list rather than Opsgenie's "a,b"
            value = ",".join(str(item) for item in value if isinstance(item, str | int))
        text = clean(value, 200, multiline=False) if isinstance(value, str | int) else ""
        if text and not isinstance(value, bool):
            parts.append(f"{word} {text}")
    return ", ".join(parts)


def parse(data: dict[str, Any], now: datetime) -> AlertMessage:
    action = data.get("action")
    if not isinstance(action, str) or not action.strip():
        raise PayloadError(
            "no 'action': this is not an Opsgenie webhook body "
            '(expected {"action": "Create", "alert": {...}})'
        )
    alert = data.get("alert")
    if not isinstance(alert, dict):
        raise PayloadError("'alert' must be an object")
    alert_id = _text(alert, "alertId")
    alias = _text(alert, "alias") or alert_id
    if alias is None:
        raise PayloadError("alert has neither alias nor alertId")
    priority = alert.get("priority")
    severity = None
    if isinstance(priority, int) and not isinstance(priority, bool):
        severity = f"P{priority}"
    elif isinstance(priority, str) and priority.strip():
        severity = priority.strip().upper()
    message = _text(alert, "message") or f"Opsgenie alert {alias}"
    title = clean(message, TITLE_MAX, multiline=False)
    tags = alert.get("tags")
    details = labels_of(alert.get("details"), "alert.details")
    labels = {
        **details,
        **{
            k: clean(v, 1000, multiline=False)
            for k, v in (
                ("tinyId", _text(alert, "tinyId")),
                ("entity", _text(alert, "entity")),
                ("team", _text(alert, "team")),
                ("tags", ",".join(str(t) for t in tags) if isinstance(tags, list) else None),
            )
            if v
        },
        # Looked up by (an Escalate names only it), so kept as a key: an index can hold it.
        **({"alertId": short_key(alert_id)} if alert_id else {}),
    }
    # Prometheus alerts through Opsgenie's integration carry their labels and annotations in
    # the details: ``alertname`` names the rule (runbooks are matched by it, as the generic
    # source's ``labels.alertname``) and ``runbook_url`` (or ``runbook``) the runbook.
    by_name = {k.casefold(): v for k, v in details.items()}
    rule = clean(by_name.get("alertname"), TITLE_MAX, multiline=False) or None
    runbook_url = (by_name.get("runbook_url") or by_name.get("runbook") or "").strip() or None
    verb = action.strip()
    folded = verb.casefold()
    key = short_key(alias)
    alerts: tuple[Alert, ...] = ()
    info: tuple[Info, ...] = ()
    if folded in _FIRE or folded in _RESOLVE:
        alerts = (
            Alert(
                key=key,
                status=Status.RESOLVED if folded in _RESOLVE else Status.FIRING,
                name=title,
                title=title,
                rule=rule,
                runbook_url=runbook_url,
                description=clean(_text(alert, "description") or ""),
                labels=labels,
                severity=severity,
                service=details.get("service") or None,
                starts_at=parse_time(alert.get("createdAt"), now=now),
                # Opsgenie does not deliver in order (a Close may come before its Create).
                event_at=event_time(alert.get("updatedAt"), now=now),
            ),
        )
    if folded not in _STATE_ONLY:
        # Opsgenie sends no event id: the body's hash keys the timeline entry, so a retry of
        # the same delivery records it once.
        digest = body_digest(data)
        who = clean(_text(alert, "username") or "", 200, multiline=False)
        note = clean(_text(alert, "note") or "", 2000)
        # UpdatePriority carries the new priority: recorded, and mapped to the group's severity
        # as PagerDuty's priority_updated is.
        priority_set = severity if folded == "updatepriority" else None
        about = _about(data, folded)
        text = (
            f"Opsgenie: {clean(verb, 60, multiline=False)}"
            + (f" by {who}" if who else "")
            + (f": priority {priority_set}" if priority_set else "")
            + (f": {about}" if about else "")
            + (f": {note}" if note else "")
        )
        info = (
            Info(
                key=f"opsgenie:{digest}",
                text=text,
                severity=priority_set,
                at=event_time(alert.get("updatedAt"), now=now),
            ),
        )
    return AlertMessage(
        source="opsgenie",
        group_key=key,
        title=title,
        alerts=alerts,
        info=info,
        # Only the alertId (an Escalate): the group its Create opened under the alias.
        same_as=("alertId", short_key(alert_id))
        if alert_id and not _text(alert, "alias")
        else None,
    )
