"""What happens in Slack when something happens to an incident.

A flow calls the domain core in one transaction, then makes the Slack side match: create and
set up the channel, edit the pinned summary and the announcement, capture messages. Slack work is
resumable: each finished step is remembered on the incident (``slack_state``, message
timestamps), so a retry after a failure continues where it stopped and never posts twice. A lease
on the incident row keeps two workers (two replicas, a retry click) from setting up the same
incident at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot import access, observability, postmortem
from bot import incidents as core
from bot.access import Action
from bot.clock import utcnow
from bot.config import Policy
from bot.errors import InvalidInput
from bot.models import (
    ActionItem,
    EventKind,
    Incident,
    Postmortem,
    RunbookRun,
    RunbookStepState,
    TimelineEvent,
)
from bot.runtime import Firebreak
from bot.slack import blocks
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.slack.naming import incident_channel_name

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=90)
_ANNOUNCED: dict[str, str] = {
    EventKind.SEVERITY_CHANGED: ":signal_strength:",
    EventKind.STATUS_CHANGED: ":arrows_counterclockwise:",
    EventKind.ROLE_ASSIGNED: ":firefighter:",
    EventKind.ROLE_UNASSIGNED: ":firefighter:",
    EventKind.ACKNOWLEDGED: ":eyes:",
}
DUPLICATE_WINDOW = timedelta(minutes=2)
NAME_ATTEMPTS = 10


@dataclass
class DeclareOutcome:
    incident: Incident
    repeat: bool
    problems: list[str] = field(default_factory=list)


class SlackDirectory:
    """``access.Directory`` backed by Slack: workspace admins and user group members."""

    def __init__(self, gateway: SlackGateway) -> None:
        self.gateway = gateway

    def is_workspace_admin(self, user: str) -> bool:
        try:
            found = self.gateway.user(user)
        except SlackCallError:
            return False
        return bool(found and found.is_admin)

    def group_members(self, group: str) -> set[str]:
        try:
            group_id = group
            if group.startswith("@"):
                group_id = self.gateway.usergroups().get(group[1:], "")
                if not group_id:
                    return set()
            return self.gateway.usergroup_members(group_id)
        except SlackCallError:
            return set()

    def channel_members(self, channel: str) -> set[str]:
        try:
            return self.gateway.members(channel)
        except SlackCallError:
            return set()


class SlackNames:
    """Readable names for Slack ids in postmortems (``postmortem.NameResolver``)."""

    def __init__(self, gateway: SlackGateway) -> None:
        self.gateway = gateway

    def user(self, user_id: str) -> str | None:
        return self.gateway.user_name(user_id)

    def channel(self, channel_id: str) -> str | None:
        return self.gateway.channel_name(channel_id)


class IncidentFlows:
    def __init__(self, firebreak: Firebreak) -> None:
        self.fb = firebreak
        self.directory = SlackDirectory(firebreak.gateway)
        self.names = SlackNames(firebreak.gateway)
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def policy(self) -> Policy:
        return self.fb.policy

    @property
    def gateway(self) -> SlackGateway:
        return self.fb.gateway

    def _lock_for(self, incident_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(incident_id, threading.Lock())

    # -- access ------------------------------------------------------------------------------

    def require(self, action: Action, user: str, incident: Incident | None) -> None:
        """Check access; a refusal on an incident is recorded on its timeline."""
        roles: dict[str, str] = {}
        if incident is not None and incident.id is not None:
            with self.fb.db.read() as session:
                roles = core.current_roles(session, incident.id)
        try:
            access.require(
                self.policy, action, user, incident=incident, roles=roles, directory=self.directory
            )
        except Exception:
            log.info(
                "permission denied",
                extra={
                    "user": user,
                    "action": action,
                    "incident": incident.ref if incident else None,
                },
            )
            if incident is not None and incident.id is not None:
                with self.fb.db.transaction() as session:
                    core.record_timeline_event(
                        session,
                        self.policy,
                        incident.id,
                        kind=EventKind.PERMISSION_DENIED,
                        text=f"<@{user}> was not allowed to {action.replace('_', ' ')}",
                        actor=user,
                        data={"action": action},
                    )
            raise

    # -- declare and set up ------------------------------------------------------------------

    def declare(
        self,
        *,
        reporter: str,
        title: str,
        severity: str | None = None,
        summary: str = "",
        service: str | None = None,
        private: bool = False,
        impact_started_at: datetime | None = None,
        responders: Sequence[str] = (),
        key: str | None = None,
    ) -> DeclareOutcome:
        self.require("declare", reporter, None)
        now = utcnow()
        with self.fb.db.transaction() as session:
            recent = core.find_recent_duplicate(
                session, reporter=reporter, title=title, since=now - DUPLICATE_WINDOW
            )
            if recent is not None:
                return DeclareOutcome(recent, repeat=True)
            change = core.declare_incident(
                session,
                self.policy,
                title=title,
                reporter=reporter,
                severity=severity,
                summary=summary,
                service=service,
                private=private,
                impact_started_at=impact_started_at,
                key=key,
                now=now,
            )
            incident = change.incident
            if change.changed:
                assert incident.id is not None
                invite = list(dict.fromkeys([reporter, *responders]))
                core.save_slack_refs(session, incident.id, state={"invite": invite})
        if not change.changed:
            return DeclareOutcome(incident, repeat=True)
        observability.INCIDENTS_DECLARED.labels(severity=incident.severity).inc()
        log.info(
            "incident declared", extra={"incident": incident.ref, "severity": incident.severity}
        )
        assert incident.id is not None
        problems = self.setup(incident.id)
        with self.fb.db.read() as session:
            incident = core.get_incident(session, incident.id)
        return DeclareOutcome(incident, repeat=False, problems=problems)

    def _take_lease(self, incident_id: int) -> bool:
        now = utcnow()
        with self.fb.db.transaction() as session:
            result = session.execute(
                update(Incident)
                .where(col(Incident.id) == incident_id)
                .where(
                    or_(
                        col(Incident.slack_lease_until).is_(None),
                        col(Incident.slack_lease_until) < now,
                    )
                )
                .values(slack_lease_until=now + LEASE)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def setup(self, incident_id: int) -> list[str]:
        """Create the channel, invite, set the topic, post and pin the summary, announce.
        Returns the problems a person should know about; set-up that failed can be retried."""
        if not self._take_lease(incident_id):
            return []
        problems: list[str] = []
        fatal: str | None = None
        try:
            fatal = self._setup_steps(incident_id, problems)
        except SlackCallError as exc:
            fatal = str(exc)
        except Exception:
            observability.ERRORS.labels(where="setup").inc()
            log.exception("incident set-up failed", extra={"incident_id": incident_id})
            fatal = "an unexpected error; the details are in Firebreak's log."
        finally:
            with self.fb.db.transaction() as session:
                core.save_slack_refs(
                    session, incident_id, slack_lease_until=None, slack_setup_error=fatal
                )
        if fatal:
            problems.insert(0, fatal)
        return problems

    def _setup_steps(self, incident_id: int, problems: list[str]) -> str | None:
        with self.fb.db.read() as session:
            incident = core.get_incident(session, incident_id)
        state = dict(incident.slack_state)
        if incident.slack_channel_id is None:
            channel_id, channel_name = self._create_channel(incident)
            with self.fb.db.transaction() as session:
                incident = core.attach_channel(
                    session,
                    self.policy,
                    incident_id,
                    channel_id=channel_id,
                    channel_name=channel_name,
                    actor=self.gateway.bot_user_id(),
                ).incident
        channel = incident.slack_channel_id
        assert channel is not None
        invite = [u for u in state.get("invite", []) if u not in state.get("invited", [])]
        if invite:
            # Whoever could not be invited (Slack down, rate limited) is tried again by a retry.
            invited, failed = self.gateway.invite(channel, invite)
            problems.extend(failed)
            self._save_state(incident_id, invited=[*state.get("invited", []), *invited])
        self.refresh(incident_id)
        with self.fb.db.read() as session:
            incident = core.get_incident(session, incident_id)
        if incident.summary_message_ts is None:
            return "the summary message could not be posted."
        if not incident.slack_state.get("pinned"):
            try:
                self.gateway.pin(channel, incident.summary_message_ts)
                self._save_state(incident_id, pinned=True)
            except SlackCallError as exc:
                problems.append(f"Pinning the summary: {exc}")
        announce_to = self.policy.slack.announcements_channel
        if announce_to and not incident.private and incident.announcement_ts is None:
            snap = self._snapshot(incident_id)
            text, payload = blocks.announcement(self.policy, snap)
            try:
                ts = self.gateway.post_message(announce_to, text, payload)
                with self.fb.db.transaction() as session:
                    core.save_slack_refs(
                        session,
                        incident_id,
                        announcement_channel_id=announce_to,
                        announcement_ts=ts,
                    )
            except SlackCallError as exc:
                problems.append(f"Announcing in <#{announce_to}>: {exc}")
        if not incident.slack_state.get("suggested"):
            self._suggest_runbooks(incident)
            self._save_state(incident_id, suggested=True)
        return None

    def _create_channel(self, incident: Incident) -> tuple[str, str]:
        for attempt in range(1, NAME_ATTEMPTS + 1):
            name = incident_channel_name(
                self.policy.slack.channel_name,
                number=incident.number,
                title=incident.title,
                severity=incident.severity,
                declared_at=incident.declared_at,
                attempt=attempt,
            )
            try:
                channel = self.gateway.create_channel(name, private=incident.private)
            except SlackCallError as exc:
                if exc.error == "name_taken":
                    continue
                raise
            return str(channel["id"]), str(channel.get("name", name))
        raise SlackCallError(
            "conversations.create", "name_taken", f"Every name tried for {incident.ref} is taken."
        )

    def _save_state(self, incident_id: int, **values: object) -> None:
        with self.fb.db.transaction() as session:
            core.save_slack_refs(session, incident_id, state=dict(values))

    def _suggest_runbooks(self, incident: Incident) -> None:
        catalog = self.fb.catalog
        if catalog is None or not incident.slack_channel_id or self.policy.runbooks.suggestions < 1:
            return
        matches = catalog.suggest(
            title=incident.title,
            summary=incident.summary,
            service=incident.service,
            severity=incident.severity,
            alerts=(),
            limit=self.policy.runbooks.suggestions,
        )
        if not matches:
            return
        text, payload = blocks.suggestions_blocks(
            incident, [(m.runbook.id, m.runbook.title, ", ".join(m.reasons)) for m in matches]
        )
        try:
            self.gateway.post_message(incident.slack_channel_id, text, payload)
        except SlackCallError as exc:
            log.warning("runbook suggestions not posted", extra={"error": exc.error})

    # -- keeping Slack in step ---------------------------------------------------------------

    def _snapshot(self, incident_id: int) -> blocks.IncidentSnapshot:
        with self.fb.db.read() as session:
            return snapshot(session, incident_id)

    def refresh(self, incident_id: int) -> None:
        """Make the summary, the announcement and the topic show the incident as it is now.
        Messages are edited in place; the summary is posted only if it was never posted."""
        with self._lock_for(incident_id):
            snap = self._snapshot(incident_id)
            incident = snap.incident
            channel = incident.slack_channel_id
            if channel is None:
                return
            text, payload = blocks.incident_summary(self.policy, snap)
            if incident.summary_message_ts is None:
                ts = self.gateway.post_message(channel, text, payload)
                with self.fb.db.transaction() as session:
                    core.save_slack_refs(session, incident_id, summary_message_ts=ts)
            else:
                self.gateway.update_message(channel, incident.summary_message_ts, text, payload)
            topic = blocks.channel_topic(self.policy, incident, snap.roles)
            if incident.slack_state.get("topic") != topic:
                try:
                    self.gateway.set_topic(channel, topic)
                    self._save_state(incident_id, topic=topic)
                except SlackCallError as exc:
                    log.warning("topic not set", extra={"error": exc.error})
            if incident.announcement_ts and incident.announcement_channel_id:
                text, payload = blocks.announcement(self.policy, snap)
                try:
                    self.gateway.update_message(
                        incident.announcement_channel_id, incident.announcement_ts, text, payload
                    )
                except SlackCallError as exc:
                    log.warning("announcement not updated", extra={"error": exc.error})

    def refresh_open_summaries(self) -> int:
        """Keep "open for" current on the pinned summaries of active incidents (run every few
        minutes by the scheduler). Returns how many were refreshed."""
        with self.fb.db.read() as session:
            active = core.list_incidents(session, self.policy, phases=("active",))
        refreshed = 0
        for incident in active:
            if incident.id is None or incident.summary_message_ts is None:
                continue
            if self.refresh_quietly(incident.id) is None:
                refreshed += 1
        return refreshed

    def refresh_quietly(self, incident_id: int) -> str | None:
        """``refresh`` for after a change: a Slack failure is reported, the change stands."""
        try:
            self.refresh(incident_id)
        except SlackCallError as exc:
            return f"The incident was updated, but its summary message was not: {exc}"
        return None

    def change(self, incident_id: int, apply: Callable[[Session], core.Change]) -> core.Change:
        """Run one core change in a transaction; refresh Slack when something changed."""
        with self.fb.db.transaction() as session:
            result = apply(session)
        if result.changed:
            problem = self.refresh_quietly(incident_id)
            if problem:
                result.detail["problem"] = problem
            elif result.event is not None and result.event.kind in _ANNOUNCED:
                self._invite_assignee(result.incident, result.event)
                self._tell_channel(result.incident, result.event)
            if result.event is not None and result.event.data.get("phase") == "closed":
                problem = self._postmortem_on_close(result)
                if problem:
                    result.detail["problem"] = problem
        return result

    # -- postmortems -------------------------------------------------------------------------

    def _postmortem_on_close(self, change: core.Change) -> str | None:
        """Draft the postmortem in its own transaction after the close committed, so a failing
        draft never keeps an incident open; the key makes a repeated close draft once."""
        actor = change.event.actor_id if change.event is not None else None
        try:
            with self.fb.db.transaction() as session:
                draft = postmortem.generate_on_close(
                    session, self.policy, change, actor=actor or "firebreak", names=self.names
                )
        except Exception:
            observability.ERRORS.labels(where="postmortem").inc()
            log.exception("postmortem draft failed", extra={"incident": change.incident.ref})
            return "The postmortem draft could not be generated; see Firebreak's log."
        if draft is None:
            return None
        return self._upload_postmortem(change.incident, draft)

    def generate_postmortem(
        self, incident_id: int, *, actor: str, key: str
    ) -> tuple[Postmortem, str | None]:
        """A draft on demand (``/incident postmortem``), posted to the incident channel."""
        with self.fb.db.transaction() as session:
            draft = postmortem.generate_postmortem(
                session, self.policy, incident_id, actor=actor, key=key, names=self.names
            )
            incident = core.get_incident(session, incident_id)
        if draft.slack_file_id:
            return draft, None
        return draft, self._upload_postmortem(incident, draft)

    def _upload_postmortem(self, incident: Incident, draft: Postmortem) -> str | None:
        if incident.slack_channel_id is None or draft.slack_file_id:
            return None
        note = (
            f" (the team template failed, the built-in one was used: {draft.template_error})"
            if draft.template_error
            else ""
        )
        try:
            file_id = self.gateway.upload_file(
                incident.slack_channel_id,
                f"{incident.ref}-postmortem-v{draft.version}.md",
                draft.markdown,
                title=f"{incident.ref} postmortem draft v{draft.version}",
                comment=f":memo: Postmortem draft v{draft.version} for {incident.ref}, written "
                f"from the timeline. Fill in the italic prompts.{note}",
            )
        except SlackCallError as exc:
            return f"The postmortem draft v{draft.version} is saved, but uploading it failed: {exc}"
        with self.fb.db.transaction() as session:
            stored = session.get(Postmortem, draft.id)
            if stored is not None:
                stored.slack_file_id = file_id
                session.add(stored)
        return None

    def _invite_assignee(self, incident: Incident, event: TimelineEvent) -> None:
        """Whoever is given a role joins the incident channel (the announcement that follows
        mentions them, so Slack notifies them)."""
        user = event.data.get("user") if event.kind == EventKind.ROLE_ASSIGNED else None
        if not user or incident.slack_channel_id is None:
            return
        _, problems = self.gateway.invite(incident.slack_channel_id, [str(user)])
        for problem in problems:
            log.warning("role holder not invited", extra={"problem": problem[:200]})

    def _tell_channel(self, incident: Incident, event: TimelineEvent) -> None:
        """Say in the incident channel what changed and who changed it, so everyone sees it
        where they are reading (the pinned summary may be far up)."""
        if incident.slack_channel_id is None:
            return
        who = f"<@{event.actor_id}> " if event.actor_id else ""
        text = f"{_ANNOUNCED[event.kind]} {who}— {event.text}"
        try:
            self.gateway.post_message(incident.slack_channel_id, text[:3000])
        except SlackCallError as exc:
            log.warning("change not announced", extra={"error": exc.error})

    # -- timeline capture --------------------------------------------------------------------

    def capture(
        self,
        channel: str,
        ts: str,
        *,
        by: str,
        key: str | None,
        incident: Incident | None = None,
        message: dict[str, object] | None = None,
    ) -> core.Change | None:
        """Put a Slack message on the incident's timeline (once)."""
        if incident is None:
            with self.fb.db.read() as session:
                incident = core.find_incident_by_channel(session, channel)
        if incident is None or incident.id is None:
            return None
        if message is None:
            message = self.gateway.find_message(channel, ts)
        if message is None:
            raise InvalidInput("That message cannot be found any more (deleted?).")
        author = message.get("user") or message.get("bot_id")
        text = str(message.get("text") or "")
        for file in message.get("files") or []:  # type: ignore[attr-defined]
            text += f"\n[file: {file.get('name') or file.get('title') or 'attachment'}]"
        permalink = self.gateway.permalink(channel, ts)
        with self.fb.db.transaction() as session:
            return core.capture_message(
                session,
                self.policy,
                incident.id,
                source_ref=f"slack:{channel}:{ts}",
                text=text,
                author=str(author) if author else None,
                occurred_at=datetime.fromtimestamp(float(ts), UTC),
                captured_by=by,
                source_url=permalink,
                data={"channel": channel, "ts": ts},
                key=key,
            )

    def uncapture(self, channel: str, ts: str, *, by: str, key: str | None) -> core.Change | None:
        """The capture reaction was removed: withdraw the capture unless someone else's
        reaction still stands."""
        with self.fb.db.read() as session:
            incident = core.find_incident_by_channel(session, channel)
        if incident is None or incident.id is None:
            return None
        message = self.gateway.find_message(channel, ts)
        reaction = self.policy.slack.capture_reaction
        if message is not None:
            for item in message.get("reactions") or []:
                if item.get("name") == reaction and item.get("count", 0) > 0:
                    return None
        with self.fb.db.transaction() as session:
            return core.withdraw_capture(
                session, self.policy, incident.id, f"slack:{channel}:{ts}", actor=by, key=key
            )

    # -- App Home ----------------------------------------------------------------------------

    def publish_home(self, user: str) -> None:
        now = utcnow()
        with self.fb.db.read() as session:
            open_incidents = core.list_incidents(
                session, self.policy, phases=("active", "resolved")
            )
            commanders = {
                i.id or 0: core.current_roles(session, i.id or 0).get("commander", "")
                for i in open_incidents
            }
        visible = [i for i in open_incidents if self.can_see(user, i)]
        self.gateway.publish_home(
            user,
            blocks.home_view(self.policy, visible, {k: v for k, v in commanders.items() if v}, now),
        )

    def can_see(self, user: str, incident: Incident, *, channel: str | None = None) -> bool:
        """``access.can_see`` with Slack as the directory."""
        return access.can_see(self.policy, user, incident, self.directory, channel=channel)


def announced(kind: str) -> bool:
    """Whether a change of this kind is announced to everyone in the incident channel."""
    return kind in _ANNOUNCED


def snapshot(session: Session, incident_id: int) -> blocks.IncidentSnapshot:
    incident = core.get_incident(session, incident_id)
    latest = session.exec(
        select(TimelineEvent)
        .where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.kind == EventKind.STATUS_UPDATE
        )
        .order_by(col(TimelineEvent.occurred_at).desc(), col(TimelineEvent.id).desc())
    ).first()
    open_items = len(
        session.exec(
            select(ActionItem.id).where(
                ActionItem.incident_id == incident_id, ActionItem.status == "open"
            )
        ).all()
    )
    runs = session.exec(
        select(RunbookRun).where(RunbookRun.incident_id == incident_id).order_by(col(RunbookRun.id))
    ).all()
    runbooks = []
    for run in runs:
        done = len(
            session.exec(
                select(RunbookStepState.id).where(
                    RunbookStepState.run_id == run.id,
                    col(RunbookStepState.state).in_(("done", "skipped")),
                )
            ).all()
        )
        runbooks.append((run.title, done, run.step_count))
    return blocks.IncidentSnapshot(
        incident=incident,
        roles=core.current_roles(session, incident_id),
        now=utcnow(),
        latest_update=latest,
        open_action_items=open_items,
        runbooks=runbooks,
    )
