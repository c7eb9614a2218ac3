"""Build the Bolt app. One factory, no module-level app: tests and the demo build their own."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk import WebClient

from bot import observability
from bot.alerts import declaring
from bot.audit import regulatory
from bot.effects import kinds
from bot.effects.runner import EffectRunner
from bot.observability import Workers
from bot.runtime import Firebreak, new_worker_id
from bot.slack import alerts as alert_slack
from bot.slack import reminders, runbooks
from bot.slack.effects import SlackEffects
from bot.slack.flows import IncidentFlows
from bot.slack.gateway import SlackGateway
from bot.slack.inbound import Inbox, NotRecorded
from bot.slack.listeners import Ctx, Listeners
from bot.slack.listeners import register as register_listeners

log = logging.getLogger(__name__)

WORK_THREADS = 4
"""Threads that finish acknowledged work. More threads mean more contention for the GIL with the
threads answering Slack; on 2 cores, 4 kept every acknowledgement p99 under 300 ms with 50
concurrent requests where 8 did not (bench/slack.py). Slack's rate-limit sleeps release the GIL."""

EFFECT_INTERVAL = 1.0
"""How often each effect thread looks for due work it was not woken for (retries, scheduled
effects, a dead replica's): a commit that writes effects wakes a thread at once."""


@dataclass
class SlackBot:
    """Everything the Slack side of one process runs: the Bolt app, the listeners, the inbox
    of recorded requests and the effect runner that executes what the core queued."""

    firebreak: Firebreak
    flows: IncidentFlows
    workers: Workers
    listeners: Listeners
    inbox: Inbox
    effects: SlackEffects
    runner: EffectRunner
    app: App

    def start(self) -> None:
        self.runner.start()

    def stop(self) -> None:
        """Finish the work in hand, then stop executing effects and release their claims."""
        self.workers.shutdown(wait=True)
        self.runner.stop()


def build_bot(
    firebreak: Firebreak,
    *,
    workers: Workers | None = None,
    worker_id: str | None = None,
    effect_threads: int = WORK_THREADS,
    effect_interval: float = EFFECT_INTERVAL,
) -> SlackBot:
    settings = firebreak.settings
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise ValueError("SLACK_SIGNING_SECRET is required to verify requests from Slack")
    flows = IncidentFlows(firebreak)
    workers = workers or Workers(WORK_THREADS)
    inbox = Inbox(firebreak)
    listeners = Listeners(flows, workers.work, workers.forms, inbox)
    effects = SlackEffects(firebreak, names=flows.names, worker_id=worker_id or new_worker_id())
    effects.extra[kinds.SLACK_REQUEST] = inbox.handle
    effects.extra[kinds.CLOCK_SYNC] = regulatory.sync_handler(firebreak.db, firebreak.policy)
    effects.extra[kinds.ALERTS_DECLARE] = declaring.handler(
        firebreak.db, firebreak.policy, lambda: firebreak.catalog
    )
    runner = effects.runner(threads=effect_threads, interval=effect_interval)
    # Listeners record what changes something and hand the rest to the worker pools
    # themselves, so Bolt answers Slack as soon as a listener returns.
    app = App(
        client=_for_bolt(firebreak.gateway.client),
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        process_before_response=True,
        authorize=_authorizer(firebreak.gateway),
        logger=_bolt_logger(),
    )
    register_listeners(app, listeners)
    runbooks.register(app, listeners)
    reminders.register(app, listeners)
    _register_alert_buttons(app, listeners, flows)
    # Last, so it answers only what nothing above handles: an event type the app was
    # subscribed to without a listener here. Answered 200 and logged; an error status would
    # make Slack retry it and, if it went on, disable the app's event subscriptions.
    app.event(re.compile(r".*"))(_ignore_event)
    # Interactions nothing above handles (a button or form of another app version, a link
    # button, a legacy attachment): acknowledged, or Slack shows the person an error.
    anything = re.compile(r".*")
    app.action(anything)(_ignore_interaction)
    app.shortcut(anything)(_ignore_interaction)
    app.view(anything)(_ignore_interaction)
    app.options(anything)(_no_options)
    effects.renderers.update(alert_slack.RENDERERS)
    app.error(_log_error)
    return SlackBot(firebreak, flows, workers, listeners, inbox, effects, runner, app)


def _register_alert_buttons(app: App, listeners: Listeners, flows: IncidentFlows) -> None:
    """The triage buttons on alert messages: recorded, then processed, like every click."""
    buttons = alert_slack.AlertButtons(
        flows.fb.db, flows.policy, flows.directory, lambda: flows.fb.catalog
    )
    handlers = {
        alert_slack.DECLARE: buttons.declare,
        alert_slack.ATTACH: buttons.attach,
        alert_slack.IGNORE: buttons.ignore,
        alert_slack.MITIGATE: buttons.mitigate,
    }
    for prefix, handler in handlers.items():
        app.action(re.compile(rf"^{re.escape(prefix)}"))(listeners.record_click)

        def run(ctx: Ctx, action: dict[str, Any], handler: Any = handler) -> None:
            handler(lambda: None, {"user": {"id": ctx.user}, "actions": [action]}, ctx.respond)

        listeners.clicks.append((prefix, run))


def build_app(firebreak: Firebreak, *, workers: Workers | None = None) -> App:
    """The Bolt app alone (its effects run by whoever starts ``build_bot(...).runner``)."""
    return build_bot(firebreak, workers=workers).app


def _authorizer(gateway: SlackGateway) -> Callable[..., AuthorizeResult]:
    """Bolt's authorization without a Slack call on the request path. Bolt's own asks
    ``auth.test`` inside the first request and, if Slack fails then, answers it with a
    "reinstall the app" text: a 200 that drops a recorded event and misleads the person. The
    token is Firebreak's one bot token; who the bot is comes from the readiness check's
    ``auth.test``, when it has answered."""

    def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        identity = gateway.known_identity() or {}
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=gateway.client.token,
            bot_user_id=identity.get("user_id"),
            bot_id=identity.get("bot_id"),
            user_id=user_id,
        )

    return authorize


class _TokenFromEnvironmentFilter(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns at every start
    that the client given wins over it: true, expected, and a warning operators would chase."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _TOKEN_FROM_ENVIRONMENT


_TOKEN_FROM_ENVIRONMENT = frozenset(
    {warning_client_prioritized_and_token_skipped(), warning_token_skipped()}
)


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _TokenFromEnvironmentFilter) for f in logger.filters):
        logger.addFilter(_TokenFromEnvironmentFilter())
    return logger


def _for_bolt(client: WebClient) -> WebClient:
    """What Bolt copies into each request's ``client``: where Slack is, without the token,
    which comes from ``_authorizer`` (Bolt warns at start-up when it is given both). Firebreak's
    own calls go through the gateway's client."""
    return WebClient(
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
    )


def _ignore_event(ack: Ack, body: dict[str, Any]) -> None:
    ack()
    event = body.get("event")
    kind = event.get("type") if isinstance(event, dict) else None
    log.info("event without a listener ignored", extra={"type": str(kind)[:40]})


def _ignore_interaction(ack: Ack, body: dict[str, Any]) -> None:
    ack()
    log.info("interaction without a listener ignored", extra={"type": str(body.get("type"))[:40]})


def _no_options(ack: Ack) -> None:
    ack(options=[])


def _log_error(error: Exception, body: dict[str, Any]) -> None:
    observability.ERRORS.labels(where="bolt").inc()
    if isinstance(error, NotRecorded):
        return  # an event not saved, answered 500 for Slack to send again; the inbox said why
    log.error(
        "unhandled error in a Slack listener",
        exc_info=error,
        extra={"type": str(body.get("type", ""))[:40]},
    )
