"""Clicks, form submissions and shortcuts: recorded, then processed; forms open at once."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App

from bot import incidents as core
from bot.clock import utcnow
from bot.config import COMMANDER
from bot.db import whole_number
from bot.db_errors import database_unavailable
from bot.errors import InvalidInput, InvalidTransition
from bot.models import Incident
from bot.slack import blocks
from bot.slack.commands import STALE_VALUE, ParsedCommand, id_from_value
from bot.slack.gateway import SlackCallError
from bot.slack.inbound import NOT_SAVED, NotRecorded, Replies
from bot.slack.limits import escape_mrkdwn
from bot.slack.listeners.base import made_by_this_request
from bot.slack.listeners.commands import CommandListeners
from bot.slack.listeners.context import _OPENS_A_FORM, Ctx, Respond, _metadata, _values, reply

log = logging.getLogger(__name__)

PICK_INCIDENT = "Pick the incident to add this message to."


def _not_offered(what: str, value: str, known: list[str]) -> str:
    """A form's choice that is not in the current policy (it changed since the form opened, or
    the form was not Firebreak's): said under the input, with what to pick instead."""
    return f"{value[:40]!r} is not a {what} in the current policy. Pick one of: {', '.join(known)}."


def seen_on_summary(block_id: str) -> tuple[str | None, str | None]:
    """The severity and the status a summary showed, from its actions block
    (``incident:<id>:<severity>:<status>``); ``None`` for what a summary posted before it
    carried them does not say."""
    parts = block_id.split(":")
    if parts[0] != "incident" or len(parts) not in (3, 4):
        return None, None
    status = parts[3] if len(parts) == 4 else ""
    return parts[2] or None, status or None


class InteractionListeners(CommandListeners):
    def process_action(self, kind: str, body: dict[str, Any], replies: Replies) -> None:
        ctx, action = self.click_context(body, replies)
        action_id = str(action.get("action_id", ""))
        for prefix, run in self.clicks:
            if action_id.startswith(prefix):
                run(ctx, action)
                return
        self.run_action(ctx, action)

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

    def _commander_already(self, incident: Incident, user: str) -> str:
        """Why "Acknowledge / I'm IC" changed nothing: who holds the role, and how to take it."""
        with self.fb.db.read() as session:
            commander = core.current_roles(session, incident.id or 0).get(COMMANDER)
        if commander == user:
            return f"You are already the Incident Commander of {incident.ref}."
        if commander is None:
            return f"{incident.ref} already has a commander."
        return (
            f"{incident.ref} already has a commander: <@{commander}>. To take over, "
            f"`/incident {incident.ref} ic me`."
        )

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
            if not made_by_this_request(change):
                reply(ctx, self._commander_already(incident, ctx.user))
        elif action_id == blocks.ACKNOWLEDGE:
            self.cmd_ack(ctx, ParsedCommand("ack"), incident)
        elif action_id == blocks.SEVERITY:
            value = (action.get("selected_option") or {}).get("value", "")
            seen, _ = seen_on_summary(str(action.get("block_id") or ""))
            self.cmd_sev(ctx, ParsedCommand("sev", args=(value,)), incident, seen)
        elif action_id == blocks.STATUS:
            _, seen = seen_on_summary(str(action.get("block_id") or ""))
            value = (action.get("selected_option") or {}).get("value", "")
            self.set_status(ctx, incident, value, seen=seen)
        elif action_id == blocks.ASSIGN_ROLE:
            self._open(ctx, blocks.role_modal(self.policy, incident, channel=ctx.channel))
        elif action_id == blocks.ADD_NOTE:
            self._open(ctx, blocks.note_modal(incident, channel=ctx.channel))
        elif action_id == blocks.POST_UPDATE:
            self._open(ctx, blocks.update_modal(self.policy, incident, channel=ctx.channel))
        elif action_id in (blocks.RESOLVE, blocks.REOPEN, blocks.CLOSE):
            # As the status menu: a copy of the summary drawn before someone else changed the
            # status (a Close on one drawn before a reopen) changes nothing, and says why.
            _, seen = seen_on_summary(str(action.get("block_id") or ""))
            lifecycle = {
                blocks.RESOLVE: self.cmd_resolve,
                blocks.REOPEN: self.cmd_reopen,
                blocks.CLOSE: self.cmd_close,
            }[action_id]
            lifecycle(ctx, ParsedCommand(action_id.rsplit(":", 1)[-1]), incident, seen)
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
            raise InvalidInput(
                "That button no longer works; type `/incident declare &lt;title&gt;`."
            )
        text = value["text"].strip()
        if not text:
            raise InvalidInput("Give the incident a title: `/incident declare &lt;title&gt;`.")
        key = f"anyway:{ctx.user}:{str(value.get('key') or '')[:200]}"
        self.declare_now(replace(ctx, key=key), text)

    def view_submission(self, ack: Callable[..., Any], body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        callback = view.get("callback_id")
        values = _values(view)
        errors = self._validate(callback, values) or self._still_open(callback, view)
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

    def summary_as_stored(self, typed: str) -> str:
        """A summary typed in the declare form as it is kept: Slack markup, shown as written."""
        return self.quiet(escape_mrkdwn(typed))

    def _validate(self, callback: Any, values: dict[str, Any]) -> dict[str, str]:
        """What is wrong with a form, by input block, checked before it closes (Slack shows each
        message under its input, the form and what was typed stay): everything that needs no
        write and no Slack call. Whether a picked person is a bot is known here only if Slack
        told Firebreak before (``users.info`` may not answer within the 3 s Slack gives the
        acknowledgement): a person not known yet is checked when the form is processed."""
        if callback == blocks.DECLARE_VIEW:
            if not core.shows_something(str(values.get("title") or "")):
                return {"title": "Say in a few words what is wrong."}
            title = self.quiet(str(values.get("title") or ""))
            if len(title) > core.TITLE_MAX:
                return {
                    "title": f"With @here, @channel and @everyone kept silent (a mark each) this "
                    f"title is {len(title)} characters; the limit is {core.TITLE_MAX}: shorten it."
                }
            impact = values.get("impact_started")
            if isinstance(impact, int) and impact > utcnow().timestamp() + 60:
                return {"impact_started": "The impact cannot start in the future."}
            severity = values.get("severity")
            known = [s.key for s in self.policy.severities]
            if severity and severity not in known:
                return {"severity": _not_offered("severity", str(severity), known)}
            summary = self.summary_as_stored(str(values.get("summary") or ""))
            if len(summary) > core.SUMMARY_MAX:
                return {
                    "summary": f"Written out for Slack (each &, < and > takes 4 or 5 "
                    f"characters) this summary is {len(summary):,} characters; the limit is "
                    f"{core.SUMMARY_MAX:,}: shorten it."
                }
        if callback == blocks.NOTE_VIEW and not core.shows_something(str(values.get("note") or "")):
            return {"note": "The note is empty."}
        if callback == blocks.UPDATE_VIEW:
            if not core.shows_something(str(values.get("update") or "")):
                return {"update": "The update is empty."}
            status = values.get("status")
            known = [s.key for s in self.policy.statuses]
            if status and status not in known:
                return {"status": _not_offered("status", str(status), known)}
        if callback == blocks.ROLE_VIEW:
            role = values.get("role")
            known = [r.key for r in self.policy.roles]
            if role not in known:
                return {"role": _not_offered("role", str(role or ""), known)}
            picked = self.gateway.cached_user(str(values.get("user") or ""))
            if picked is not None and picked.is_bot:
                return {"user": f"{picked.label} is a bot; give incident roles to people."}
        picked_incident = str(values.get("incident") or "")
        if callback == blocks.CAPTURE_VIEW and whole_number(picked_incident) is None:
            return {"incident": PICK_INCIDENT}
        return {}

    def _still_open(self, callback: Any, view: dict[str, Any]) -> dict[str, str]:
        """An update or a role for an incident closed while the form was open: refused under
        the form's input, so what was typed stays on screen instead of being lost. A database
        that cannot be read leaves the check to the processing, which refuses the same way."""
        field = {
            blocks.UPDATE_VIEW: ("update", "post an update"),
            blocks.ROLE_VIEW: ("role", "change who holds its roles"),
        }
        if callback not in field:
            return {}
        block, doing = field[callback]
        incident_id = whole_number(str(_metadata(view).get("incident_id") or ""))
        try:
            with self.fb.db.read() as session:
                incident = session.get(Incident, incident_id) if incident_id else None
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            return {}
        try:
            if incident is not None:
                core.require_open(self.policy, incident, doing)
        except InvalidTransition as refused:
            return {block: str(refused)}
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
                summary=self.summary_as_stored(str(values.get("summary") or "")),
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
            incident_id = id_from_value(values.get("incident"), PICK_INCIDENT)
            with self.fb.db.read() as session:
                incident = core.get_incident(session, incident_id)
            self.check_visible(Ctx(ctx.user, None, ctx.respond, ctx.key), incident)
            channel, ts = str(metadata.get("channel")), str(metadata.get("ts"))
            try:  # the whole message, if Firebreak can read that channel
                change = self.flows.capture(
                    channel, ts, by=ctx.user, key=ctx.key, incident=incident
                )
            except SlackCallError:  # otherwise what the form carried
                carried = metadata.get("message")
                if carried is not None and not isinstance(carried, dict):
                    raise InvalidInput(STALE_VALUE) from None  # not what Firebreak wrote
                change = self.flows.capture(
                    channel,
                    ts,
                    by=ctx.user,
                    key=ctx.key,
                    incident=incident,
                    message=carried,
                )
            # Answered by direct message: the message may be in a channel Firebreak is not in,
            # where an ephemeral answer can only fail first.
            ctx.channel = None
            if isinstance(ctx.respond, Replies):
                ctx.respond.channel = None
            if change is not None:
                reply(ctx, f":pushpin: Added to {incident.ref}'s timeline.")
            return
        incident_id = id_from_value(metadata.get("incident_id"))
        with self.fb.db.read() as session:
            incident = core.get_incident(session, incident_id)
        # Checked when the form is sent, by membership: the person may have left the private
        # channel since the form opened, and the form's hidden data is no proof of where it was.
        self.check_visible(Ctx(ctx.user, None, ctx.respond, ctx.key), incident)
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
                seen = metadata.get("status")
                self.set_status(
                    replace(ctx, key=f"{ctx.key}:status"),
                    incident,
                    str(status),
                    seen=seen if isinstance(seen, str) else None,
                )
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
            # Who may see a private incident takes Slack calls (its channel's members), one
            # per incident, and the trigger expires 3 s after the click: the form opens with
            # the public incidents, then shows the private ones this person can see.
            public = [i for i in open_incidents if not i.private]
            checking = len(public) < len(open_incidents)

            def form(shown: list[Incident], *, checking: bool) -> dict[str, Any]:
                return blocks.capture_modal(
                    shown, channel=channel, ts=ts, message=message, checking=checking
                )

            view_id = self._open(ctx, form(public, checking=checking))
            if checking and view_id is not None:
                visible = [i for i in open_incidents if self.flows.can_see(ctx.user, i)]
                try:
                    self.gateway.update_view(view_id, form(visible, checking=False))
                except SlackCallError as exc:
                    if exc.error != "not_found":
                        raise
                    log.info("capture form closed before it was filled in")

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
        if change is not None and made_by_this_request(change):
            reply(ctx, f":pushpin: Added to {here.ref}'s timeline.")
            return
        assert here.id is not None
        with self.fb.db.read() as session:
            there = core.find_event_by_source(session, here.id, f"slack:{channel}:{ts}")
        pinned = there is not None and (there.data or {}).get("via") != "shortcut"
        reply(
            ctx,
            f"That message is already on {here.ref}'s timeline"
            + (
                ", put there with :pushpin:: it comes off if the last :pushpin: on it is removed."
                if pinned
                else "."
            ),
        )

    def global_declare(self, ack: Callable[..., Any], body: dict[str, Any], respond: Any) -> None:
        """The global shortcut: open the declare form (nothing is changed until it is sent)."""
        ack()
        ctx = Ctx(
            user=(body.get("user") or {}).get("id", ""),
            channel=None,
            # A global shortcut has no response_url: answers go to a direct message.
            respond=self._ephemeral(None, (body.get("user") or {}).get("id", "")),
            key=f"shortcut:{body.get('action_ts', '')}",
            trigger_id=body.get("trigger_id"),
        )
        self.soon(ctx, lambda: self.open_declare_form(ctx))

    # -- events ------------------------------------------------------------------------------


CAPTURE_SHORTCUT = "add_to_timeline"
DECLARE_SHORTCUT = "declare_incident"


def register(app: App, listeners: InteractionListeners) -> None:
    """Buttons of incident messages and the Home tab, every form, both shortcuts."""
    app.action(re.compile(r"^(incident|home):"))(listeners.action)
    for callback in (
        blocks.DECLARE_VIEW,
        blocks.NOTE_VIEW,
        blocks.UPDATE_VIEW,
        blocks.ROLE_VIEW,
        blocks.CAPTURE_VIEW,
    ):
        app.view_submission(callback)(listeners.view_submission)
    app.view_closed(re.compile(r".*"))(lambda ack: ack())
    app.shortcut(CAPTURE_SHORTCUT)(listeners.message_shortcut)
    app.shortcut(DECLARE_SHORTCUT)(listeners.global_declare)
