"""Reminders in Slack: the scheduler, start-up checks, and the nudge buttons (Post update /
Snooze / Stop). What a reminder says is rendered by ``bot.slack.reminder_blocks`` when the
effect runner posts it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from slack_bolt import App

from bot import incidents as core
from bot import reminders
from bot.clock import utcnow
from bot.effects.store import prune
from bot.errors import InvalidInput
from bot.models import Reminder
from bot.reminders import actions as reminder_actions
from bot.runtime import Firebreak
from bot.scheduler import ReminderScheduler, validate_targets
from bot.slack import blocks
from bot.slack.flows import IncidentFlows
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.slack.listeners import Ctx, Listeners, reply
from bot.slack.reminder_blocks import parse_action_id

log = logging.getLogger(__name__)


class SlackUserGroups:
    """``scheduler.UserGroupLookup`` over the Slack gateway."""

    def __init__(self, gateway: SlackGateway) -> None:
        self.gateway = gateway

    def user_groups(self) -> Mapping[str, str]:
        try:
            return {handle.lower(): group for handle, group in self.gateway.usergroups().items()}
        except SlackCallError as exc:
            raise LookupError(str(exc)) from exc


SUMMARY_REFRESH_SECONDS = 600


def start_scheduler(firebreak: Firebreak, flows: IncidentFlows) -> ReminderScheduler:
    scheduler = ReminderScheduler(firebreak.db, firebreak.policy)
    scheduler.every(3600, lambda: prune_effects(firebreak), "prune-effects")
    scheduler.every(SUMMARY_REFRESH_SECONDS, flows.refresh_open_summaries, "refresh-summaries")
    scheduler.start()
    return scheduler


def prune_effects(firebreak: Firebreak) -> int:
    """Forget finished effects after a while (the timeline keeps what happened)."""
    with firebreak.db.transaction() as session:
        return prune(session, now=utcnow())


def validate_reminder_targets(firebreak: Firebreak) -> None:
    """Stop start-up (``ConfigError``) when an escalation names an unknown user group. If Slack
    cannot be reached, start anyway: escalations will say so when they are due."""
    source = str(firebreak.settings.resolved_policy_file() or "firebreak.toml")
    try:
        validate_targets(firebreak.policy, SlackUserGroups(firebreak.gateway), source=source)
    except LookupError as exc:
        log.warning("user groups not checked at start-up", extra={"error": str(exc)[:200]})


class ReminderButtons:
    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners
        self.fb = listeners.fb
        self.policy = listeners.policy

    def click(self, ack: Callable[..., Any], body: dict[str, Any], respond: Any) -> None:
        """Post update opens a form at once; Snooze and Stop are recorded, then processed."""
        ctx, action = self.listeners.click_context(body, respond)
        action_id = str(action.get("action_id", ""))
        if action_id.startswith("reminder:update:"):
            ack()
            self.listeners.soon(ctx, lambda: self.run(ctx, action))
            return
        self.listeners.record_click(ack, body, respond)

    def run(self, ctx: Ctx, action: dict[str, Any]) -> None:
        decoded = parse_action_id(str(action.get("action_id", "")))
        if decoded is None:
            return
        if decoded.verb == "update":
            with self.fb.db.read() as session:
                incident = core.get_incident(session, decoded.target_id)
            if not ctx.trigger_id:
                raise InvalidInput("Use `/incident update &lt;text&gt;` to post the update.")
            self.listeners.gateway.open_view(
                ctx.trigger_id, blocks.update_modal(self.policy, incident, channel=ctx.channel)
            )
            return
        with self.fb.db.read() as session:
            row = session.get(Reminder, decoded.target_id)
            about = row.incident_id if row is not None else None
            concerned = core.get_incident(session, about) if about is not None else None
        if concerned is not None:  # who may silence what chases an incident's people
            self.listeners.flows.require("silence_reminders", ctx.user, concerned, key=ctx.key)
        with self.fb.db.transaction() as session:
            if decoded.verb == "snooze":
                minutes = decoded.minutes or 0
                change = reminder_actions.snooze_reminder(
                    session,
                    self.policy,
                    decoded.target_id,
                    timedelta(minutes=minutes),
                    actor=ctx.user,
                    key=ctx.key,
                    seq=decoded.seq,
                )
                done = f"Snoozed for {minutes} minutes."
            else:
                change = reminder_actions.stop_reminder(
                    session,
                    self.policy,
                    decoded.target_id,
                    actor=ctx.user,
                    key=ctx.key,
                    seq=decoded.seq,
                )
                done = _STOPPED.get(change.reminder.kind, "Stopped.")
        if change.changed:
            reply(ctx, done)
        elif change.note:
            reply(ctx, change.note)


_STOPPED = {
    reminders.UPDATE: "Stopped: no more reminders to post an update. Reopening the incident "
    "starts them again.",
    reminders.STEP: "Stopped: no more reminders about this step.",
    reminders.CLOSE: "Stopped: no more reminders to close this incident.",
}
"""What stopping says, by reminder kind: what stopped, and what starts it again."""


def register(app: App, listeners: Listeners) -> None:
    buttons = ReminderButtons(listeners)
    app.action(re.compile(r"^reminder:"))(buttons.click)
    listeners.clicks.append(("reminder:", buttons.run))
