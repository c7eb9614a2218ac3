"""Group commit: effects written by many threads at once share one transaction.

A burst of Slack requests must each be written before it is acknowledged. One transaction per
request would queue the burst behind the database's single writer (SQLite) or one WAL flush per
request (PostgreSQL). Instead each thread adds its effect to a queue and waits for its turn at
the writer; whoever gets there first writes everything queued so far in one transaction, and the
others find theirs already written. Each effect keeps its own answer (written, or already there
under its key); if the transaction fails, every effect in it gets the error and nothing of it
was written.

A write may carry a deadline (``time.monotonic()``): an effect still unwritten when its
transaction finally has the database's writer after it (another process held SQLite's lock for
seconds) is left out of it and fails with ``TooLate``: nothing of it is written, so whoever
asked can say so truthfully.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.db import Database
from bot.effects import store


class WriteFailed(Exception):
    """The shared transaction failed: nothing of it was written."""


class TooLate(Exception):
    """The effect's deadline passed before the database could be written: it was not."""


@dataclass
class _Pending:
    row: dict[str, Any]
    deadline: float | None = None
    written: bool | None = None
    error: BaseException | None = None
    finished: bool = False


@dataclass
class GroupWriter:
    db: Database
    _queue: list[_Pending] = field(default_factory=list)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock)
    _writer: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(
        self,
        *,
        kind: str,
        key: str,
        data: dict[str, Any],
        lane: str | None,
        now: datetime,
        deadline: float | None = None,
    ) -> bool:
        """``store.enqueue`` in a transaction shared with other threads' effects. Returns
        whether the row was written (False: its key was taken); raises what the transaction
        raised if it failed, and ``TooLate`` if it had the writer only after ``deadline``."""
        row = store.new_row(kind=kind, key=key, data=data, lane=lane, now=now)
        mine = _Pending(row, deadline)
        with self._queue_lock:
            self._queue.append(mine)
        with self._writer:
            if not mine.finished:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(batch)
        if isinstance(mine.error, TooLate):
            raise mine.error
        if mine.error is not None:
            raise WriteFailed(f"{type(mine.error).__name__}: {mine.error}") from mine.error
        return bool(mine.written)

    def _write(self, batch: list[_Pending]) -> None:
        deadlines = [item.deadline for item in batch if item.deadline is not None]

        def write(session: Session) -> list[_Pending]:
            # Begun: the writer is this transaction's. What is past its deadline now is left out.
            now = time.monotonic()
            timely = [item for item in batch if item.deadline is None or now <= item.deadline]
            if timely:
                written = store.enqueue_many(session, [item.row for item in timely])
                for item, was_written in zip(timely, written, strict=True):
                    item.written = was_written
            return timely

        try:
            # A connection the server dropped, or a wait for the writer that ran out, is tried
            # again (it rolled back; keys make a second write harmless).
            timely = self.db.transact(write, until=min(deadlines) if deadlines else None)
        except BaseException as exc:  # every waiter must hear of it, whatever it was
            late = bool(deadlines) and time.monotonic() >= min(deadlines)
            for item in batch:
                item.error = exc
                if late and item.deadline:
                    # Why it was late stays readable: the database gone, or a writer busy.
                    item.error = TooLate(f"not written in time: {exc}")
                    item.error.__cause__ = exc
                item.finished = True
            return
        written = {id(item) for item in timely}
        for item in batch:
            if id(item) not in written:
                item.error = TooLate("the database could not be written in time")
            item.finished = True
