"""Reminders and escalations: what is due, kept in step with the timeline.

The database is the source of truth for what is due: one ``reminders`` row per reminder, named by
its ``dedupe_key`` (``ack:42``, ``update:42``, ``step:7:3``, ``close:42``, ``actions``,
``digest``). Scheduling is an upsert on that key, so scheduling twice keeps one row.

``on_timeline_event`` is called by the core for every timeline event, in the same transaction,
so a reminder never disagrees with the incident it is about (declared -> armed; acknowledged,
commander named, update posted, resolved -> cancelled or reset; severity changed, reopened or
the policy edited (``retime`` at start-up) -> re-timed).

When a reminder falls due, ``bot.reminders.worker`` claims it (one conditional ``UPDATE``; ``FOR
UPDATE SKIP LOCKED`` on PostgreSQL), re-checks its condition with ``bot.reminders.evaluate``, and
in one transaction records the timeline event, queues what it says as Slack effects (posted once
each by the effect runner, whatever happens to the process) and schedules the next occurrence.
Nothing is sent from a reminder directly: a reminder is one kind of effect's cause, not a second
way to talk to Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.clock import as_utc
from bot.config import COMMANDER, Policy
from bot.cron import next_cron_time
from bot.effects import store as effects_store
from bot.incidents.queries import current_roles
from bot.models import (
    EventKind,
    Incident,
    Reminder,
    RunbookRun,
    RunbookStepState,
    TimelineEvent,
)
from bot.reminders.hours import next_working_time

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


DEFAULT_LEASE = timedelta(seconds=15)
"""How long a claim holds. A worker that dies leaves its claims to be taken after this, so it
is short: evaluating a reminder is one short transaction (what it sends is an effect), and a
replica killed mid-batch must not hold back another incident's escalation for a minute."""
DEFAULT_BATCH = 50
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=15)
CHANNEL_RETRY = timedelta(seconds=30)
"""How soon to look again when the incident's channel has not been created yet."""
GROUP_CACHE_TTL = timedelta(minutes=10)

SNOOZABLE = {UPDATE: "Status-update", STEP: "Runbook step", CLOSE: "Close"}
_LABELS = {**SNOOZABLE, ACK: "Escalation", ACTIONS: "Action items", DIGEST: "Digest"}


def snooze_minutes(choices: Sequence[timedelta]) -> list[int]:
    """The snooze choices as whole minutes, without duplicates, in the policy's order.

    Action ids must be unique within a message, so two choices that round to the same minute
    count become one button; choices under a minute cannot be offered as buttons."""
    seen: list[int] = []
    for choice in choices:
        minutes = int(choice.total_seconds() // 60)
        if minutes >= 1 and minutes not in seen:
            seen.append(minutes)
    return seen


def ack_key(incident_id: int) -> str:
    return f"ack:{incident_id}"


def update_key(incident_id: int) -> str:
    return f"update:{incident_id}"


def step_key(run_id: int, step: int) -> str:
    return f"step:{run_id}:{step}"


def close_key(incident_id: int) -> str:
    return f"close:{incident_id}"


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
    fresh: bool = False,
    keep_overdue: bool = False,
) -> None:
    """Create the reminder ``key`` or re-time it: one row per key, however often it is called.
    ``keep_overdue``: a pending row already due keeps its time when re-timed to "at once" (its
    lateness is measured from it).

    Re-scheduling also takes the row back from a worker that claimed it; that worker notices at
    its next step and leaves the new schedule alone. ``fresh``: a new cycle (a reopen, another
    resolve): nothing of it was sent yet, so the buttons on earlier messages are out of date
    (``actions`` refuses them)."""
    due = as_utc(due_at)
    table = Reminder.__table__  # type: ignore[attr-defined]
    kept = table.c.due_at if keep_overdue and due <= now else None
    values = {
        "dedupe_key": key,
        "kind": kind,
        "incident_id": incident_id,
        "due_at": due,
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
            "due_at": due
            if kept is None
            else case((and_(table.c.state == PENDING, kept <= due), kept), else_=due),
            "state": PENDING,
            "data": dict(data),
            "attempts": 0,
            "last_error": None,
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": now,
            **({"last_sent_at": None} if fresh else {}),
        },
    )
    session.exec(statement)


def _withdraw_posts(session: Session, incident_id: int, where: Any, *, now: datetime) -> None:
    """The messages reminders queued for the incident that have not gone out yet (Slack was
    down, or slow): withdrawn with their reminders, so nobody is paged after someone
    acknowledged, nor nudged for an update after the resolve."""
    ids = session.exec(
        select(Reminder.id).where(col(Reminder.incident_id) == incident_id, where)
    ).all()
    effects_store.withdraw(session, incident_id, [f"reminder:{i}:" for i in ids], now=now)


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
    _withdraw_posts(session, incident_id, col(Reminder.kind).in_(kinds), now=now)
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


# --------------------------------------------------------------------------------------------
# Keeping an incident's reminders in sync with its timeline


def _phase(policy: Policy, incident: Incident) -> str:
    return policy.phase_of(incident.status)


def _commander(session: Session, incident_id: int) -> str | None:
    return current_roles(session, incident_id).get(COMMANDER)


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
        # Written with the incident's own row: it has no roles yet, so nobody commands it.
        _arm_ack(session, policy, incident, now=now, restart_from=incident.declared_at, new=True)
        _arm_update(session, policy, incident, now=now, since=incident.declared_at, restart=True)
    elif kind == EventKind.ACKNOWLEDGED or (
        kind == EventKind.ROLE_ASSIGNED and event.data.get("role") == COMMANDER
    ):
        _cancel_incident_kinds(session, incident.id, [ACK], now=now)
    elif kind == EventKind.STATUS_UPDATE:
        _arm_update(session, policy, incident, now=now, since=now, restart=False)
    elif kind == EventKind.SEVERITY_CHANGED:
        retime(session, policy, incident, now=now)
    elif kind == EventKind.STATUS_CHANGED:
        _on_status_changed(session, policy, incident, event, now=now)
    elif kind == EventKind.RUNBOOK_STEP:
        _on_runbook_step(session, policy, incident, event, now=now)


def retime(
    session: Session, policy: Policy, incident: Incident, *, now: datetime, start_up: bool = False
) -> None:
    """The ack and update reminders timed by the current rules: after a severity change, and at
    ``start_up`` for a policy edited meanwhile (what fell due while down keeps its due time)."""
    _arm_ack(session, policy, incident, now=now, restart_from=None, keep_overdue=start_up)
    _arm_update(
        session, policy, incident, now=now, since=None, restart=False, keep_overdue=start_up
    )


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
                fresh=True,
            )
    elif phase == "closed":
        _cancel_incident_kinds(session, incident.id, [ACK, UPDATE, STEP, CLOSE], now=now)
    elif event.data.get("reopened"):
        cancel_reminders(session, [close_key(incident.id)], now=now)
        at = as_utc(event.occurred_at)
        _arm_ack(session, policy, incident, now=now, restart_from=at)
        _arm_update(session, policy, incident, now=now, since=at, restart=True, origin="reopened")
        _arm_steps(session, policy, incident, now=now, since=at)
    elif policy.impact_mitigated(str(event.data.get("from") or "")) and not (
        policy.impact_mitigated(incident.status)
    ):
        # The impact is back (Monitoring -> Investigating): the escalation a mitigation
        # settled resumes where it stopped, for an incident nobody has acknowledged.
        _arm_ack(session, policy, incident, now=now, restart_from=None)
    elif policy.impact_mitigated(incident.status):
        # Mitigated: it is being worked on, so nobody is paged to come and acknowledge it, not
        # even by an escalation queued while Slack was down. The impact coming back resumes it.
        _cancel_incident_kinds(session, incident.id, [ACK], now=now)


def _arm_steps(
    session: Session, policy: Policy, incident: Incident, *, now: datetime, since: datetime
) -> None:
    """Reopened: the runbook steps still in someone's hands are chased again, from the reopen
    (resolving cancelled their reminders, and nothing else would arm them again)."""
    stale_after = policy.reminders.step_stale_after
    if stale_after is None:
        return
    held = session.exec(
        select(RunbookRun, RunbookStepState)
        .join(RunbookStepState, col(RunbookStepState.run_id) == col(RunbookRun.id))
        .where(
            col(RunbookRun.incident_id) == incident.id,
            col(RunbookStepState.state) == "in_progress",
        )
    ).all()
    for run, state in held:
        assert run.id is not None
        steps = run.snapshot.get("steps", []) if isinstance(run.snapshot, dict) else []
        title = steps[state.step_index].get("title", "") if state.step_index < len(steps) else ""
        started = as_utc(state.started_at) if state.started_at is not None else since
        schedule_reminder(
            session,
            key=step_key(run.id, state.step_index),
            kind=STEP,
            incident_id=incident.id,
            due_at=since + stale_after,
            data={
                "run_id": run.id,
                "runbook_id": run.runbook_id,
                "step": state.step_index,
                "step_title": str(title),
                "assignee": state.assignee_id,
                "since": _iso(started),
            },
            now=now,
            fresh=True,
        )


def _arm_ack(
    session: Session,
    policy: Policy,
    incident: Incident,
    *,
    now: datetime,
    restart_from: datetime | None,
    new: bool = False,
    keep_overdue: bool = False,
) -> None:
    """Escalate when nobody acknowledges. ``restart_from`` starts a fresh first tier from that
    time (declare, reopen); without it the current tier is re-timed for the new severity.
    ``new``: the incident was declared in this transaction, so it has no commander yet.

    A row cancelled earlier (a severity without ``ack_within`` in between) is re-timed too: it
    still holds the tier it was waiting for and when the last one was sent, so going back to a
    severity that escalates continues where the escalation stopped instead of paging the first
    tier again. Only declare and reopen start again from tier 1."""
    assert incident.id is not None
    key = ack_key(incident.id)
    sev = policy.find_severity(incident.severity)
    if (
        sev is None
        or sev.ack_within is None
        or incident.acknowledged_at is not None
        or _phase(policy, incident) != "active"
        or (not new and _commander(session, incident.id) is not None)
    ):  # and an escalation queued while Slack was down no longer pages anyone
        _cancel_incident_kinds(session, incident.id, [ACK], now=now)
        return
    row = None if restart_from is not None else get_reminder(session, key)
    if row is None:
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
    tier = int(row.data.get("tier", 1))
    if row.state == SENT and tier == 1 and sev.escalate_again_after is not None:
        # Tier 1 went out under a severity without a second tier; this one has one, so the
        # row waits for it as a pending row would (sent_count and last_sent_at are kept).
        tier = 2
    elif row.state in (SENT, STOPPED, CLAIMED):
        # CLAIMED: a worker is escalating right now; it re-checks the timing under the new
        # severity before sending and schedules the next tier from it when done.
        return
    base = _parse_time(row.data.get("since")) or incident.declared_at
    if tier == 1:
        due = max(base + sev.ack_within, now)
    elif sev.escalate_again_after is None:
        cancel_reminders(session, [key], now=now)
        return
    else:
        due = max((row.last_sent_at or now) + sev.escalate_again_after, now)
    data = {**{k: v for k, v in row.data.items() if k != "delivered"}, "tier": tier}
    schedule_reminder(
        session,
        key=key,
        kind=ACK,
        incident_id=incident.id,
        due_at=due,
        data=data,
        now=now,
        keep_overdue=keep_overdue,
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
    keep_overdue: bool = False,
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
    # A restart from a given time (declare, reopen) sets the whole row: the old one is not read.
    row = None if restart and since is not None else get_reminder(session, key)
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
    data = {"since": _iso(reference), "from": origin}
    snoozed = _parse_time(row.data.get("snoozed_until")) if row is not None else None
    if since is None and snoozed is not None and snoozed > due:
        # A new cadence does not undo a snooze (a posted update, which resets the cadence, does).
        due = snoozed
        data["snoozed_until"] = _iso(snoozed)
    schedule_reminder(
        session,
        key=key,
        kind=UPDATE,
        incident_id=incident.id,
        due_at=due,
        data=data,
        now=now,
        fresh=restart,
        keep_overdue=keep_overdue,
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
