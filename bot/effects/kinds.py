"""The kinds of effect, and the plain data each carries. The Slack adapter executes them."""

from __future__ import annotations

SLACK_REQUEST = "slack.request"
"""A verified Slack request, recorded before the acknowledgement: ``{"body": ...}``."""
CREATE_CHANNEL = "channel.create"
"""Create the incident's channel (finding the one an interrupted attempt created)."""
INVITE = "channel.invite"
"""Invite ``users`` to the incident's channel."""
REFRESH = "incident.refresh"
"""Make the pinned summary, the topic and the announcement show the incident as it is now
(coalesced: one row per incident, latest state wins)."""
ANNOUNCE = "incident.announce"
"""Post the incident in the announcements channel (once)."""
POST = "message.post"
"""Post a notice: ``{"to": "incident" | channel id, "notice": {"type": ..., ...}}``."""
UPDATE = "message.update"
"""Edit the message a ``message.post`` effect posted into another notice (a question once it is
answered, its buttons gone): ``{"post": <that effect's key>, "notice": {"type": ..., ...}}``.
Written in the post's lane, so it runs after it."""
RUNBOOK_MESSAGE = "runbook.message"
"""Post or edit a runbook run's message (coalesced per run): ``{"run_id": ...}``."""
REPLY = "reply"
"""Answer the person who asked: ``{"user", "channel", "response_url", "text", "blocks"}``.
Ephemeral messages cannot be looked up, so after an ambiguous failure they are not repeated."""
POSTMORTEM_DRAFT = "postmortem.draft"
"""Draft the postmortem after a close: ``{"event_id": ...}`` (no Slack call)."""
POSTMORTEM_UPLOAD = "postmortem.upload"
"""Upload a stored postmortem version to the incident channel: ``{"postmortem_id": ...}``."""
ALERTS_DECLARE = "alerts.declare"
"""Declare the incident of a group of alerts whose webhook found the incident counter taken by
another declare: ``{"group": ..., "episode": ..., "since": ...}`` (no Slack call)."""
CLOCK_SYNC = "clock.sync"
"""Start the regulatory clocks an event triggers and schedule their warnings (no Slack call)."""

FIRST = frozenset(
    {SLACK_REQUEST, REPLY, CREATE_CHANNEL, INVITE, REFRESH, RUNBOOK_MESSAGE, ALERTS_DECLARE}
)
"""Claimed before other due work: what someone is watching a screen for (their request, the
answer to it, the channel being set up, the summary, the runbook step they clicked, the
incident alerts are opening).
Announcements, notices, reminders, clocks and postmortems follow, unless they have waited
``store.FIRST_AFTER`` already (so a steady stream of the first never starves the rest)."""
