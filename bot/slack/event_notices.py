"""Timeline events said in the incident channel: who changed what, status updates, and the
person a runbook step was assigned to. Rendered from the stored event, when the post runs."""

from __future__ import annotations

from typing import Any

from bot.config import Policy
from bot.markup import neutralise_broadcasts
from bot.models import EventKind, Incident, TimelineEvent
from bot.slack import blocks
from bot.slack.blocks.elements import mention
from bot.slack.limits import SECTION_TEXT, truncate
from bot.slack.runbook_messages.mrkdwn import title_mrkdwn

Message = tuple[str, list[dict[str, Any]]]

CHANGE_MARKS: dict[str, str] = {
    EventKind.SEVERITY_CHANGED: ":signal_strength:",
    EventKind.STATUS_CHANGED: ":arrows_counterclockwise:",
    EventKind.ROLE_ASSIGNED: ":firefighter:",
    EventKind.ROLE_UNASSIGNED: ":firefighter:",
    EventKind.ACKNOWLEDGED: ":eyes:",
}


def _notice(text: str) -> Message:
    """One section, cut where Slack allows (never inside a mention, a link or an entity)."""
    text = truncate(text, SECTION_TEXT)
    return text, [blocks.section(text)]


def event_message(policy: Policy, kind: str, event: TimelineEvent, ref: str) -> Message:
    """A change (``kind`` "change") or a status update ("status_update") of the incident
    ``ref``, with who made it."""
    said = neutralise_broadcasts(event.text, allow=policy.slack.allow_broadcast_mentions)
    if kind == "status_update":
        return (
            f"Status update on {ref}: {truncate(said, 200)}",
            [blocks.section(f":mega: *Status update* from {mention(event.actor_id)}\n" + said)],
        )
    who = f"{mention(event.actor_id)} " if event.actor_id else ""
    text = f"{CHANGE_MARKS.get(event.kind, ':information_source:')} {who}— {said}"
    return _notice(text)


def step_assigned(event: TimelineEvent, run_title: str) -> Message:
    """A runbook step given to someone: said to them by name (assigning edits the runbook
    message, and Slack notifies nobody of a mention an edit adds). The runbook's words are
    shown as written."""
    step = int(event.data.get("step") or 0) + 1
    words = title_mrkdwn(truncate(str(event.data.get("step_title") or ""), 300))
    text = (
        f":bust_in_silhouette: {mention(str(event.data.get('assignee') or ''))}, step {step} "
        f"of *{title_mrkdwn(truncate(run_title, 200))}* is yours (assigned by "
        f"{mention(event.actor_id)}): {words}"
    )
    return _notice(text)


def reopened(policy: Policy, event: TimelineEvent, incident: Incident) -> Message:
    """Said in the announcements channel: the announcement itself is only edited, and an edit
    notifies nobody watching the channel."""
    note = str((event.data or {}).get("note") or "")
    said = neutralise_broadcasts(note, allow=policy.slack.allow_broadcast_mentions)
    where = f" · <#{incident.slack_channel_id}>" if incident.slack_channel_id else ""
    text = (
        f":repeat: *{incident.ref}* was reopened by {mention(event.actor_id)}"
        + (f": {said}" if said else "")
        + where
    )
    return _notice(text)
