"""What a Slack request does to an incident: the core change, in one transaction.

The Slack side of a change (the channel, the pinned summary, the announcement, messages in the
channel) is not done here: the core writes it as effects in the change's own transaction
(``bot.effects.triggers``) and the effect runner does it, once, on whichever replica is alive.
So a flow never leaves an incident half set up: what was committed will happen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from bot import access, postmortem
from bot import incidents as core
from bot.access import Action
from bot.clock import utcnow
from bot.config import Policy
from bot.effects import store
from bot.effects.failures import describe
from bot.effects.triggers import refresh
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.models import EventKind, Incident, Postmortem
from bot.runtime import Firebreak
from bot.slack import blocks
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.slack.limits import message_author, message_text, same_emoji, truncate
from bot.slack.metadata import posted_by_firebreak
from bot.slack.postmortem_effects import queue_upload

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = timedelta(minutes=2)
OWN_MESSAGE = "That message is Firebreak's own: what it says is on the timeline already."


@dataclass
class DeclareOutcome:
    incident: Incident
    repeat: bool


@dataclass(frozen=True)
class SetupState:
    """Where an incident's Slack set-up stands, read from its effects."""

    channel: str | None
    running: list[str]
    """Effects not done yet (pending, or being done right now), by what they do."""
    failed: list[str]
    """Effects that failed for good, with why."""


class SlackDirectory:
    """``access.Directory`` backed by Slack: workspace admins, user groups, channel members."""

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

    @property
    def policy(self) -> Policy:
        return self.fb.policy

    @property
    def gateway(self) -> SlackGateway:
        return self.fb.gateway

    # -- access ------------------------------------------------------------------------------

    def can_see(self, user: str, incident: Incident, *, channel: str | None = None) -> bool:
        """``access.can_see`` with Slack as the directory."""
        return access.can_see(self.policy, user, incident, self.directory, channel=channel)

    def _roles(self, incident: Incident | None) -> dict[str, str]:
        if incident is None or incident.id is None:
            return {}
        with self.fb.db.read() as session:
            return core.current_roles(session, incident.id)

    def allows(self, action: Action, user: str, incident: Incident | None) -> bool:
        """Whether ``user`` may perform ``action``; nothing is recorded (``require`` does)."""
        try:
            access.require(
                self.policy,
                action,
                user,
                incident=incident,
                roles=self._roles(incident),
                directory=self.directory,
            )
        except NotAllowed:
            return False
        return True

    def require(
        self, action: Action, user: str, incident: Incident | None, *, key: str | None = None
    ) -> None:
        """Check access; a refusal on an incident is recorded on its timeline (once per
        request: ``key`` names it)."""
        roles = self._roles(incident)
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
                        key=f"denied:{action}:{key}" if key else None,
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
        """Declare; the channel and its set-up are effects of the same transaction."""
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
                invite=[reporter, *responders],
                now=now,
            )
            incident = change.incident
        if not change.changed:
            return DeclareOutcome(incident, repeat=True)
        log.info(
            "incident declared", extra={"incident": incident.ref, "severity": incident.severity}
        )
        return DeclareOutcome(incident, repeat=False)

    def setup_state(self, incident_id: int) -> SetupState:
        from_effects = self._effects(incident_id)
        with self.fb.db.read() as session:
            incident = core.get_incident(session, incident_id)
        running = [what for what, state, _ in from_effects if state in store.LIVE]
        failed = [f"{what}: {error}" for what, state, error in from_effects if state == "failed"]
        return SetupState(incident.slack_channel_id, running, failed)

    def _effects(self, incident_id: int) -> list[tuple[str, str, str]]:
        with self.fb.db.read() as session:
            rows = store.incident_effects(session, incident_id)
        return [(describe(r.kind), r.state, r.last_error or "") for r in rows]

    def retry_setup(self, incident_id: int, *, key: str) -> int:
        """``/incident retry``: run the incident's failed effects again (and its channel
        creation, if it never ran). Returns how many were queued."""
        now = utcnow()
        with self.fb.db.transaction() as session:
            incident = core.lock_incident(session, incident_id)
            count = store.retry_failed(session, incident_id, now=now)
            if incident.slack_channel_id is not None:
                refresh(session, incident, now=now)
        return count

    def refresh_open_summaries(self) -> int:
        """Keep "open for" current on the pinned summaries of active incidents (run every few
        minutes by the scheduler on every replica; the refresh is one coalesced effect per
        incident, so replicas never duplicate it). Returns how many were asked for."""
        now = utcnow()
        with self.fb.db.read() as session:
            active = core.list_incidents(session, self.policy, phases=("active",))
        ids = [i.id for i in active if i.id is not None and i.summary_message_ts is not None]
        # One incident per transaction, its lock first, as every change takes it: re-arming
        # many refresh rows in one transaction would lock them in an order of its own and
        # deadlock (on PostgreSQL) with a runner finishing one while starting the next.
        asked = 0
        for incident_id in ids:
            try:
                with self.fb.db.transaction() as session:
                    refresh(session, core.lock_incident(session, incident_id), now=now)
                asked += 1
            except Exception:  # the others are still refreshed; this one at the next sweep
                log.exception("could not ask for a summary refresh", extra={"id": incident_id})
        return asked

    def change(self, incident_id: int, apply: Callable[[Session], core.Change]) -> core.Change:
        """Run one core change in a transaction (its Slack effects are written with it)."""
        with self.fb.db.transaction() as session:
            return apply(session)

    # -- postmortems -------------------------------------------------------------------------

    def generate_postmortem(self, incident_id: int, *, actor: str, key: str) -> Postmortem:
        """A draft on demand (``/incident postmortem``), uploaded to the incident channel by an
        effect of the same transaction."""
        with self.fb.db.read() as session:
            names = postmortem.look_up_names(session, self.policy, incident_id, self.names)
        with self.fb.db.transaction() as session:
            draft = postmortem.generate_postmortem(
                session, self.policy, incident_id, actor=actor, key=key, names=names
            )
            if not draft.slack_file_id:
                queue_upload(session, draft)
        return draft

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
        pinned: bool = False,
    ) -> core.Change | None:
        """Put a Slack message on the incident's timeline (once). ``pinned``: asked by the
        capture reaction, so only while the message still carries it (Slack may redeliver the
        reaction after its removal was processed)."""
        if incident is None:
            with self.fb.db.read() as session:
                incident = core.find_incident_by_channel(session, channel)
        if incident is None or incident.id is None:
            return None
        if message is None:
            message = self.gateway.find_message(channel, ts)
        if message is None:
            raise NotFound("That message cannot be found any more (deleted?).")
        if pinned and not self._carries_capture_reaction(message):
            return None
        if message.get("user") == self.gateway.bot_user_id() and "metadata" not in message:
            message = self.gateway.find_message(channel, ts) or message  # with its metadata
        if posted_by_firebreak(message):
            # A status update, the summary, a step: recorded when Firebreak posted it, under
            # who did it (captured, it would be there twice, with Firebreak as a responder).
            raise InvalidInput(OWN_MESSAGE)
        author = message_author(message)
        text = truncate(message_text(message), core.TEXT_MAX)
        permalink = self.gateway.permalink(channel, ts)
        with self.fb.db.transaction() as session:
            return core.capture_message(
                session,
                self.policy,
                incident.id,
                source_ref=f"slack:{channel}:{ts}",
                text=text,
                author=author,
                occurred_at=datetime.fromtimestamp(float(ts), UTC),
                captured_by=by,
                source_url=permalink,
                data={"channel": channel, "ts": ts, "via": "reaction" if pinned else "shortcut"},
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
        if message is not None and self._carries_capture_reaction(message):
            return None
        with self.fb.db.transaction() as session:
            return core.withdraw_capture(
                session, self.policy, incident.id, f"slack:{channel}:{ts}", actor=by, key=key
            )

    def _carries_capture_reaction(self, message: dict[str, object]) -> bool:
        """Someone has the capture reaction on ``message`` now (as Slack shows it)."""
        reaction = self.policy.slack.capture_reaction
        reactions = message.get("reactions")
        return any(
            isinstance(item, dict)
            and same_emoji(item.get("name"), reaction)
            and item.get("count", 0) > 0
            for item in (reactions if isinstance(reactions, list) else [])
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
