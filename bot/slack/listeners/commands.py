"""``/incident``: the command listener, the explicit table of subcommands, and each one."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from slack_bolt import App

from bot import incidents as core
from bot.audit import regulatory
from bot.clock import said_at, utcnow
from bot.config import COMMANDER
from bot.errors import InvalidInput
from bot.models import Incident
from bot.slack import blocks
from bot.slack.commands import ParsedCommand, parse_command
from bot.slack.inbound import Replies
from bot.slack.limits import truncate
from bot.slack.listeners.base import ListenerBase, said_in_channel
from bot.slack.listeners.context import _QUIET_WHEN_STORED, READ_ONLY, Ctx, Respond, reply
from bot.slack.summary import snapshot

log = logging.getLogger(__name__)


class CommandListeners(ListenerBase):
    def process_command(self, kind: str, body: dict[str, Any], replies: Replies) -> None:
        ctx = self.command_context(body, replies)
        parsed = parse_command(
            body.get("text", ""), today=utcnow().astimezone(self.policy.zone).date()
        )
        self.run_command(ctx, parsed)

    def command(self, ack: Callable[..., Any], body: dict[str, Any], respond: Respond) -> None:
        ctx = self.command_context(body, respond)
        parsed = parse_command(
            body.get("text", ""), today=utcnow().astimezone(self.policy.zone).date()
        )
        if parsed.name == "open_form":
            ack()
            # A trigger id lives 3 seconds: open the form now, not behind queued work.
            self.soon(ctx, lambda: self.open_declare_form(ctx))
            return
        if parsed.name in READ_ONLY or parsed.error:
            ack()
            self.later(ctx, lambda: self.run_command(ctx, parsed))
            return
        self.record(ack, "command", ctx.key, body, respond)

    def run_command(self, ctx: Ctx, parsed: ParsedCommand) -> None:
        if parsed.name in _QUIET_WHEN_STORED:
            parsed = replace(parsed, text=self.quiet(parsed.text))
        if parsed.error:
            reply(ctx, f":grey_question: {parsed.error}")
            return
        name = parsed.name
        if name == "open_form":
            self.open_declare_form(ctx)
            return
        if name == "help":
            reply(ctx, blocks.help_text(self.policy))
            return
        if name == "list":
            self.list_incidents(ctx)
            return
        if name in ("declare_title", "did_you_mean"):
            suggestion = parsed.args[0] if parsed.args else parsed.extra.get("suggestion")
            hint = f" Did you mean `{suggestion}`?" if suggestion else ""
            if parsed.incident_ref is not None or parsed.incident_channel is not None:
                # A channel or number that names no incident is answered as such first.
                self.incident_for(ctx, parsed.incident_ref, parsed.incident_channel)
                reply(
                    ctx,
                    f":grey_question: `{truncate(parsed.text.split()[0], 40)}` is not a command."
                    f"{hint} Type `/incident help` for the commands.",
                )
                return
            if ctx.channel:
                with self.fb.db.read() as session:
                    here = core.find_incident_by_channel(session, ctx.channel)
                if here is not None:
                    reply(
                        ctx,
                        f":grey_question: `{truncate(parsed.text.split()[0], 40)}` is not "
                        f"a command.{hint} This is {here.ref}'s channel; type `/incident help` "
                        "for the commands, or `/incident declare &lt;title&gt;` for a new "
                        "incident.",
                    )
                    return
            if name == "did_you_mean":
                # A typo of a command never declares by itself: ask, with a button.
                reply(ctx, *blocks.did_you_mean(parsed.text, parsed.args[0], ctx.key))
                return
            self.declare_now(ctx, parsed.text)
            return
        if name == "declare":
            self.declare_now(ctx, parsed.text)
            return
        handler = COMMANDS.get(name)
        if handler is None:
            reply(ctx, f":grey_question: `{name}` is not a command. Type `/incident help`.")
            return
        incident = self.incident_for(ctx, parsed.incident_ref, parsed.incident_channel)
        handler(self, ctx, parsed, incident)

    def list_incidents(self, ctx: Ctx) -> None:
        now = utcnow()
        with self.fb.db.read() as session:
            found = core.list_incidents(session, self.policy, phases=("active", "resolved"))
            commanders = {
                i.id or 0: core.current_roles(session, i.id or 0).get(COMMANDER, "") for i in found
            }
        visible = [i for i in found if self.flows.can_see(ctx.user, i)]
        reply(
            ctx,
            blocks.incident_list(
                self.policy, visible, {k: v for k, v in commanders.items() if v}, now
            ),
        )

    def cmd_status(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        assert incident.id is not None
        with self.fb.db.read() as session:
            snap = snapshot(session, incident.id, self.policy)
        text, payload = blocks.incident_summary(self.policy, snap)
        reply(ctx, text, payload)

    def cmd_sev(
        self, ctx: Ctx, parsed: ParsedCommand, incident: Incident, seen: str | None = None
    ) -> None:
        """``seen``: the severity on the summary the menu was on (``seen_on_summary``)."""
        self.flows.require("change_severity", ctx.user, incident)
        wanted = parsed.args[0]
        found = self.policy.find_severity(wanted)
        target = found.key if found else wanted
        self._apply(
            ctx,
            incident,
            lambda s: core.change_severity(
                s, self.policy, incident.id or 0, wanted, actor=ctx.user, key=ctx.key, seen=seen
            ),
            f"{incident.ref} is now {target}.",
            f"{incident.ref} is already {target}.",
        )

    def cmd_set_status(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        """``/incident status identified``: as the summary's status menu (same rules)."""
        self.set_status(ctx, incident, parsed.args[0])

    def cmd_ack(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self._apply(
            ctx,
            incident,
            lambda s: core.acknowledge_incident(
                s, self.policy, incident.id or 0, actor=ctx.user, key=ctx.key
            ),
            f"{incident.ref} acknowledged.",
            f"{incident.ref} was already acknowledged"
            + (
                f" {said_at(incident.acknowledged_at)}."
                if incident.acknowledged_at is not None
                else "."
            ),
        )

    def cmd_ic(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        user = ctx.user if parsed.users[0] == "me" else self.known_user(parsed.users[0])
        self._assign(ctx, incident, COMMANDER, user)

    def cmd_role(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        role = self.policy.find_role(parsed.text)
        if role is None:
            raise InvalidInput(
                f"Unknown role {parsed.text[:40]!r}. Roles: "
                + ", ".join(f"{r.key} ({r.name})" for r in self.policy.roles)
            )
        user = ctx.user if parsed.users[0] == "me" else self.known_user(parsed.users[0])
        self._assign(ctx, incident, role.key, user)

    def cmd_update(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self.post_update(ctx, incident, parsed.text)

    def cmd_note(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        assert incident.id is not None
        with self.fb.db.transaction() as session:
            core.add_note(
                session, self.policy, incident.id, parsed.text, actor=ctx.user, key=ctx.key
            )
        reply(ctx, f":memo: Added to {incident.ref}'s timeline.")

    def cmd_mitigate(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self._apply(
            ctx,
            incident,
            lambda s: core.mitigate_incident(
                s, self.policy, incident.id or 0, actor=ctx.user, key=ctx.key
            ),
            f"{incident.ref} is mitigated.",
            f"{incident.ref} was already mitigated.",
        )

    def cmd_resolve(
        self, ctx: Ctx, parsed: ParsedCommand, incident: Incident, seen: str | None = None
    ) -> None:
        self._apply(
            ctx,
            incident,
            lambda s: core.resolve_incident(
                s,
                self.policy,
                incident.id or 0,
                actor=ctx.user,
                text=parsed.text,
                key=ctx.key,
                seen=seen,
            ),
            f"{incident.ref} is resolved.",
            f"{incident.ref} is already resolved.",
        )

    def cmd_reopen(
        self, ctx: Ctx, parsed: ParsedCommand, incident: Incident, seen: str | None = None
    ) -> None:
        self.flows.require("reopen", ctx.user, incident)
        self._apply(
            ctx,
            incident,
            lambda s: core.reopen_incident(
                s,
                self.policy,
                incident.id or 0,
                actor=ctx.user,
                text=parsed.text,
                key=ctx.key,
                seen=seen,
            ),
            f"{incident.ref} is reopened.",
            f"{incident.ref} is already open.",
        )

    def cmd_close(
        self, ctx: Ctx, parsed: ParsedCommand, incident: Incident, seen: str | None = None
    ) -> None:
        """``seen``: the status on the summary the Close was on (``seen_on_summary``)."""
        self.flows.require("close", ctx.user, incident)
        self._apply(
            ctx,
            incident,
            lambda s: core.close_incident(
                s, self.policy, incident.id or 0, actor=ctx.user, key=ctx.key, seen=seen
            ),
            f"{incident.ref} is closed.",
            f"{incident.ref} is already closed.",
        )

    def cmd_timeline(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        assert incident.id is not None
        with self.fb.db.read() as session:
            events = core.timeline(session, incident.id)
        text, payload = blocks.timeline_blocks(
            incident, events, allow_broadcasts=self.policy.slack.allow_broadcast_mentions
        )
        reply(ctx, text, payload)

    def cmd_action(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        assert incident.id is not None
        owner = self.known_user(parsed.users[0]) if parsed.users else None
        with self.fb.db.transaction() as session:
            change = core.add_action_item(
                session,
                self.policy,
                incident.id,
                parsed.text,
                actor=ctx.user,
                owner=owner,
                due_on=parsed.due,
                key=ctx.key,
            )
        item = change.detail.get("action_item")
        number = item.number if item is not None else "?"
        reply(ctx, f":hammer_and_wrench: Action item {number} added to {incident.ref}.")

    def cmd_actions(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        assert incident.id is not None
        with self.fb.db.read() as session:
            items = core.list_action_items(session, incident.id)
        reply(
            ctx,
            blocks.action_items_text(
                incident, items, allow_broadcasts=self.policy.slack.allow_broadcast_mentions
            ),
        )

    def cmd_done(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        number = int(parsed.args[0])
        self._apply(
            ctx,
            incident,
            lambda s: core.complete_action_item(
                s, self.policy, incident.id or 0, number, actor=ctx.user, key=ctx.key
            ),
            f"Action item {number} of {incident.ref} is done.",
            f"Action item {number} of {incident.ref} was already done.",
        )

    def cmd_runbook(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        if self.runbooks is None:
            raise InvalidInput("Runbooks are not enabled on this Firebreak.")
        self.runbooks.command(ctx, parsed.text, incident)

    def cmd_postmortem(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        assert incident.id is not None
        draft = self.flows.generate_postmortem(incident.id, actor=ctx.user, key=ctx.key)
        saved = f":memo: Postmortem draft v{draft.version} of {incident.ref} is saved"
        text = (
            said_in_channel(
                incident,
                f"{saved}; it is being posted in <#{incident.slack_channel_id}>.",
                f"{saved}.",
            )
            if incident.slack_channel_id
            else f"{saved}."
        )
        if draft.template_error:
            text += (
                f"\n:warning: The team template failed, so the built-in one was used: "
                f"{draft.template_error}"
            )
        reply(ctx, text)

    def cmd_classify(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        """``/incident classify major``: recorded on the timeline; starts its clocks."""
        assert incident.id is not None
        with self.fb.db.transaction() as session:
            result = regulatory.classify_incident(
                session, self.policy, incident.id, parsed.text, actor=ctx.user, key=ctx.key
            )
        reply(ctx, result.message)

    def cmd_notified(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        """``/incident notified initial [note]``: completes a regulatory clock."""
        assert incident.id is not None
        clock, _, note = parsed.text.partition(" ")
        with self.fb.db.transaction() as session:
            result = regulatory.complete_clock(
                session, self.policy, incident.id, clock, actor=ctx.user, note=note, key=ctx.key
            )
        reply(ctx, result.message)

    def cmd_retry(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        """Run what failed for good again; say truly where the set-up stands."""
        assert incident.id is not None
        lost = core.channel_lost(incident)
        if lost is not None:
            name = f"#{incident.slack_channel_name}"
            reply(
                ctx,
                f":warning: {incident.ref}'s channel {name} was deleted: nothing can be posted "
                "there. The incident and its timeline are kept, and every command works from "
                "any channel."
                if lost == "deleted"
                else f":warning: Firebreak was removed from {name}, so trying again would fail "
                f"the same way: `/invite @Firebreak` in {name}, and what could not be posted is "
                "posted then.",
            )
            return
        # Where it stood when asked: the retry itself queues a refresh of the pinned summary,
        # which is not "still being set up".
        state = self.flows.setup_state(incident.id)
        retried = self.flows.retry_setup(incident.id, key=ctx.key)
        where = f"<#{state.channel}>" if state.channel else "its channel is not created yet"
        if retried:
            text = (
                f":arrows_counterclockwise: Trying again {retried} thing"
                f"{'s' if retried != 1 else ''} that failed for {incident.ref} ({where})."
            )
        elif state.running:
            text = (
                f":hourglass_flowing_sand: {incident.ref} is still being set up ({where}): "
                + ", ".join(dict.fromkeys(state.running))
                + "."
            )
        elif state.channel:
            text = f":white_check_mark: {incident.ref} is set up: {where}. Nothing failed."
        else:
            text = f":warning: {incident.ref} has no channel and nothing is running."
        reply(ctx, text)

    # -- buttons and selects -----------------------------------------------------------------


CommandHandler = Callable[[CommandListeners, Ctx, ParsedCommand, Incident], None]

COMMANDS: dict[str, CommandHandler] = {
    "status": CommandListeners.cmd_status,
    "set_status": CommandListeners.cmd_set_status,
    "sev": CommandListeners.cmd_sev,
    "ack": CommandListeners.cmd_ack,
    "ic": CommandListeners.cmd_ic,
    "role": CommandListeners.cmd_role,
    "update": CommandListeners.cmd_update,
    "note": CommandListeners.cmd_note,
    "mitigate": CommandListeners.cmd_mitigate,
    "resolve": CommandListeners.cmd_resolve,
    "reopen": CommandListeners.cmd_reopen,
    "close": CommandListeners.cmd_close,
    "timeline": CommandListeners.cmd_timeline,
    "action": CommandListeners.cmd_action,
    "actions": CommandListeners.cmd_actions,
    "done": CommandListeners.cmd_done,
    "runbook": CommandListeners.cmd_runbook,
    "postmortem": CommandListeners.cmd_postmortem,
    "classify": CommandListeners.cmd_classify,
    "notified": CommandListeners.cmd_notified,
    "retry": CommandListeners.cmd_retry,
}
"""The subcommands that act on an incident (the parser names them; ``help``, ``list`` and
declaring are handled before an incident is looked up)."""


def register(app: App, listeners: CommandListeners) -> None:
    # `/incident`, or whatever the app names it: Slack sends only the commands the app itself
    # defines (`/inc`, `/incident-staging` for a second installation).
    app.command(re.compile(r"^/."))(listeners.command)
