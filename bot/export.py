"""``firebreak export``: an incident and its full timeline as JSON, for audits and archives.

The export includes retracted events and the retractions themselves: it is the audit record,
not the responders' view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from bot import incidents
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
    }
