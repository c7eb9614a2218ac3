"""Timeline entries a group holds while it has no incident (a note, an acknowledgement or an
escalation delivered ahead of the event that opens the incident): ``bot.alerts.intake``
records them on the incident's timeline when the group is declared or attached
(``carry_over``)."""

from __future__ import annotations

from datetime import datetime

from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertGroup
from bot.alerts.priorities import Priority, entry_text
from bot.alerts.routing import mapped_severity
from bot.config import Policy

HELD_MAX = 20
"""Timeline entries a group without an incident keeps (the latest): what a note or an
acknowledgement delivered ahead of the event that opens the incident needs, bounded."""


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
        held.append({"key": info.key, "text": text, "severity": severity, "at": now.isoformat()})
    if len(held) != len(group.held):
        group.held = held[-HELD_MAX:]
