"""Groups of the same thing: a Datadog monitor and scope across its alert cycles (each cycle is
its own group), an Opsgenie alert named by its ``alertId``. A new group finds the latest
other one by a label its alerts carry (``LOOKUP_LABELS``, each indexed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.alerts.models import DECLARING, AlertGroup, AlertRecord, label_value
from bot.config import Policy
from bot.models import Incident


def labelled(source: str, label: str, value: str) -> Any:
    """The groups of ``source`` with an alert whose ``label`` (one of ``LOOKUP_LABELS``, each
    indexed) is ``value``, newest first: by when the group was made, not when it was last
    heard from, since a late copy of an old cycle's message must not make it the latest."""
    return (
        select(AlertGroup)
        .join(AlertRecord, col(AlertRecord.group_id) == col(AlertGroup.id))
        .where(col(AlertGroup.source) == source, label_value(label) == value)
        .order_by(col(AlertGroup.id).desc())
    )


@dataclass(frozen=True)
class Related:
    """What the latest other group of the same thing says about a new group's incident."""

    incident: Incident | None = None
    refired: bool = False
    """The thing fires again (the other group had resolved)."""
    waiting: bool = False
    """The other group's declare waits in an effect: its incident is on its way."""


def related_incident(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    related: tuple[str, str] | None,
    now: datetime,
    *,
    older_only: bool = False,
) -> Related:
    """The incident of another group of the same thing (``related``: a Datadog monitor and
    scope in an earlier alert cycle) that is still firing, or resolved within the flap window,
    or still being worked on (active), and not closed: a new group of a flapping monitor
    attaches to it, and, if that group's declare still waits (``DECLARING``), waits for it.
    ``older_only``: only groups made before ``group`` count (a waiting declare never waits
    for a later one)."""
    if related is None:
        return Related()
    for other in session.exec(labelled(group.source, *related).limit(20)).all():
        if other.id == group.id or (older_only and (other.id or 0) > (group.id or 0)):
            continue
        if other.incident_id is None:
            if other.disposition == DECLARING:
                return Related(waiting=True)
            continue
        recent = other.firing_count > 0 or (
            other.resolved_at is not None and now - other.resolved_at <= policy.alerts.flap_window
        )
        incident = session.get(Incident, other.incident_id)
        phase = policy.phase_of(incident.status) if incident is not None else "closed"
        if (recent and phase != "closed") or phase == "active":
            return Related(incident, other.firing_count == 0)
        break  # only the latest group of the thing counts
    return Related()
