"""Slack messages only alerts send, as plain data. ``queue_notice`` stores one in
``alert_notices`` in the caller's transaction (once per dedupe key); the Slack side
(``bot/slack/alerts.py``) renders and posts them. Nothing here knows Slack."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.alerts.models import AlertNotice

TRIAGE = "triage"
LINKS = "links"
ALL_RESOLVED = "all_resolved"


@dataclass(frozen=True)
class TriageRequest:
    """Posted in the triage channel: Declare / Attach to INC-n / Ignore."""

    group_id: int
    channel: str
    source: str
    title: str
    severity: str
    firing: int
    open_incidents: list[str] = field(default_factory=list)
    """Refs of active incidents offered by "Attach to" (``INC-7``), newest first."""
    kind: str = TRIAGE


@dataclass(frozen=True)
class AlertLinks:
    """Posted in the incident channel when alerts open or join it: what fires, the links, and
    the runbook the alert names."""

    incident_id: int
    group_id: int
    source: str
    title: str
    firing: int
    links: list[dict[str, str]] = field(default_factory=list)
    runbook_id: str | None = None
    runbook_title: str | None = None
    runbook_started: bool = False
    kind: str = LINKS


@dataclass(frozen=True)
class AllResolved:
    """Posted in the incident channel: "all alerts resolved: mitigate?" with a button."""

    incident_id: int
    group_id: int
    source: str
    title: str
    resolved: int
    kind: str = ALL_RESOLVED


Notice = TriageRequest | AlertLinks | AllResolved

_BUILD = {TRIAGE: TriageRequest, LINKS: AlertLinks, ALL_RESOLVED: AllResolved}


def _insert(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return insert(AlertNotice.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["dedupe_key"]
    )


_INSERT = {name: _insert(name) for name in ("sqlite", "postgresql")}


def queue_notice(session: Session, notice: Notice, *, dedupe_key: str, now: datetime) -> None:
    """Queue ``notice`` once per ``dedupe_key`` (a repeat is a no-op). The single point where
    alerts hand Slack work over; see docs/alerts.md, "Slack side"."""
    payload = asdict(notice)
    session.execute(
        _INSERT[session.get_bind().dialect.name],
        {
            "dedupe_key": dedupe_key[:255],
            "kind": notice.kind,
            "incident_id": getattr(notice, "incident_id", None),
            "group_id": notice.group_id,
            "payload": payload,
            "state": "pending",
            "created_at": now,
        },
    )


def notice_of(row: AlertNotice) -> Notice:
    """The notice a stored row holds."""
    data = dict(row.payload)
    return _BUILD[row.kind](**data)  # type: ignore[no-any-return]


def pending_notices(session: Session, *, limit: int = 50) -> list[AlertNotice]:
    return list(
        session.exec(
            select(AlertNotice)
            .where(AlertNotice.state == "pending")
            .order_by(col(AlertNotice.id))
            .limit(limit)
        ).all()
    )


def mark_sent(session: Session, notice_id: int, *, now: datetime, error: str | None = None) -> None:
    row = session.get(AlertNotice, notice_id)
    if row is not None:
        row.state = "failed" if error else "sent"
        row.sent_at = now
        row.last_error = error
