"""Tables of the alerts package (imported by ``bot/schema.py``).

* ``alert_groups``: one row per (source, group key): the unit that becomes one incident.
* ``alerts``: one row per alert within a group (its fingerprint), with its current status.
* ``alert_stints``: an alert's earlier time in an incident it has since left (it fired again
  under another incident: a new episode of its group).
* ``alert_notices``: Slack messages only alerts send (triage, links, "all resolved?"), queued
  in the same transaction as the change that calls for them, delivered by the Slack side.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, bindparam
from sqlmodel import Field, SQLModel, col

import bot.models  # noqa: F401  (the incidents table these rows point at)
from bot.db import UTCDateTime


def _utc(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


DECLARING = "declaring"
"""The disposition of a group whose declare waits in an effect (``bot.alerts.declaring``)."""


class AlertGroup(SQLModel, table=True):
    __tablename__ = "alert_groups"
    __table_args__ = (UniqueConstraint("source", "group_key"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    group_key: str = Field(max_length=255)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    episode: int = Field(default=1)
    """Bumped when the group fires again after its flap window: a new incident."""
    status: str = Field(default="firing", max_length=16)
    """firing (at least one alert firing) or resolved."""
    disposition: str = Field(default="pending", max_length=16)
    """incident, triage (waiting for a person), ignored, dropped, or none (nothing to open)."""
    title: str = Field(default="", max_length=300)
    severity: str | None = Field(default=None, max_length=32)
    service: str | None = Field(default=None, max_length=200)
    firing_count: int = Field(default=0)
    alert_count: int = Field(default=0)
    """Alerts the group has had, firing or resolved; those the policy drops are not counted."""
    runbook_id: str | None = Field(default=None, max_length=200)
    links: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    last_info: str | None = Field(default=None, sa_type=Text)
    held: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """Timeline entries (notes, acknowledgements) that came while the group had no incident,
    the latest ``held.HELD_MAX``: recorded on the incident it is declared or attached to."""
    first_seen_at: datetime = _utc()
    last_seen_at: datetime = _utc()
    resolved_at: datetime | None = _utc(default=None)

    @property
    def has_alerts(self) -> bool:
        """Whether any alert row is stored for the group: a counted one, or only alerts the
        policy drops (the group is then ``dropped`` until a counted one comes)."""
        return bool(self.alert_count) or self.disposition == "dropped"


class AlertRecord(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("group_id", "key"),
        Index("ix_alerts_group_status", "group_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="alert_groups.id")
    key: str = Field(max_length=255)
    status: str = Field(max_length=16)
    dropped: bool = Field(default=False)
    name: str = Field(default="", max_length=300)
    title: str = Field(default="", max_length=300)
    description: str = Field(default="", sa_type=Text)
    severity: str | None = Field(default=None, max_length=64)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    annotations: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    links: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    starts_at: datetime | None = _utc(default=None)
    ends_at: datetime | None = _utc(default=None)
    first_seen_at: datetime = _utc()
    last_seen_at: datetime = _utc()
    resolved_at: datetime | None = _utc(default=None)
    transitions: int = Field(default=0)
    """How many times the status changed (keys the timeline entry of each change)."""
    event_at: datetime | None = _utc(default=None)
    """The time of the newest event applied (when its source dates events): a status older
    than this is a late delivery and is not applied."""
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    """The latest incident the alert fired under: set when it fires (or first arrives) while
    its group has an incident, and when its group is declared or attached while it fires. An
    alert of an earlier episode keeps its own incident; one that fires again under another
    incident moves to it, and its time in the one it leaves is kept in ``alert_stints``."""


class AlertStint(SQLModel, table=True):
    """An alert's time in an incident it has left: written when the alert fires again under
    another incident, so the earlier incident still lists it, as it was. Complete in itself
    (not a reference to the alert's row, which is removed with the later incident by
    retention): what an auditor of the earlier incident needs."""

    __tablename__ = "alert_stints"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    alert_id: int
    """The alert's row when the stint was written (it may be gone since)."""
    source: str = Field(max_length=32)
    key: str = Field(max_length=255)
    name: str = Field(default="", max_length=300)
    title: str = Field(default="", max_length=300)
    severity: str | None = Field(default=None, max_length=64)
    starts_at: datetime | None = _utc(default=None)
    resolved_at: datetime | None = _utc(default=None)
    """When it resolved in that incident; ``None`` when no resolve came (it recurred)."""


def label_value(label: str) -> Any:
    """``alerts.labels[label]`` as text, with the label written into the SQL rather than sent
    as a parameter, so a lookup by it can use the label's index (below)."""
    key = bindparam(None, label, type_=JSON.JSONStrIndexType, literal_execute=True)
    return col(AlertRecord.labels)[key].as_string()


LOOKUP_LABELS = ("alertId", "monitor_key")
"""The labels intake finds alerts by (``AlertMessage.same_as`` and ``related``): Opsgenie's
alertId (a delivery that names only it) and Datadog's monitor_key (a monitor across its alert
cycles). Each has an index, so the lookup does not read every alert of the source."""

Index("ix_alerts_label_alertid", label_value("alertId"))
Index("ix_alerts_label_monitor_key", label_value("monitor_key"))


class AlertNotice(SQLModel, table=True):
    __tablename__ = "alert_notices"
    __table_args__ = (Index("ix_alert_notices_state_id", "state", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=255)
    kind: str = Field(max_length=40)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id")
    group_id: int | None = Field(default=None, foreign_key="alert_groups.id")
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="queued", max_length=16)
    """queued (its message is posted, its buttons live), then answered once it is decided
    (the message is edited to say how, without buttons)."""
    created_at: datetime = _utc()
    last_error: str | None = Field(default=None, sa_type=Text)
