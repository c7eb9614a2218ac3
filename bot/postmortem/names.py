"""The names a postmortem shows, kept with each version (in its ``postmortem_generated``
timeline entry), so that a draft generated without Slack (``firebreak postmortem``) shows the
names the bot's drafts showed, not raw ids. A name Firebreak never learned is shown as the id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from bot.markup import NameResolver
from bot.models import EventKind, TimelineEvent

logger = logging.getLogger("bot.postmortem")

_LONGEST_NAME = 200


class RememberedNames:
    """A ``NameResolver`` that asks ``live`` (Slack, when there is a connection) first, then
    the names kept with the incident's earlier drafts, and keeps every name it answered, to be
    stored with this draft (``kept``)."""

    def __init__(self, live: NameResolver | None, session: Session, incident_id: int) -> None:
        self._live = live
        self._stored_users, self._stored_channels = _stored(session, incident_id)
        self.users: dict[str, str] = {}
        self.channels: dict[str, str] = {}

    def user(self, user_id: str) -> str | None:
        live = self._live.user if self._live is not None else None
        return self._answer("user", live, self._stored_users, self.users, user_id)

    def channel(self, channel_id: str) -> str | None:
        live = self._live.channel if self._live is not None else None
        return self._answer("channel", live, self._stored_channels, self.channels, channel_id)

    def _answer(
        self,
        what: str,
        lookup: Callable[[str], str | None] | None,
        stored: dict[str, str],
        kept: dict[str, str],
        ident: str,
    ) -> str | None:
        name = None
        if lookup is not None:
            try:
                name = lookup(ident)
            except Exception as exc:  # whatever the Slack layer's lookup raises
                logger.warning("cannot look up %s %s (%s); showing the id", what, ident, exc)
        cleaned = " ".join((name or "").split())[:_LONGEST_NAME] or stored.get(ident)
        if cleaned:
            kept[ident] = cleaned
        return cleaned or None

    def kept(self) -> dict[str, dict[str, str]]:
        """What to store with the draft: every name it shows, by Slack id."""
        return {
            "users": dict(sorted(self.users.items())),
            "channels": dict(sorted(self.channels.items())),
        }


def _stored(session: Session, incident_id: int) -> tuple[dict[str, str], dict[str, str]]:
    """The names kept with the incident's drafts, the latest winning."""
    users: dict[str, str] = {}
    channels: dict[str, str] = {}
    rows = session.exec(
        select(TimelineEvent.data)
        .where(TimelineEvent.incident_id == incident_id)
        .where(TimelineEvent.kind == EventKind.POSTMORTEM_GENERATED)
        .order_by(col(TimelineEvent.id))
    ).all()
    for data in rows:
        names = (data or {}).get("names")
        if isinstance(names, dict):
            users.update(_valid(names.get("users")))
            channels.update(_valid(names.get("channels")))
    return users, channels


def _valid(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        k: v[:_LONGEST_NAME]
        for k, v in value.items()
        if isinstance(k, str) and isinstance(v, str) and v.strip()
    }
