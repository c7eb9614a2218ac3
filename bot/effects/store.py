"""Writing, claiming and finishing effect rows. Plain SQL through SQLModel; no Slack here.

Claiming is one conditional ``UPDATE``: due rows (and rows whose claim lease ran out because the
worker died) become ``claimed`` by this worker. On PostgreSQL the rows come from a ``SELECT ...
FOR UPDATE SKIP LOCKED`` subquery, so replicas never wait for or take each other's rows; SQLite
transactions already hold the database's write lock. A row in a lane is claimable only when no
earlier row of its lane is still pending or claimed, so a lane runs in order across replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import and_, bindparam, case, delete, exists, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.clock import as_utc
from bot.db import locked_for_change
from bot.effects import kinds
from bot.effects.models import Effect
from bot.keys import fit_key
from bot.models import Incident

PENDING = "pending"
CLAIMED = "claimed"
DONE = "done"
FAILED = "failed"

RATE_LIMITED_ATTEMPTS = "rate_limited_attempts"
"""Kept in an effect's result: how many of its attempts since it was last armed a rate limit
turned away (they did nothing, so they count toward its age only)."""
TRYING_SINCE = "trying_since"
"""Kept in an effect's result: when its first attempt since it was last armed began (ISO
8601, UTC). Its retries stop an hour after that: the hour counts time spent trying, not time
nobody tried (every replica down, the lane held behind earlier work)."""
RETRY_BUDGET = (RATE_LIMITED_ATTEMPTS, TRYING_SINCE)
RETRIED = "retried_after_failure"
"""``result`` of an effect that had failed and was asked for again: when. Done, the timeline
records that it was done after all (the runner's ``on_recovered``)."""
"""What a retried effect keeps of its attempts, forgotten when it is done or armed again."""
CANCELLED = "cancelled"
LIVE = (PENDING, CLAIMED)

FIRST_AFTER = timedelta(seconds=5)
"""Due work of any kind that has waited this long is claimed with ``kinds.FIRST``."""

DEFAULT_LEASE = timedelta(seconds=30)
BATCH_MARK = "#"
"""Between a runner's ``worker_id`` and the number of one of its batches (``host-12#7``)."""
"""How long a claim holds. Every attempt is one bounded Slack call or one transaction, far
shorter; a worker that dies leaves its claims to any replica after this."""

ENQUEUED = "firebreak_effects_enqueued"
"""``Session.info`` flag: this transaction wrote effects (the runner is woken on commit)."""


def incident_lane(incident_id: int) -> str:
    return f"incident:{incident_id}"


_EFFECTS = Effect.__table__  # type: ignore[attr-defined]

_ENQUEUE = {
    postgres: (pg_insert if postgres else sqlite_insert)(_EFFECTS)
    .on_conflict_do_nothing(index_elements=["key"])
    .returning(_EFFECTS.c.key)
    for postgres in (False, True)
}
"""Writing effects, by backend (PostgreSQL or not), built once: every request and change
writes some."""


class EffectFields(TypedDict):
    """What an effect is: its kind, its idempotency key, its plain data, the incident and lane
    it belongs to (a lane runs in order), when it is due (default: now)."""

    kind: str
    key: str
    now: datetime
    data: NotRequired[dict[str, Any] | None]
    incident_id: NotRequired[int | None]
    lane: NotRequired[str | None]
    due_at: NotRequired[datetime | None]


def new_row(**fields: Unpack[EffectFields]) -> dict[str, Any]:
    now = fields["now"]
    return {
        "key": fit_key(fields["key"]),
        "kind": fields["kind"],
        "incident_id": fields.get("incident_id"),
        "lane": fields.get("lane"),
        "data": fields.get("data") or {},
        "result": {},
        "state": PENDING,
        "due_at": fields.get("due_at") or now,
        "attempts": 0,
        "rerun": False,
        "created_at": now,
        "updated_at": now,
    }


def enqueue(session: Session, **fields: Unpack[EffectFields]) -> bool:
    """Write an effect once: a second write with the same ``key`` changes nothing.
    Returns whether a row was written."""
    return enqueue_many(session, [new_row(**fields)]) == [True]


def enqueue_many(session: Session, rows: list[dict[str, Any]]) -> list[bool]:
    """Write several effects (each made by ``new_row``) in one statement. Returns, for each,
    whether it was written (False: its key was taken already, or by an earlier one of ``rows``)."""
    firsts: list[bool] = []
    unique: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        firsts.append(row["key"] not in seen)
        if firsts[-1]:
            seen.add(row["key"])
            unique.append(row)
    if not unique:
        return []
    statement = _ENQUEUE[session.get_bind().dialect.name == "postgresql"]
    written = set(session.execute(statement, unique[0] if len(unique) == 1 else unique).scalars())
    session.info[ENQUEUED] = True
    return [first and row["key"] in written for row, first in zip(rows, firsts, strict=True)]


def arm(
    session: Session,
    *,
    kind: str,
    key: str,
    data: dict[str, Any] | None = None,
    incident_id: int | None = None,
    lane: str | None = None,
    now: datetime,
) -> None:
    """Ask for a coalesced effect (latest state wins): one row per ``key``. A finished row runs
    again; a pending one runs once; a running one runs once more when it finishes."""
    if enqueue(session, kind=kind, key=key, data=data, incident_id=incident_id, lane=lane, now=now):
        return
    row = session.exec(select(Effect).where(Effect.key == fit_key(key)).with_for_update()).one()
    if row.state == CLAIMED:
        row.rerun = True
    elif row.state != PENDING:
        _rearm(row, now)
        if lane is not None and row.lane != lane:
            row.lane = lane
    if data is not None:
        row.data = {**row.data, **data}
    row.updated_at = now
    session.add(row)
    session.flush()


def _rearm(row: Effect, now: datetime) -> None:
    """Pending again, from the first attempt. A failed row's attempts may have done the work
    (Slack answered 500 after doing it, then the effect gave up): its next attempt counts as a
    repeat, which checks before doing it again."""
    maybe_done = row.state == FAILED and row.attempts > 0
    if row.state == FAILED:  # when it is done, the timeline says so (``RETRIED``)
        row.result = {**without_retry_budget(row.result or {}), RETRIED: now.isoformat()}
    row.state = PENDING
    row.due_at = now
    # Asked for now: how long it has been tried is counted from here, not from the first time
    # the row was written (a summary armed again hours into an incident is new work).
    row.created_at = now
    row.attempts = 1 if maybe_done else 0
    row.last_error = None
    row.done_at = None
    if any(key in (row.result or {}) for key in RETRY_BUDGET):
        row.result = without_retry_budget(row.result)


def without_retry_budget(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` without what its attempts so far counted: work asked for again is new."""
    return {k: v for k, v in result.items() if k not in RETRY_BUDGET}


def trying_since(result: dict[str, Any]) -> datetime | None:
    """When the first attempt since the effect was last armed began, if one was retried."""
    stamp = result.get(TRYING_SINCE)
    return as_utc(datetime.fromisoformat(stamp)) if isinstance(stamp, str) else None


@dataclass(frozen=True)
class Claimed:
    """An effect this worker holds."""

    id: int
    key: str
    kind: str
    incident_id: int | None
    data: dict[str, Any]
    result: dict[str, Any]
    attempts: int
    created_at: datetime
    by: str = ""
    """Who holds the claim: the ``worker_id`` it was claimed with (unique per batch in a
    runner, so two threads of one process never both run an effect whose lease ran out)."""

    @property
    def repeat(self) -> bool:
        """An earlier attempt started: it may have done the work (check before repeating)."""
        return self.attempts > 1


def _pending_due(now: Any) -> Any:
    """Pending and due. Work asked for "now" (due when it was written) is due whatever the
    clock says since: a clock stepped back must not hold it until the clock catches up."""
    e = _EFFECTS.c
    return and_(e.state == PENDING, or_(e.due_at <= now, e.due_at <= e.created_at))


_EARLIER = _EFFECTS.alias("earlier")
_BLOCKED = exists().where(
    _EARLIER.c.lane == _EFFECTS.c.lane,
    _EARLIER.c.id < _EFFECTS.c.id,
    _EARLIER.c.state.in_(LIVE),
)
"""An earlier effect of the same lane is unfinished."""

_CLAIMS: dict[tuple[str, int, bool], Any] = {}
"""Claim statements by (dialect, limit, exact ids), built once: claiming is the hot path (each
runner thread claims after every batch and every second), and a statement built per call cost
more CPU than the database took to run it."""


def _claim_statement(dialect: str, limit: int, by_ids: bool) -> Any:
    cached = _CLAIMS.get((dialect, limit, by_ids))
    if cached is not None:
        return cached
    e = _EFFECTS.c
    stamp = e.due_at.type  # every time is stored alike
    now = bindparam("now", type_=stamp)
    due = or_(_pending_due(now), and_(e.state == CLAIMED, e.claimed_until <= now))
    pick = sa_select(e.id).where(due, or_(e.lane.is_(None), ~_BLOCKED))
    if by_ids:
        pick = pick.where(e.id.in_(bindparam("ids", expanding=True)))
    first = or_(
        e.kind.in_(kinds.FIRST),
        e.due_at <= bindparam("first_before", type_=stamp),
        # Written "later" than now: the clock stepped back, so how long it waited is unknown.
        e.created_at > bindparam("written_after", type_=stamp),
    )
    later = case((first, 0), else_=1)
    pick = pick.order_by(later, e.id).limit(limit)
    if dialect == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    statement = (
        update(_EFFECTS)
        .where(e.id.in_(pick.scalar_subquery()))
        .values(
            state=CLAIMED,
            claimed_by=bindparam("worker_id"),
            claimed_until=bindparam("until", type_=stamp),
            rerun=False,
            updated_at=now,
        )
        .returning(
            e.id, e.key, e.kind, e.incident_id, e.data, e.result, e.attempts, e.created_at, later
        )
    )
    _CLAIMS[(dialect, limit, by_ids)] = statement
    return statement


def claim(
    session: Session,
    worker_id: str,
    *,
    now: datetime,
    lease: timedelta = DEFAULT_LEASE,
    limit: int = 20,
    ids: list[int] | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due effects (or exactly ``ids``, if still claimable) for
    ``worker_id``: ``kinds.FIRST`` and work that has waited ``FIRST_AFTER`` first, then the
    rest; within each, in the order they were written (ids, which a clock stepping back does not
    reorder). ``start`` each before executing it."""
    statement = _claim_statement(session.get_bind().dialect.name, limit, ids is not None)
    values: dict[str, Any] = {
        "now": now,
        "first_before": now - FIRST_AFTER,
        "written_after": now + FIRST_AFTER,
        "worker_id": worker_id,
        "until": now + lease,
    }
    if ids is not None:
        values["ids"] = ids
    rows = session.execute(statement, values).all()
    # Executed in the order they were picked (RETURNING keeps none): one row per lane at most
    # (a lane's next row is not claimable yet), so every lane's order is kept too.
    rows = sorted(rows, key=lambda r: (r[8], r[0]))
    return [
        Claimed(
            r[0],
            r[1],
            r[2],
            r[3],
            dict(r[4] or {}),
            dict(r[5] or {}),
            r[6],
            as_utc(r[7]),
            worker_id,
        )
        for r in rows
    ]


_START = (
    update(_EFFECTS)
    .where(
        _EFFECTS.c.id == bindparam("effect_id"),
        _EFFECTS.c.state == CLAIMED,
        _EFFECTS.c.claimed_by == bindparam("worker_id"),
    )
    .values(attempts=_EFFECTS.c.attempts + 1, claimed_until=bindparam("until"))
)


_UNSTART = (
    update(_EFFECTS)
    .where(
        _EFFECTS.c.id == bindparam("effect_id"),
        _EFFECTS.c.state == CLAIMED,
        _EFFECTS.c.claimed_by == bindparam("worker_id"),
        _EFFECTS.c.attempts > 0,
    )
    .values(attempts=_EFFECTS.c.attempts - 1)
)


def unstart(session: Session, effect_id: int, worker_id: str) -> None:
    """Take back the attempt ``start`` counted for an effect that was never run after all (a
    shutdown came between the two): the replica that takes it must not believe an earlier
    attempt may have done the work, and skip what cannot be checked (an ephemeral reply)."""
    session.execute(_UNSTART, {"effect_id": effect_id, "worker_id": worker_id})


def start(session: Session, effect_id: int, worker_id: str, *, until: datetime) -> bool:
    """Count an attempt of a claimed effect as it begins (``claim`` counts none), and hold it
    ``until`` then. Returns False if this worker no longer holds the claim: the effect must not
    be executed."""
    result: Any = session.execute(
        _START, {"effect_id": effect_id, "worker_id": worker_id, "until": until}
    )
    return bool(result.rowcount == 1)


_INCIDENTS = Incident.__table__  # type: ignore[attr-defined]
_LOCK_INCIDENT = locked_for_change(
    sa_select(_INCIDENTS.c.id).where(_INCIDENTS.c.id == bindparam("incident_id"))
)


def lock_incident_row(session: Session, incident_id: int) -> None:
    """Lock the incident's row as every change to the incident does first (not a round trip
    on SQLite, whose transactions already hold the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_INCIDENT, {"incident_id": incident_id})


def lock_claim(session: Session, effect_id: int, worker_id: str) -> Effect | None:
    """The row, locked, if this worker still holds its claim."""
    row = session.exec(
        select(Effect)
        .where(col(Effect.id) == effect_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None or row.state != CLAIMED or row.claimed_by != worker_id:
        return None
    return row


def save_progress(
    session: Session, effect_id: int, worker_id: str, result: dict[str, Any], now: datetime
) -> bool:
    """Record what an attempt has done so far (an uploaded file's id), so a later attempt
    resumes instead of repeating. Returns False if the claim was lost."""
    row = lock_claim(session, effect_id, worker_id)
    if row is None:
        return False
    row.result = {**row.result, **result}
    row.updated_at = now
    session.add(row)
    return True


_HELD = (
    sa_select(_EFFECTS.c.result, _EFFECTS.c.rerun)
    .where(
        _EFFECTS.c.id == bindparam("effect_id"),
        _EFFECTS.c.state == CLAIMED,
        _EFFECTS.c.claimed_by == bindparam("worker_id"),
    )
    .with_for_update()
)
"""The row's result and rerun flag, locked, if this worker still holds its claim."""


def _finishing(**after: Any) -> Any:
    return (
        update(_EFFECTS)
        .where(_EFFECTS.c.id == bindparam("effect_id"))
        .values(
            result=bindparam("result", type_=_EFFECTS.c.result.type),
            claimed_by=None,
            claimed_until=None,
            updated_at=bindparam("now", type_=_EFFECTS.c.updated_at.type),
            **after,
        )
    )


_NOW = bindparam("now", type_=_EFFECTS.c.updated_at.type)
_DONE = _finishing(state=DONE, done_at=_NOW, last_error=None)
_AGAIN = _finishing(
    state=PENDING, due_at=_NOW, created_at=_NOW, attempts=0, rerun=False, last_error=None
)
"""Armed again while it ran: once more, with the latest state."""
_RETRY = _finishing(
    state=PENDING,
    due_at=bindparam("due_at", type_=_EFFECTS.c.due_at.type),
    last_error=bindparam("error"),
)


def finish(
    session: Session,
    effect_id: int,
    worker_id: str,
    *,
    result: dict[str, Any],
    now: datetime,
    retry: tuple[str, datetime] | None = None,
) -> bool:
    """Record how an attempt ended, in two plain statements built once (every effect ends
    here): done (or pending again, if it was armed while it ran), or with ``retry`` = (error,
    when) pending until then. Returns False, changing nothing, if the claim was lost."""
    held = session.execute(_HELD, {"effect_id": effect_id, "worker_id": worker_id}).first()
    if held is None:
        return False
    values: dict[str, Any] = {
        "effect_id": effect_id,
        "result": {**(held.result or {}), **result},
        "now": now,
    }
    if retry is not None:
        statement = _RETRY
        values.update(error=retry[0][:2000], due_at=retry[1])
    else:
        statement = _AGAIN if held.rerun else _DONE
        values["result"] = without_retry_budget(values["result"])
    session.execute(statement, values)
    return True


WITHDRAWN = "firebreak.withdrawn_effects"
"""``session.info`` key: the effects ``withdraw`` cancelled in this transaction, as
(key, data), for the timeline to say which messages never went out (``take_withdrawn``)."""


def withdraw(session: Session, incident_id: int, prefixes: list[str], *, now: datetime) -> int:
    """Cancel the incident's effects not started yet whose keys start with one of
    ``prefixes``: messages that stopped being true before they went out (an escalation queued
    while Slack was down, then the incident acknowledged). One started may finish."""
    if not prefixes:
        return 0
    rows = session.execute(
        update(Effect)
        .where(
            col(Effect.incident_id) == incident_id,
            col(Effect.state) == PENDING,
            or_(*(col(Effect.key).startswith(prefix, autoescape=True) for prefix in prefixes)),
        )
        .values(state=CANCELLED, done_at=now, updated_at=now, last_error="no longer true")
        .returning(col(Effect.key), col(Effect.data))
        .execution_options(synchronize_session=False)
    ).all()
    session.info.setdefault(WITHDRAWN, []).extend((key, dict(data or {})) for key, data in rows)
    return len(rows)


def take_withdrawn(session: Session) -> list[tuple[str, dict[str, Any]]]:
    """The effects withdrawn in this transaction since the last call (see ``WITHDRAWN``)."""
    return list(session.info.pop(WITHDRAWN, []))


def mark_failed(row: Effect, error: str, now: datetime) -> None:
    row.state = FAILED
    row.last_error = error[:2000]
    row.claimed_by = None
    row.claimed_until = None
    row.rerun = False
    row.updated_at = now
    row.done_at = now


def release(session: Session, worker_id: str, *, now: datetime) -> int:
    """Give back every claim ``worker_id`` holds (at shutdown), its batches' included
    (``worker_id#n``), for another replica to take at once. The attempt counter stays: the
    next attempt checks before repeating."""
    batch = f"{worker_id}{BATCH_MARK}"
    result = session.exec(
        update(Effect)
        .where(
            or_(
                col(Effect.claimed_by) == worker_id,
                func.substr(col(Effect.claimed_by), 1, len(batch)) == batch,
            ),
            col(Effect.state) == CLAIMED,
        )
        .values(state=PENDING, claimed_by=None, claimed_until=None, due_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


MOMENT = "moment"
"""``data`` flag of an effect that tells of a moment (a reminder, an escalation, a notice that
something failed): one that failed is never run again later, when what it says ("none for 1h",
"not acknowledged after 31m", "could not post") is no longer true; the next reminder says
what is true then."""


def tells_of_a_moment(row: Effect) -> bool:
    """``MOMENT``; for rows written before the flag was, by what they are: a reminder's post
    (its key) or a notice that something failed."""
    data = row.data or {}
    notice = data.get("notice")
    failure = isinstance(notice, dict) and notice.get("type") == "failure"
    return bool(data.get(MOMENT)) or row.key.startswith("reminder:") or failure


def retry_failed(session: Session, incident_id: int, *, now: datetime) -> int:
    """Run an incident's failed effects again (``/incident retry``, or Firebreak invited back
    to the channel), but for those that told of a moment (``MOMENT``). Returns how many."""
    rows = session.exec(
        select(Effect)
        .where(col(Effect.incident_id) == incident_id, col(Effect.state) == FAILED)
        .with_for_update()
    ).all()
    rows = [row for row in rows if not tells_of_a_moment(row)]
    for row in rows:
        _rearm(row, now)
        row.updated_at = now
        session.add(row)
    session.flush()
    session.info[ENQUEUED] = True
    return len(rows)


def incident_effects(session: Session, incident_id: int) -> list[Effect]:
    return list(
        session.exec(
            select(Effect).where(Effect.incident_id == incident_id).order_by(col(Effect.id))
        ).all()
    )


@dataclass(frozen=True)
class Backlog:
    pending: int
    failed: int
    oldest_due: datetime | None


def backlog(session: Session) -> Backlog:
    """How much is waiting (for /metrics and ``firebreak effects``)."""
    pending, oldest = session.exec(
        select(func.count(), func.min(Effect.due_at)).where(col(Effect.state).in_(LIVE))
    ).one()
    failed = session.exec(select(func.count()).where(Effect.state == FAILED)).one()
    return Backlog(int(pending or 0), int(failed or 0), as_utc(oldest) if oldest else None)


def unfinished(session: Session, *, limit: int = 200) -> list[Effect]:
    """Effects not done: pending, claimed or failed, oldest first (``firebreak effects``)."""
    return list(
        session.exec(
            select(Effect)
            .where(col(Effect.state).in_((PENDING, CLAIMED, FAILED)))
            .order_by(col(Effect.incident_id), col(Effect.id))
            .limit(limit)
        ).all()
    )


def count_due(session: Session, *, now: datetime) -> int:
    """Effects that are due or running now (tests and the demo wait for zero)."""
    due = or_(
        _pending_due(now),
        col(Effect.state) == CLAIMED,
    )
    return int(session.exec(select(func.count()).where(due)).one() or 0)


KEEP_DONE = timedelta(days=7)
KEEP_FAILED = timedelta(days=30)


def prune(session: Session, *, now: datetime) -> int:
    """Delete effects finished more than a week ago (failed ones after a month). The timeline
    keeps what happened; effects are the work queue, not the record."""
    done = session.exec(
        delete(Effect).where(
            col(Effect.state).in_((DONE, CANCELLED)), col(Effect.done_at) < now - KEEP_DONE
        )
    )
    failed = session.exec(
        delete(Effect).where(col(Effect.state) == FAILED, col(Effect.done_at) < now - KEEP_FAILED)
    )
    return int(done.rowcount or 0) + int(failed.rowcount or 0)
