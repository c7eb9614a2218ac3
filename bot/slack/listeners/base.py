"""The shared part of the listeners: the state they hold, recording requests before they are
acknowledged, and the operations several kinds of request share (declare, change status, post
an update, give a role)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot import access
from bot import incidents as core
from bot.db import whole_number
from bot.effects.triggers import ANNOUNCED_IN_CHANNEL
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.keys import fit_key
from bot.markup import neutralise_broadcasts
from bot.models import Incident
from bot.slack import blocks
from bot.slack.commands import id_from_value
from bot.slack.flows import IncidentFlows
from bot.slack.gateway import SlackCallError
from bot.slack.inbound import NOT_SAVED, Inbox, NotRecorded, processing_again
from bot.slack.listeners.context import (
    Ctx,
    Respond,
    _logged,
    guarded,
    reply,
    split_title,
)

if TYPE_CHECKING:
    from bot.slack.runbooks import RunbookSlack

log = logging.getLogger(__name__)


class ListenerBase:
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

    def incident_for(self, ctx: Ctx, ref: int | None, channel: str | None = None) -> Incident:
        """The incident the person named, by its number (``ref``) or by its channel
        (``channel``, a channel picked from Slack's # list); naming none means the incident of
        the channel they are in. A name that matches nothing is an answer, never a guess."""
        with self.fb.db.read() as session:
            if ref is not None:
                incident: Incident | None = core.find_incident(session, ref)
            elif channel is not None:
                incident = core.find_incident_by_channel(session, channel)
                if incident is None:
                    raise InvalidInput(
                        f"<#{channel}> is not an incident channel. Name the incident, "
                        "e.g. `/incident INC-42 status`, or see `/incident list`."
                    )
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
            raise InvalidInput(f"<@{user}> is a bot; choose a person.")
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
        applied = made_by_this_request(change)
        announced = applied and change.kind in ANNOUNCED_IN_CHANNEL
        message = done if applied else unchanged
        if announced:
            message = said_in_channel(change.incident, message, message)
        if change.detail.get("problem"):
            message += f"\n:warning: {change.detail['problem']}"
            reply(ctx, message)
        elif (
            not announced
            or ctx.channel != change.incident.slack_channel_id
            or core.channel_unusable(change.incident)
        ):
            # In the incident channel most changes are announced to everyone; elsewhere, and
            # when nothing changed, only the person who asked hears back.
            reply(ctx, message)
        return change

    # -- /incident ---------------------------------------------------------------------------

    def open_declare_form(self, ctx: Ctx, title: str = "") -> None:
        if not ctx.trigger_id:
            raise InvalidInput(
                "Slack sent no trigger to open the form; type `/incident &lt;title&gt;` instead."
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
        if repeat and processing_again() and incident.declare_key == fit_key(ctx.key):
            repeat = False  # declared by this very request, in the attempt whose end was lost
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

    def post_update(self, ctx: Ctx, incident: Incident, text: str) -> None:
        assert incident.id is not None
        change = self.flows.change(
            incident.id,
            lambda s: core.post_status_update(
                s, self.policy, incident.id or 0, text, actor=ctx.user, key=ctx.key
            ),
        )
        if not made_by_this_request(change):
            return
        # The update is posted in the incident channel by an effect of the same transaction.
        if ctx.channel != incident.slack_channel_id or core.channel_unusable(change.incident):
            # Saved now; the post is an effect still to run: said as it is.
            where = (
                f"<#{incident.slack_channel_id}>" if incident.slack_channel_id else "its channel"
            )
            posted = f"Update saved to {incident.ref}; posting it in {where}."
            reply(
                ctx,
                said_in_channel(
                    change.incident, posted, f"Update saved to {incident.ref}'s timeline."
                ),
            )

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
        """Answer someone who clicked in a message (only they see it) or, with no channel to
        answer in (the Home tab, a global shortcut) or none that takes it, in a direct
        message from Firebreak."""

        def send(text: str, **_: Any) -> None:
            if channel:
                try:
                    self.gateway.post_ephemeral(channel, user, text)
                    return
                except SlackCallError:
                    pass
            try:
                self.gateway.post_message(self.gateway.dm_channel(user), text)
            except SlackCallError as exc:
                log.warning("no place to answer a click", extra={"error": exc.error})

        return send

    def _incident_from_value(self, action: dict[str, Any]) -> Incident:
        """The incident a button names: by its value, or (a select menu, whose value is the
        option picked) by its block id, ``incident:<id>``."""
        number = whole_number(str(action.get("value") or ""))
        if number is None:
            block = str(action.get("block_id") or "").removeprefix("incident:")
            number = id_from_value(block.partition(":")[0])
        with self.fb.db.read() as session:
            return core.get_incident(session, number)

    def _ack_and_take_ic(self, session: Session, incident_id: int, ctx: Ctx) -> core.Change:
        return core.take_command(session, self.policy, incident_id, user=ctx.user, key=ctx.key)

    def set_status(
        self, ctx: Ctx, incident: Incident, status: str, *, seen: str | None = None
    ) -> None:
        """``seen``: the status on the summary the menu was on (``seen_on_summary``)."""
        target = self.policy.find_status(status)
        if target is not None and target.phase == "closed":
            self.flows.require("close", ctx.user, incident)
        # Whether this is a reopen is known only under the incident's lock (another change may
        # come first): the core refuses it there for someone [access] reopen does not name.
        may_reopen = self.flows.allows("reopen", ctx.user, incident)
        name = target.name if target else status
        try:
            self._apply(
                ctx,
                incident,
                lambda s: core.change_status(
                    s,
                    self.policy,
                    incident.id or 0,
                    status,
                    actor=ctx.user,
                    key=ctx.key,
                    seen=seen,
                    may_reopen=may_reopen,
                ),
                f"{incident.ref} is now {name}.",
                f"{incident.ref} is already {name}.",
            )
        except core.ReopenRefused:
            self.flows.require("reopen", ctx.user, incident, key=ctx.key)  # said and recorded
            raise

    def _open(self, ctx: Ctx, view: dict[str, Any]) -> str | None:
        """Open ``view``; its id (``None``: a repeated delivery found it open already)."""
        if not ctx.trigger_id:
            raise InvalidInput("Slack sent no trigger to open the form; use the command.")
        return self.gateway.open_view(ctx.trigger_id, view)

    # -- modals ------------------------------------------------------------------------------


def said_in_channel(incident: Incident, posted: str, saved: str) -> str:
    """The answer to a change Firebreak posts in the incident channel: ``posted``; while the
    channel is archived or deleted, or Firebreak is out of it, ``saved`` and why it is not
    there."""
    if not core.channel_unusable(incident):
        return posted
    name = (
        f"#{incident.slack_channel_name}"
        if incident.slack_channel_name
        else f"<#{incident.slack_channel_id}>"
    )
    lost = core.channel_lost(incident)
    if lost == "deleted":
        return (
            f"{saved} Its channel {name} was deleted, so it was not posted there; the "
            "timeline has it, and every command works from any channel."
        )
    if lost == "removed":
        return (
            f"{saved} Firebreak was removed from {name}, so it was not posted there: "
            f"`/invite @Firebreak` in {name} and Firebreak posts it."
        )
    return (
        f"{saved} Its channel {name} is archived, so it was not posted there: "
        "unarchive it and Firebreak posts what follows."
    )


def made_by_this_request(change: core.Change) -> bool:
    """The change was made now or, when this request is processed again (``processing_again``),
    by its earlier attempt: the core found its key. Another request with the same key (a second
    click of the same button) hears that nothing changed."""
    return change.changed or (processing_again() and bool(change.detail.get("repeat")))
