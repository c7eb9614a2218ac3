"""Incident metrics, computed from the milestones (unknown, never zero, when one is missing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import Incident

# --------------------------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True)
class IncidentMetrics:
    """Durations derived from milestones; ``None`` where a milestone is missing (unknown, which
    is not the same as zero)."""

    time_to_detect: timedelta | None
    time_to_acknowledge: timedelta | None
    time_to_mitigate: timedelta | None
    time_to_resolve: timedelta | None
    duration: timedelta | None


def _between(start: datetime | None, end: datetime | None) -> timedelta | None:
    if start is None or end is None:
        return None
    return max(end - start, timedelta(0))


def incident_metrics(incident: Incident) -> IncidentMetrics:
    """Metrics as documented in the README:

    * time to detect: impact started -> detected
    * time to acknowledge: declared -> acknowledged
    * time to mitigate / resolve: start of impact -> mitigated / resolved, where the start is the
      earliest known of impact started, detected, declared
    * duration: start of impact -> closed
    """
    known = [
        t
        for t in (incident.impact_started_at, incident.detected_at, incident.declared_at)
        if t is not None
    ]
    start = min(known) if known else None
    return IncidentMetrics(
        time_to_detect=_between(incident.impact_started_at, incident.detected_at),
        time_to_acknowledge=_between(incident.declared_at, incident.acknowledged_at),
        time_to_mitigate=_between(start, incident.mitigated_at),
        time_to_resolve=_between(start, incident.resolved_at),
        duration=_between(start, incident.closed_at),
    )
