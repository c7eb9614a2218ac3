"""``firebreak alerts list``: one entry per alert, with its source, dedupe key, status and
incident (the latest one it fired under, not its group's current one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.alerts.models import AlertGroup, AlertRecord
from bot.models import Incident


@dataclass(frozen=True)
class Entry:
    source: str
    group: str
    key: str
    status: str
    incident: str | None
    title: str
    dropped: bool
    last_seen_at: datetime
    disposition: str = "incident"
    """Its group's: ``declaring`` while its incident is on its way, ``triage``, ``ignored``..."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "group": self.group,
            "key": self.key,
            "status": self.status,
            "incident": self.incident,
            "title": self.title,
            "dropped": self.dropped,
            "last_seen_at": self.last_seen_at.isoformat(),
            "disposition": self.disposition,
        }


def list_alerts(session: Session, *, limit: int = 1000) -> list[Entry]:
    """One entry per alert, most recently seen first."""
    rows = session.exec(
        select(AlertRecord, AlertGroup, Incident.number)
        .join(AlertGroup, col(AlertGroup.id) == col(AlertRecord.group_id))
        .outerjoin(Incident, col(Incident.id) == col(AlertRecord.incident_id))
        .order_by(col(AlertRecord.last_seen_at).desc(), col(AlertRecord.id).desc())
        .limit(limit)
    ).all()
    return [
        Entry(
            source=group.source,
            group=group.group_key,
            key=alert.key,
            status=alert.status,
            incident=f"INC-{number}" if number is not None else None,
            title=alert.title,
            dropped=alert.dropped,
            last_seen_at=alert.last_seen_at,
            disposition=group.disposition,
        )
        for alert, group, number in rows
    ]
