"""Declares that waited: a group of alerts whose webhook found the incident counter taken by
another declare (PostgreSQL, two groups opening at once) is declared by the
``alerts.declare`` effect, moments later on any replica, so that no webhook waits for
another's commit (``bot.alerts.intake``, ``_defer_declare``).

The incident is the one the webhook would have declared: the same key (a repeat, or a race
with a second replica, finds it), the runbook the alerts named, the links, and timeline
entries for the alerts that came while it waited (what fired, dated when the first came; what
resolved meanwhile, dated when the last did). Alerts that all resolved meanwhile are asked
about (or mitigated) as when an incident's alerts all resolve."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from bot import incidents as core
from bot.alerts.changes import Changes, as_moved, names
from bot.alerts.held import carry_over
from bot.alerts.intake import (
    _all_resolved,
    _announce,
    _declare,
    firing_again,
    lock_group,
    record_changes,
)
from bot.alerts.model import AlertMessage, Status, reporter_of
from bot.alerts.models import DECLARING, AlertGroup, AlertRecord
from bot.alerts.related import related_incident
from bot.alerts.routing import Route
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.db import Database
from bot.effects import kinds, store
from bot.effects.runner import Done, TransientError
from bot.effects.store import Claimed
from bot.markup import escape_mrkdwn
from bot.models import Incident
from bot.runbooks.catalog import RunbookCatalog

log = logging.getLogger(__name__)

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


def alerts_since(session: Session, group_id: int, since: datetime) -> list[AlertRecord]:
    """The group's alerts a declare made after its webhook is about: those that came
    ``since`` (the webhook, or the triage request), and those firing now (an alert of an
    earlier episode that fired again), in the order they came; dropped ones left out."""
    return list(
        session.exec(
            select(AlertRecord)
            .where(
                AlertRecord.group_id == group_id,
                col(AlertRecord.dropped).is_(False),
                or_(
                    col(AlertRecord.first_seen_at) >= since,
                    col(AlertRecord.status) == Status.FIRING.value,
                ),
            )
            .order_by(col(AlertRecord.id))
        ).all()
    )


def impact_started(alerts: list[AlertRecord], since: datetime) -> datetime | None:
    """When the impact of ``alerts`` started: the earliest time they say they started firing,
    if it is not after ``since`` (a clock running ahead is not believed)."""
    starts = [as_utc(r.starts_at) for r in alerts if r.starts_at is not None]
    started = min(starts) if starts else None
    return started if started is not None and started <= since else None


class StillWaiting(Exception):
    """The declare of another group of the same thing (a Datadog monitor's earlier alert
    cycle) still waits: this group attaches to its incident once it has one."""


def declare_waiting(
    session: Session,
    policy: Policy,
    group_id: int,
    episode: int,
    *,
    since: datetime,
    related: tuple[str, str] | None = None,
    catalog: RunbookCatalog | None = None,
    now: datetime | None = None,
) -> Incident | None:
    """Declare the incident a group's webhook left to an effect, or attach the group to the
    incident of an earlier group of the same thing (``related``), as the webhook would have.
    ``since``: when that webhook came. Nothing (None) if the group no longer waits: done
    already (the effect processed again), or a later episode of it. Raises ``StillWaiting``
    while the earlier group's own declare waits."""
    now = now or utcnow()
    core.hold_counter(session)  # first: waiting for it, hold no group its webhooks wait for
    group = lock_group(session, group_id)
    if group.episode != episode or group.disposition != DECLARING:
        return None
    other = related_incident(session, policy, group, related, now, older_only=True)
    if other.waiting:
        raise StillWaiting(f"group {group_id} waits for the declare of an earlier group")
    rows = alerts_since(session, group_id, since)
    firing = [r for r in rows if r.status == Status.FIRING.value]
    incident = other.incident
    if incident is not None:
        assert incident.id is not None
        # Locked (after the group, as every path takes them): its timeline is appended to.
        incident = core.lock_incident(session, incident.id)
        group.incident_id = incident.id
        group.disposition = "incident"
        carry_over(session, policy, group, incident, now, since=since)
    else:
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
            started=impact_started(rows, since),
            description=next((r.description for r in firing if r.description), None),
        )
        _announce(session, policy, group, incident, plan, group.firing_count, now)
    _record_waited(session, policy, group, incident, rows, since, now)
    if other.incident is not None and firing:
        fired = (names([as_moved(r) for r in firing]), f"alerts:declared:{group_id}:{episode}")
        firing_again(session, policy, group, incident, fired, other.refired, now)
    if not group.firing_count and group.alert_count:
        # Every alert resolved while the declare waited: asked (or mitigated), as when the
        # alerts of an incident they declared all resolve.
        _all_resolved(session, policy, group, incident, now)
    return incident


def _record_waited(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    incident: Incident,
    rows: list[AlertRecord],
    since: datetime,
    now: datetime,
) -> None:
    """The alerts that came while the declare waited, on the incident's timeline: every one
    fired (dated when the first came), and those that resolved meanwhile (dated when the last
    of them did)."""
    if not rows:
        return
    key = f"alerts:declared:{group.id}:{group.episode}"
    fired = Changes(fired=[as_moved(r) for r in rows], resolved=[])
    record_changes(
        session,
        policy,
        group,
        incident,
        fired,
        (len(rows), group.alert_count, 0),
        key=key,
        now=now,
        held=incident,
        occurred_at=since,
    )
    resolved = [r for r in rows if r.status != Status.FIRING.value]
    if resolved:
        ended = max((as_utc(r.resolved_at) for r in resolved if r.resolved_at), default=now)
        record_changes(
            session,
            policy,
            group,
            incident,
            Changes(fired=[], resolved=[as_moved(r) for r in resolved]),
            (group.firing_count, group.alert_count, 0),
            key=f"{key}:resolved",
            now=now,
            held=incident,
            occurred_at=max(ended, since),
        )


def gave_up(session: Session, policy: Policy, group_id: int, episode: int, error: str) -> None:
    """The declare failed for good (its retries ran out): people are told in the triage
    channel, else the announcements channel, to declare by hand (a Datadog monitor that stays
    in alert sends nothing more), the log says so as an error, and the group no longer waits:
    a later message of its alerts opens it again."""
    group = lock_group(session, group_id)
    if group.episode != episode or group.disposition != DECLARING:
        return
    group.disposition = "pending"
    session.add(group)
    log.error(
        "alert group %s (%s) could not be declared: %s; people are told to declare it by hand",
        group_id,
        group.source,
        error[:300],
    )
    where = policy.alerts.triage_channel or policy.slack.announcements_channel
    if not where:
        return
    title = escape_mrkdwn(group.title or f"{group.source} alerts")
    store.enqueue(
        session,
        kind=kinds.POST,
        key=f"alerts:gave-up:{group_id}:{episode}",
        data={
            "to": where,
            "notice": {
                "type": "failure",
                "what": f"open an incident for the alerts *{title}* ({group.firing_count} firing)",
                "error": f"{error[:300]} Declare it by hand: `/incident {title[:80]}`.",
            },
            store.MOMENT: True,
        },
        now=utcnow(),
    )


WAIT = 5.0
"""Seconds a declare waits for the incident counter (another declare's transaction holds it a
few milliseconds, or one that is slow): past it, the effect is tried again later, and its
runner thread goes on with other incidents' work meanwhile."""


def handler(
    database: Database,
    policy: Policy,
    catalog: Callable[[], RunbookCatalog | None],
    *,
    wait: float = WAIT,
) -> Callable[[Claimed], Done]:
    """The ``alerts.declare`` effect, in a transaction of its own (``catalog``: the runbook
    catalog as it is now, reloaded or not)."""

    def run(item: Claimed) -> Done:
        group, episode = int(item.data["group"]), int(item.data["episode"])
        since = datetime.fromisoformat(str(item.data["since"]))
        named = item.data.get("related")
        related = (str(named[0]), str(named[1])) if isinstance(named, list) else None

        def declare(session: Session) -> str | None:
            incident = declare_waiting(
                session, policy, group, episode, since=since, related=related, catalog=catalog()
            )
            return incident.ref if incident is not None else None

        try:
            ref = database.transact(
                declare,
                attempts=ATTEMPTS,
                retry_on=(OperationalError, IntegrityError),
                until=time.monotonic() + wait,
            )
        except StillWaiting as exc:
            raise TransientError(str(exc), retry_after=1.0, reason="waiting") from None
        except OperationalError:
            # The counter (or the group) held past ``wait``, or the database away.
            raise TransientError(
                "the incident counter or the database is busy", retry_after=1.0, reason="busy"
            ) from None
        return Done({"incident": ref})

    return run
