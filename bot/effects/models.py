"""The ``effects`` table: everything that must happen outside the database, as rows.

A row is written in the same transaction as the change that causes it (or, for a Slack request,
before Slack is told it was received), and executed later by a claim loop that runs on every
replica (``bot.effects.runner``). See ``bot.effects`` for the life of a row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


def _utc(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


class Effect(SQLModel, table=True):
    """Something to do once: a Slack request to process, a channel to create, a message to
    post, a summary to bring up to date, a postmortem to draft or upload.

    ``key`` names it, so writing the same effect twice (a retried request, a second replica)
    keeps one row. Effects in the same ``lane`` run one after the other in ``id`` order (an
    incident's channel is created before anything is posted in it); other effects run in
    parallel."""

    __tablename__ = "effects"
    __table_args__ = (
        Index("ix_effects_state_due_at", "state", "due_at"),
        Index("ix_effects_lane_id", "lane", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=255)
    kind: str = Field(max_length=40)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    lane: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """What to do, as plain data (never Block Kit: the Slack adapter renders at execution)."""
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """What was done (a message ts, a channel id), and progress an interrupted attempt left."""
    state: str = Field(default="pending", max_length=16)
    """pending -> claimed -> done | failed | cancelled (or back to pending to retry)."""
    due_at: datetime = _utc()
    attempts: int = Field(default=0)
    """Attempts started. More than one means an earlier attempt may have done the work."""
    rerun: bool = Field(default=False)
    """Armed again while it was running (a coalesced refresh): run once more when finished."""
    last_error: str | None = Field(default=None, sa_type=Text)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = _utc(default=None)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    done_at: datetime | None = _utc(default=None)
