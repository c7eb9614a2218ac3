"""Incident numbers and the count of declares.

Numbers are gap-free: a declare bumps the counter in the transaction that inserts its incident,
which holds the counter row until it commits (a rollback gives the number back). The declares a
transaction made are counted in ``firebreak_incidents_declared_total`` once it commits."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlalchemy.event import listens_for
from sqlmodel import Session, col, select

from bot import observability
from bot.incidents.text import INCIDENT_COUNTER
from bot.models import Counter, Incident

DECLARED = "firebreak_declared"
"""``session.info`` key: the severities of the incidents a transaction declared, counted in
``firebreak_incidents_declared_total`` once it commits (whoever declared: a person, alerts, a
Declare from triage)."""


def counted_once_committed(session: Session, severity: str) -> None:
    """Count a declare of ``severity`` when the transaction of ``session`` commits."""
    session.info.setdefault(DECLARED, []).append(severity)


@listens_for(Session, "after_commit")
def _count_declared(session: Session) -> None:
    for severity in session.info.pop(DECLARED, ()):
        observability.INCIDENTS_DECLARED.labels(severity=severity).inc()


@listens_for(Session, "after_rollback")
def _forget_declared(session: Session) -> None:
    session.info.pop(DECLARED, None)


def number_free(session: Session) -> bool:
    """Whether a declare in this transaction would take its number without waiting for
    another declare's commit; if so, the counter is now this transaction's until it ends.
    On PostgreSQL the counter row is locked if nobody holds it (``SKIP LOCKED``): False when
    another transaction does (or the row is missing, which a declare then repairs). On SQLite
    a transaction that has written holds the whole database: always True."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    free = session.exec(
        select(Counter.name)
        .where(col(Counter.name) == INCIDENT_COUNTER)
        .with_for_update(skip_locked=True)
    ).first()
    return free is not None


def hold_counter(session: Session) -> None:
    """Wait for the counter and hold it until this transaction ends, before locking anything
    else: a declare made after its webhook (``bot.alerts.declaring``) then holds no group of
    alerts, which that group's webhooks would wait for, while it waits for other declares.
    (Webhooks never wait for the counter, ``number_free``, so the order cannot deadlock.)"""
    session.exec(
        select(Counter.name).where(col(Counter.name) == INCIDENT_COUNTER).with_for_update()
    ).first()


def take_next_number(session: Session) -> int:
    """Bump the counter and return its new value, in one statement that also locks its row
    until the commit (a rollback gives the number back)."""
    taken = session.execute(
        update(Counter)
        .where(col(Counter.name) == INCIDENT_COUNTER)
        .values(value=col(Counter.value) + 1)
        .returning(col(Counter.value))
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if taken is None:
        # A database whose seed row is missing: continue after the highest number in use.
        highest = int(session.exec(select(func.max(Incident.number))).one() or 0)
        session.add(Counter(name=INCIDENT_COUNTER, value=highest + 1))
        session.flush()
        return highest + 1
    return int(taken)


def give_back_number(session: Session) -> None:
    session.execute(
        update(Counter)
        .where(col(Counter.name) == INCIDENT_COUNTER)
        .values(value=col(Counter.value) - 1)
        .execution_options(synchronize_session=False)
    )
