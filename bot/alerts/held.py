"""Timeline entries a group holds while it has no incident (a note, an acknowledgement or an
escalation delivered ahead of the event that opens the incident): ``bot.alerts.intake``
records them on the incident's timeline when the group is declared or attached
(``carry_over``)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.alerts.model import AlertMessage, short_key
from bot.alerts.models import AlertGroup
from bot.alerts.priorities import Priority, entry_text
from bot.alerts.routing import mapped_severity
from bot.config import Policy

HELD_MAX = 20
"""Timeline entries a group without an incident keeps (the latest): what a note or an
acknowledgement delivered ahead of the event that opens the incident needs, bounded."""

NAMED_BY = {"opsgenie": "alertId"}
"""The label a source's message names its group by when it names no other key (an Opsgenie
Escalate that carries only the ``alertId``): such a message that comes before any alert of
its group carries the label makes a group of its own under that key (``AlertMessage.same_as``
finds nothing yet)."""


def hold(
    policy: Policy, group: AlertGroup, message: AlertMessage, priority: Priority, now: datetime
) -> None:
    """Keep the message's timeline entries on a group that has no incident (yet): the latest
    ``HELD_MAX``, each once (a retry holds nothing new)."""
    held = list(group.held)
    keys = {entry["key"] for entry in held}
    for info in message.info:
        if info.key in keys:
            continue
        keys.add(info.key)
        severity = mapped_severity(policy, info.severity)
        if info.key in priority.late:
            text, severity = entry_text(info.text, severity, priority, info.key), None
        else:
            text = info.text
        entry = {"key": info.key, "text": text, "severity": severity, "at": now.isoformat()}
        if severity and info.at is not None:  # weighed against the alert that opens the group
            entry["event_at"] = info.at.isoformat()
        held.append(entry)
    if len(held) != len(group.held):
        group.held = held[-HELD_MAX:]


def adopt_strays(session: Session, group: AlertGroup, message: AlertMessage) -> None:
    """A group of its own that a message naming ``group`` only by its alerts' label
    (``NAMED_BY``) made before any of them came, holding its entries and nothing else, is
    this group: its entries are held here (to go on the incident's timeline once, dated when
    they came) and the stray group is removed, so later such messages find this one."""
    label = NAMED_BY.get(message.source)
    if label is None or group.incident_id is not None or not message.alerts:
        return
    values = {alert.labels.get(label) for alert in message.alerts}
    for key in sorted({short_key(value) for value in values if value} - {group.group_key}):
        stray = session.exec(
            select(AlertGroup)
            .where(col(AlertGroup.source) == message.source, col(AlertGroup.group_key) == key)
            .with_for_update()
        ).first()
        if stray is None or stray.has_alerts or stray.incident_id is not None:
            continue
        entries = {entry["key"]: entry for entry in [*stray.held, *group.held]}
        if entries:
            group.held = sorted(entries.values(), key=lambda e: str(e["at"]))[-HELD_MAX:]
        session.delete(stray)
