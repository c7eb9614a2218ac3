"""SQLModel tables. The schema itself is created and changed only by Alembic migrations.

Times are ``UTCDateTime`` columns: timezone-aware UTC in Python on both backends.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime, configure_metadata

configure_metadata(SQLModel.metadata)


def _utc(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


class EventKind(StrEnum):
    """What a timeline event records. Stored as text, so new kinds need no migration."""

    DECLARED = "declared"
    SEVERITY_CHANGED = "severity_changed"
    STATUS_CHANGED = "status_changed"
    ACKNOWLEDGED = "acknowledged"
    ROLE_ASSIGNED = "role_assigned"
    ROLE_UNASSIGNED = "role_unassigned"
    NOTE = "note"
    STATUS_UPDATE = "status_update"
    MESSAGE = "message"
    RETRACTION = "retraction"
    DETAILS_CHANGED = "details_changed"
    ACTION_ITEM_ADDED = "action_item_added"
    ACTION_ITEM_COMPLETED = "action_item_completed"
    ACTION_ITEM_REOPENED = "action_item_reopened"
    CHANNEL_CREATED = "channel_created"
    CHANNEL_ARCHIVED = "channel_archived"
    CHANNEL_UNARCHIVED = "channel_unarchived"
    CHANNEL_RENAMED = "channel_renamed"
    CHANNEL_LOST = "channel_lost"
    CHANNEL_REGAINED = "channel_regained"
    CHANNEL_ID_CHANGED = "channel_id_changed"
    CHANNEL_SHARED = "channel_shared"
    RUNBOOK_STARTED = "runbook_started"
    RUNBOOK_STEP = "runbook_step"
    REMINDER_SENT = "reminder_sent"
    ESCALATED = "escalated"
    POSTMORTEM_GENERATED = "postmortem_generated"
    PERMISSION_DENIED = "permission_denied"
    SLACK_FAILED = "slack_failed"
    """Something Firebreak had to do in Slack failed for good (the effect names what)."""
    SLACK_RECOVERED = "slack_recovered"
    """Something that had failed for good was done after all, asked for again (a retry, an
    invite back, a later change)."""
    REMINDER_SNOOZED = "reminder_snoozed"
    REMINDER_STOPPED = "reminder_stopped"
    REMINDER_WITHDRAWN = "reminder_withdrawn"
    ALERT_FIRING = "alert_firing"
    ALERT_RESOLVED = "alert_resolved"
    ALERT_NOTE = "alert_note"
    CLASSIFIED = "classified"
    CLOCK_STARTED = "clock_started"
    CLOCK_COMPLETED = "clock_completed"
    CLOCK_WARNED = "clock_warned"
    RETENTION_TOMBSTONE = "retention_tombstone"


class Counter(SQLModel, table=True):
    """Named counters. ``incident_number`` hands out gap-free incident numbers: it is bumped in
    the same transaction that inserts the incident, so a rolled-back declare returns its number."""

    __tablename__ = "counters"

    name: str = Field(primary_key=True, max_length=64)
    value: int = Field(default=0)


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    title: str = Field(max_length=300)
    summary: str = Field(default="", sa_type=Text)
    severity: str = Field(max_length=32)
    status: str = Field(max_length=32)
    private: bool = Field(default=False)
    service: str | None = Field(default=None, max_length=200)
    reporter_id: str = Field(max_length=64)
    declare_key: str | None = Field(default=None, unique=True, max_length=255)
    """Idempotency key of the request that declared it (Slack trigger or view id)."""

    slack_channel_id: str | None = Field(default=None, max_length=32, index=True)
    slack_channel_name: str | None = Field(default=None, max_length=80)
    summary_message_ts: str | None = Field(default=None, max_length=32)
    announcement_channel_id: str | None = Field(default=None, max_length=32)
    announcement_ts: str | None = Field(default=None, max_length=32)

    impact_started_at: datetime | None = _utc(default=None)
    detected_at: datetime | None = _utc(default=None)
    declared_at: datetime = _utc()
    acknowledged_at: datetime | None = _utc(default=None)
    mitigated_at: datetime | None = _utc(default=None)
    resolved_at: datetime | None = _utc(default=None)
    closed_at: datetime | None = _utc(default=None)
    updated_at: datetime = _utc()

    slack_state: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    """Which Slack set-up steps are done (invited, topic, pinned, ...), so a retry resumes."""
    slack_setup_error: str | None = Field(default=None, sa_type=Text)
    slack_lease_until: datetime | None = _utc(default=None)
    """While set in the future, one worker is setting up or refreshing the incident's Slack
    channel and messages; others leave it alone."""
    chain_head: str | None = Field(default=None, max_length=64)
    """Hash of the incident's latest timeline event and the number of events on its chain, set
    by ``bot.audit.chain.advance`` in the transaction of each append: a deleted tail shows."""
    chain_events: int = Field(default=0)

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


class RoleAssignment(SQLModel, table=True):
    """Who held which role, and when. The current holder has ``unassigned_at`` unset."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        Index(
            "uq_role_assignments_current",
            "incident_id",
            "role",
            unique=True,
            sqlite_where=text("unassigned_at IS NULL"),
            postgresql_where=text("unassigned_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    role: str = Field(max_length=32)
    user_id: str = Field(max_length=64)
    assigned_at: datetime = _utc()
    assigned_by: str = Field(max_length=64)
    unassigned_at: datetime | None = _utc(default=None)
    unassigned_by: str | None = Field(default=None, max_length=64)


class TimelineEvent(SQLModel, table=True):
    """One entry on an incident's timeline. Rows are never updated or deleted: a correction or a
    withdrawn capture is a new event of kind ``retraction`` that points at the earlier one."""

    __tablename__ = "timeline_events"
    __table_args__ = (
        Index("ix_timeline_events_incident_occurred", "incident_id", "occurred_at"),
        Index("ix_timeline_events_incident_id_id", "incident_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    occurred_at: datetime = _utc()
    recorded_at: datetime = _utc()
    kind: str = Field(max_length=40)
    actor_id: str | None = Field(default=None, max_length=64)
    text: str = Field(default="", sa_type=Text)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source_url: str | None = Field(default=None, max_length=2000)
    source_ref: str | None = Field(default=None, max_length=255, index=True)
    """Where it came from, e.g. ``slack:C123:1712345678.000100`` for a captured message."""
    idempotency_key: str = Field(unique=True, max_length=255)
    prev_hash: str | None = Field(default=None, max_length=64)
    """SHA-256 (hex) of the previous event of the same incident (``bot.audit.chain``)."""
    hash: str | None = Field(default=None, max_length=64)
    """SHA-256 (hex) of this event's canonical content and ``prev_hash``. Both are set for
    every event; ``None`` only on a row written without the chain, which verify reports."""


class ActionItem(SQLModel, table=True):
    __tablename__ = "action_items"
    __table_args__ = (UniqueConstraint("incident_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    number: int
    """1, 2, 3... within the incident, so people can say "done 2"."""
    text: str = Field(sa_type=Text)
    owner_id: str | None = Field(default=None, max_length=64)
    due_on: date | None = Field(default=None)
    status: str = Field(default="open", max_length=16)
    created_at: datetime = _utc()
    created_by: str = Field(max_length=64)
    completed_at: datetime | None = _utc(default=None)
    completed_by: str | None = Field(default=None, max_length=64)


class RunbookRun(SQLModel, table=True):
    """A runbook being walked in an incident. The steps are a snapshot taken when the run
    started, so editing the file mid-incident never shifts the progress under responders."""

    __tablename__ = "runbook_runs"
    __table_args__ = (UniqueConstraint("incident_id", "runbook_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    runbook_id: str = Field(max_length=200)
    """The catalog's stable name for the runbook (its path relative to the runbook directory)."""
    title: str = Field(max_length=300)
    source_path: str | None = Field(default=None, max_length=1000)
    content_hash: str = Field(max_length=64)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """The parsed runbook (context and steps) as the responders saw it when it started."""
    step_count: int
    status: str = Field(default="active", max_length=16)
    started_at: datetime = _utc()
    started_by: str = Field(max_length=64)
    completed_at: datetime | None = _utc(default=None)
    slack_channel_id: str | None = Field(default=None, max_length=32)
    slack_message_ts: str | None = Field(default=None, max_length=32)
    page: int = Field(default=0)


class RunbookStepState(SQLModel, table=True):
    """Progress of one step of a run: pending, in_progress (assigned), done or skipped."""

    __tablename__ = "runbook_step_states"
    __table_args__ = (UniqueConstraint("run_id", "step_index"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runbook_runs.id", index=True)
    step_index: int
    state: str = Field(default="pending", max_length=16)
    assignee_id: str | None = Field(default=None, max_length=64)
    started_at: datetime | None = _utc(default=None)
    updated_at: datetime = _utc()
    updated_by: str | None = Field(default=None, max_length=64)


class Reminder(SQLModel, table=True):
    """Something due at a time: a nudge, an escalation, a digest. The database is the source of
    truth; the scheduler only wakes up, claims due rows atomically and sends them.

    ``dedupe_key`` names the reminder (``update:42``, ``ack:42``, ``digest``), so scheduling the
    same reminder twice updates one row instead of creating two."""

    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_state_due_at", "state", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=255)
    kind: str = Field(max_length=40)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    due_at: datetime = _utc()
    state: str = Field(default="pending", max_length=16)
    """pending -> claimed -> pending (recurring) / sent; or cancelled / stopped."""
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = Field(default=0)
    sent_count: int = Field(default=0)
    last_sent_at: datetime | None = _utc(default=None)
    last_error: str | None = Field(default=None, sa_type=Text)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = _utc(default=None)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class Postmortem(SQLModel, table=True):
    """One generated version of an incident's postmortem draft. Regenerating adds a version;
    earlier versions are kept. ``generation_key`` makes a repeated trigger (closing twice, a
    retried command) produce one version, not two."""

    __tablename__ = "postmortems"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    version: int
    generation_key: str = Field(unique=True, max_length=255)
    markdown: str = Field(sa_type=Text)
    template: str = Field(max_length=1000)
    """The template used: ``default`` or the path of the team's template."""
    template_error: str | None = Field(default=None, sa_type=Text)
    """Why the team's template was not used (the default was used instead), if it failed."""
    created_at: datetime = _utc()
    created_by: str = Field(max_length=64)
    file_path: str | None = Field(default=None, max_length=1000)
    slack_file_id: str | None = Field(default=None, max_length=64)


# Configure the mappers now, not lazily at the first query, so detached rows built with
# model_construct() (see incidents.timeline.append_event) always have working attributes.
configure_mappers()
