"""Timeline events said in the incident channel: who changed what, status updates, and the
person a runbook step was assigned to. Rendered from the stored event, when the post runs."""

from __future__ import annotations

from typing import Any

from bot.config import Policy
from bot.markup import neutralise_broadcasts
from bot.models import EventKind, Incident, TimelineEvent
from bot.slack import blocks
from bot.slack.blocks.elements import mention
from bot.slack.limits import BLOCKS_TEXT_BUDGET, SECTION_TEXT, chunk_text, text_length, truncate
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
        head = f":mega: *Status update* from {mention(event.actor_id)}\n"
        return f"Status update on {ref}: {truncate(said, 200)}", _long_text(head, said)
    who = f"{mention(event.actor_id)} " if event.actor_id else ""
    text = f"{CHANGE_MARKS.get(event.kind, ':information_source:')} {who}— {said}"
    return _notice(text)


UPDATE_SHOWN = BLOCKS_TEXT_BUDGET - 300
"""What of a status update one message shows (Slack counts all its blocks' text together),
leaving room for the note that says where the rest is."""


def _long_text(head: str, said: str) -> list[dict[str, Any]]:
    """``head`` and ``said`` in as many sections as it takes (3,000 characters each), cut only
    past what one message can show, with a note saying so and where the whole text is."""
    pieces = chunk_text(head + said, SECTION_TEXT)
    shown: list[str] = []
    for piece in pieces:
        if sum(map(text_length, shown)) + text_length(piece) > UPDATE_SHOWN:
            break
        shown.append(piece)
    sections = [blocks.section(piece) for piece in shown]
    if len(shown) == len(pieces):
        return sections
    kept = sum(map(len, shown)) - len(head)
    note = (
        f"_Cut here: a Slack message shows {kept:,} of its {len(said):,} characters. The whole "
        "update is on the incident's timeline (its export and postmortem)._"
    )
    return [*sections, blocks.context(note)]


def step_assigned(event: TimelineEvent, run_title: str) -> Message:
    """A runbook step given to someone: said to them by name (assigning edits the runbook
    message, and Slack notifies nobody of a mention an edit adds). The runbook's words are
    shown as written."""
    step = int(event.data.get("step") or 0) + 1
    words = title_mrkdwn(truncate(str(event.data.get("step_title") or ""), 300, plain=True))
    text = (
        f":bust_in_silhouette: {mention(str(event.data.get('assignee') or ''))}, step {step} "
        f"of *{title_mrkdwn(truncate(run_title, 200, plain=True))}* is yours (assigned by "
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
