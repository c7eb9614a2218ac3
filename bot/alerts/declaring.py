"""Declares that waited: a group of alerts whose webhook found the incident counter taken by
another declare (PostgreSQL, two groups opening at once) is declared by the
``alerts.declare`` effect, moments later on any replica, so that no webhook waits for
another's commit (``bot.alerts.intake``, ``_defer_declare``).

The incident is the one the webhook would have declared: the same key (a repeat, or a race
with a second replica, finds it), the runbook the alerts named, the links, and one timeline
entry for the alerts that came while it waited, dated when the first of them came. Alerts
that all resolved meanwhile are asked about (or mitigated) as when an incident's alerts all
resolve."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from bot.alerts.changes import Changes, as_moved
from bot.alerts.intake import (
    DECLARING,
    _all_resolved,
    _announce,
    _declare,
    lock_group,
    record_changes,
)
from bot.alerts.model import AlertMessage, Status, reporter_of
from bot.alerts.models import AlertGroup, AlertRecord
from bot.alerts.routing import Route
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.db import Database
from bot.effects.runner import Done
from bot.effects.store import Claimed
from bot.models import Incident
from bot.runbooks.catalog import RunbookCatalog

ATTEMPTS = 3
"""A deadlock or a lost race on a unique key rolls the transaction back: tried again at once."""


def group_plan(
    policy: Policy, group: AlertGroup, firing: list[AlertRecord], catalog: RunbookCatalog | None
) -> Route:
    """What a group declared after its webhook (from triage, or after waiting) opens with:
    its severity and service, and the runbook its alerts named when they came."""
    return Route(
        severity=group.severity or policy.default_severity,
        service=group.service,
        dropped=frozenset(),
        runbook=catalog.get(group.runbook_id) if catalog and group.runbook_id else None,
        runbook_reason="",
        runbook_alerts=tuple(r.name for r in firing),
    )


def started_since(session: Session, group: AlertGroup, since: datetime) -> datetime | None:
    """When the impact of the group's alerts that came ``since`` (or fire now) started: the
    earliest time they say they started firing, if it is not after ``since`` (a clock
    running ahead is not believed)."""
    starts = session.exec(
        select(func.min(AlertRecord.starts_at)).where(
            AlertRecord.group_id == group.id,
            col(AlertRecord.dropped).is_(False),
            or_(
                col(AlertRecord.first_seen_at) >= since,
                col(AlertRecord.status) == Status.FIRING.value,
            ),
        )
    ).one()
    started = as_utc(starts) if starts is not None else None
    return started if started is not None and started <= since else None


def declare_waiting(
    session: Session,
    policy: Policy,
    group_id: int,
    episode: int,
    *,
    since: datetime,
    catalog: RunbookCatalog | None = None,
    now: datetime | None = None,
) -> Incident | None:
    """Declare the incident a group's webhook left to an effect. ``since``: when that webhook
    came. Nothing (None) if the group no longer waits: declared already (the effect processed
    again), or a later episode of it."""
    now = now or utcnow()
    group = lock_group(session, group_id)
    if group.episode != episode or group.disposition != DECLARING:
        return None
    rows = session.exec(
        select(AlertRecord).where(
            AlertRecord.group_id == group_id,
            col(AlertRecord.dropped).is_(False),
            or_(
                col(AlertRecord.first_seen_at) >= since,
                col(AlertRecord.status) == Status.FIRING.value,
            ),
        )
    ).all()
    firing = [r for r in rows if r.status == Status.FIRING.value]
    resolved = [r for r in rows if r.status != Status.FIRING.value]
    plan = group_plan(policy, group, firing, catalog)
    incident = _declare(
        session,
        policy,
        group,
        AlertMessage(source=group.source, group_key=group.group_key, title=group.title),
        plan,
        group.firing_count,
        reporter=reporter_of(group.source),
        now=now,
        since=since,
        started=started_since(session, group, since),
    )
    assert incident.id is not None
    _announce(session, policy, group, incident, plan, group.firing_count, now)
    changes = Changes(fired=[as_moved(r) for r in firing], resolved=[as_moved(r) for r in resolved])
    if changes.fired or changes.resolved:
        record_changes(
            session,
            policy,
            group,
            incident,
            changes,
            (group.firing_count, group.alert_count, 0),
            key=f"alerts:declared:{group_id}:{episode}",
            now=now,
            held=incident,
            occurred_at=since,
        )
    if not group.firing_count and group.alert_count:
        # Every alert resolved while the declare waited: asked (or mitigated), as when the
        # alerts of an incident they declared all resolve.
        _all_resolved(session, policy, group, incident, now)
    return incident


def handler(
    database: Database, policy: Policy, catalog: Callable[[], RunbookCatalog | None]
) -> Callable[[Claimed], Done]:
    """The ``alerts.declare`` effect, in a transaction of its own (``catalog``: the runbook
    catalog as it is now, reloaded or not)."""

    def run(item: Claimed) -> Done:
        group, episode = int(item.data["group"]), int(item.data["episode"])
        since = datetime.fromisoformat(str(item.data["since"]))

        def declare(session: Session) -> str | None:
            incident = declare_waiting(
                session, policy, group, episode, since=since, catalog=catalog()
            )
            return incident.ref if incident is not None else None

        ref = database.transact(
            declare, attempts=ATTEMPTS, retry_on=(OperationalError, IntegrityError)
        )
        return Done({"incident": ref})

    return run
