"""Timeline entries a group holds while it has no incident (a note, an acknowledgement or an
escalation delivered ahead of the event that opens the incident), recorded on the incident's
timeline when the group is declared or attached (``carry_over``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot import incidents as core
from bot.alerts.model import AlertMessage, Status, short_key
from bot.alerts.models import AlertGroup, AlertRecord
from bot.alerts.priorities import NONE, Priority, entry_text
from bot.alerts.routing import mapped_severity
from bot.config import Policy
from bot.models import EventKind, Incident

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


def hold_entry(group: AlertGroup, key: str, text: str, now: datetime) -> None:
    """Keep one timeline entry on a group that has no incident (yet), once (its key)."""
    if any(entry["key"] == key for entry in group.held):
        return
    entry = {"key": key, "text": text, "severity": None, "at": now.isoformat()}
    group.held = [*group.held, entry][-HELD_MAX:]


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


def record_note(
    session: Session,
    policy: Policy,
    incident_id: int,
    group: AlertGroup,
    key: str,
    text: str,
    severity: str | None,
    *,
    now: datetime,
    occurred_at: datetime | None = None,
    held: Incident | None = None,
) -> None:
    """A note, acknowledgement or other entry of the group's sender on the incident's timeline
    (once: its key), with the severity it set, if any. ``held``: the incident when this
    transaction holds its lock."""
    core.record_timeline_event(
        session,
        policy,
        incident_id,
        kind=EventKind.ALERT_NOTE,
        text=entry_text(text, severity, NONE, key),
        occurred_at=occurred_at,
        data={"source": group.source, "group_id": group.id},
        key=key,
        now=now,
        held=held,
    )


def carry_over(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    incident: Incident,
    now: datetime,
    *,
    since: datetime | None = None,
) -> None:
    """The group has just been declared or attached to ``incident``, in this transaction: its
    alerts that have no incident get this one if they are firing, or came in the message that
    opened it (first seen ``now``, or ``since`` for a declare that waited), and the entries it
    held while it had none go on the incident's timeline, each once (their keys), dated when
    they came."""
    assert group.id is not None and incident.id is not None
    session.execute(
        update(AlertRecord)
        .where(
            col(AlertRecord.group_id) == group.id,
            col(AlertRecord.incident_id).is_(None),
            or_(
                col(AlertRecord.status) == Status.FIRING.value,
                col(AlertRecord.first_seen_at) >= (since or now),
            ),
        )
        .values(incident_id=incident.id)
    )
    for entry in group.held:
        record_note(
            session,
            policy,
            incident.id,
            group,
            entry["key"],
            entry["text"],
            entry.get("severity"),
            now=now,
            occurred_at=datetime.fromisoformat(entry["at"]),
        )
    if group.held:
        group.held = []
