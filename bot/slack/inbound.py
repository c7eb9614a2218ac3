"""Slack requests that change something are recorded before Slack is told they arrived.

A listener verifies, parses just enough to know the request changes something, and writes it as
an effect (``slack.request``) with its dedupe key (the event id, the trigger id, the view id, the
action and message timestamps); only then does Bolt answer 200. If the write fails, the answer
says so (or, for events, is a 500 so Slack redelivers): nothing is acknowledged that was not
saved. The effect runner then processes the request on whichever replica claims it first: at
once on this one, or after its lease on another if this process dies. Processing is safe to
repeat: every change it makes carries an idempotency key derived from the request, and every
reply it sends is an effect keyed the same way.

Opening a modal is not recorded: a ``trigger_id`` is valid for three seconds, so forms open on
the fast path right after the acknowledgement; a form that fails to open changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from bot import observability
from bot.clock import utcnow
from bot.db_errors import OutageLog, database_unavailable
from bot.effects import kinds, store
from bot.effects.group import GroupWriter, TooLate
from bot.effects.runner import Done, PermanentError, TransientError
from bot.effects.store import Claimed
from bot.errors import FirebreakError
from bot.leases import LeaseExpired
from bot.runtime import Firebreak
from bot.slack.gateway import SlackCallError

log = logging.getLogger(__name__)

FAILED = (
    "Firebreak could not do this: something went wrong inside Firebreak (request {rid}), so "
    "{nothing} was changed. It will not be tried again; if it happens again, tell whoever "
    "runs Firebreak."
)
NOT_SAVED = (
    ":warning: Firebreak could not save this request (its database is unavailable or busy), "
    "so nothing was changed. Try again in a minute."
)
SAVE_WITHIN = 2.0
"""Seconds a request may wait to be saved: Slack shows the person an error after 3 s without
an acknowledgement. One saved later would be done although the person saw it fail, and done
twice when they type it again; it is not saved, and they are told so (``NOT_SAVED``)."""


_AGAIN: ContextVar[bool] = ContextVar("firebreak_processing_again", default=False)


def processing_again() -> bool:
    """The request being processed was processed before, and that attempt's outcome was never
    saved (its process died, its connection dropped): a change the core finds already made
    under the request's key was made by this very request, and is answered as such."""
    return _AGAIN.get()


class NotRecorded(Exception):
    """The request could not be written: it must not be acknowledged as received."""


@dataclass
class Replies:
    """``respond`` for a recorded request: each answer is a reply effect, keyed by the request
    and its position, so processing the request again never answers twice. The answers are
    written with the request's outcome (``write``), in the transaction that records it, even if
    the claim ran out meanwhile (a repeat elsewhere writes the same keys, once)."""

    request_key: str
    user: str
    channel: str | None
    response_url: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    """Answers given, the warning apart."""

    def __call__(
        self, text: str = "", blocks: list[dict[str, Any]] | None = None, **_: Any
    ) -> None:
        self.count += 1
        self._add(str(self.count), text, blocks)

    def warn(self, text: str) -> None:
        """The warning that processing failed: keyed apart from the answers, so an attempt
        processed again (its outcome lost) writes it once and the answers keep their places."""
        self._add("warning", text, None)

    def _add(self, place: str, text: str, blocks: list[dict[str, Any]] | None) -> None:
        self.rows.append(
            store.new_row(
                kind=kinds.REPLY,
                key=f"reply:{self.request_key}:{place}",
                data={
                    "user": self.user,
                    "channel": self.channel,
                    "response_url": self.response_url,
                    "text": text[:3000],
                    "blocks": blocks,
                },
                now=utcnow(),
            )
        )

    def write(self, session: Session) -> None:
        store.enqueue_many(session, self.rows)


Processor = Callable[[str, dict[str, Any], Replies], None]
"""Processes one recorded request: (its kind, its body, how to answer)."""


@dataclass
class Inbox:
    fb: Firebreak
    processors: dict[str, Processor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._writer = GroupWriter(self.fb.db)
        self._outage = OutageLog(log, "Slack requests could not be recorded")

    def record(self, kind: str, key: str, body: dict[str, Any]) -> bool:
        """Write the request before it is acknowledged. Returns False when it was recorded
        already (a retry, a double delivery, another replica). Raises ``NotRecorded`` when it
        cannot be written."""
        user, channel = who_and_where(kind, body)
        # One person's requests in one channel are processed in the order they arrived (three
        # quick clicks on a runbook apply in order); everyone else's run in parallel.
        lane = f"in:{channel}:{user}"[:64] if channel and user else None
        try:
            recorded = self._writer.enqueue(
                deadline=time.monotonic() + SAVE_WITHIN,
                kind=kinds.SLACK_REQUEST,
                key=f"in:{key}",
                data={
                    "kind": kind,
                    "key": key,
                    "body": _stored(kind, body),
                    "request_id": observability.request_id.get(),
                },
                lane=lane,
                now=utcnow(),
            )
        except TooLate as exc:
            if exc.__cause__ is not None and database_unavailable(exc.__cause__):
                # The database gone, its connection attempts outlasting the wait: an outage,
                # told once when it starts (below), not a warning per request.
                self._outage.failed(exc.__cause__, "a Slack request could not be recorded")
                raise NotRecorded("the database is unavailable") from None
            log.warning(
                "a Slack request was not saved: the database was busy for %.1f s (another "
                "process holding SQLite's writer?); the person is told nothing changed",
                SAVE_WITHIN,
            )
            raise NotRecorded("the database was busy") from None
        except Exception as exc:
            observability.ERRORS.labels(where="inbox").inc()
            # A database outage: one warning when it starts, one line when it ends (each
            # request is answered as not saved); anything else, every time.
            self._outage.failed(exc.__cause__ or exc, "a Slack request could not be recorded")
            raise NotRecorded(str(exc)) from None
        self._outage.ok()
        return recorded

    def handle(self, item: Claimed) -> Done:
        """The ``slack.request`` effect: process a recorded request."""
        kind = str(item.data.get("kind") or "")
        body = dict(item.data.get("body") or {})
        replies = self.replies_for(str(item.data.get("key") or item.key), kind, body)
        processor = self.processors.get(kind)
        if processor is None:
            return Done({"skipped": f"no processor for {kind!r}"})
        # The work a request started logs the id of the request (the one its answer carried).
        token = observability.request_id.set(str(item.data.get("request_id") or "-"))
        again = _AGAIN.set(item.repeat)
        try:
            processor(kind, body, replies)
        except FirebreakError as exc:
            replies(f":no_entry: {exc}")
        except SlackCallError as exc:
            if not exc.transient:
                replies(f":warning: {exc}")
            else:
                self._say_now(replies)
                raise TransientError(
                    str(exc), retry_after=exc.retry_after, reason=exc.error
                ) from None
        except LeaseExpired:
            raise  # another replica holds the request now: it answers
        except (OperationalError, InterfaceError, IntegrityError, PoolTimeout) as exc:
            # The database went away mid-processing (a restart, a dropped connection, a full or
            # locked disk, no pooled connection free in time): the attempt's transaction was not
            # committed, and the next attempt does it all (also after losing a race on a
            # unique key to a concurrent write, which it then sees). Not a bug, so nobody is told
            # something went wrong. These, and Slack's transient errors, are all that is retried.
            log.warning("processing a Slack request waits for the database: %s", type(exc).__name__)
            raise TransientError("the database was unavailable", reason="database") from None
        except Exception as exc:
            # A bug, or a request no attempt can process (a value nobody checked): trying it
            # again fails the same way, for an hour, and holds up the person's later requests
            # in this channel (their lane). It ends now, as failed, and the person is told.
            observability.ERRORS.labels(where="listener").inc()
            log.exception("processing a Slack request failed; it will not be tried again")
            nothing = "nothing else" if replies.count else "nothing"
            replies.warn(
                ":warning: " + FAILED.format(rid=observability.request_id.get(), nothing=nothing)
            )
            self._say_now(replies)
            raise PermanentError(
                f"processing failed: {type(exc).__name__}", reason=type(exc).__name__
            ) from None
        finally:
            _AGAIN.reset(again)
            observability.request_id.reset(token)
        return Done({"replies": replies.count}, said=replies.write)

    def _say_now(self, replies: Replies) -> None:
        """A request whose outcome records no answers (it will be tried again, or it failed):
        what it has said so far is said now (the same answers from another attempt are the
        same effects, written once)."""
        if not replies.rows:
            return
        try:
            with self.fb.db.transaction() as session:
                replies.write(session)
        except Exception as exc:  # the next attempt says it, with its outcome
            log.warning("answers to a request could not be saved yet: %s", type(exc).__name__)

    def replies_for(self, key: str, kind: str, body: dict[str, Any]) -> Replies:
        user, channel = who_and_where(kind, body)
        url = body.get("response_url")
        if not url and body.get("response_urls"):
            url = (body["response_urls"][0] or {}).get("response_url")
        return Replies(key, user, channel, str(url) if url else None)


def _stored(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The request as it is stored: a click's message keeps everything but its blocks (the
    rendered message, most of a click's payload, which processing never reads)."""
    message = body.get("message")
    if kind == "action" and isinstance(message, dict) and "blocks" in message:
        return {**body, "message": {k: v for k, v in message.items() if k != "blocks"}}
    return body


def who_and_where(kind: str, body: dict[str, Any]) -> tuple[str, str | None]:
    """The person a request came from and the channel it came from, for answering them."""
    if kind == "command":
        return str(body.get("user_id") or ""), body.get("channel_id")
    if kind == "event":
        event = body.get("event") or {}
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        return str(event.get("user") or ""), event.get("channel") or (item or {}).get("channel")
    user = (body.get("user") or {}).get("id", "")
    channel = (body.get("channel") or {}).get("id")
    return str(user), channel
