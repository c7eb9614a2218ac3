"""What one message does to its group's alerts: the rows it adds (written as plain rows in
one statement) or moves between firing and resolved, and the words and keys of the timeline
entry that says so. ``bot.alerts.intake`` applies it under the group's lock."""

from __future__ import annotations

import hashlib
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bot.alerts.model import SOURCE_TITLES, Alert, AlertMessage, Status, stale
from bot.alerts.models import AlertGroup, AlertRecord, AlertStint
from bot.alerts.routing import Route

NAMES_SHOWN = 5


@dataclass(frozen=True)
class Moved:
    """An alert this message added or whose status it changed."""

    key: str
    name: str
    title: str
    transitions: int


@dataclass
class Changes:
    fired: list[Moved]
    resolved: list[Moved]
    new_rows: int = 0
    late: int = 0
    """Alerts whose status in this message is older than the newest one applied (``stale``):
    a late delivery, whose priority change is not applied either."""
    firing_delta: int = 0
    """Change in the number of firing (not dropped) alerts."""
    new: list[dict[str, Any]] = field(default_factory=list)
    """The new alert rows, written by ``store_alerts``."""
    fired_rows: list[AlertRecord] = field(default_factory=list)
    """Stored alerts (dropped ones too) that this message moved to firing."""
    rephrased: list[tuple[Moved, str, str]] = field(default_factory=list)
    """Alerts whose status stayed while the sender's word for it changed (``phase_label``):
    (alert, the word before, the word now)."""
    ended: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Of those, the ones that had an incident: their time in it as it ended (alert id ->
    an ``alert_stints`` row), kept by ``store_alerts`` if they fire under another now."""


_INSERT_ALERTS = insert(AlertRecord.__table__)  # type: ignore[attr-defined]
"""New alert rows, written as plain rows in one statement: a storm brings thousands, and
building an ORM object and flushing it costs several times the insert itself."""

_INSERT_STINTS = insert(AlertStint.__table__)  # type: ignore[attr-defined]


def as_moved(row: AlertRecord) -> Moved:
    return Moved(row.key, row.name, row.title, row.transitions)


def links(alert: Alert) -> list[dict[str, str]]:
    return [{"kind": link.kind, "url": link.url} for link in alert.links]


def apply_alerts(
    session: Session, group: AlertGroup, message: AlertMessage, plan: Route, now: datetime
) -> Changes:
    assert group.id is not None
    latest: dict[str, Alert] = {}
    for alert in message.alerts:  # a key listed twice: the last one wins
        latest[alert.key] = alert
    existing: dict[str, AlertRecord] = {}
    # A group that never had an alert (``has_alerts`` changes with the rows, under the group
    # lock) has no rows to look up: the first message of every group skips the query.
    keys = list(latest) if group.has_alerts else []
    for start in range(0, len(keys), 500):
        rows = session.exec(
            select(AlertRecord).where(
                AlertRecord.group_id == group.id,
                col(AlertRecord.key).in_(keys[start : start + 500]),
            )
        ).all()
        existing.update({row.key: row for row in rows})
    changes = Changes([], [])
    new: list[dict[str, Any]] = []
    for key, alert in latest.items():
        row = existing.get(key)
        status = alert.status.value
        if row is None:
            dropped = key in plan.dropped
            new.append(
                {
                    "group_id": group.id,
                    "key": key,
                    "status": status,
                    "dropped": dropped,
                    "name": alert.name[:300],
                    "title": alert.title[:300],
                    "description": alert.description,
                    "severity": (alert.severity or None) and (alert.severity or "")[:64],
                    "labels": alert.labels,
                    "annotations": alert.annotations,
                    "links": links(alert),
                    "starts_at": alert.starts_at,
                    "ends_at": alert.ends_at,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "resolved_at": now if status == Status.RESOLVED else None,
                    "transitions": 1,
                    "event_at": alert.event_at,
                    "incident_id": None,
                }
            )
            if not dropped:
                firing = status == Status.FIRING
                moved = Moved(key, alert.name[:300], alert.title[:300], 1)
                (changes.fired if firing else changes.resolved).append(moved)
                changes.firing_delta += firing
            continue
        row.last_seen_at = now
        if stale(row.event_at, alert):
            changes.late += 1
            continue  # a late delivery: a newer status was applied already
        recurred = _recurred(message, row, alert)
        if alert.event_at is not None:
            row.event_at = alert.event_at
        row.ends_at = alert.ends_at
        before, now_said = _sender_word(message, row.labels), _sender_word(message, alert.labels)
        # A renotification (no word, or the same state's: Re-Warned after Warn) keeps the word.
        again = not now_said or (before is not None and _state(before) == _state(now_said))
        if alert.labels and alert.labels != row.labels:
            row.labels = alert.labels  # an Opsgenie alias re-created under a new alertId
            if before and again and message.phase_label:
                row.labels = {**alert.labels, message.phase_label: before}
        if before and now_said and not again and row.status == status and not row.dropped:
            changes.rephrased.append((as_moved(row), before, now_said))
        if alert.links:
            row.links = links(alert)
        if row.status == status and not recurred:
            continue
        if status == Status.FIRING and row.incident_id is not None and row.id and not row.dropped:
            changes.ended[row.id] = {
                "incident_id": row.incident_id,
                "alert_id": row.id,
                "source": group.source,
                "key": row.key,
                "name": row.name,
                "title": row.title,
                "severity": row.severity,
                "starts_at": row.starts_at or row.first_seen_at,
                # A recurrence: the earlier occurrence ended unreported, when is not known.
                "resolved_at": row.resolved_at,
            }
        row.status = status
        row.transitions += 1
        row.resolved_at = now if status == Status.RESOLVED else None
        if status == Status.FIRING:
            row.starts_at = alert.starts_at or row.starts_at
            changes.fired_rows.append(row)
        if not row.dropped:
            (changes.fired if status == Status.FIRING else changes.resolved).append(as_moved(row))
            if not recurred:  # a recurrence was firing and is: counted once
                changes.firing_delta += 1 if status == Status.FIRING else -1
    changes.new = new
    changes.new_rows = sum(1 for row in new if not row["dropped"])  # dropped: never counted
    return changes


def _sender_word(message: AlertMessage, labels: dict[str, str]) -> str | None:
    """The sender's word for the alert's state (``phase_label``), without the ``Re-`` of a
    renotification; ``None`` for a bare renotification or none."""
    word = labels.get(message.phase_label or "", "").strip() if message.phase_label else ""
    if word[:3].casefold() == "re-":
        word = word[3:]
    return word if word and word.casefold() != "renotify" else None


_SAME_STATE = {"warned": "warn", "warning": "warn"}
"""Words a sender uses for one state (Datadog's ``Warn``, and ``Re-Warned`` renotifying it)."""


def _state(word: str) -> str:
    """The state a sender's word (``_sender_word``) names, to tell a change from a
    renotification: ``Re-Warned`` after ``Warn`` is the same state, said again."""
    folded = word.casefold()
    return _SAME_STATE.get(folded, folded)


def rephrased_text(source: str, rephrased: list[tuple[Moved, str, str]]) -> str:
    """``Datadog: CPU high: Warn → Triggered`` (each alert whose word changed, a few)."""
    shown = [f"{m.name or m.title or m.key}: {old} → {new}" for m, old, new in rephrased]
    more = f" and {len(shown) - NAMES_SHOWN} more" if len(shown) > NAMES_SHOWN else ""
    return f"{SOURCE_TITLES.get(source, source)}: {'; '.join(shown[:NAMES_SHOWN])}{more}"


def _recurred(message: AlertMessage, row: AlertRecord, alert: Alert) -> bool:
    """A firing alert reported firing again with a later start than the one applied: a new
    occurrence, when the source's start names one (``starts_name_occurrences``). Compared as
    the sender wrote them (``event_at``, before the row takes the message's): ``starts_at`` is
    clamped to the arrival time when the sender's clock runs ahead, so each copy of one
    occurrence would look later than the one before."""
    return (
        message.starts_name_occurrences
        and alert.status == Status.FIRING
        and row.status == Status.FIRING.value
        and alert.event_at is not None
        and row.event_at is not None
        and alert.event_at > row.event_at
    )


def store_alerts(session: Session, changes: Changes, incident_id: int | None) -> None:
    """Write the message's new alerts; they and the stored alerts it fired belong to the
    group's incident, or to none while it has none (an incident declared or attached later
    gives its own to the alerts firing then: ``carry_over``). An alert that leaves an incident
    for another (or for none yet: a new episode) leaves its time there in ``alert_stints``."""
    stints = []
    for row in changes.fired_rows:
        stint = changes.ended.get(row.id) if row.id is not None else None
        if stint is not None and stint["incident_id"] != incident_id:
            stints.append(stint)
        row.incident_id = incident_id
    if stints:
        session.execute(_INSERT_STINTS, stints)
    for values in changes.new:
        values["incident_id"] = incident_id
    if changes.new:
        session.execute(_INSERT_ALERTS, changes.new)
    session.flush()


# --------------------------------------------------------------------------------------------
# Text


def names(rows: list[Moved]) -> str:
    tally = Tally(row.name or row.title or row.key for row in rows)
    parts = [f"{name} ×{count}" if count > 1 else name for name, count in tally.most_common()]
    shown = ", ".join(parts[:NAMES_SHOWN])
    return shown + (f" and {len(parts) - NAMES_SHOWN} more" if len(parts) > NAMES_SHOWN else "")


def timeline_text(
    changes: Changes, firing: int, total: int, truncated: int = 0, episode: int = 1
) -> str:
    pieces = []
    if changes.fired:
        noun = "alert" if len(changes.fired) == 1 else f"{len(changes.fired)} alerts"
        pieces.append(f"{noun} firing: {names(changes.fired)}")
    if changes.resolved:
        noun = "alert" if len(changes.resolved) == 1 else f"{len(changes.resolved)} alerts"
        pieces.append(f"{noun} resolved: {names(changes.resolved)}")
    text = "; ".join(pieces)
    left_out = f", {truncated} more not listed by the sender" if truncated else ""
    # The counts are the group's: after an earlier episode they include its alerts.
    earlier = ", counting its earlier episodes" if episode > 1 else ""
    counts = f"{firing} of {total} firing in this group{earlier}{left_out}"
    return f"{text[:1].upper()}{text[1:]} ({counts})"


def transition_key(group: AlertGroup, changes: Changes) -> str:
    moved = sorted((row.key, row.transitions) for row in changes.fired + changes.resolved)
    digest = hashlib.sha256(repr(moved).encode()).hexdigest()[:40]
    return f"alerts:{group.id}:{digest}"
