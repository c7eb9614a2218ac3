"""Build the Bolt app. One factory, no module-level app: tests and the demo build their own."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot import observability
from bot.clock import utcnow
from bot.models import SlackDelivery
from bot.observability import Workers
from bot.runtime import Firebreak
from bot.slack import reminders, runbooks
from bot.slack.flows import IncidentFlows
from bot.slack.listeners import Listeners

log = logging.getLogger(__name__)

COMMAND = "/incident"
CAPTURE_SHORTCUT = "add_to_timeline"
WORK_THREADS = 4
"""Threads that finish acknowledged work. More threads mean more contention for the GIL with the
threads answering Slack; on 2 cores, 4 kept every acknowledgement p99 under 300 ms with 50
concurrent requests where 8 did not (bench/slack.py). Slack's rate-limit sleeps release the GIL."""


def build_app(
    firebreak: Firebreak,
    *,
    flows: IncidentFlows | None = None,
    workers: Workers | None = None,
) -> App:
    settings = firebreak.settings
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise ValueError("SLACK_SIGNING_SECRET is required to verify requests from Slack")
    flows = flows or IncidentFlows(firebreak)
    workers = workers or Workers(WORK_THREADS)
    listeners = Listeners(flows, workers.work, workers.forms)
    # Listeners acknowledge and hand the work to the worker pools themselves, so Bolt answers
    # Slack as soon as a listener returns: the acknowledgement never queues behind other work.
    app = App(
        client=firebreak.gateway.client,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        process_before_response=True,
        token_verification_enabled=False,
        logger=logging.getLogger("slack_bolt.App"),
    )
    app.use(_deduplicate_events(firebreak))

    app.command(COMMAND)(listeners.command)
    app.action(re.compile(r"^(incident|home):"))(listeners.action)
    app.view_submission(re.compile(r".*"))(listeners.view_submission)
    app.view_closed(re.compile(r".*"))(lambda ack: ack())
    app.shortcut(CAPTURE_SHORTCUT)(listeners.message_shortcut)
    app.shortcut("declare_incident")(
        lambda ack, body, respond: _global_declare(listeners, ack, body, respond)
    )
    app.event("reaction_added")(listeners.reaction)
    app.event("reaction_removed")(listeners.reaction)
    app.event("app_home_opened")(listeners.home_opened)
    app.event("member_joined_channel")(listeners.member_joined)

    runbooks.register(app, listeners)
    reminders.register(app, listeners)
    app.error(_log_error)
    return app


def _global_declare(
    listeners: Listeners, ack: Callable[..., Any], body: dict[str, Any], respond: Any
) -> None:
    from bot.slack.listeners import Ctx

    ack()
    user = (body.get("user") or {}).get("id", "")
    ctx = Ctx(
        user=user,
        channel=None,
        respond=respond or (lambda **_: None),
        key=f"shortcut:{body.get('action_ts', '')}",
        trigger_id=body.get("trigger_id"),
    )
    listeners.soon(ctx, lambda: listeners.open_declare_form(ctx))


def _log_error(error: Exception, body: dict[str, Any]) -> None:
    observability.ERRORS.labels(where="bolt").inc()
    log.error(
        "unhandled error in a Slack listener",
        exc_info=error,
        extra={"type": str(body.get("type", ""))[:40]},
    )


DELIVERIES_KEPT = timedelta(days=2)


def prune_deliveries(firebreak: Firebreak, *, now: datetime | None = None) -> int:
    """Forget event ids older than Slack ever retries (minutes), so the table stays small."""
    cutoff = (now or utcnow()) - DELIVERIES_KEPT
    with firebreak.db.transaction() as session:
        result = session.execute(
            delete(SlackDelivery).where(col(SlackDelivery.received_at) < cutoff)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _deduplicate_events(firebreak: Firebreak) -> Callable[..., Any]:
    """Slack retries an event (same ``event_id``, ``X-Slack-Retry-Num``) when it thinks we were
    slow; two replicas may each get a copy. The first to record the id handles it."""

    def middleware(req: BoltRequest, body: dict[str, Any], next: Callable[[], Any]) -> Any:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if not event_id:
            return next()
        try:
            with firebreak.db.transaction() as session:
                session.add(SlackDelivery(key=f"event:{event_id}"[:255], received_at=utcnow()))
        except IntegrityError:
            retry = req.headers.get("x-slack-retry-num", ["0"])[0]
            log.info("duplicate event ignored", extra={"event_id": event_id, "retry": retry})
            return BoltResponse(status=200, body="")
        return next()

    return middleware
