"""Bolt listeners: record, acknowledge, then do the work through the flows and the core.

A request that changes something is written to the database before it is acknowledged
(``bot.slack.inbound``) and processed by the effect runner, on this replica or, if this one dies,
another. Reads (``status``, ``list``, ``help``...) and forms (a ``trigger_id`` lives 3 seconds) run
on the worker pools right after the acknowledgement. Errors become ephemeral messages written
for the person who clicked or typed; a stack trace only ever goes to the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot import access, observability
from bot import incidents as core
from bot.audit import regulatory
from bot.clock import utcnow
from bot.config import COMMANDER
from bot.effects.triggers import ANNOUNCED_IN_CHANNEL
from bot.errors import FirebreakError, InvalidInput, NotAllowed, NotFound
from bot.incidents import TITLE_MAX
from bot.markup import neutralise_broadcasts, slack_to_plain
from bot.models import Incident
from bot.slack import blocks
from bot.slack.commands import ParsedCommand, parse_command
from bot.slack.flows import IncidentFlows
from bot.slack.gateway import SlackCallError
from bot.slack.inbound import NOT_SAVED, Inbox, NotRecorded, Replies
from bot.slack.limits import escape_mrkdwn, truncate
from bot.slack.summary import snapshot

if TYPE_CHECKING:
    from bot.slack.runbooks import RunbookSlack

log = logging.getLogger(__name__)

Respond = Callable[..., Any]

UNEXPECTED = (
    "Something went wrong inside Firebreak (request {rid}) while reading; nothing was "
    "changed. Try again, and if it keeps failing, tell whoever runs Firebreak."
)
READ_ONLY = frozenset(
    {"help", "list", "status", "timeline", "actions", "did_you_mean", "open_form"}
)
"""Commands that change nothing: answered straight away, not recorded."""


@dataclass
class Ctx:
    """Who asked, where, and how to answer them."""

    user: str
    channel: str | None
    respond: Respond
    key: str
    trigger_id: str | None = None


def reply(ctx: Ctx, text: str, blocks_: list[dict[str, Any]] | None = None) -> None:
    ctx.respond(text=text, blocks=blocks_, response_type="ephemeral", replace_original=False)


def guarded(ctx: Ctx, work: Callable[[], None]) -> None:
    """Run ``work``; turn every failure into an answer the person can act on."""
    try:
        work()
    except FirebreakError as exc:
        reply(ctx, f":no_entry: {exc}")
    except SlackCallError as exc:
        reply(ctx, f":warning: {exc}")
    except Exception:
        observability.ERRORS.labels(where="listener").inc()
        log.exception("listener failed")
        reply(ctx, ":warning: " + UNEXPECTED.format(rid=observability.request_id.get()))


def split_title(text: str) -> tuple[str, str]:
    """A long ``/incident <text>`` keeps its first words as the title and all of it as the
    summary, so nothing typed is lost. The title is plain text (mentions become ``@name``,
    links their label); the summary keeps Slack's markup."""
    single = " ".join(slack_to_plain(text).split())
    if len(single) <= TITLE_MAX:
        return single, ""
    cut = single[: TITLE_MAX - 1].rsplit(" ", 1)[0] or single[: TITLE_MAX - 1]
    return cut + "…", text.strip()


class Listeners:
    def __init__(self, flows: IncidentFlows, work: Executor, forms: Executor, inbox: Inbox) -> None:
        self.flows = flows
        self.work = work
        self.forms = forms
        self.inbox = inbox
        self.fb = flows.fb
        self.policy = flows.policy
        self.gateway = flows.gateway
        self.runbooks: RunbookSlack | None = None
        self.clicks: list[tuple[str, Callable[[Ctx, dict[str, Any]], None]]] = []
        """(action id prefix, what a recorded click does), added by ``register`` functions."""
        inbox.processors.update(
            {
                "command": self.process_command,
                "action": self.process_action,
                "view": self.process_view,
                "shortcut": self.process_shortcut,
                "event": self.process_event,
            }
        )

    # -- recording ---------------------------------------------------------------------------

    def record(
        self,
        ack: Callable[..., Any],
        kind: str,
        key: str,
        body: dict[str, Any],
        respond: Respond | None = None,
    ) -> None:
        """Save the request, then acknowledge it. If it cannot be saved, say so: the person
        sees that nothing happened (an event is answered 500, so Slack delivers it again)."""
        try:
            self.inbox.record(kind, key, body)
        except NotRecorded:
            if kind == "event":
                raise
            ack()
            if respond is not None:
                with contextlib.suppress(Exception):
                    respond(text=NOT_SAVED, response_type="ephemeral", replace_original=False)
            return
        ack()

    def process_command(self, kind: str, body: dict[str, Any], replies: Replies) -> None:
        ctx = self.command_context(body, replies)
        parsed = parse_command(
            body.get("text", ""), today=utcnow().astimezone(self.policy.zone).date()
        )
        self.run_command(ctx, parsed)

    def process_action(self, kind: str, body: dict[str, Any], replies: Replies) -> None:
        ctx, action = self.click_context(body, replies)
        action_id = str(action.get("action_id", ""))
        for prefix, run in self.clicks:
            if action_id.startswith(prefix):
                run(ctx, action)
                return
        self.run_action(ctx, action)

    def command_context(self, body: dict[str, Any], respond: Respond) -> Ctx:
        return Ctx(
            user=body.get("user_id", ""),
            channel=body.get("channel_id"),
            respond=respond,
            key=f"cmd:{body.get('trigger_id', '')}",
            trigger_id=body.get("trigger_id"),
        )

    # -- helpers -----------------------------------------------------------------------------

    def later(self, ctx: Ctx, job: Callable[[], None]) -> None:
        """Run ``job`` after the acknowledgement, on the work pool: the HTTP answer to Slack
        never waits for Slack calls, rate limits or other requests' work."""
        self.work.submit(guarded, ctx, job)

    def soon(self, ctx: Ctx, job: Callable[[], None]) -> None:
        """Run ``job`` (one that opens a form) right after the acknowledgement, on a pool kept
        for forms: a trigger id is valid for 3 seconds, so it never waits behind slow work."""
        self.forms.submit(guarded, ctx, job)

    def in_background(self, job: Callable[[], None]) -> None:
        """``later`` for events, where there is nobody to answer."""
        self.work.submit(_logged, job)

    def quiet(self, text: str) -> str:
        """Text people wrote, before Firebreak stores or re-posts it: broadcast mentions
        (@channel, @here, @everyone, user groups) shown but silent, unless the policy allows."""
        return neutralise_broadcasts(text, allow=self.policy.slack.allow_broadcast_mentions)

    def incident_for(self, ctx: Ctx, ref: int | None) -> Incident:
        with self.fb.db.read() as session:
            if ref is not None:
                incident: Incident | None = core.find_incident(session, ref)
            else:
                incident = (
                    core.find_incident_by_channel(session, ctx.channel) if ctx.channel else None
                )
        if incident is None:
            raise InvalidInput(
                "This channel is not an incident channel. Name the incident, "
                "e.g. `/incident INC-42 status`, or see `/incident list`."
            )
        self.check_visible(ctx, incident)
        return incident

    def check_visible(self, ctx: Ctx, incident: Incident) -> None:
        """A private incident exists only for the people in its channel (and admins)."""
        if self.flows.can_see(ctx.user, incident, channel=ctx.channel):
            return
        raise NotAllowed(
            f"{incident.ref} is private: only the people in its channel can see or change it. "
            "Ask its Incident Commander to invite you."
        )

    def known_user(self, user: str) -> str:
        found = self.gateway.user(user)
        if found is None:
            raise NotFound(f"Slack does not know the user <@{user}>.")
        if found.deleted:
            raise InvalidInput(f"<@{user}> is deactivated.")
        if found.is_bot:
            raise InvalidInput(f"<@{user}> is a bot; give incident roles to people.")
        return user

    def _apply(
        self,
        ctx: Ctx,
        incident: Incident,
        apply: Callable[[Session], core.Change],
        done: str,
        unchanged: str,
    ) -> core.Change:
        assert incident.id is not None
        change = self.flows.change(incident.id, apply)
        message = done if change.changed else unchanged
        if change.detail.get("problem"):
            message += f"\n:warning: {change.detail['problem']}"
            reply(ctx, message)
        elif (
            not change.changed
            or ctx.channel != change.incident.slack_channel_id
            or change.event is None
            or change.event.kind not in ANNOUNCED_IN_CHANNEL
        ):
            # In the incident channel most changes are announced to everyone; elsewhere, and
            # when nothing changed, only the person who asked hears back.
            reply(ctx, message)
        return change

    # -- /incident ---------------------------------------------------------------------------

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
            if parsed.incident_ref is not None:
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
                        "for the commands, or `/incident declare <title>` for a new incident.",
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
        handler = getattr(self, f"cmd_{name}")
        incident = self.incident_for(ctx, parsed.incident_ref)
        handler(ctx, parsed, incident)

    def open_declare_form(self, ctx: Ctx, title: str = "") -> None:
        if not ctx.trigger_id:
            raise InvalidInput(
                "Slack sent no trigger to open the form; type `/incident <title>` instead."
            )
        self.gateway.open_view(
            ctx.trigger_id,
            blocks.declare_modal(
                self.policy, title=title, origin_channel=ctx.channel, reporter=ctx.user
            ),
        )

    def declare_now(self, ctx: Ctx, text: str) -> None:
        title, summary = split_title(text)
        outcome = self.flows.declare(reporter=ctx.user, title=title, summary=summary, key=ctx.key)
        self.tell_declared(ctx, outcome.incident, outcome.repeat)

    def tell_declared(self, ctx: Ctx, incident: Incident, repeat: bool) -> None:
        """What was saved and what is on its way, truly: the channel is created by an effect
        of the declare, so it may not exist yet."""
        if incident.slack_channel_id:
            where = f"its channel is <#{incident.slack_channel_id}>"
        else:
            where = "its channel is being created and you will be added to it"
        if repeat:
            text = f"You already declared {incident.ref} a moment ago; {where}."
        else:
            text = (
                f":rotating_light: Declared *{incident.ref}* ({incident.severity}); {where}.\n"
                "Change the severity or take the commander role from the pinned summary."
            )
        reply(ctx, text)

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

    def cmd_sev(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self.flows.require("change_severity", ctx.user, incident)
        wanted = parsed.args[0]
        found = self.policy.find_severity(wanted)
        target = found.key if found else wanted
        self._apply(
            ctx,
            incident,
            lambda s: core.change_severity(
                s, self.policy, incident.id or 0, wanted, actor=ctx.user, key=ctx.key
            ),
            f"{incident.ref} is now {target}.",
            f"{incident.ref} is already {target}.",
        )

    def cmd_ack(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self._apply(
            ctx,
            incident,
            lambda s: core.acknowledge_incident(
                s, self.policy, incident.id or 0, actor=ctx.user, key=ctx.key
            ),
            f"{incident.ref} acknowledged.",
            f"{incident.ref} was already acknowledged.",
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

    def require_role_change(self, ctx: Ctx, incident: Incident, role: str, user: str) -> None:
        """Taking a role someone holds, or one that grants an action, is governed by [access]
        (``access.role_change_needs``); a refusal is recorded on the timeline like any other."""
        assert incident.id is not None
        with self.fb.db.read() as session:
            holder = core.current_roles(session, incident.id).get(role)
        needs = access.role_change_needs(
            self.policy, role, actor=ctx.user, target=user, holder=holder
        )
        name = self.policy.role(role).name
        for action in needs:
            try:
                self.flows.require(action, ctx.user, incident)
            except NotAllowed as exc:
                if action == "assign_roles":
                    raise
                raise NotAllowed(
                    f"The {name} role lets its holder {access.verb(action)}, so giving it "
                    f"needs that right too. {exc}"
                ) from None

    def _assign(self, ctx: Ctx, incident: Incident, role: str, user: str) -> None:
        self.require_role_change(ctx, incident, role, user)
        name = self.policy.role(role).name
        self._apply(
            ctx,
            incident,
            lambda s: core.assign_role(
                s, self.policy, incident.id or 0, role, user, actor=ctx.user, key=ctx.key
            ),
            f"<@{user}> is now {name} of {incident.ref}.",
            f"<@{user}> is already {name} of {incident.ref}.",
        )

    def cmd_update(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self.post_update(ctx, incident, parsed.text)

    def post_update(self, ctx: Ctx, incident: Incident, text: str) -> None:
        assert incident.id is not None
        change = self.flows.change(
            incident.id,
            lambda s: core.post_status_update(
                s, self.policy, incident.id or 0, text, actor=ctx.user, key=ctx.key
            ),
        )
        if not change.changed:
            return
        # The update is posted in the incident channel by an effect of the same transaction.
        if ctx.channel != incident.slack_channel_id:
            reply(ctx, f"Update posted to {incident.ref}.")

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

    def cmd_resolve(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self._apply(
            ctx,
            incident,
            lambda s: core.resolve_incident(
                s, self.policy, incident.id or 0, actor=ctx.user, text=parsed.text, key=ctx.key
            ),
            f"{incident.ref} is resolved.",
            f"{incident.ref} is already resolved.",
        )

    def cmd_reopen(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self.flows.require("reopen", ctx.user, incident)
        self._apply(
            ctx,
            incident,
            lambda s: core.reopen_incident(
                s, self.policy, incident.id or 0, actor=ctx.user, text=parsed.text, key=ctx.key
            ),
            f"{incident.ref} is reopened.",
            f"{incident.ref} is already open.",
        )

    def cmd_close(self, ctx: Ctx, parsed: ParsedCommand, incident: Incident) -> None:
        self.flows.require("close", ctx.user, incident)
        self._apply(
            ctx,
            incident,
            lambda s: core.close_incident(
                s, self.policy, incident.id or 0, actor=ctx.user, key=ctx.key
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
        where = (
            f"; it is being posted in <#{incident.slack_channel_id}>"
            if incident.slack_channel_id
            else ""
        )
        text = f":memo: Postmortem draft v{draft.version} of {incident.ref} is saved{where}."
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
        retried = self.flows.retry_setup(incident.id, key=ctx.key)
        state = self.flows.setup_state(incident.id)
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

    def action(
        self, ack: Callable[..., Any], body: dict[str, Any], respond: Respond | None
    ) -> None:
        ctx, action = self.click_context(body, respond)
        if action.get("action_id") in _OPENS_A_FORM:
            ack()
            self.soon(ctx, lambda: self.run_action(ctx, action))
            return
        self.record_click(ack, body, respond)

    def record_click(
        self, ack: Callable[..., Any], body: dict[str, Any], respond: Respond | None
    ) -> None:
        """Record a click that changes something (its key names this very click)."""
        ctx, _ = self.click_context(body, respond)
        self.record(ack, "action", ctx.key, body, ctx.respond)

    def click_context(
        self, body: dict[str, Any], respond: Respond | None
    ) -> tuple[Ctx, dict[str, Any]]:
        """Who clicked what, where, and how to answer them (a ``block_actions`` payload).
        The key names this very click, so a redelivery of it changes nothing twice."""
        action = (body.get("actions") or [{}])[0]
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("channel") or {}).get("id")
        ctx = Ctx(
            user=user,
            channel=channel,
            respond=respond or self._ephemeral(channel, user),
            key=f"action:{action.get('action_ts', '')}:{user}:{action.get('action_id')}",
            trigger_id=body.get("trigger_id"),
        )
        return ctx, action

    def _ephemeral(self, channel: str | None, user: str) -> Respond:
        def send(text: str, **_: Any) -> None:
            if channel:
                try:
                    self.gateway.post_ephemeral(channel, user, text)
                    return
                except SlackCallError:
                    pass
            log.info("no place to answer a click", extra={"user": user})

        return send

    def run_action(self, ctx: Ctx, action: dict[str, Any]) -> None:
        action_id = str(action.get("action_id", ""))
        if action_id == blocks.HOME_DECLARE:
            self.open_declare_form(ctx)
            return
        if action_id == blocks.DECLARE_ANYWAY:
            self.declare_anyway(ctx, action)
            return
        incident = self._incident_from_value(action)
        self.check_visible(ctx, incident)
        if action_id == blocks.ACK_IC:
            with self.fb.db.read() as session:
                vacant = COMMANDER not in core.current_roles(session, incident.id or 0)
            if vacant:
                self.require_role_change(ctx, incident, COMMANDER, ctx.user)
            change = self.flows.change(
                incident.id or 0, lambda s: self._ack_and_take_ic(s, incident.id or 0, ctx)
            )
            if not change.changed:
                reply(ctx, f"{incident.ref} already has a commander.")
        elif action_id == blocks.ACKNOWLEDGE:
            self.cmd_ack(ctx, ParsedCommand("ack"), incident)
        elif action_id == blocks.SEVERITY:
            value = (action.get("selected_option") or {}).get("value", "")
            self.cmd_sev(ctx, ParsedCommand("sev", args=(value,)), incident)
        elif action_id == blocks.STATUS:
            self.set_status(ctx, incident, (action.get("selected_option") or {}).get("value", ""))
        elif action_id == blocks.ASSIGN_ROLE:
            self._open(ctx, blocks.role_modal(self.policy, incident, channel=ctx.channel))
        elif action_id == blocks.ADD_NOTE:
            self._open(ctx, blocks.note_modal(incident, channel=ctx.channel))
        elif action_id == blocks.POST_UPDATE:
            self._open(ctx, blocks.update_modal(self.policy, incident, channel=ctx.channel))
        elif action_id == blocks.RESOLVE:
            self.cmd_resolve(ctx, ParsedCommand("resolve"), incident)
        elif action_id == blocks.REOPEN:
            self.cmd_reopen(ctx, ParsedCommand("reopen"), incident)
        elif action_id == blocks.CLOSE:
            self.cmd_close(ctx, ParsedCommand("close"), incident)
        elif action_id == blocks.RETRY_SETUP:
            self.cmd_retry(ctx, ParsedCommand("retry"), incident)
        else:
            log.info("unhandled action", extra={"action_id": action_id[:100]})

    def declare_anyway(self, ctx: Ctx, action: dict[str, Any]) -> None:
        """The Declare anyway button of a did-you-mean question: declare what was typed, once. The
        key comes from the command (scoped to whoever clicks), so a second click, or a click
        redelivered, finds the incident the first one declared."""
        try:
            value = json.loads(str(action.get("value") or ""))
        except ValueError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            raise InvalidInput("That button no longer works; type `/incident declare <title>`.")
        text = value["text"].strip()
        if not text:
            raise InvalidInput("Give the incident a title: `/incident declare <title>`.")
        key = f"anyway:{ctx.user}:{str(value.get('key') or '')[:200]}"
        self.declare_now(replace(ctx, key=key), text)

    def _incident_from_value(self, action: dict[str, Any]) -> Incident:
        raw = str(action.get("value") or "")
        if not raw.isdigit():
            block_id = str(action.get("block_id") or "")
            raw = block_id.removeprefix("incident:")
        if not raw.isdigit():
            raise InvalidInput("That button does not belong to an incident any more.")
        with self.fb.db.read() as session:
            return core.get_incident(session, int(raw))

    def _ack_and_take_ic(self, session: Session, incident_id: int, ctx: Ctx) -> core.Change:
        roles = core.current_roles(session, incident_id)
        if COMMANDER in roles:
            return core.acknowledge_incident(
                session, self.policy, incident_id, actor=ctx.user, key=ctx.key
            )
        return core.assign_role(
            session, self.policy, incident_id, COMMANDER, ctx.user, actor=ctx.user, key=ctx.key
        )

    def set_status(self, ctx: Ctx, incident: Incident, status: str) -> None:
        target = self.policy.find_status(status)
        current = self.policy.find_status(incident.status)
        if target is not None and target.phase == "closed":
            self.flows.require("close", ctx.user, incident)
        if (
            target is not None
            and current is not None
            and current.phase != "active"
            and target.phase == "active"
        ):
            self.flows.require("reopen", ctx.user, incident)
        name = target.name if target else status
        self._apply(
            ctx,
            incident,
            lambda s: core.change_status(
                s, self.policy, incident.id or 0, status, actor=ctx.user, key=ctx.key
            ),
            f"{incident.ref} is now {name}.",
            f"{incident.ref} is already {name}.",
        )

    def _open(self, ctx: Ctx, view: dict[str, Any]) -> None:
        if not ctx.trigger_id:
            raise InvalidInput("Slack sent no trigger to open the form; use the command.")
        self.gateway.open_view(ctx.trigger_id, view)

    # -- modals ------------------------------------------------------------------------------

    def view_submission(self, ack: Callable[..., Any], body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        callback = view.get("callback_id")
        values = _values(view)
        errors = self._validate(callback, values)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        try:
            self.inbox.record("view", f"view:{view.get('id', '')}", body)
        except NotRecorded:
            first = next(iter((view.get("state") or {}).get("values") or {}), None)
            if first is not None:
                ack(response_action="errors", errors={first: NOT_SAVED[10:150]})
                return
        ack()

    def process_view(self, kind: str, body: dict[str, Any], replies: Replies) -> None:
        view = body.get("view") or {}
        metadata = _metadata(view)
        channel = metadata.get("channel") if isinstance(metadata.get("channel"), str) else None
        replies.channel = channel
        ctx = Ctx(
            user=(body.get("user") or {}).get("id", ""),
            channel=channel,
            respond=replies,
            key=f"view:{view.get('id', '')}",
        )
        self.run_view(ctx, str(view.get("callback_id")), _values(view), metadata)

    def _validate(self, callback: Any, values: dict[str, Any]) -> dict[str, str]:
        if callback == blocks.DECLARE_VIEW:
            title = " ".join(str(values.get("title") or "").split())
            if not title:
                return {"title": "Say in a few words what is wrong."}
            impact = values.get("impact_started")
            if isinstance(impact, int) and impact > utcnow().timestamp() + 60:
                return {"impact_started": "The impact cannot start in the future."}
        if callback == blocks.NOTE_VIEW and not str(values.get("note") or "").strip():
            return {"note": "The note is empty."}
        if callback == blocks.UPDATE_VIEW and not str(values.get("update") or "").strip():
            return {"update": "The update is empty."}
        return {}

    def run_view(
        self, ctx: Ctx, callback: str, values: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        if callback == blocks.DECLARE_VIEW:
            impact = values.get("impact_started")
            outcome = self.flows.declare(
                reporter=ctx.user,
                title=self.quiet(str(values.get("title") or "")),
                severity=str(values.get("severity") or "") or None,
                summary=self.quiet(escape_mrkdwn(str(values.get("summary") or ""))),
                service=str(values.get("service") or "") or None,
                private="private" in (values.get("private") or []),
                impact_started_at=(
                    datetime.fromtimestamp(int(impact), UTC) if isinstance(impact, int) else None
                ),
                responders=list(values.get("responders") or []),
                key=ctx.key,
            )
            self.tell_declared(ctx, outcome.incident, outcome.repeat)
            return
        if callback == blocks.CAPTURE_VIEW:
            incident_id = int(str(values.get("incident") or "0"))
            with self.fb.db.read() as session:
                incident = core.get_incident(session, incident_id)
            self.check_visible(Ctx(ctx.user, None, ctx.respond, ctx.key), incident)
            channel, ts = str(metadata.get("channel")), str(metadata.get("ts"))
            try:  # the whole message, if Firebreak can read that channel
                change = self.flows.capture(
                    channel, ts, by=ctx.user, key=ctx.key, incident=incident
                )
            except SlackCallError:  # otherwise what the form carried
                change = self.flows.capture(
                    channel,
                    ts,
                    by=ctx.user,
                    key=ctx.key,
                    incident=incident,
                    message=metadata.get("message"),
                )
            ctx.channel = None
            if change is not None:
                reply(ctx, f":pushpin: Added to {incident.ref}'s timeline.")
            return
        incident_id = int(metadata.get("incident_id") or 0)
        with self.fb.db.read() as session:
            incident = core.get_incident(session, incident_id)
        ctx.channel = ctx.channel or incident.slack_channel_id
        if callback == blocks.NOTE_VIEW:
            # Form text is typed as is; stored like command text, in Slack's markup.
            note = escape_mrkdwn(str(values.get("note") or ""))
            self.cmd_note(ctx, ParsedCommand("note", text=note), incident)
        elif callback == blocks.UPDATE_VIEW:
            # The update first: a refused status change must not cost the update. Each of the
            # two changes gets its own idempotency key.
            text = escape_mrkdwn(str(values.get("update") or ""))
            self.post_update(replace(ctx, key=f"{ctx.key}:update"), incident, text)
            status = values.get("status")
            if status:
                with self.fb.db.read() as session:
                    incident = core.get_incident(session, incident_id)
                self.set_status(replace(ctx, key=f"{ctx.key}:status"), incident, str(status))
        elif callback == blocks.ROLE_VIEW:
            role = str(values.get("role") or "")
            user = self.known_user(str(values.get("user") or ""))
            self._assign(ctx, incident, role, user)

    # -- shortcuts ---------------------------------------------------------------------------

    def message_shortcut(
        self, ack: Callable[..., Any], body: dict[str, Any], respond: Respond
    ) -> None:
        ctx, channel, ts, message = self.shortcut_context(body, respond)
        with self.fb.db.read() as session:
            here = core.find_incident_by_channel(session, channel)
        if here is not None:
            self.record(ack, "shortcut", ctx.key, body, respond)
            return
        ack()

        def ask_which_incident() -> None:
            with self.fb.db.read() as session:
                open_incidents = core.list_incidents(
                    session, self.policy, phases=("active", "resolved")
                )
            view = blocks.capture_modal(
                [i for i in open_incidents if self.flows.can_see(ctx.user, i)],
                channel=channel,
                ts=ts,
                message=message,
            )
            self._open(ctx, view)

        self.soon(ctx, ask_which_incident)

    def shortcut_context(
        self, body: dict[str, Any], respond: Respond
    ) -> tuple[Ctx, str, str, dict[str, Any]]:
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("channel") or {}).get("id", "")
        message = body.get("message") or {}
        ts = str(message.get("ts") or body.get("message_ts") or "")
        ctx = Ctx(
            user=user,
            channel=channel,
            respond=respond,
            key=f"shortcut:{channel}:{ts}:{body.get('action_ts', '')}",
            trigger_id=body.get("trigger_id"),
        )
        return ctx, channel, ts, message

    def process_shortcut(self, kind: str, body: dict[str, Any], replies: Replies) -> None:
        ctx, channel, ts, message = self.shortcut_context(body, replies)
        with self.fb.db.read() as session:
            here = core.find_incident_by_channel(session, channel)
        if here is None:
            return
        change = self.flows.capture(
            channel, ts, by=ctx.user, key=ctx.key, incident=here, message=message
        )
        if change is not None and change.changed:
            reply(ctx, f":pushpin: Added to {here.ref}'s timeline.")
        else:
            reply(ctx, f"That message is already on {here.ref}'s timeline.")

    def global_declare(self, ack: Callable[..., Any], body: dict[str, Any], respond: Any) -> None:
        """The global shortcut: open the declare form (nothing is changed until it is sent)."""
        ack()
        ctx = Ctx(
            user=(body.get("user") or {}).get("id", ""),
            channel=None,
            respond=respond or (lambda **_: None),
            key=f"shortcut:{body.get('action_ts', '')}",
            trigger_id=body.get("trigger_id"),
        )
        self.soon(ctx, lambda: self.open_declare_form(ctx))

    # -- events ------------------------------------------------------------------------------

    def event(self, event: dict[str, Any], body: dict[str, Any], ack: Callable[..., Any]) -> None:
        """Record the events that change something (captures, welcomes); Slack's redelivery of
        one already recorded is answered 200 and changes nothing. The Home tab is only read."""
        kind = event.get("type")
        if kind == "app_home_opened":
            ack()
            if event.get("tab", "home") == "home":
                self.in_background(lambda: self._home_opened(event))
            return
        if kind in ("reaction_added", "reaction_removed"):
            item = event.get("item") or {}
            if (
                event.get("reaction") != self.policy.slack.capture_reaction
                or item.get("type") != "message"
                or not item.get("channel")
                or not item.get("ts")
            ):
                ack()
                return
        event_id = str(body.get("event_id") or "")
        if not event_id:
            ack()
            return
        self.record(ack, "event", f"event:{event_id}", body)

    def process_event(self, kind: str, body: dict[str, Any], replies: Replies) -> None:
        event = body.get("event") or {}
        if event.get("type") in ("reaction_added", "reaction_removed"):
            self._reaction(event, body, replies)
        elif event.get("type") == "member_joined_channel":
            self._member_joined(event)

    def _reaction(self, event: dict[str, Any], body: dict[str, Any], replies: Replies) -> None:
        item = event.get("item") or {}
        key = f"event:{body.get('event_id', '')}"
        user = str(event.get("user", ""))
        try:
            if event.get("type") == "reaction_added":
                self.flows.capture(item["channel"], item["ts"], by=user, key=key)
            else:
                self.flows.uncapture(item["channel"], item["ts"], by=user, key=key)
        except SlackCallError as exc:
            if exc.transient:
                raise  # retried by the runner: the capture is not lost
            self._capture_failed(event, replies, exc)
        except FirebreakError as exc:
            self._capture_failed(event, replies, exc)

    def _capture_failed(self, event: dict[str, Any], replies: Replies, exc: Exception) -> None:
        # The pin stays on the message, so everyone would believe it is on the timeline:
        # tell the person who pinned it.
        log.warning("timeline capture failed", extra={"error": type(exc).__name__})
        verb = (
            "add that message to"
            if event.get("type") == "reaction_added"
            else "take that message off"
        )
        replies(
            f":warning: Firebreak could not {verb} the incident timeline: {exc} "
            f"Remove :{self.policy.slack.capture_reaction}: and add it again, or use "
            "the message shortcut *Add to incident timeline*."
        )

    def _member_joined(self, event: dict[str, Any]) -> None:
        """Someone joined an incident channel: show them, and only them, where things stand."""
        channel, user = str(event.get("channel", "")), str(event.get("user", ""))
        with self.fb.db.read() as session:
            incident = core.find_incident_by_channel(session, channel)
            if incident is None or incident.id is None:
                return
            snap = snapshot(session, incident.id, self.policy)
        if user == self.gateway.bot_user_id():
            return
        text, payload = blocks.incident_summary(self.policy, snap)
        try:
            self.gateway.post_ephemeral(
                channel, user, f"Welcome to {incident.ref}. {text}", payload
            )
        except SlackCallError as exc:
            if exc.transient and not exc.ambiguous:
                raise
            log.warning("welcome not sent", extra={"error": exc.error})

    def _home_opened(self, event: dict[str, Any]) -> None:
        try:
            self.flows.publish_home(str(event.get("user", "")))
        except SlackCallError as exc:
            log.warning("home not published", extra={"error": exc.error})


# Text kept as written (notes, updates, action items, captured messages) is quietened where it
# is shown (``quiet``, ``blocks``); titles and the resolve and reopen texts are quietened as they
# are stored, because the announcements of status changes repeat them as stored.
_QUIET_WHEN_STORED = {"declare", "declare_title", "did_you_mean", "resolve", "reopen"}

_OPENS_A_FORM = {blocks.HOME_DECLARE, blocks.ASSIGN_ROLE, blocks.ADD_NOTE, blocks.POST_UPDATE}


def _logged(job: Callable[[], None]) -> None:
    try:
        job()
    except Exception:
        observability.ERRORS.labels(where="event").inc()
        log.exception("event handling failed")


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _values(view: dict[str, Any]) -> dict[str, Any]:
    """``state.values`` flattened to ``{block_id: value}`` whatever the element type."""
    result: dict[str, Any] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for element in actions.values():
            kind = element.get("type")
            if kind == "static_select":
                result[block_id] = (element.get("selected_option") or {}).get("value")
            elif kind == "users_select":
                result[block_id] = element.get("selected_user")
            elif kind == "multi_users_select":
                result[block_id] = element.get("selected_users") or []
            elif kind == "checkboxes":
                result[block_id] = [o.get("value") for o in element.get("selected_options") or []]
            elif kind == "datetimepicker":
                result[block_id] = element.get("selected_date_time")
            else:
                result[block_id] = element.get("value")
    return result
