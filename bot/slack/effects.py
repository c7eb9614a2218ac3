"""Executing effects in Slack: the handlers the effect runner calls, one per kind.

Each handler reads what it needs from the database, renders Block Kit (the effect itself is plain
data), makes its Slack calls and returns ``Done`` with what to record. Slack failures become
``TransientError`` (retried with backoff) or ``PermanentError`` (the effect fails, the timeline
and the commander are told). When an earlier attempt may have done the work (``Claimed.repeat``:
the process died, or Slack answered 5xx or timed out after the request left), a handler checks
before repeating:

* a message is found by the effect key in its metadata (``conversations.history`` with
  ``include_all_metadata``) instead of being posted again;
* a channel is found by its name, created by this bot (and marked in its purpose), instead of
  creating ``name-2``;
* an uploaded file is checked with ``files.info`` before it is shared again;
* edits, pins, topics and invites are repeatable as they are;
* an ephemeral reply cannot be looked up, so after an ambiguous failure it is not repeated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from bot import incidents as core
from bot import postmortem
from bot.clock import utcnow
from bot.effects import kinds, store
from bot.effects.failures import on_effect_failed, on_effect_recovered
from bot.effects.models import Effect
from bot.effects.runner import Done, EffectRunner, Handler, PermanentError, TransientError
from bot.effects.store import Claimed
from bot.models import Incident, TimelineEvent
from bot.runbooks import progress
from bot.runtime import Firebreak
from bot.slack import blocks, event_notices, reminder_blocks
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.slack.inbound import who_and_where
from bot.slack.naming import incident_channel_name
from bot.slack.postmortem_effects import PostmortemEffects
from bot.slack.runbook_messages import render_run_message
from bot.slack.summary import snapshot

log = logging.getLogger(__name__)

NAME_ATTEMPTS = 10
LOOKBACK = timedelta(minutes=2)
"""How far before an effect was written to look for the message an earlier attempt posted."""


def slack_failure(exc: SlackCallError) -> Exception:
    """A Slack failure as the runner understands it."""
    if exc.transient:
        return TransientError(str(exc), retry_after=exc.retry_after, reason=exc.error)
    return PermanentError(str(exc), reason=exc.error)


_CHANNEL_PROBLEM = re.compile(r"\((is_archived|channel_not_found|not_in_channel)\)")
"""Slack's answers that are about the incident's channel, not about one effect: every effect
in that channel fails alike until someone acts, and the commander is told once."""


def channel_problem(error: str) -> str | None:
    """``channel:is_archived`` for a failure about the incident's channel, else None."""
    found = _CHANNEL_PROBLEM.search(error)
    return f"channel:{found.group(1)}" if found else None


def _in_channel(row: Effect, channel: str | None) -> bool:
    """Whether the effect acts in its incident's own channel (``channel``): a post to
    ``incident``, or to the channel by its id (a reminder names where it posts)."""
    if row.kind == kinds.POST:
        to = str(row.data.get("to") or "incident")
        return to == "incident" or (channel is not None and to == channel)
    return row.kind in (kinds.REFRESH, kinds.INVITE, kinds.RUNBOOK_MESSAGE)


DELETED = "the incident's channel was deleted"

_ANNOUNCEMENTS_ADVICE = {
    "is_archived": "it is archived. Unarchive it, or name another channel there.",
    "channel_not_found": "Firebreak cannot see it (deleted, or Firebreak was removed from a "
    "private channel). Invite Firebreak back with /invite @Firebreak, or name another channel "
    "there.",
    "not_in_channel": "Firebreak is not a member of it. Invite it with /invite @Firebreak, or "
    "name another channel there.",
}
"""What to do when the announcements channel refuses a post: its advice names the setting,
not the incident's channel, which works."""


def channel_marker(incident: Incident) -> str:
    """Written in the purpose of a channel Firebreak created, to recognise it later."""
    return f"firebreak:{incident.id}:{int(incident.declared_at.timestamp())}"


NoticeRenderer = Callable[[dict[str, Any]], tuple[str, list[dict[str, Any]]] | None]


_SUMMARY_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
"""``chat.update`` answers after which the pinned summary (or a runbook run's message) is
replaced by a new one."""


@dataclass
class SlackEffects:
    """The Slack handlers, bound to one running Firebreak.

    ``renderers`` adds notice types other packages post (alerts); ``extra`` adds handlers for
    effect kinds that are not Slack's (registered by their packages)."""

    fb: Firebreak
    names: postmortem.NameResolver | None = None
    worker_id: str = "firebreak"
    renderers: dict[str, NoticeRenderer] = field(default_factory=dict)
    extra: dict[str, Handler] = field(default_factory=dict)

    @property
    def gateway(self) -> SlackGateway:
        return self.fb.gateway

    def handlers(self) -> dict[str, Handler]:
        postmortems = PostmortemEffects(self.fb, self.names)
        return {
            kinds.CREATE_CHANNEL: self._guard(self.create_channel),
            kinds.INVITE: self._guard(self.invite),
            kinds.REFRESH: self._guard(self.refresh),
            kinds.ANNOUNCE: self._guard(self.announce),
            kinds.POST: self._guard(self.post),
            kinds.UPDATE: self._guard(self.update),
            kinds.RUNBOOK_MESSAGE: self._guard(self.runbook_message),
            kinds.REPLY: self.reply,
            kinds.POSTMORTEM_DRAFT: postmortems.draft,
            kinds.POSTMORTEM_UPLOAD: self._guard(postmortems.upload),
        }

    def runner(self, *, threads: int = 4, interval: float = 1.0) -> EffectRunner:
        return EffectRunner(
            self.fb.db,
            {**self.handlers(), **self.extra},
            worker_id=self.worker_id,
            threads=threads,
            interval=interval,
            on_failed=self._failed,
            on_recovered=lambda session, item: on_effect_recovered(session, self.fb.policy, item),
        )

    def _failed(self, session: Session, row: Effect, error: str) -> None:
        """A recorded request that failed for good is told to the person who made it, and
        lands on the timeline of the incident whose channel it came from."""
        if row.kind != kinds.SLACK_REQUEST:
            on_effect_failed(session, self.fb.policy, row, error, problem=channel_problem(error))
            if row.incident_id is None:
                return
            incident = core.get_incident(session, row.incident_id)
            if not _in_channel(row, incident.slack_channel_id):
                return
            # Archived, or Firebreak removed, without the event reaching it (an app without
            # the event, a delivery lost): Slack's refusal says so. Answers and the summary
            # follow, and being invited back posts what failed meanwhile.
            if "(is_archived)" in error:
                core.record_channel_archived(
                    session,
                    self.fb.policy,
                    row.incident_id,
                    archived=True,
                    actor=None,
                    key=f"effect:{row.id}:archived",
                )
            elif "(not_in_channel)" in error or (
                # What Slack answers for a private channel Firebreak was removed from.
                "(channel_not_found)" in error and incident.private
            ):
                core.record_channel_lost(
                    session,
                    self.fb.policy,
                    row.incident_id,
                    deleted=False,
                    key=f"effect:{row.id}:removed",
                    tell=False,  # the failure is told to the commander already
                )
            return
        person, channel = who_and_where(str(row.data.get("kind")), row.data.get("body") or {})
        about = core.find_incident_by_channel(session, channel) if channel else None
        on_effect_failed(
            session,
            self.fb.policy,
            row,
            error,
            incident_id=about.id if about is not None else None,
            person=person or None,
        )

    @staticmethod
    def _guard(handler: Callable[[Claimed], Done]) -> Handler:
        def run(item: Claimed) -> Done:
            try:
                return handler(item)
            except SlackCallError as exc:
                raise slack_failure(exc) from None

        return run

    def _incident(self, item: Claimed) -> Incident:
        assert item.incident_id is not None
        with self.fb.db.read() as session:
            return core.get_incident(session, item.incident_id)

    def _since(self, item: Claimed) -> float:
        return (item.created_at - LOOKBACK).timestamp()

    # -- set-up ------------------------------------------------------------------------------

    def create_channel(self, item: Claimed) -> Done:
        incident = self._incident(item)
        if incident.slack_channel_id is not None:
            return Done({"channel": incident.slack_channel_id, "already": True})
        bot_user = self.gateway.bot_user_id()
        marker = channel_marker(incident)
        for attempt in range(1, NAME_ATTEMPTS + 1):
            name = incident_channel_name(
                self.fb.policy.slack.channel_name,
                number=incident.number,
                title=incident.title,
                severity=incident.severity,
                declared_at=incident.declared_at,
                attempt=attempt,
            )
            found = self.gateway.find_channel(name) if item.repeat else None
            if found is not None and not self._ours(found, bot_user, marker):
                continue
            if found is None:
                try:
                    found = self.gateway.create_channel(name, private=incident.private)
                except SlackCallError as exc:
                    if exc.error != "name_taken":
                        raise
                    found = self.gateway.find_channel(name)
                    if found is None or not self._ours(found, bot_user, marker):
                        continue
            channel_id, channel_name = str(found["id"]), str(found.get("name") or name)
            purpose = (found.get("purpose") or {}).get("value") or ""
            if marker not in purpose:
                self.gateway.set_purpose(channel_id, blocks.channel_purpose(incident, marker))
            # The first people (the reporter, the roles given at declaration) are invited in
            # the same effect: a channel is ready when they are in it.
            users = [str(u) for u in incident.slack_state.get("invite") or []]
            try:
                invited, failed = self._invite(channel_id, users)
            except SlackCallError as exc:
                if exc.transient:
                    raise
                # Refused for everyone (a scope, the channel): the channel exists all the same
                # and is the incident's; the invitation fails on its own, told to the commander.
                invited, failed = [], dict.fromkeys(users, str(exc))
            return Done(
                {"channel": channel_id, "name": channel_name, "invited": invited},
                then=self._attach(item, incident, channel_id, channel_name, failed),
            )
        raise PermanentError(f"Every channel name tried for {incident.ref} is taken.")

    @staticmethod
    def _ours(channel: dict[str, Any], bot_user: str, marker: str) -> bool:
        """A channel with our name that this bot created for this incident (the marker), or
        created and left without a purpose (the attempt died before setting it)."""
        purpose = (channel.get("purpose") or {}).get("value") or ""
        return channel.get("creator") == bot_user and (marker in purpose or not purpose)

    def _attach(
        self,
        item: Claimed,
        incident: Incident,
        channel_id: str,
        name: str,
        failed_invites: dict[str, str],
    ) -> Callable[[Session], None]:
        def then(session: Session) -> None:
            assert incident.id is not None
            core.attach_channel(
                session,
                self.fb.policy,
                incident.id,
                channel_id=channel_id,
                channel_name=name,
                actor=None,  # Firebreak's own entry, as all of them: not a responder
            )
            if failed_invites:
                # Its own invitation, which fails as every effect does: on the timeline, told
                # to the commander, listed by `firebreak effects`, tried again by /incident retry.
                store.enqueue(
                    session,
                    kind=kinds.INVITE,
                    key=f"effect:{item.id}:invite",
                    data={"users": list(failed_invites)},
                    incident_id=incident.id,
                    lane=store.incident_lane(incident.id),
                    now=utcnow(),
                )

        return then

    def invite(self, item: Claimed) -> Done:
        incident = self._incident(item)
        channel = incident.slack_channel_id
        if channel is None:
            return Done({"skipped": "no channel"})
        if core.channel_deleted(incident):
            return Done({"skipped": DELETED})
        users = [str(u) for u in item.data.get("users") or []]
        invited, failed = self._invite(channel, users)
        if failed:
            # Those who could be invited are in (a retry finds them there, which is no error).
            raise PermanentError(
                "; ".join(f"<@{user}>: {why}" for user, why in failed.items())[:1500],
                reason="invite",
            )
        return Done({"invited": invited})

    def _invite(self, channel: str, users: list[str]) -> tuple[list[str], dict[str, str]]:
        """Invite ``users``; a transient failure raises (the effect is retried, and inviting
        someone already in the channel is no error). Returns who is in, and why Slack
        refused each of the others for good."""
        if not users:
            return [], {}
        invited, problems = self.gateway.invite(channel, users)
        transient = [exc for _, exc in problems if exc.transient]
        if transient:
            raise slack_failure(transient[0])
        return invited, {user: str(exc) for user, exc in problems}

    def refresh(self, item: Claimed) -> Done:
        """Summary (posted and pinned the first time, then edited), topic, announcement."""
        assert item.incident_id is not None
        with self.fb.db.read() as session:
            snap = snapshot(session, item.incident_id, self.fb.policy)
        incident = snap.incident
        channel = incident.slack_channel_id
        if channel is None:
            return Done({"skipped": "no channel"})
        policy = self.fb.policy
        problems: list[str] = []
        if core.channel_deleted(incident):  # nothing to edit or pin there: the announcement alone
            self._edit_announcement(snap, problems)
            return Done({"skipped": DELETED, "problems": problems})
        text, payload = blocks.incident_summary(policy, snap)
        state: dict[str, Any] = {}
        ts = incident.summary_message_ts
        replaced: str | None = None
        if ts is not None:
            try:
                self.gateway.update_message(channel, ts, text, payload)
            except SlackCallError as exc:
                if exc.error not in _SUMMARY_GONE:
                    raise
                # Deleted, or Slack will not let it be edited any more: a new summary replaces
                # it, under a key of its own so a repeat finds the new one, not the old.
                replaced, ts = ts, None
        if ts is None:
            key = f"summary:{incident.id}" + (f":after:{replaced}" if replaced else "")
            ts = (
                self.gateway.find_effect_message(
                    channel, key, since=incident.declared_at.timestamp() - 60
                )
                if item.repeat
                else None
            )
            if ts is None:
                ts = self.gateway.post_message(channel, text, payload, effect=key)
            # Remember it at once: a failure below must not lose which message is the summary.
            with self.fb.db.transaction() as session:
                assert incident.id is not None
                core.save_slack_refs(session, incident.id, summary_message_ts=ts)
        if replaced is not None:  # the old one must not stay pinned, showing a stale state
            self._cosmetic(problems, lambda: self.gateway.unpin(channel, replaced))
        unpinned = not incident.slack_state.get("pinned") or ts != incident.summary_message_ts
        pin_refused: SlackCallError | None = None
        if unpinned:
            try:
                self.gateway.pin(channel, ts)
                state["pinned"] = True
            except SlackCallError as exc:
                if exc.transient:
                    raise
                problems.append(str(exc))
                if incident.slack_state.get("pin_refused") != ts:  # not said yet
                    pin_refused = exc
                    state["pin_refused"] = ts
        topic = blocks.channel_topic(policy, incident, snap.roles)
        if incident.slack_state.get("topic") != topic and self._cosmetic(
            problems, lambda: self.gateway.set_topic(channel, topic)
        ):
            state["topic"] = topic
        self._edit_announcement(snap, problems)

        def save(session: Session) -> None:
            if state:
                assert incident.id is not None
                core.save_slack_refs(session, incident.id, state=state)

        if pin_refused is not None:
            # Slack refuses the pin for good (too_many_pins: the channel is full): the rest is
            # done and kept, and the effect fails, so the timeline and the commander say why.
            # Later refreshes try the pin again (once there is room) but do not say it again.
            with self.fb.db.transaction() as session:
                save(session)
            raise pin_refused
        return Done({"ts": ts, "problems": problems}, then=save)

    def _edit_announcement(self, snap: blocks.IncidentSnapshot, problems: list[str]) -> None:
        incident = snap.incident
        if incident.announcement_ts and incident.announcement_channel_id:
            text, payload = blocks.announcement(self.fb.policy, snap)
            announcement = (incident.announcement_channel_id, incident.announcement_ts)
            self._cosmetic(
                problems,
                lambda: self.gateway.update_message(*announcement, text, payload),
            )

    @staticmethod
    def _cosmetic(problems: list[str], call: Callable[[], object]) -> bool:
        """A step whose permanent failure must not undo the rest (unpinning a replaced summary,
        the topic, the announcement's copy): logged and noted; a transient one is retried with
        the effect."""
        try:
            call()
        except SlackCallError as exc:
            if exc.transient:
                raise
            log.warning("summary step refused", extra={"error": exc.error})
            problems.append(str(exc))
            return False
        return True

    def announce(self, item: Claimed) -> Done:
        assert item.incident_id is not None
        with self.fb.db.read() as session:
            snap = snapshot(session, item.incident_id, self.fb.policy)
        incident = snap.incident
        if incident.announcement_ts:
            return Done({"ts": incident.announcement_ts})
        channel = str(item.data.get("channel") or "")
        ts = (
            self.gateway.find_effect_message(channel, item.key, since=self._since(item))
            if (item.repeat)
            else None
        )
        if ts is None:
            text, payload = blocks.announcement(self.fb.policy, snap)
            try:
                ts = self.gateway.post_message(channel, text, payload, effect=item.key)
            except SlackCallError as exc:
                if exc.error in _ANNOUNCEMENTS_ADVICE:
                    raise PermanentError(
                        f"Slack refused to post in the announcements channel {channel} "
                        "(`announcements_channel` under [slack] in firebreak.toml): "
                        f"{_ANNOUNCEMENTS_ADVICE[exc.error]} The incident and its channel are "
                        "not affected.",
                        reason=exc.error,
                    ) from None
                raise

        def save(session: Session) -> None:
            assert incident.id is not None
            core.save_slack_refs(
                session, incident.id, announcement_channel_id=channel, announcement_ts=ts
            )

        return Done({"ts": ts, "channel": channel}, then=save)

    # -- messages ----------------------------------------------------------------------------

    def post(self, item: Claimed) -> Done:
        to = str(item.data.get("to") or "incident")
        notice = dict(item.data.get("notice") or {})
        incident = self._incident(item) if item.incident_id is not None else None
        if to == "incident":
            if incident is None or incident.slack_channel_id is None:
                return Done({"skipped": "no channel"})
            if core.channel_deleted(incident):
                return Done({"skipped": DELETED})
            channel = incident.slack_channel_id
        elif to.startswith(("U", "W")):
            channel = self.gateway.dm_channel(to)
        else:
            channel = to
        rendered = self.render(notice, incident)
        if rendered is None:
            return Done({"skipped": "nothing to say"})
        if item.repeat:
            found = self.gateway.find_effect_message(channel, item.key, since=self._since(item))
            if found is not None:
                return Done({"ts": found, "channel": channel, "found": True})
        text, payload = rendered
        ts = self.gateway.post_message(channel, text, payload, effect=item.key)
        return Done({"ts": ts, "channel": channel})

    def update(self, item: Claimed) -> Done:
        """Edit the message an earlier ``message.post`` posted (found by that effect's key; it
        ran before, in the same lane). Nothing to edit when it posted nothing."""
        with self.fb.db.read() as session:
            posted = session.exec(
                select(Effect).where(Effect.key == str(item.data.get("post") or ""))
            ).first()
        result = posted.result if posted is not None else {}
        channel, ts = str(result.get("channel") or ""), str(result.get("ts") or "")
        if not channel or not ts:
            return Done({"skipped": "no message to edit"})
        incident = self._incident(item) if item.incident_id is not None else None
        rendered = self.render(dict(item.data.get("notice") or {}), incident)
        if rendered is None:
            return Done({"skipped": "nothing to say"})
        self.gateway.update_message(channel, ts, *rendered)
        return Done({"ts": ts, "channel": channel})

    def render(
        self, notice: dict[str, Any], incident: Incident | None
    ) -> tuple[str, list[dict[str, Any]]] | None:
        """A notice (plain data from the domain) as a Slack message; None: nothing to post."""
        kind = str(notice.get("type") or "")
        if kind in ("change", "status_update"):
            return self._event_message(kind, int(notice.get("event") or 0), incident)
        if kind == "runbook_suggestions":
            return self._suggestions(incident)
        if kind == "step_assigned":
            return self._step_assigned(int(notice.get("event") or 0), incident)
        if kind == "reopened" and incident is not None:
            with self.fb.db.read() as session:
                event = session.get(TimelineEvent, int(notice.get("event") or 0))
            if event is None:
                return None
            return event_notices.reopened(self.fb.policy, event, incident)
        if kind == "channel_lost" and incident is not None:
            return blocks.channel_lost(incident, deleted=bool(notice.get("deleted")))
        if kind == "channel_shared" and incident is not None:
            return blocks.channel_shared(incident, str(notice.get("team") or ""))
        if kind == "failure":
            problem = f"Firebreak could not {notice.get('what')}: {notice.get('error')}"
            if incident is not None:
                return blocks.setup_problem(incident, problem)
            text = f":warning: {problem}"
            return text[:3000], [blocks.section(text)]
        renderer = self.renderers.get(kind)
        if renderer is not None:
            return renderer(notice)
        message = reminder_blocks.render_notice(self.fb.policy, notice, self._groups())
        return message.text, message.blocks

    def _groups(self) -> dict[str, str]:
        try:
            return {h.lower(): g for h, g in self.gateway.usergroups().items()}
        except SlackCallError as exc:
            log.warning("user groups not listed; escalating with plain handles: %s", exc.error)
            return {}

    def _event_message(
        self, kind: str, event_id: int, incident: Incident | None
    ) -> tuple[str, list[dict[str, Any]]] | None:
        with self.fb.db.read() as session:
            event = session.get(TimelineEvent, event_id)
        if event is None or incident is None:
            return None
        return event_notices.event_message(self.fb.policy, kind, event, incident.ref)

    def _step_assigned(
        self, event_id: int, incident: Incident | None
    ) -> tuple[str, list[dict[str, Any]]] | None:
        with self.fb.db.read() as session:
            event = session.get(TimelineEvent, event_id)
            run_id = int(event.data.get("run_id") or 0) if event is not None else 0
            run = progress.get_run(session, run_id) if run_id else None
        if event is None or incident is None or run is None:
            return None
        return event_notices.step_assigned(event, run.title)

    def _suggestions(self, incident: Incident | None) -> tuple[str, list[dict[str, Any]]] | None:
        catalog = self.fb.catalog
        policy = self.fb.policy
        if catalog is None or incident is None or policy.runbooks.suggestions < 1:
            return None
        matches = catalog.suggest(
            title=incident.title,
            summary=incident.summary,
            service=incident.service,
            severity=incident.severity,
            alerts=tuple(incident.slack_state.get("alerts") or ()),
            limit=policy.runbooks.suggestions,
        )
        assert incident.id is not None
        with self.fb.db.read() as session:  # one an alert started already is not suggested
            running = {r.runbook_id for r in progress.list_runs(session, incident.id)}
        matches = [m for m in matches if m.runbook.id not in running]
        if not matches:
            return None
        return blocks.suggestions_blocks(
            incident, [(m.runbook.id, m.runbook.title, ", ".join(m.reasons)) for m in matches]
        )

    def runbook_message(self, item: Claimed) -> Done:
        run_id = int(item.data.get("run_id") or 0)
        with self.fb.db.read() as session:
            run = progress.get_run(session, run_id)
            incident = core.get_incident(session, run.incident_id)
        channel = run.slack_channel_id or incident.slack_channel_id
        if channel is None:
            return Done({"skipped": "no channel"})
        if channel == incident.slack_channel_id and core.channel_deleted(incident):
            return Done({"skipped": DELETED})
        message = render_run_message(
            run,
            steps_per_page=self.fb.policy.runbooks.steps_per_page,
            closed=self.fb.policy.phase_of(incident.status) == "closed",
        )
        ts = run.slack_message_ts
        replaced: str | None = None
        if ts:
            try:
                self.gateway.update_message(channel, ts, message.text, message.blocks)
                return Done({"ts": ts})
            except SlackCallError as exc:
                if exc.error not in _SUMMARY_GONE:
                    raise
                replaced = ts  # deleted: a new message, keyed apart so a repeat finds it
        key = f"runbook:{run_id}" + (f":after:{replaced}" if replaced else "")
        found = self.gateway.find_effect_message(
            channel, key, since=(run.started_at or item.created_at).timestamp() - 60
        )
        ts = found or self.gateway.post_message(channel, message.text, message.blocks, effect=key)

        def save(session: Session) -> None:
            progress.record_run_message(session, run_id, channel_id=channel, message_ts=ts)

        return Done({"ts": ts}, then=save)

    # -- replies -----------------------------------------------------------------------------

    def reply(self, item: Claimed) -> Done:
        """Answer a person: through the request's ``response_url`` when there is one, else an
        ephemeral message in the channel, else a direct message. At most once: after an
        ambiguous failure (or an attempt that died) it is not repeated."""
        data = item.data
        if item.repeat and not item.result.get("not_sent"):
            return Done({"unconfirmed": "an earlier attempt may have delivered it"})
        text = str(data.get("text") or "")
        payload = data.get("blocks") or None
        try:
            self._deliver_reply(data, text, payload)
        except SlackCallError as exc:
            if exc.ambiguous:
                return Done({"unconfirmed": exc.error})
            if exc.transient:
                raise TransientError(
                    str(exc),
                    retry_after=exc.retry_after,
                    reason=exc.error,
                    result={"not_sent": True},
                ) from None
            raise PermanentError(str(exc), reason=exc.error) from None
        return Done({"delivered": True})

    def _deliver_reply(
        self, data: dict[str, Any], text: str, payload: list[dict[str, Any]] | None
    ) -> None:
        url = str(data.get("response_url") or "")
        if url:
            status = self.gateway.respond(url, text, payload)
            if status == 200:
                return
            if status == 429 or status >= 500:
                raise SlackCallError(
                    "response_url", f"http_{status}", transient=True, ambiguous=status >= 500
                )
            # An expired or used-up response_url: fall back to an ephemeral message.
        user, channel = str(data.get("user") or ""), str(data.get("channel") or "")
        if channel:
            try:
                self.gateway.post_ephemeral(channel, user, text, payload)
                return
            except SlackCallError as exc:
                if exc.transient:
                    raise
        self.gateway.post_message(self.gateway.dm_channel(user), text, payload)
