"""Reminders in Slack: the scheduler's notifier, start-up checks, and the nudge buttons
(Post update / Snooze / Stop)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from slack_bolt import App

from bot import incidents as core
from bot import reminders
from bot.errors import InvalidInput
from bot.reminders import NotifierError
from bot.runtime import Firebreak
from bot.scheduler import ReminderScheduler, validate_targets
from bot.slack import blocks
from bot.slack.flows import IncidentFlows
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.slack.listeners import Ctx, Listeners, reply
from bot.slack.reminder_blocks import parse_action_id

log = logging.getLogger(__name__)


class GatewayNotifier:
    """``reminders.Notifier`` over the Slack gateway."""

    def __init__(self, gateway: SlackGateway) -> None:
        self.gateway = gateway

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        try:
            return self.gateway.post_message(channel, text, blocks)
        except SlackCallError as exc:
            raise NotifierError(str(exc)) from exc

    def user_groups(self) -> Mapping[str, str]:
        try:
            return {handle.lower(): group for handle, group in self.gateway.usergroups().items()}
        except SlackCallError as exc:
            raise NotifierError(str(exc)) from exc


SUMMARY_REFRESH_SECONDS = 600


def start_scheduler(firebreak: Firebreak, flows: IncidentFlows) -> ReminderScheduler:
    from bot.slack.app import prune_deliveries

    scheduler = ReminderScheduler(
        firebreak.db, firebreak.policy, GatewayNotifier(firebreak.gateway)
    )
    scheduler.every(3600, lambda: prune_deliveries(firebreak), "prune-slack-deliveries")
    scheduler.every(SUMMARY_REFRESH_SECONDS, flows.refresh_open_summaries, "refresh-summaries")
    scheduler.start()
    return scheduler


def validate_reminder_targets(firebreak: Firebreak) -> None:
    """Stop start-up (``ConfigError``) when an escalation names an unknown user group. If Slack
    cannot be reached, start anyway: escalations will say so when they are due."""
    source = str(firebreak.settings.resolved_policy_file() or "firebreak.toml")
    try:
        validate_targets(firebreak.policy, GatewayNotifier(firebreak.gateway), source=source)
    except NotifierError as exc:
        log.warning("user groups not checked at start-up", extra={"error": str(exc)[:200]})


class ReminderButtons:
    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners
        self.fb = listeners.fb
        self.policy = listeners.policy

    def click(self, ack: Callable[..., Any], body: dict[str, Any], respond: Any) -> None:
        ack()
        ctx, action = self.listeners.click_context(body, respond)
        action_id = str(action.get("action_id", ""))
        if action_id.startswith("reminder:update:"):
            self.listeners.soon(ctx, lambda: self._click(ctx, action_id))
        else:
            self.listeners.later(ctx, lambda: self._click(ctx, action_id))

    def _click(self, ctx: Ctx, action_id: str) -> None:
        decoded = parse_action_id(action_id)
        if decoded is None:
            return
        if decoded.verb == "update":
            with self.fb.db.transaction() as session:
                incident = core.get_incident(session, decoded.target_id)
            if not ctx.trigger_id:
                raise InvalidInput("Use `/incident update <text>` to post the update.")
            self.listeners.gateway.open_view(
                ctx.trigger_id, blocks.update_modal(self.policy, incident, channel=ctx.channel)
            )
            return
        with self.fb.db.transaction() as session:
            if decoded.verb == "snooze":
                minutes = decoded.minutes or 0
                change = reminders.snooze_reminder(
                    session,
                    self.policy,
                    decoded.target_id,
                    timedelta(minutes=minutes),
                    actor=ctx.user,
                    key=ctx.key,
                )
                done = f"Snoozed for {minutes} minutes."
            else:
                change = reminders.stop_reminder(
                    session, self.policy, decoded.target_id, actor=ctx.user, key=ctx.key
                )
                done = "Stopped. Reopening the incident starts the reminders again."
        if change.changed:
            reply(ctx, done)


def register(app: App, listeners: Listeners) -> None:
    app.action(re.compile(r"^reminder:"))(ReminderButtons(listeners).click)
