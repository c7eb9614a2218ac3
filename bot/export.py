"""``firebreak export``: an incident, its full timeline and its alerts as JSON, for audits and
archives.

The export includes retracted events and the retractions themselves: it is the audit record,
not the responders' view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from bot import incidents
from bot.alerts.models import AlertGroup, AlertRecord, AlertStint
from bot.config import Policy


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def export_incident(session: Session, policy: Policy, ref: str) -> dict[str, Any]:
    incident = incidents.find_incident(session, ref)
    assert incident.id is not None
    metrics = incidents.incident_metrics(incident)
    return {
        "format": "firebreak.incident/v1",
        "incident": {
            "ref": incident.ref,
            **{k: _plain(v) for k, v in incident.model_dump().items() if k != "declare_key"},
        },
        "metrics_seconds": {
            name: (value.total_seconds() if value is not None else None)
            for name, value in vars(metrics).items()
        },
        "roles": [
            {k: _plain(v) for k, v in row.model_dump().items() if k != "incident_id"}
            for row in incidents.role_history(session, incident.id)
        ],
        "timeline": [
            {k: _plain(v) for k, v in event.model_dump().items() if k != "incident_id"}
            for event in incidents.timeline(session, incident.id, include_retracted=True)
        ],
        "action_items": [
            {k: _plain(v) for k, v in item.model_dump().items() if k != "incident_id"}
            for item in incidents.list_action_items(session, incident.id)
        ],
        **_alerts(session, incident.id),
    }


def _alerts(session: Session, incident_id: int) -> dict[str, Any]:
    """Every alert that fired under the incident (dropped ones too, marked), with its source;
    and those that have since fired again under a later incident, as they were in this one."""
    rows = session.exec(
        select(AlertRecord, AlertGroup.source)
        .join(AlertGroup, col(AlertGroup.id) == col(AlertRecord.group_id))
        .where(AlertRecord.incident_id == incident_id)
        .order_by(col(AlertRecord.first_seen_at), col(AlertRecord.id))
    ).all()
    stints = session.exec(
        select(AlertStint).where(AlertStint.incident_id == incident_id).order_by(col(AlertStint.id))
    ).all()
    skip = {"incident_id", "group_id", "id", "alert_id", "event_at", "transitions"}
    return {
        "alerts": [
            {"source": source, **{k: _plain(v) for k, v in a.model_dump().items() if k not in skip}}
            for a, source in rows
        ],
        "earlier_alerts": [
            {k: _plain(v) for k, v in stint.model_dump().items() if k not in skip}
            for stint in stints
        ],
    }
