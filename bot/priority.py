"""Acknowledgements first: background work pauses while Slack requests are being answered.

Python runs one thread at a time, and Slack waits only 3 seconds for an acknowledgement. The
effect runner and the work pool (answers that follow an acknowledgement) run in *background*
threads; at their pause points (before a database transaction, before a Slack call, between
effects) they wait while any Slack request is in flight, for a bounded moment, so a burst of
requests is acknowledged first and its work follows. A pause point is never taken while the
thread holds a transaction: a paused thread must not hold the lock a request is waiting for.
At SQLite's writer, a request's own write goes before background transactions already waiting
(``db.FairLock``, ``urgent``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

LONGEST_PAUSE = 0.25
"""The longest a background thread waits at one pause point, so work always progresses."""


class RequestsInFlight:
    """How many Slack requests this process is answering right now."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()
        self._quiet = threading.Event()
        self._quiet.set()

    def begin(self) -> None:
        with self._lock:
            self._count += 1
            self._quiet.clear()

    def end(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count <= 0:
                self._count = 0
                self._quiet.set()

    def __enter__(self) -> None:
        self.begin()

    def __exit__(self, *_: object) -> None:
        self.end()

    def give_way(self, longest: float) -> None:
        """Wait until no request is in flight, for at most ``longest`` seconds."""
        self._quiet.wait(longest)


REQUESTS_IN_FLIGHT = RequestsInFlight()

_thread = threading.local()


def run_in_background() -> None:
    """Mark the calling thread as background work (used as a thread initializer)."""
    _thread.background = True


def in_background() -> bool:
    """Whether the calling thread does background work (no request waits for it)."""
    return bool(getattr(_thread, "background", False))


def pause_point() -> None:
    """Where background work may wait for acknowledgements to be sent: a no-op in a request's
    own thread, and while this thread holds a transaction."""
    if in_background() and not getattr(_thread, "holding", 0):
        REQUESTS_IN_FLIGHT.give_way(LONGEST_PAUSE)


def holding_transaction() -> bool:
    """Whether the calling thread holds a database transaction."""
    return bool(getattr(_thread, "holding", 0))


@contextmanager
def holding() -> Iterator[None]:
    """This thread holds something a request may wait for (a transaction): no pausing."""
    _thread.holding = getattr(_thread, "holding", 0) + 1
    try:
        yield
    finally:
        _thread.holding -= 1
