"""Group commit: effects written by many threads at once share one transaction.

A burst of Slack requests must each be written before it is acknowledged. One transaction per
request would queue the burst behind the database's single writer (SQLite) or one WAL flush per
request (PostgreSQL). Instead each thread adds its effect to a queue and waits for its turn at
the writer; whoever gets there first writes everything queued so far in one transaction, and the
others find theirs already written. Each effect keeps its own answer (written, or already there
under its key); if the transaction fails, every effect in it gets the error and nothing of it
was written.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.db import Database
from bot.effects import store


class WriteFailed(Exception):
    """The shared transaction failed: nothing of it was written."""


@dataclass
class _Pending:
    row: dict[str, Any]
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
    ) -> bool:
        """``store.enqueue`` in a transaction shared with other threads' effects. Returns
        whether the row was written (False: its key was taken); raises what the transaction
        raised if it failed."""
        mine = _Pending(store.new_row(kind=kind, key=key, data=data, lane=lane, now=now))
        with self._queue_lock:
            self._queue.append(mine)
        with self._writer:
            if not mine.finished:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(batch)
        if mine.error is not None:
            raise WriteFailed(f"{type(mine.error).__name__}: {mine.error}") from mine.error
        return bool(mine.written)

    def _write(self, batch: list[_Pending]) -> None:
        try:
            # A connection the server dropped is replaced and the batch written again (it
            # rolled back; its keys make a second write harmless).
            written = self.db.transact(
                lambda session: store.enqueue_many(session, [item.row for item in batch])
            )
        except BaseException as exc:  # every waiter must hear of it, whatever it was
            for item in batch:
                item.error, item.finished = exc, True
            return
        for item, was_written in zip(batch, written, strict=True):
            item.written, item.finished = was_written, True
