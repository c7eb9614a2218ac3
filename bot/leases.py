"""The lease an effect attempt runs under, where the Slack adapter can see it.

A replica that stalls mid-attempt (a long pause, a frozen VM, a Slack call that took minutes)
may find, when it goes on, that its lease ran out and another replica took the effect over and
did it. A call that cannot be repeated safely (a post, a channel) is then not made: the attempt
ends as a retry, and the replica that holds the effect now decides. The lease is judged a
margin early (``MARGIN``), so a call just begun is over before another replica may start.
Reads, invites and pins, safe to repeat, are made whatever the lease (the Slack gateway says
which calls are held back)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from bot.clock import utcnow

MARGIN = timedelta(seconds=15)
"""How long before its lease ends an attempt stops making such calls: longer than one Slack call
(the gateway's 10 s timeout) with room for the replicas' clocks to differ."""
_DEADLINE: ContextVar[datetime | None] = ContextVar("firebreak_lease_deadline", default=None)


class LeaseExpired(Exception):
    """The attempt's lease ran out before a call that cannot be repeated: not made."""


@contextmanager
def held_until(deadline: datetime) -> Iterator[None]:
    """Calls made inside run under a lease that must not be relied on from ``deadline``."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_held(what: str) -> None:
    """Raise ``LeaseExpired`` when the lease the current attempt holds may have run out."""
    deadline = _DEADLINE.get()
    if deadline is not None and utcnow() >= deadline:
        raise LeaseExpired(
            f"the attempt's lease ran out before {what}; the replica that holds the effect "
            "now does it"
        )
