"""Events: pushpin captures and their withdrawal, welcomes, the App Home, incident channels
archived, unarchived, renamed, deleted, given a new id or shared with another organisation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, BoltResponse

from bot import incidents as core
from bot import observability
from bot.errors import FirebreakError, InvalidInput, NotFound
from bot.models import Incident
from bot.slack import blocks
from bot.slack.gateway import SlackCallError
from bot.slack.inbound import Replies
from bot.slack.limits import same_emoji
from bot.slack.listeners.base import ListenerBase
from bot.slack.summary import snapshot

log = logging.getLogger(__name__)


class EventListeners(ListenerBase):
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
                not same_emoji(event.get("reaction"), self.policy.slack.capture_reaction)
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
            self._member_joined(event, f"event:{body.get('event_id', '')}")
        elif event.get("type") in CHANNEL_CHANGES:
            self._channel_changed(event, f"event:{body.get('event_id', '')}", _event_time(body))
        elif event.get("type") in CHANNEL_LOSSES:
            self._channel_lost(event, f"event:{body.get('event_id', '')}")
        elif event.get("type") == "channel_id_changed":
            self._channel_id_changed(event, f"event:{body.get('event_id', '')}")
        elif event.get("type") in ("channel_shared", "channel_unshared"):
            self._channel_shared(event, f"event:{body.get('event_id', '')}", _event_time(body))

    def _reaction(self, event: dict[str, Any], body: dict[str, Any], replies: Replies) -> None:
        item = event.get("item") or {}
        key = f"event:{body.get('event_id', '')}"
        user = str(event.get("user", ""))
        try:
            if event.get("type") == "reaction_added":
                self.flows.capture(item["channel"], item["ts"], by=user, key=key, pinned=True)
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
        again = (
            ""  # a message deleted meanwhile, or Firebreak's own: trying again changes nothing
            if isinstance(exc, NotFound | InvalidInput)
            else f" Remove :{self.policy.slack.capture_reaction}: and add it again, or use "
            "the message shortcut *Add to incident timeline*."
        )
        replies(f":warning: Firebreak could not {verb} the incident timeline: {exc}{again}")

    def _member_joined(self, event: dict[str, Any], key: str) -> None:
        """Someone joined an incident channel: show them, and only them, where things stand."""
        channel, user = str(event.get("channel", "")), str(event.get("user", ""))
        with self.fb.db.read() as session:
            incident = core.find_incident_by_channel(session, channel)
            if incident is None or incident.id is None:
                return
            snap = snapshot(session, incident.id, self.policy)
        bot = self.gateway.bot_user_id()
        if user == bot:
            if core.channel_lost(incident) == "removed":
                incident_id = incident.id
                self.flows.change(
                    incident_id,
                    lambda s: core.record_channel_regained(s, self.policy, incident_id, key=key),
                )
            return
        set_up_with = {incident.reporter_id, *(incident.slack_state.get("invite") or [])}
        if event.get("inviter") == bot and user in set_up_with:
            # Invited as the channel was made (the reporter, the roles given at declaration):
            # its first message is the summary. Their joins race the channel's link to the
            # incident, so welcoming them would depend on which came first.
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

    def _channel_changed(self, event: dict[str, Any], key: str, at: datetime | None) -> None:
        """Someone archived, unarchived or renamed a channel: if it is an incident's, the
        incident's timeline and what Firebreak knows of the channel say so."""
        kind = str(event.get("type"))
        place = event.get("channel")
        channel = str(place.get("id", "") if isinstance(place, dict) else place or "")
        with self.fb.db.read() as session:
            incident = core.find_incident_by_channel(session, channel) if channel else None
        if incident is None or incident.id is None:
            return
        incident_id, actor = incident.id, str(event.get("user") or "") or None
        if kind.endswith("_rename"):
            name = str(place.get("name", "") if isinstance(place, dict) else "")
            self.flows.change(
                incident_id,
                lambda s: core.rename_channel(
                    s, self.policy, incident_id, name, actor=actor, key=key, as_of=at
                ),
            )
            return
        self.flows.change(
            incident_id,
            lambda s: core.record_channel_archived(
                s,
                self.policy,
                incident_id,
                archived=kind.endswith("_archive"),
                actor=actor,
                key=key,
                as_of=at,
            ),
        )

    def _channel_lost(self, event: dict[str, Any], key: str) -> None:
        """An incident's channel was deleted, or Firebreak was removed from it: on the
        timeline, and the commander is told (nothing posted there reaches anyone now)."""
        kind = str(event.get("type"))
        if kind == "member_left_channel" and event.get("user") != self.gateway.bot_user_id():
            return  # a person left: their business
        channel = str(event.get("channel") or "")
        with self.fb.db.read() as session:
            incident = core.find_incident_by_channel(session, channel) if channel else None
        if incident is None or incident.id is None:
            return
        incident_id = incident.id
        self.flows.change(
            incident_id,
            lambda s: core.record_channel_lost(
                s, self.policy, incident_id, deleted=kind.endswith("_deleted"), key=key
            ),
        )

    def _channel_id_changed(self, event: dict[str, Any], key: str) -> None:
        """Slack gave a channel a new id (a private channel shared through Slack Connect): if
        it was an incident's, the incident follows it."""
        old, new = str(event.get("old_channel_id") or ""), str(event.get("new_channel_id") or "")
        if not old or not new:
            return
        with self.fb.db.read() as session:
            incident = core.find_incident_by_channel(session, old)
        if incident is None or incident.id is None:
            return
        incident_id = incident.id
        self.flows.change(
            incident_id,
            lambda s: core.change_channel_id(s, self.policy, incident_id, new, key=key),
        )

    def _channel_shared(self, event: dict[str, Any], key: str, as_of: datetime | None) -> None:
        """An incident channel shared with another organisation, or one removed from it
        (``is_ext_shared``: whether others still share it): on the timeline, and the
        commander is told what a share means for what is posted there."""
        channel = str(event.get("channel") or "")
        removed = event.get("type") == "channel_unshared"
        shared = not removed or event.get("is_ext_shared") is True
        with self.fb.db.read() as session:
            incident = core.find_incident_by_channel(session, channel) if channel else None
        if incident is None and channel and not removed:
            incident = self._shared_under_new_id(channel, key)
        if incident is None or incident.id is None:
            return
        incident_id = incident.id
        team = str(
            event.get("connected_team_id") or event.get("previously_connected_team_id") or ""
        )
        self.flows.change(
            incident_id,
            lambda s: core.record_channel_shared(
                s,
                self.policy,
                incident_id,
                shared=shared,
                removed=removed,
                with_team=str(team or ""),
                key=key,
                as_of=as_of,
            ),
        )

    def _shared_under_new_id(self, channel: str, key: str) -> Incident | None:
        """Slack sends ``channel_shared`` for a private channel's new id and, apart,
        ``channel_id_changed``; events are not ordered, so the share may come first. The
        channel's name (unique in a workspace, kept by the share) finds the incident, which
        follows the new id now; the id change, when it comes, finds nothing left to do."""
        name = self.gateway.channel_name(channel)
        if not name:
            return None
        with self.fb.db.read() as session:
            incident = core.find_incident_by_channel_name(session, name)
        if incident is None or incident.id is None or not incident.slack_channel_id:
            return None
        if self.gateway.channel_name(incident.slack_channel_id) is not None:
            return None  # its channel is still there: another channel of the same name
        incident_id = incident.id
        self.flows.change(
            incident_id,
            lambda s: core.change_channel_id(s, self.policy, incident_id, channel, key=f"{key}:id"),
        )
        return incident

    def _home_opened(self, event: dict[str, Any]) -> None:
        try:
            self.flows.publish_home(str(event.get("user", "")))
        except SlackCallError as exc:
            log.warning("home not published", extra={"error": exc.error})


CHANNEL_CHANGES = frozenset(
    {
        "channel_archive",
        "channel_unarchive",
        "channel_rename",
        "group_archive",
        "group_unarchive",
        "group_rename",
    }
)
"""Changes to a channel made in Slack (``group_`` for private channels), recorded when the
channel is an incident's."""
CHANNEL_LOSSES = frozenset(
    {"channel_deleted", "group_deleted", "channel_left", "group_left", "member_left_channel"}
)
"""An incident's channel deleted, or Firebreak removed from it: ``channel_left`` /
``group_left`` (what Slack sends an app removed from a channel), ``member_left_channel`` of
the bot itself."""


def app_rate_limited(body: dict[str, Any], next_: Callable[[], None]) -> BoltResponse | None:
    """Slack's notice that it is dropping this app's events (more than 30,000 from one
    workspace in an hour). It has no inner event, so no listener matches it: answered 200 here,
    with a warning and a counter, so operators see that pins and welcomes are being lost."""
    if body.get("type") != "app_rate_limited":
        next_()
        return None
    observability.SLACK_EVENTS_RATE_LIMITED.inc()
    log.warning(
        "slack is dropping events to firebreak (app_rate_limited)",
        extra={
            "team": str(body.get("team_id", ""))[:40],
            "minute_rate_limited": body.get("minute_rate_limited"),
        },
    )
    return BoltResponse(status=200, body="")


def register(app: App, listeners: EventListeners) -> None:
    app.middleware(app_rate_limited)
    for kind in (
        "reaction_added",
        "reaction_removed",
        "app_home_opened",
        "member_joined_channel",
        *sorted(CHANNEL_CHANGES),
        *sorted(CHANNEL_LOSSES),
        "channel_id_changed",
        "channel_shared",
        "channel_unshared",
    ):
        app.event(kind)(listeners.event)


def _event_time(body: dict[str, Any]) -> datetime | None:
    """When the event happened: its ``event_ts`` (to the microsecond) or the envelope's
    ``event_time`` (to the second); a late redelivery carries the original time."""
    event = body.get("event") or {}
    candidates: tuple[Any, ...] = (event.get("event_ts"), body.get("event_time"))
    for raw in candidates:
        try:
            return datetime.fromtimestamp(float(raw), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            continue
    return None
