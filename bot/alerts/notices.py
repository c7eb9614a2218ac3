"""Slack messages only alerts send, as plain data, handed to the effects outbox.

``queue_notice`` runs in the caller's transaction: it records the notice in ``alert_notices``
(what alerts asked for, once per dedupe key) and enqueues a ``message.post`` effect carrying it
(``{"type": "alerts.<kind>", ...}``); the Slack adapter renders it with the renderers of
``bot/slack/alerts.py`` and posts it once. Notices about an incident go in the incident's lane,
so they are posted after its channel exists. Nothing here knows Slack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from bot.alerts.models import AlertNotice
from bot.effects import kinds, store

TRIAGE = "triage"
LINKS = "links"
ALL_RESOLVED = "all_resolved"
TYPE_PREFIX = "alerts."
"""Notice types in effects are ``alerts.triage``, ``alerts.links``, ``alerts.all_resolved``."""


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

_BUILD: dict[str, type[TriageRequest] | type[AlertLinks] | type[AllResolved]] = {
    TRIAGE: TriageRequest,
    LINKS: AlertLinks,
    ALL_RESOLVED: AllResolved,
}


def _insert(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return insert(AlertNotice.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["dedupe_key"]
    )


_INSERT = {name: _insert(name) for name in ("sqlite", "postgresql")}


def as_effect_notice(notice: Notice) -> dict[str, Any]:
    """The notice as the plain dict a ``message.post`` effect carries."""
    data = asdict(notice)
    data["type"] = TYPE_PREFIX + data.pop("kind")
    return data


def notice_from(data: dict[str, Any]) -> Notice | None:
    """The notice in an effect's dict (``None`` for a type alerts do not know)."""
    kind = str(data.get("type") or "").removeprefix(TYPE_PREFIX)
    build = _BUILD.get(kind)
    if build is None:
        return None
    values = {k: v for k, v in data.items() if k != "type"}
    return build(**values)


def queue_notice(session: Session, notice: Notice, *, dedupe_key: str, now: datetime) -> None:
    """Record and post ``notice`` once per ``dedupe_key`` (a repeat is a no-op)."""
    written = session.execute(
        _INSERT[session.get_bind().dialect.name],
        {
            "dedupe_key": dedupe_key[:255],
            "kind": notice.kind,
            "incident_id": getattr(notice, "incident_id", None),
            "group_id": notice.group_id,
            "payload": asdict(notice),
            "state": "queued",
            "created_at": now,
        },
    ).rowcount  # type: ignore[attr-defined]
    if not written:
        return
    if isinstance(notice, TriageRequest):
        to, incident_id, lane = notice.channel, None, None
    else:
        to, incident_id = "incident", notice.incident_id
        lane = store.incident_lane(notice.incident_id)
    store.enqueue(
        session,
        kind=kinds.POST,
        key=f"alerts:{dedupe_key}"[:255],
        data={"to": to, "notice": as_effect_notice(notice)},
        incident_id=incident_id,
        lane=lane,
        now=now,
    )
