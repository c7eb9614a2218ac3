"""Reminders and escalations that survive restarts and are sent once, however many replicas run.

The database is the source of truth for what is due: one ``reminders`` row per reminder, named by
its ``dedupe_key`` (``ack:42``, ``update:42``, ``step:7:3``, ``close:42``, ``actions``,
``digest``). Scheduling is an upsert on that key, so scheduling twice keeps one row. APScheduler
(``bot.scheduler``) is only the clock that wakes ``ReminderWorker.tick`` up.

Keeping rows in sync: ``on_timeline_event`` is called by the core for every timeline event, in
the same transaction, so a reminder can never disagree with the incident it is about (declared ->
armed; acknowledged, commander named, update posted, resolved -> cancelled or reset; severity
changed or reopened -> re-timed).

Sending once:

1. *Claim*: one conditional ``UPDATE`` moves due rows (and rows whose claim lease expired, because
   the worker died) to ``claimed`` with this worker's id and a lease. On PostgreSQL the rows come
   from a ``SELECT ... FOR UPDATE SKIP LOCKED`` subquery, so replicas never wait for or take each
   other's rows; on SQLite the transaction already holds the database's write lock (Firebreak's
   SQLite transactions begin ``IMMEDIATE``).
2. *Prepare*: lock the incident, then the row; check the claim is still ours and re-check the
   condition (an update posted meanwhile means no nudge). Nothing is sent inside a transaction.
3. *Send* through a ``Notifier``. A reminder that posts several messages (an escalation also goes
   to the escalation channel; overdue action items go to each incident channel) records each
   delivered message on the row, so a retry sends only what is missing.
4. *Finish*: in one transaction record the timeline event (``REMINDER_SENT`` / ``ESCALATED``, with
   an idempotency key so a retry cannot record it twice) and mark the row sent or schedule the
   next occurrence. A Slack error instead releases the claim with a backoff: retried, not lost.

A recurring reminder that missed many occurrences while no worker ran is sent once and then
scheduled from now (coalesced), never replayed as a burst.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot import incidents as core
from bot.clock import as_utc, utcnow
from bot.config import COMMANDER, Policy, format_duration
from bot.db import Database
from bot.errors import InvalidInput, NotFound
from bot.models import (
    ActionItem,
    EventKind,
    Incident,
    Reminder,
    RoleAssignment,
    RunbookRun,
    TimelineEvent,
)
from bot.slack import reminder_blocks as blocks
from bot.slack.reminder_blocks import ReminderMessage

log = logging.getLogger(__name__)

# Kinds (``Reminder.kind``) -------------------------------------------------------------------

ACK = "ack"
UPDATE = "update"
STEP = "step"
CLOSE = "close"
ACTIONS = "actions"
DIGEST = "digest"

# States (``Reminder.state``) -----------------------------------------------------------------

PENDING = "pending"
CLAIMED = "claimed"
SENT = "sent"
CANCELLED = "cancelled"
STOPPED = "stopped"
LIVE_STATES = (PENDING, CLAIMED)

# Timeline kinds for what people do to reminders (stored as text; no migration needed).
REMINDER_SNOOZED = "reminder_snoozed"
REMINDER_STOPPED = "reminder_stopped"

DEFAULT_LEASE = timedelta(seconds=60)
"""How long a claim holds. A worker that dies leaves its claims to be taken after this."""
DEFAULT_BATCH = 50
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=15)
CHANNEL_RETRY = timedelta(seconds=30)
"""How soon to look again when the incident's channel has not been created yet."""
GROUP_CACHE_TTL = timedelta(minutes=10)

SNOOZABLE = {UPDATE: "Status-update", STEP: "Runbook step", CLOSE: "Close"}
_LABELS = {**SNOOZABLE, ACK: "Escalation", ACTIONS: "Action items", DIGEST: "Digest"}


def ack_key(incident_id: int) -> str:
    return f"ack:{incident_id}"


def update_key(incident_id: int) -> str:
    return f"update:{incident_id}"


def step_key(run_id: int, step: int) -> str:
    return f"step:{run_id}:{step}"


def close_key(incident_id: int) -> str:
    return f"close:{incident_id}"


# --------------------------------------------------------------------------------------------
# Sending: the protocol the Slack layer implements


class NotifierError(Exception):
    """Sending failed (Slack error, network, rate limit). The reminder is retried later.

    ``retry_after`` is Slack's ``Retry-After`` in seconds when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UserGroupLookup(Protocol):
    def user_groups(self) -> Mapping[str, str]:
        """The workspace's user groups: handle (without ``@``, lower case) -> id (``S...``).

        Raises ``NotifierError`` when Slack cannot be asked."""
        ...


class Notifier(UserGroupLookup, Protocol):
    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        """Post a message; return its ``ts``. Raises ``NotifierError`` on any failure."""
        ...


def resolve_mentions(targets: Iterable[str], groups: Mapping[str, str]) -> list[str]:
    """Escalation targets from the policy as Slack mentions.

    ``U..``/``W..`` -> ``<@U..>``; ``S..`` -> ``<!subteam^S..>``; ``@handle`` -> the group's
    mention when the handle is known, else the handle as plain text (the escalation still goes
    out: a missing ping is better than a missing escalation)."""
    out = []
    for target in targets:
        if target.startswith("@"):
            group = groups.get(target[1:].lower())
            out.append(f"<!subteam^{group}>" if group else target)
        elif target.startswith("S"):
            out.append(f"<!subteam^{target}>")
        else:
            out.append(f"<@{target}>")
    return out


def unknown_targets(targets: Iterable[str], groups: Mapping[str, str]) -> list[str]:
    """The user-group targets (ids or handles) that the workspace does not have."""
    ids = set(groups.values())
    return [
        t
        for t in targets
        if (t.startswith("@") and t[1:].lower() not in groups)
        or (t.startswith("S") and t not in ids)
    ]


# --------------------------------------------------------------------------------------------
# Time rules: working hours and crons in the team's timezone

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def next_working_time(policy: Policy, when: datetime) -> datetime:
    """``when`` if it falls in the team's working hours, else the next start of working hours
    (``reminders.working_hours`` on ``reminders.working_days`` in ``policy.timezone``), in UTC."""
    rules = policy.reminders
    zone = policy.zone
    opens_at, closes_at = (time.fromisoformat(p) for p in rules.working_hours.split("-"))
    when = as_utc(when)
    local_day = when.astimezone(zone).date()
    for offset in range(8):
        day = local_day + timedelta(days=offset)
        if _DAY_NAMES[day.weekday()] not in rules.working_days:
            continue
        opens = datetime.combine(day, opens_at, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(day, closes_at, tzinfo=zone).astimezone(UTC)
        if when >= closes:
            continue
        return max(when, opens)
    raise AssertionError("working_days is never empty")  # pragma: no cover - config validates


def _crontab_weekdays(field_text: str) -> str:
    """Rewrite crontab day-of-week numbers as names.

    Crontab counts Sunday as 0 (and 7); APScheduler 3 counts Monday as 0, so ``1-5`` would mean
    Tuesday to Saturday there. Names mean the same to both, so numeric parts become name lists;
    anything unusual is left for APScheduler to accept or reject."""
    parts = []
    for part in field_text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                if not step_text:
                    parts.append(part)
                    continue
                low, high = 0, 6
            elif "-" in base:
                low, high = (int(x) for x in base.split("-", 1))
            else:
                low = int(base)
                high = 7 if step_text else low
        except ValueError:
            parts.append(part)  # names (mon-fri) or something APScheduler will explain
            continue
        if not (0 <= low <= high <= 7) or step < 1:
            parts.append(part)
            continue
        days = sorted({d % 7 for d in range(low, high + 1, step)})
        parts.append(",".join(_CRONTAB_DAYS[d] for d in days))
    return ",".join(parts)


def cron_trigger(expr: str, zone: ZoneInfo) -> Any:
    """APScheduler's ``CronTrigger`` for a five-field crontab line, weekdays as cron means them."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) == 5:
        fields[4] = _crontab_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=zone)


def next_cron_time(expr: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first time ``expr`` fires strictly after ``after``, in UTC."""
    after = as_utc(after)
    fire = cron_trigger(expr, zone).get_next_fire_time(after, after)
    if fire is None:  # pragma: no cover - a crontab line without an end date always fires again
        raise ValueError(f"cron expression {expr!r} never fires again")
    return as_utc(fire)


# --------------------------------------------------------------------------------------------
# Rows: schedule (upsert), cancel, read


def _iso(value: datetime) -> str:
    return as_utc(value).isoformat()


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def schedule_reminder(
    session: Session,
    *,
    key: str,
    kind: str,
    incident_id: int | None,
    due_at: datetime,
    data: Mapping[str, Any],
    now: datetime,
) -> None:
    """Create the reminder ``key`` or re-time it: one row per key, however often it is called.

    Re-scheduling also takes the row back from a worker that claimed it; that worker notices at
    its next step and leaves the new schedule alone."""
    values = {
        "dedupe_key": key,
        "kind": kind,
        "incident_id": incident_id,
        "due_at": as_utc(due_at),
        "state": PENDING,
        "data": dict(data),
        "attempts": 0,
        "sent_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Reminder).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["dedupe_key"],
        set_={
            "kind": kind,
            "incident_id": incident_id,
            "due_at": as_utc(due_at),
            "state": PENDING,
            "data": dict(data),
            "attempts": 0,
            "last_error": None,
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": now,
        },
    )
    session.exec(statement)


def cancel_reminders(session: Session, keys: Sequence[str], *, now: datetime) -> int:
    """Cancel live (pending or claimed) reminders by key; stopped and sent rows stay as they are."""
    if not keys:
        return 0
    result = session.exec(
        update(Reminder)
        .where(col(Reminder.dedupe_key).in_(keys), col(Reminder.state).in_(LIVE_STATES))
        .values(state=CANCELLED, claimed_by=None, claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def _cancel_incident_kinds(
    session: Session, incident_id: int, kinds: Sequence[str], *, now: datetime
) -> None:
    session.exec(
        update(Reminder)
        .where(
            col(Reminder.incident_id) == incident_id,
            col(Reminder.kind).in_(kinds),
            col(Reminder.state).in_(LIVE_STATES),
        )
        .values(state=CANCELLED, claimed_by=None, claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def get_reminder(session: Session, key: str) -> Reminder | None:
    return session.exec(
        select(Reminder).where(Reminder.dedupe_key == key).execution_options(populate_existing=True)
    ).first()


def incident_reminders(session: Session, incident_id: int) -> list[Reminder]:
    """Every reminder row of an incident (all states), soonest first."""
    return list(
        session.exec(
            select(Reminder)
            .where(Reminder.incident_id == incident_id)
            .order_by(col(Reminder.due_at), col(Reminder.id))
            .execution_options(populate_existing=True)
        ).all()
    )


def _lock_reminder(session: Session, reminder_id: int) -> Reminder | None:
    return session.exec(
        select(Reminder)
        .where(Reminder.id == reminder_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _lock_incident(session: Session, incident_id: int) -> Incident | None:
    try:
        return core.lock_incident(session, incident_id)
    except NotFound:
        return None


# --------------------------------------------------------------------------------------------
# Keeping an incident's reminders in sync with its timeline


def _phase(policy: Policy, incident: Incident) -> str:
    status = policy.find_status(incident.status)
    return status.phase if status is not None else "active"


def _commander(session: Session, incident_id: int) -> str | None:
    return core.current_roles(session, incident_id).get(COMMANDER)


def _latest_update_at(session: Session, incident_id: int) -> datetime | None:
    value = session.exec(
        select(func.max(TimelineEvent.occurred_at)).where(
            TimelineEvent.incident_id == incident_id,
            TimelineEvent.kind == EventKind.STATUS_UPDATE,
        )
    ).one()
    return as_utc(value) if isinstance(value, datetime) else None


def on_timeline_event(
    session: Session, policy: Policy, incident: Incident, event: TimelineEvent
) -> None:
    """Keep the incident's reminders in step with what just happened (called by the core for
    every timeline event, inside the same transaction)."""
    if incident.id is None:
        return
    now = as_utc(event.recorded_at)
    kind = event.kind
    if kind == EventKind.DECLARED:
        _arm_ack(session, policy, incident, now=now, restart_from=incident.declared_at)
        _arm_update(session, policy, incident, now=now, since=incident.declared_at, restart=True)
    elif kind == EventKind.ACKNOWLEDGED or (
        kind == EventKind.ROLE_ASSIGNED and event.data.get("role") == COMMANDER
    ):
        cancel_reminders(session, [ack_key(incident.id)], now=now)
    elif kind == EventKind.STATUS_UPDATE:
        _arm_update(session, policy, incident, now=now, since=now, restart=False)
    elif kind == EventKind.SEVERITY_CHANGED:
        _arm_ack(session, policy, incident, now=now, restart_from=None)
        _arm_update(session, policy, incident, now=now, since=None, restart=False)
    elif kind == EventKind.STATUS_CHANGED:
        _on_status_changed(session, policy, incident, event, now=now)
    elif kind == EventKind.RUNBOOK_STEP:
        _on_runbook_step(session, policy, incident, event, now=now)


def _on_status_changed(
    session: Session, policy: Policy, incident: Incident, event: TimelineEvent, *, now: datetime
) -> None:
    assert incident.id is not None
    phase = event.data.get("phase") or _phase(policy, incident)
    if phase == "resolved":
        _cancel_incident_kinds(session, incident.id, [ACK, UPDATE, STEP], now=now)
        after = policy.reminders.close_after_resolve
        if after is not None:
            resolved_at = as_utc(event.occurred_at)
            schedule_reminder(
                session,
                key=close_key(incident.id),
                kind=CLOSE,
                incident_id=incident.id,
                due_at=next_working_time(policy, resolved_at + after),
                data={"resolved_at": _iso(resolved_at)},
                now=now,
            )
    elif phase == "closed":
        _cancel_incident_kinds(session, incident.id, [ACK, UPDATE, STEP, CLOSE], now=now)
    elif event.data.get("reopened"):
        cancel_reminders(session, [close_key(incident.id)], now=now)
        at = as_utc(event.occurred_at)
        _arm_ack(session, policy, incident, now=now, restart_from=at)
        _arm_update(session, policy, incident, now=now, since=at, restart=True, origin="reopened")


def _arm_ack(
    session: Session,
    policy: Policy,
    incident: Incident,
    *,
    now: datetime,
    restart_from: datetime | None,
) -> None:
    """Escalate when nobody acknowledges. ``restart_from`` starts a fresh first tier from that
    time (declare, reopen); without it the current tier is re-timed for the new severity."""
    assert incident.id is not None
    key = ack_key(incident.id)
    sev = policy.find_severity(incident.severity)
    if (
        sev is None
        or sev.ack_within is None
        or incident.acknowledged_at is not None
        or _phase(policy, incident) != "active"
        or _commander(session, incident.id) is not None
    ):
        cancel_reminders(session, [key], now=now)
        return
    row = get_reminder(session, key)
    if restart_from is not None or row is None or row.state == CANCELLED:
        base = restart_from or incident.declared_at
        due = max(base + sev.ack_within, now)
        schedule_reminder(
            session,
            key=key,
            kind=ACK,
            incident_id=incident.id,
            due_at=due,
            data={"tier": 1, "since": _iso(base)},
            now=now,
        )
        return
    if row.state in (SENT, STOPPED, CLAIMED):
        # CLAIMED: a worker is escalating right now; it re-checks the timing under the new
        # severity before sending and schedules the next tier from it when done.
        return
    tier = int(row.data.get("tier", 1))
    base = _parse_time(row.data.get("since")) or incident.declared_at
    if tier == 1:
        due = max(base + sev.ack_within, now)
    elif sev.escalate_again_after is None:
        cancel_reminders(session, [key], now=now)
        return
    else:
        due = max((row.last_sent_at or now) + sev.escalate_again_after, now)
    data = {k: v for k, v in row.data.items() if k != "delivered"}
    schedule_reminder(
        session, key=key, kind=ACK, incident_id=incident.id, due_at=due, data=data, now=now
    )


def _arm_update(
    session: Session,
    policy: Policy,
    incident: Incident,
    *,
    now: datetime,
    since: datetime | None,
    restart: bool,
    origin: str = "declared",
) -> None:
    """Nudge for a status update ``update_every`` after the last one.

    ``since`` resets the cadence (an update was posted, or the incident was declared or
    reopened); ``None`` keeps the reference and applies the severity's new cadence, firing at
    once if the incident is already overdue under it. A stopped reminder stays stopped unless
    ``restart`` (declare, reopen)."""
    assert incident.id is not None
    key = update_key(incident.id)
    sev = policy.find_severity(incident.severity)
    every = sev.update_every if sev is not None else None
    if every is None or _phase(policy, incident) != "active":
        cancel_reminders(session, [key], now=now)
        return
    row = get_reminder(session, key)
    if row is not None and row.state == STOPPED and not restart:
        return
    if since is None and row is not None and row.state == CLAIMED:
        # A nudge is being sent right now; when done, the worker schedules the next one with
        # the cadence of the severity current at that moment.
        return
    if since is not None:
        reference = since
        due = since + every
    else:
        origin = str(row.data.get("from", origin)) if row is not None else origin
        reference = (
            (_parse_time(row.data.get("since")) if row is not None else None)
            or _latest_update_at(session, incident.id)
            or incident.declared_at
        )
        last_nudge = row.last_sent_at if row is not None else None
        due = max(max(reference, last_nudge or reference) + every, now)
    schedule_reminder(
        session,
        key=key,
        kind=UPDATE,
        incident_id=incident.id,
        due_at=due,
        data={"since": _iso(reference), "from": origin},
        now=now,
    )


def _as_index(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _on_runbook_step(
    session: Session, policy: Policy, incident: Incident, event: TimelineEvent, *, now: datetime
) -> None:
    data = event.data
    run_id, step = _as_index(data.get("run_id")), _as_index(data.get("step"))
    if run_id is None or step is None:
        log.warning("runbook step event %s without run_id/step; no reminder kept", event.id)
        return
    key = step_key(run_id, step)
    stale_after = policy.reminders.step_stale_after
    if (
        data.get("state") != "in_progress"
        or stale_after is None
        or _phase(policy, incident) != "active"
    ):
        cancel_reminders(session, [key], now=now)
        return
    started = as_utc(event.occurred_at)
    schedule_reminder(
        session,
        key=key,
        kind=STEP,
        incident_id=incident.id,
        due_at=started + stale_after,
        data={
            "run_id": run_id,
            "runbook_id": str(data.get("runbook_id") or ""),
            "step": step,
            "step_title": str(data.get("step_title") or ""),
            "assignee": data.get("assignee") if isinstance(data.get("assignee"), str) else None,
            "since": _iso(started),
        },
        now=now,
    )


# --------------------------------------------------------------------------------------------
# Recurring reminders (crons): rows, seeded at start-up


def _cron_settings(policy: Policy) -> dict[str, tuple[str | None, bool]]:
    """kind -> (cron expression, whether it has somewhere to go)."""
    rules = policy.reminders
    digest_channel = rules.digest_channel or policy.slack.announcements_channel
    return {
        ACTIONS: (rules.action_items_cron, True),
        DIGEST: (rules.digest_cron, digest_channel is not None),
    }


def seed_recurring_reminders(session: Session, policy: Policy, *, now: datetime) -> None:
    """Create or update the ``actions`` and ``digest`` rows from the policy. Idempotent, and
    safe with several replicas starting at once.

    An existing row with the same cron keeps its due time, so a digest missed while every
    replica was down is still sent (once) after start-up. A changed cron or timezone re-times
    the row; a removed cron (or a digest with no channel) cancels it."""
    tz = policy.timezone
    for kind, (expr, has_target) in _cron_settings(policy).items():
        if expr is None or not has_target:
            cancel_reminders(session, [kind], now=now)
            continue
        data = {"cron": expr, "timezone": tz}
        due = next_cron_time(expr, policy.zone, now)
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.exec(
            insert(Reminder)
            .values(
                dedupe_key=kind,
                kind=kind,
                incident_id=None,
                due_at=due,
                state=PENDING,
                data=data,
                attempts=0,
                sent_count=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        row = session.exec(
            select(Reminder)
            .where(Reminder.dedupe_key == kind)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        same = row.data.get("cron") == expr and row.data.get("timezone") == tz
        if same and row.state in LIVE_STATES:
            continue
        row.due_at = due
        row.state = PENDING
        row.data = data
        row.attempts = 0
        row.last_error = None
        row.claimed_by = None
        row.claimed_until = None
        row.updated_at = now
        session.add(row)
    session.flush()


# --------------------------------------------------------------------------------------------
# Claiming


@dataclass(frozen=True)
class ClaimedReminder:
    id: int
    kind: str
    incident_id: int | None
    due_at: datetime


def claim_due_reminders(
    session: Session,
    worker_id: str,
    *,
    now: datetime,
    lease: timedelta = DEFAULT_LEASE,
    limit: int = DEFAULT_BATCH,
) -> list[ClaimedReminder]:
    """Atomically take up to ``limit`` due reminders for ``worker_id``, oldest due first.

    Due means pending with ``due_at <= now``, or claimed by a worker whose lease has run out
    (it died or hung). Commit the transaction before sending anything."""
    due = or_(
        and_(col(Reminder.state) == PENDING, col(Reminder.due_at) <= now),
        and_(col(Reminder.state) == CLAIMED, col(Reminder.claimed_until) <= now),
    )
    pick = select(Reminder.id).where(due).order_by(col(Reminder.due_at)).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    rows = session.exec(
        update(Reminder)
        .where(col(Reminder.id).in_(pick.scalar_subquery()))
        .values(state=CLAIMED, claimed_by=worker_id, claimed_until=now + lease, updated_at=now)
        .returning(
            col(Reminder.id), col(Reminder.kind), col(Reminder.incident_id), col(Reminder.due_at)
        )
        .execution_options(synchronize_session=False)
    ).all()
    claimed = [ClaimedReminder(r[0], r[1], r[2], as_utc(r[3])) for r in rows]
    return sorted(claimed, key=lambda c: (c.due_at, c.id))


def release_claims(session: Session, worker_id: str, *, now: datetime) -> int:
    """Give back every claim ``worker_id`` holds (at shutdown), so another replica can take them
    at once instead of waiting for the lease to run out."""
    result = session.exec(
        update(Reminder)
        .where(col(Reminder.claimed_by) == worker_id, col(Reminder.state) == CLAIMED)
        .values(state=PENDING, claimed_by=None, claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


# --------------------------------------------------------------------------------------------
# What a due reminder turns into


@dataclass(frozen=True)
class _Outgoing:
    ref: str
    """Names the message within one occurrence (``incident``, ``escalation``, ``incident:12``),
    so a retry after a partial failure sends only the missing ones."""
    channel: str
    message: ReminderMessage


@dataclass(frozen=True)
class _Entry:
    """A timeline event to record once any of ``refs`` was delivered."""

    incident_id: int
    kind: str
    text: str
    data: dict[str, Any]
    refs: frozenset[str]


_Next = tuple[datetime | None, dict[str, Any] | None]
"""When a reminder is due next (``None``: done) and its data from then on."""


def _fixed(due: datetime | None, data: dict[str, Any] | None = None) -> Callable[..., _Next]:
    return lambda _incident, _now: (due, data)


@dataclass(frozen=True)
class _Send:
    seq: int
    messages: list[_Outgoing]
    entries: list[_Entry]
    delivered: frozenset[str]
    after: Callable[[Incident | None, datetime], _Next]
    """The next occurrence, computed when the send is finished from the incident as it is then
    (its severity may have changed while the message was on its way)."""


@dataclass(frozen=True)
class _Settle:
    """No message: cancel the row, or re-time it (``due``) without sending."""

    reason: str
    due: datetime | None = None
    data: dict[str, Any] | None = None
    retry: bool = False
    """A deferral (e.g. no channel yet): keep the error on the row for operators to see."""


_Outcome = _Send | _Settle


@dataclass
class _Context:
    session: Session
    policy: Policy
    row: Reminder
    incident: Incident | None
    now: datetime
    groups: Mapping[str, str]

    @property
    def seq(self) -> int:
        return self.row.sent_count + 1

    def delivered(self) -> frozenset[str]:
        record = self.row.data.get("delivered")
        if isinstance(record, dict) and record.get("seq") == self.seq:
            return frozenset(str(r) for r in record.get("refs", []))
        return frozenset()

    def data(self, **changes: Any) -> dict[str, Any]:
        kept = {k: v for k, v in self.row.data.items() if k not in ("delivered", "snoozed_until")}
        return {**kept, **changes}


def _no_channel(incident: Incident, now: datetime) -> _Settle:
    return _Settle(f"{incident.ref} has no Slack channel yet", due=now + CHANNEL_RETRY, retry=True)


def _evaluate_ack(ctx: _Context) -> _Outcome:
    incident, session, policy, now = ctx.incident, ctx.session, ctx.policy, ctx.now
    assert incident is not None and incident.id is not None
    sev = policy.find_severity(incident.severity)
    if _phase(policy, incident) != "active":
        return _Settle(f"{incident.ref} is {incident.status}")
    if incident.acknowledged_at is not None or _commander(session, incident.id) is not None:
        return _Settle(f"{incident.ref} was acknowledged")
    if sev is None or sev.ack_within is None:
        return _Settle(f"{incident.severity} has no acknowledgement deadline")
    rules = policy.reminders
    tier = int(ctx.row.data.get("tier", 1))
    since = _parse_time(ctx.row.data.get("since")) or incident.declared_at
    if tier == 1:
        due = since + sev.ack_within
    elif sev.escalate_again_after is not None:
        due = (ctx.row.last_sent_at or since) + sev.escalate_again_after
    else:
        return _Settle(f"{incident.severity} has no second escalation tier")
    if due > now:  # the severity changed since this was scheduled
        return _Settle("not due under the current severity", due=due, data=ctx.data())
    if not incident.slack_channel_id:
        return _no_channel(incident, now)
    targets = rules.escalate_to if tier == 1 else (rules.escalate_again_to or rules.escalate_to)
    mentions = resolve_mentions(targets, ctx.groups)
    waited = core.humanize_duration(now - since)

    def message(in_incident_channel: bool) -> ReminderMessage:
        assert incident is not None
        return blocks.escalation(
            incident_ref=incident.ref,
            title=incident.title,
            severity=incident.severity,
            channel_id=incident.slack_channel_id,
            private=incident.private,
            tier=tier,
            mentions=mentions,
            waited=waited,
            in_incident_channel=in_incident_channel,
        )

    messages = [_Outgoing("incident", incident.slack_channel_id, message(True))]
    if rules.escalation_channel and rules.escalation_channel != incident.slack_channel_id:
        messages.append(_Outgoing("escalation", rules.escalation_channel, message(False)))
    who = ", ".join(_plain_targets(targets)) or "the incident channel"
    text = f"Escalated{' again' if tier > 1 else ''} to {who}: not acknowledged after {waited}" + (
        f" (also posted in <#{rules.escalation_channel}>)" if len(messages) > 1 else ""
    )
    return _Send(
        seq=ctx.seq,
        messages=messages,
        entries=[
            _Entry(
                incident.id,
                EventKind.ESCALATED,
                text,
                {"reminder": ACK, "tier": tier, "targets": list(targets)},
                frozenset(m.ref for m in messages),
            )
        ],
        delivered=ctx.delivered(),
        after=lambda current, sent_at: _after_escalation(policy, current, tier, sent_at, ctx),
    )


def _after_escalation(
    policy: Policy, incident: Incident | None, tier: int, sent_at: datetime, ctx: _Context
) -> _Next:
    sev = policy.find_severity(incident.severity) if incident is not None else None
    again = sev.escalate_again_after if sev is not None and tier == 1 else None
    if again is None:
        return None, None
    return sent_at + again, ctx.data(tier=2)


def _plain_targets(targets: Iterable[str]) -> list[str]:
    """Targets for the timeline: people as mentions, groups by name (no @-everyone pings when
    the timeline is shown in Slack later)."""
    return [f"<@{t}>" if t.startswith(("U", "W")) else t for t in targets]


def _evaluate_update(ctx: _Context) -> _Outcome:
    incident, session, policy, now = ctx.incident, ctx.session, ctx.policy, ctx.now
    assert incident is not None and incident.id is not None
    sev = policy.find_severity(incident.severity)
    every = sev.update_every if sev is not None else None
    if _phase(policy, incident) != "active":
        return _Settle(f"{incident.ref} is {incident.status}")
    if every is None:
        return _Settle(f"{incident.severity} has no update cadence")
    last_update = _latest_update_at(session, incident.id)
    since = _parse_time(ctx.row.data.get("since")) or incident.declared_at
    reference = max(since, last_update) if last_update else since
    if reference + every > now:
        # An update was posted after this was scheduled: no nudge, count from the update.
        return _Settle("a status update was posted", due=reference + every, data=ctx.data())
    if not incident.slack_channel_id:
        return _no_channel(incident, now)
    commander = _commander(session, incident.id)
    mention = f"<@{commander}>" if commander else "<!channel>"
    who = f"<@{commander}>" if commander else "the channel"
    quiet = core.humanize_duration(now - reference)
    assert ctx.row.id is not None
    message = blocks.update_nudge(
        reminder_id=ctx.row.id,
        incident_id=incident.id,
        incident_ref=incident.ref,
        title=incident.title,
        severity=incident.severity,
        mention=mention,
        quiet_for=quiet,
        every=format_duration(every),
        had_update=last_update is not None and last_update >= since,
        origin=str(ctx.row.data.get("from") or "declared"),
        snooze_choices=policy.reminders.snooze_choices,
    )
    return _Send(
        seq=ctx.seq,
        messages=[_Outgoing("incident", incident.slack_channel_id, message)],
        entries=[
            _Entry(
                incident.id,
                EventKind.REMINDER_SENT,
                f"Reminded {who} to post a status update (none for {quiet})",
                {"reminder": UPDATE},
                frozenset({"incident"}),
            )
        ],
        delivered=ctx.delivered(),
        after=lambda current, sent_at: _after_nudge(policy, current, sent_at, ctx),
    )


def _after_nudge(
    policy: Policy, incident: Incident | None, sent_at: datetime, ctx: _Context
) -> _Next:
    sev = policy.find_severity(incident.severity) if incident is not None else None
    every = sev.update_every if sev is not None else None
    if every is None:
        return None, None
    return sent_at + every, ctx.data()


def _latest_step(
    session: Session, incident_id: int, run_id: int, step: int
) -> dict[str, Any] | None:
    events = session.exec(
        select(TimelineEvent)
        .where(
            TimelineEvent.incident_id == incident_id,
            TimelineEvent.kind == EventKind.RUNBOOK_STEP,
        )
        .order_by(col(TimelineEvent.id).desc())
    ).all()
    for event in events:
        data = event.data
        if _as_index(data.get("run_id")) == run_id and _as_index(data.get("step")) == step:
            return dict(data)
    return None


def _evaluate_step(ctx: _Context) -> _Outcome:
    incident, session, policy, now = ctx.incident, ctx.session, ctx.policy, ctx.now
    assert incident is not None and incident.id is not None
    data = ctx.row.data
    run_id, step = _as_index(data.get("run_id")), _as_index(data.get("step"))
    if _phase(policy, incident) != "active":
        return _Settle(f"{incident.ref} is {incident.status}")
    latest = (
        _latest_step(session, incident.id, run_id, step)
        if run_id is not None and step is not None
        else None
    )
    if latest is None or latest.get("state") != "in_progress":
        return _Settle("the step is no longer in progress")
    if not incident.slack_channel_id:
        return _no_channel(incident, now)
    assignee = latest.get("assignee") or data.get("assignee")
    commander = _commander(session, incident.id)
    person = assignee if isinstance(assignee, str) and assignee else commander
    mention = f"<@{person}>" if person else "<!channel>"
    who = f"<@{person}>" if person else "the channel"
    run = session.get(RunbookRun, run_id)
    runbook = run.title if run is not None else str(data.get("runbook_id") or "runbook")
    since = _parse_time(data.get("since")) or ctx.row.created_at
    in_progress = core.humanize_duration(now - since)
    assert ctx.row.id is not None and step is not None
    message = blocks.stale_step(
        reminder_id=ctx.row.id,
        incident_ref=incident.ref,
        runbook_title=runbook,
        step_number=step + 1,
        step_title=str(latest.get("step_title") or data.get("step_title") or ""),
        mention=mention,
        in_progress_for=in_progress,
        snooze_choices=policy.reminders.snooze_choices,
    )
    return _Send(
        seq=ctx.seq,
        messages=[_Outgoing("incident", incident.slack_channel_id, message)],
        entries=[
            _Entry(
                incident.id,
                EventKind.REMINDER_SENT,
                f"Reminded {who}: runbook step {step + 1} in progress for {in_progress}",
                {"reminder": STEP, "run_id": run_id, "step": step},
                frozenset({"incident"}),
            )
        ],
        delivered=ctx.delivered(),
        after=_fixed(None),
    )


def _evaluate_close(ctx: _Context) -> _Outcome:
    incident, session, policy, now = ctx.incident, ctx.session, ctx.policy, ctx.now
    assert incident is not None and incident.id is not None
    if _phase(policy, incident) != "resolved":
        return _Settle(f"{incident.ref} is {incident.status}")
    if not incident.slack_channel_id:
        return _no_channel(incident, now)
    commander = _commander(session, incident.id) or incident.reporter_id
    mention = f"<@{commander}>"
    resolved_at = incident.resolved_at or _parse_time(ctx.row.data.get("resolved_at")) or now
    resolved_for = core.humanize_duration(now - resolved_at)
    assert ctx.row.id is not None
    message = blocks.close_reminder(
        reminder_id=ctx.row.id,
        incident_ref=incident.ref,
        title=incident.title,
        mention=mention,
        resolved_for=resolved_for,
        snooze_choices=policy.reminders.snooze_choices,
    )
    return _Send(
        seq=ctx.seq,
        messages=[_Outgoing("incident", incident.slack_channel_id, message)],
        entries=[
            _Entry(
                incident.id,
                EventKind.REMINDER_SENT,
                f"Reminded {mention} to close {incident.ref} and finish the postmortem",
                {"reminder": CLOSE},
                frozenset({"incident"}),
            )
        ],
        delivered=ctx.delivered(),
        after=_fixed(None),
    )


def _evaluate_actions(ctx: _Context) -> _Outcome:
    session, policy, now = ctx.session, ctx.policy, ctx.now
    expr = policy.reminders.action_items_cron
    if expr is None:
        return _Settle("reminders.action_items_cron is unset")
    today = now.astimezone(policy.zone).date()
    next_due = next_cron_time(expr, policy.zone, now)
    next_data = {"cron": expr, "timezone": policy.timezone}
    items = session.exec(
        select(ActionItem)
        .where(
            ActionItem.status == "open",
            col(ActionItem.due_on).is_not(None),
            col(ActionItem.due_on) < today,
        )
        .order_by(col(ActionItem.incident_id), col(ActionItem.number))
    ).all()
    by_incident: dict[int, list[ActionItem]] = defaultdict(list)
    for item in items:
        by_incident[item.incident_id].append(item)
    messages: list[_Outgoing] = []
    entries: list[_Entry] = []
    for incident_id, owned in sorted(by_incident.items()):
        incident = session.get(Incident, incident_id)
        if incident is None or not incident.slack_channel_id:
            continue
        ref = f"incident:{incident_id}"
        overdue = [
            blocks.OverdueItem(i.number, i.text, i.owner_id, i.due_on)
            for i in owned
            if i.due_on is not None
        ]
        messages.append(
            _Outgoing(
                ref,
                incident.slack_channel_id,
                blocks.overdue_action_items(incident_ref=incident.ref, items=overdue, today=today),
            )
        )
        numbers = ", ".join(str(i.number) for i in overdue)
        entries.append(
            _Entry(
                incident_id,
                EventKind.REMINDER_SENT,
                f"Reminded owners of overdue action items: {numbers}",
                {"reminder": ACTIONS, "action_items": [i.number for i in overdue]},
                frozenset({ref}),
            )
        )
    if not messages:
        return _Settle("no overdue action items", due=next_due, data=next_data)
    return _Send(ctx.seq, messages, entries, ctx.delivered(), _fixed(next_due, next_data))


def _evaluate_digest(ctx: _Context) -> _Outcome:
    session, policy, now = ctx.session, ctx.policy, ctx.now
    expr = policy.reminders.digest_cron
    channel = policy.reminders.digest_channel or policy.slack.announcements_channel
    if expr is None or channel is None:
        return _Settle("no digest cron or channel")
    open_incidents = [
        i
        for i in core.list_incidents(session, policy, phases=("active", "resolved"), limit=1000)
        if not i.private
    ]
    ids = [i.id for i in open_incidents if i.id is not None]
    updates: dict[int | None, datetime] = dict(
        session.exec(
            select(TimelineEvent.incident_id, func.max(TimelineEvent.occurred_at))
            .where(
                col(TimelineEvent.incident_id).in_(ids),
                TimelineEvent.kind == EventKind.STATUS_UPDATE,
            )
            .group_by(col(TimelineEvent.incident_id))
        ).all()
    )
    commanded = set(
        session.exec(
            select(RoleAssignment.incident_id).where(
                col(RoleAssignment.incident_id).in_(ids),
                RoleAssignment.role == COMMANDER,
                col(RoleAssignment.unassigned_at).is_(None),
            )
        ).all()
    )
    order = {s.key: n for n, s in enumerate(policy.severities)}
    open_incidents.sort(key=lambda i: (order.get(i.severity, len(order)), -i.number))
    entries = []
    for incident in open_incidents:
        status = policy.find_status(incident.status)
        last = updates.get(incident.id)
        entries.append(
            blocks.DigestEntry(
                ref=incident.ref,
                title=incident.title,
                severity=incident.severity,
                status_name=(status.name or status.key) if status else incident.status,
                channel_id=incident.slack_channel_id,
                open_for=core.humanize_duration(now - incident.declared_at),
                last_update=core.humanize_duration(now - as_utc(last)) if last else None,
                commander=incident.id in commanded,
            )
        )
    message = blocks.digest(entries=entries, day=now.astimezone(policy.zone).date())
    return _Send(
        seq=ctx.seq,
        messages=[_Outgoing("digest", channel, message)],
        entries=[],
        delivered=ctx.delivered(),
        after=_fixed(
            next_cron_time(expr, policy.zone, now), {"cron": expr, "timezone": policy.timezone}
        ),
    )


_EVALUATORS: dict[str, Callable[[_Context], _Outcome]] = {
    ACK: _evaluate_ack,
    UPDATE: _evaluate_update,
    STEP: _evaluate_step,
    CLOSE: _evaluate_close,
    ACTIONS: _evaluate_actions,
    DIGEST: _evaluate_digest,
}


def _retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    delay = min(RETRY_BASE * (1 << min(max(attempts - 1, 0), 16)), RETRY_MAX)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


# --------------------------------------------------------------------------------------------
# The worker: claim, prepare, send, finish


@dataclass
class TickReport:
    """What one tick did (for logs, metrics and the benchmark)."""

    claimed: int = 0
    sent: int = 0
    settled: int = 0
    """Cancelled or re-timed without a message (condition met meanwhile, or nothing to say)."""
    deferred: int = 0
    failed: int = 0
    lost: int = 0
    """Claims another actor took back (a snooze, a reschedule) before this worker sent them."""
    outcomes: dict[int, str] = field(default_factory=dict)
    sent_kinds: list[str] = field(default_factory=list)
    max_lateness: float | None = None
    """Seconds between due time and sending, for the latest-sent reminder of the tick."""


@dataclass(frozen=True)
class _SendResult:
    delivered: frozenset[str]
    complete: bool
    failed: bool


class ReminderWorker:
    """Sends due reminders for one process. Safe to run in several replicas at once."""

    def __init__(
        self,
        database: Database,
        policy: Policy,
        notifier: Notifier,
        *,
        worker_id: str,
        lease: timedelta = DEFAULT_LEASE,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self.database = database
        self.policy = policy
        self.notifier = notifier
        self.worker_id = worker_id[:128]
        self.lease = lease
        self.batch_size = batch_size
        self._groups: Mapping[str, str] = {}
        self._groups_at: datetime | None = None

    # One tick ---------------------------------------------------------------------------------

    def tick(self, *, should_stop: Callable[[], bool] | None = None) -> TickReport:
        """Claim what is due and send it. Never raises for a single bad reminder."""
        with self.database.transaction() as session:
            claimed = claim_due_reminders(
                session,
                self.worker_id,
                now=utcnow(),
                lease=self.lease,
                limit=self.batch_size,
            )
        report = TickReport(claimed=len(claimed))
        for item in claimed:
            if should_stop is not None and should_stop():
                break  # the remaining claims are released by the caller at shutdown
            outcome = self.process(item)
            report.outcomes[item.id] = outcome
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome == "sent":
                report.sent_kinds.append(item.kind)
                late = max((utcnow() - item.due_at).total_seconds(), 0.0)
                report.max_lateness = max(report.max_lateness or 0.0, late)
        return report

    def release(self) -> int:
        """Release every claim this worker holds (at shutdown)."""
        with self.database.transaction() as session:
            return release_claims(session, self.worker_id, now=utcnow())

    def process(self, item: ClaimedReminder) -> str:
        """Prepare, send and finish one claimed reminder; returns the outcome name."""
        try:
            groups = self._user_groups() if item.kind == ACK else {}
            with self.database.transaction() as session:
                prepared = self._prepare(session, item, groups)
            if isinstance(prepared, str):
                return prepared
            result = self._send(item, prepared)
            if result.failed:
                # Released with a backoff; the retry sends what is missing and records the
                # timeline event then.
                return "failed"
            if result.delivered:
                with self.database.transaction() as session:
                    self._finish(session, item, prepared, result.delivered)
            return "sent" if result.complete else "lost"
        except Exception as exc:  # a bug or a database error must not stop the other reminders
            log.exception("reminder %s (%s) failed", item.id, item.kind)
            self._release_quietly(item, f"{type(exc).__name__}: {exc}")
            return "failed"

    # Steps ------------------------------------------------------------------------------------

    def _prepare(
        self, session: Session, item: ClaimedReminder, groups: Mapping[str, str]
    ) -> _Send | str:
        now = utcnow()
        incident = None
        if item.incident_id is not None:
            incident = _lock_incident(session, item.incident_id)  # incident first, like the core
        row = _lock_reminder(session, item.id)
        if row is None or row.state != CLAIMED or row.claimed_by != self.worker_id:
            return "lost"
        row.claimed_until = now + self.lease  # a fresh lease for the send that follows
        evaluate = _EVALUATORS.get(row.kind)
        if evaluate is None or (row.incident_id is not None and incident is None):
            outcome: _Outcome = _Settle(f"unknown reminder kind {row.kind!r}")
        else:
            ctx = _Context(session, self.policy, row, incident, now, groups)
            outcome = evaluate(ctx)
        if isinstance(outcome, _Send):
            session.add(row)
            return outcome
        self._settle(row, outcome, now)
        session.add(row)
        log.info("reminder %s (%s) not sent: %s", row.dedupe_key, row.kind, outcome.reason)
        return "deferred" if outcome.retry else "settled"

    @staticmethod
    def _settle(row: Reminder, outcome: _Settle, now: datetime) -> None:
        if outcome.due is None:
            row.state = CANCELLED
        else:
            row.state = PENDING
            row.due_at = outcome.due
            if outcome.data is not None:
                row.data = outcome.data
        row.last_error = outcome.reason if outcome.retry else None
        row.claimed_by = None
        row.claimed_until = None
        row.updated_at = now

    def _send(self, item: ClaimedReminder, plan: _Send) -> _SendResult:
        """Post the messages not yet delivered in this occurrence."""
        delivered = set(plan.delivered)
        for outgoing in plan.messages:
            if outgoing.ref in delivered:
                continue
            try:
                self.notifier.post_message(
                    outgoing.channel, outgoing.message.text, outgoing.message.blocks
                )
            except NotifierError as exc:
                log.warning("reminder %s: sending to %s failed: %s", item.id, outgoing.channel, exc)
                with self.database.transaction() as session:
                    self._release_failed(session, item, plan, delivered, str(exc), exc.retry_after)
                return _SendResult(frozenset(delivered), complete=False, failed=True)
            delivered.add(outgoing.ref)
            if len(plan.messages) > 1:
                with self.database.transaction() as session:
                    if not self._note_delivery(session, item, plan, delivered):
                        # Taken back (snoozed, re-timed): do not send the rest of it.
                        return _SendResult(frozenset(delivered), complete=False, failed=False)
        return _SendResult(frozenset(delivered), complete=True, failed=False)

    def _note_delivery(
        self, session: Session, item: ClaimedReminder, plan: _Send, delivered: set[str]
    ) -> bool:
        row = _lock_reminder(session, item.id)
        if row is None or row.state != CLAIMED or row.claimed_by != self.worker_id:
            return False
        row.data = {**row.data, "delivered": {"seq": plan.seq, "refs": sorted(delivered)}}
        row.claimed_until = utcnow() + self.lease
        session.add(row)
        return True

    def _release_failed(
        self,
        session: Session,
        item: ClaimedReminder,
        plan: _Send,
        delivered: set[str],
        error: str,
        retry_after: float | None,
    ) -> None:
        now = utcnow()
        row = _lock_reminder(session, item.id)
        if row is None or row.state != CLAIMED or row.claimed_by != self.worker_id:
            return
        row.attempts += 1
        row.state = PENDING
        row.due_at = now + _retry_delay(row.attempts, retry_after)
        row.last_error = error[:2000]
        row.claimed_by = None
        row.claimed_until = None
        row.updated_at = now
        if delivered:
            row.data = {**row.data, "delivered": {"seq": plan.seq, "refs": sorted(delivered)}}
        session.add(row)

    def _finish(
        self, session: Session, item: ClaimedReminder, plan: _Send, delivered: frozenset[str]
    ) -> None:
        now = utcnow()
        incident = None
        for incident_id in sorted({e.incident_id for e in plan.entries} | {item.incident_id or 0}):
            locked = _lock_incident(session, incident_id) if incident_id else None
            if incident_id == item.incident_id:
                incident = locked
        row = _lock_reminder(session, item.id)
        if row is None:
            return
        sent_to = {m.ref: m.channel for m in plan.messages}
        for entry in plan.entries:
            refs = entry.refs & delivered
            if not refs:
                continue
            core.record_timeline_event(
                session,
                self.policy,
                entry.incident_id,
                kind=entry.kind,
                text=entry.text,
                data={**entry.data, "channels": sorted(sent_to[r] for r in refs)},
                key=f"reminder:{row.id}:{plan.seq}:{entry.incident_id}",
                now=now,
            )
        row.sent_count = max(row.sent_count, plan.seq)
        row.last_sent_at = now
        if row.state == CLAIMED and row.claimed_by == self.worker_id:
            next_due, next_data = plan.after(incident, now)
            if next_due is None:
                row.state = SENT
            else:
                row.state = PENDING
                row.due_at = next_due
            if next_data is not None:
                row.data = next_data
            else:
                row.data = {k: v for k, v in row.data.items() if k != "delivered"}
            row.attempts = 0
            row.last_error = None
            row.claimed_by = None
            row.claimed_until = None
        row.updated_at = now
        session.add(row)
        log.info("reminder %s (%s) sent", row.dedupe_key, row.kind)

    def _release_quietly(self, item: ClaimedReminder, error: str) -> None:
        try:
            with self.database.transaction() as session:
                row = _lock_reminder(session, item.id)
                if row is None or row.state != CLAIMED or row.claimed_by != self.worker_id:
                    return
                now = utcnow()
                row.attempts += 1
                row.state = PENDING
                row.due_at = now + _retry_delay(row.attempts, None)
                row.last_error = error[:2000]
                row.claimed_by = None
                row.claimed_until = None
                row.updated_at = now
                session.add(row)
        except Exception:
            log.exception("could not release reminder %s; its lease will run out", item.id)

    def _user_groups(self) -> Mapping[str, str]:
        rules = self.policy.reminders
        if not any(t.startswith("@") for t in [*rules.escalate_to, *rules.escalate_again_to]):
            return {}
        now = utcnow()
        if self._groups_at is not None and now - self._groups_at < GROUP_CACHE_TTL:
            return self._groups
        try:
            self._groups = dict(self.notifier.user_groups())
            self._groups_at = now
        except NotifierError as exc:
            log.warning("cannot list user groups (%s); escalating with plain handles", exc)
        return self._groups


# --------------------------------------------------------------------------------------------
# Snooze and stop (the buttons on a reminder)


@dataclass(frozen=True)
class ReminderChange:
    reminder: Reminder
    event: TimelineEvent | None
    """The timeline event written, or ``None`` when nothing changed (a repeat)."""

    @property
    def changed(self) -> bool:
        return self.event is not None


def _reminder_for_action(session: Session, reminder_id: int) -> tuple[Reminder, Incident]:
    row = session.get(Reminder, reminder_id)
    if row is None or row.incident_id is None:
        raise NotFound("That reminder no longer exists.")
    incident = _lock_incident(session, row.incident_id)
    locked = _lock_reminder(session, reminder_id)
    if incident is None or locked is None:
        raise NotFound("That reminder no longer exists.")
    return locked, incident


def _seen_key(session: Session, key: str | None) -> bool:
    if key is None:
        return False
    found = session.exec(
        select(TimelineEvent.id).where(TimelineEvent.idempotency_key == key)
    ).first()
    return found is not None


def snooze_reminder(
    session: Session,
    policy: Policy,
    reminder_id: int,
    duration: timedelta,
    *,
    actor: str,
    now: datetime | None = None,
    key: str | None = None,
) -> ReminderChange:
    """Postpone a reminder by one of ``reminders.snooze_choices``; recorded on the timeline.

    A repeated ``key`` (Slack retry, double click) changes nothing the second time."""
    now = as_utc(now) if now is not None else utcnow()
    allowed = blocks.snooze_minutes(policy.reminders.snooze_choices)
    minutes = int(duration.total_seconds() // 60)
    if duration != timedelta(minutes=minutes) or minutes not in allowed:
        choices = ", ".join(format_duration(timedelta(minutes=m)) for m in allowed)
        raise InvalidInput(f"Snooze for one of: {choices}.")
    row, incident = _reminder_for_action(session, reminder_id)
    if _seen_key(session, key):
        return ReminderChange(row, None)
    label = SNOOZABLE.get(row.kind)
    if label is None:
        raise InvalidInput(
            f"{_LABELS.get(row.kind, 'This')} reminders cannot be snoozed: "
            f"acknowledge {incident.ref} or take the Incident Commander role instead."
        )
    wanted_phase = "resolved" if row.kind == CLOSE else "active"
    if row.state == CANCELLED or _phase(policy, incident) != wanted_phase:
        raise InvalidInput(
            f"This reminder is no longer active: {incident.ref} is {incident.status}."
        )
    until = now + duration
    row.state = PENDING
    row.due_at = until
    row.data = {**row.data, "snoozed_until": _iso(until)}
    row.attempts = 0
    row.last_error = None
    row.claimed_by = None
    row.claimed_until = None
    row.updated_at = now
    session.add(row)
    session.flush()
    assert incident.id is not None and row.id is not None
    change = core.record_timeline_event(
        session,
        policy,
        incident.id,
        kind=REMINDER_SNOOZED,
        text=f"{label} reminder snoozed for {format_duration(duration)}",
        actor=actor,
        data={"reminder_id": row.id, "reminder": row.kind, "until": _iso(until)},
        key=key,
        now=now,
    )
    return ReminderChange(row, change.event)


def stop_reminder(
    session: Session,
    policy: Policy,
    reminder_id: int,
    *,
    actor: str,
    now: datetime | None = None,
    key: str | None = None,
) -> ReminderChange:
    """Stop a reminder for good (update nudges: until the incident is reopened); recorded on the
    timeline. Stopping a stopped or finished reminder changes nothing."""
    now = as_utc(now) if now is not None else utcnow()
    row, incident = _reminder_for_action(session, reminder_id)
    if _seen_key(session, key) or row.state in (STOPPED, CANCELLED, SENT):
        return ReminderChange(row, None)
    row.state = STOPPED
    row.claimed_by = None
    row.claimed_until = None
    row.updated_at = now
    session.add(row)
    session.flush()
    assert incident.id is not None and row.id is not None
    change = core.record_timeline_event(
        session,
        policy,
        incident.id,
        kind=REMINDER_STOPPED,
        text=f"{_LABELS.get(row.kind, 'A')} reminder stopped",
        actor=actor,
        data={"reminder_id": row.id, "reminder": row.kind},
        key=key,
        now=now,
    )
    return ReminderChange(row, change.event)
