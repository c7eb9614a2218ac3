"""The incident summary (pinned in the incident channel, edited in place), its buttons, the
announcement, the channel topic and the set-up problem notice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.config import COMMANDER, Policy
from bot.durations import humanize_duration
from bot.incidents import can_close, can_resolve, incident_metrics
from bot.markup import neutralise_broadcasts
from bot.models import Incident, TimelineEvent
from bot.slack import limits
from bot.slack.blocks.elements import (
    ACK_IC,
    ACKNOWLEDGE,
    ADD_NOTE,
    ASSIGN_ROLE,
    CLOSE,
    POST_UPDATE,
    REOPEN,
    RESOLVE,
    RETRY_SETUP,
    SEVERITY,
    STATUS,
    Block,
    button,
    confirm_dialog,
    context,
    mention,
    mrkdwn,
    option,
    plain,
    section,
    severity_label,
    severity_mark,
    slack_date,
    status_label,
    within_budget,
)
from bot.slack.limits import escape_mrkdwn, truncate
from bot.slack.runbook_messages.mrkdwn import title_mrkdwn


@dataclass(frozen=True)
class IncidentSnapshot:
    """Everything the summary shows, read in one transaction."""

    incident: Incident
    roles: dict[str, str]
    now: datetime
    latest_update: TimelineEvent | None = None
    open_action_items: int = 0
    runbooks: Sequence[tuple[str, str]] = field(default_factory=tuple)
    """(title, progress as the run's message says it) for each runbook run in the incident."""
    clocks: Sequence[str] = field(default_factory=tuple)
    """One line per regulatory clock: its state and the next deadline."""
    alerts: tuple[int, int] | None = None
    """(firing, total) alerts attached to the incident, when alerts opened or joined it."""


def _is_active(policy: Policy, incident: Incident) -> bool:
    status = policy.find_status(incident.status)
    return status is None or status.phase == "active"


def summary_fields(policy: Policy, snap: IncidentSnapshot) -> list[dict[str, Any]]:
    incident = snap.incident
    other_roles = [
        f"{escape_mrkdwn(role.short or role.name)}: {mention(snap.roles.get(role.key))}"
        for role in policy.roles
        if role.key != COMMANDER
    ]
    if incident.resolved_at is None:
        open_for = (
            f"*Open for*\n{humanize_duration(snap.now - incident.declared_at)}"
            f" (as of {snap.now:%H:%M} UTC)"
        )
    else:
        open_for = (
            f"*Impact lasted*\n{humanize_duration(incident_metrics(incident).time_to_resolve)}"
        )
    fields = [
        f"*Severity*\n{severity_mark(policy, incident.severity)} "
        f"{severity_label(policy, incident.severity)}",
        f"*Status*\n{status_label(policy, incident.status)}",
        f"*Commander*\n{mention(snap.roles.get(COMMANDER))}",
        "*Roles*\n" + "\n".join(other_roles),
        f"*Declared*\n{slack_date(incident.declared_at)} by {mention(incident.reporter_id)}",
        open_for,
    ]
    if incident.service:
        fields.append(f"*Service*\n{escape_mrkdwn(incident.service)}")
    if incident.acknowledged_at:
        fields.append(f"*Acknowledged*\n{slack_date(incident.acknowledged_at)}")
    else:
        fields.append("*Acknowledged*\n_not yet_")
    return [mrkdwn(f, limits.SECTION_FIELD_TEXT) for f in fields[: limits.SECTION_FIELDS]]


def incident_actions(policy: Policy, incident: Incident, roles: dict[str, str]) -> Block:
    value = str(incident.id)
    elements: list[dict[str, Any]] = []
    if _is_active(policy, incident):
        if COMMANDER not in roles:
            elements.append(button("Acknowledge / I'm IC", ACK_IC, value, style="primary"))
        elif incident.acknowledged_at is None:
            elements.append(button("Acknowledge", ACKNOWLEDGE, value, style="primary"))
        elements.append(
            {
                "type": "static_select",
                "action_id": SEVERITY,
                "placeholder": plain("Change severity", limits.PLACEHOLDER_TEXT),
                "options": [
                    option(severity_label(policy, s.key), s.key) for s in policy.severities
                ][: limits.SELECT_OPTIONS],
            }
        )
    current = policy.find_status(incident.status)
    next_statuses = [policy.status(k) for k in current.next] if current else []
    if next_statuses:
        elements.append(
            {
                "type": "static_select",
                "action_id": STATUS,
                "placeholder": plain("Update status", limits.PLACEHOLDER_TEXT),
                "options": [option(s.label, s.key, s.description or None) for s in next_statuses][
                    : limits.SELECT_OPTIONS
                ],
            }
        )
    if incident.closed_at is None:  # roles of a closed incident are changed after a reopen
        elements.append(button("Assign role", ASSIGN_ROLE, value))
    elements.append(button("Add note", ADD_NOTE, value))
    if _is_active(policy, incident):
        elements.append(button("Post update", POST_UPDATE, value))
    # Offered only where the policy's moves allow them: a click would only be refused.
    if _is_active(policy, incident) and can_resolve(policy, incident):
        elements.append(
            button(
                "Resolve",
                RESOLVE,
                value,
                style="danger",
                confirm=confirm_dialog(
                    "Resolve incident?",
                    f"Mark {incident.ref} as resolved: the impact is over.",
                    "Resolve",
                ),
            )
        )
    if not _is_active(policy, incident):
        if incident.closed_at is None and can_close(policy, incident):
            elements.append(button("Close", CLOSE, value, style="primary"))
        elements.append(button("Reopen", REOPEN, value))
    # The severity and status shown travel with a choice from the menus (``seen_on_summary``).
    block_id = f"incident:{incident.id}:{incident.severity}:{incident.status}"
    return {"type": "actions", "block_id": block_id, "elements": elements}


def incident_summary(policy: Policy, snap: IncidentSnapshot) -> tuple[str, list[Block]]:
    """The pinned summary. Titles are plain text (escaped here); the summary and status updates
    are stored in Slack markup (what people typed, mentions and links included)."""
    incident = snap.incident
    title = f"{severity_mark(policy, incident.severity)} {incident.ref}: {incident.title}"
    blocks: list[Block] = [
        {"type": "header", "text": plain(title, limits.HEADER_TEXT)},
        {"type": "section", "fields": summary_fields(policy, snap)},
    ]
    allow = policy.slack.allow_broadcast_mentions
    prose: list[int] = []  # the sections shortened if the whole would be too long for Slack
    if incident.summary:
        prose.append(len(blocks))
        blocks.append(section("*Summary*\n" + neutralise_broadcasts(incident.summary, allow=allow)))
    if snap.latest_update is not None:
        update = snap.latest_update
        prose.append(len(blocks))
        blocks.append(
            section(
                f"*Latest update* ({slack_date(update.occurred_at)}, {mention(update.actor_id)})\n"
                + neutralise_broadcasts(update.text, allow=allow)
            )
        )
    if snap.runbooks:
        lines = [f"• {title_mrkdwn(title)}: {said}" for title, said in snap.runbooks]
        prose.append(len(blocks))
        blocks.append(section("*Runbooks*\n" + "\n".join(lines[:20])))
    if snap.alerts is not None:
        firing, total = snap.alerts
        state = f"{firing} of {total} firing" if firing else f"all {total} resolved"
        blocks.append(section(f":bell: *Alerts*: {state}"))
    if snap.clocks:
        clocks = [f"• {escape_mrkdwn(line)}" for line in snap.clocks[:10]]
        prose.append(len(blocks))
        blocks.append(section(":stopwatch: *Regulatory clocks*\n" + "\n".join(clocks)))
    blocks.append(incident_actions(policy, incident, snap.roles))
    notes = ["`/incident help` for commands"]
    if snap.open_action_items:
        notes.append(f"{snap.open_action_items} open action item(s): `/incident actions`")
    if incident.private:
        notes.insert(0, "🔒 Private incident")
    blocks.append(context(" · ".join(notes)))
    text = (
        f"{incident.ref} [{incident.severity}] {status_label(policy, incident.status)}: "
        f"{escape_mrkdwn(incident.title)}"
    )
    return truncate(text, 3_000), within_budget(blocks, prose)


def announcement(policy: Policy, snap: IncidentSnapshot) -> tuple[str, list[Block]]:
    """The one message per incident in the announcements channel, edited as it changes."""
    incident = snap.incident
    title = f"{severity_mark(policy, incident.severity)} {incident.ref}: {incident.title}"
    channel = f"<#{incident.slack_channel_id}>" if incident.slack_channel_id else "_being set up_"
    fields = [
        f"*Severity*\n{severity_label(policy, incident.severity)}",
        f"*Status*\n{status_label(policy, incident.status)}",
        f"*Commander*\n{mention(snap.roles.get(COMMANDER))}",
        f"*Channel*\n{channel}",
    ]
    blocks: list[Block] = [
        {"type": "header", "text": plain(title, limits.HEADER_TEXT)},
        {"type": "section", "fields": [mrkdwn(f, limits.SECTION_FIELD_TEXT) for f in fields]},
    ]
    if snap.latest_update is not None:
        update_text = neutralise_broadcasts(
            snap.latest_update.text, allow=policy.slack.allow_broadcast_mentions
        )
        blocks.append(section("*Latest update*: " + update_text))
    blocks.append(
        context(
            f"Declared {slack_date(incident.declared_at)}"
            + (f" · resolved {slack_date(incident.resolved_at)}" if incident.resolved_at else "")
        )
    )
    text = (
        f"{incident.ref} [{incident.severity}] {status_label(policy, incident.status)}: "
        f"{escape_mrkdwn(incident.title)}"
    )
    return truncate(text, 3_000), blocks


def channel_purpose(incident: Incident, marker: str) -> str:
    """The purpose of the incident's channel: what it is about, and the marker by which
    Firebreak recognises a channel it created."""
    tail = f" · {marker}"  # kept whole: the channel lookup relies on it
    room = min(200, limits.PURPOSE - limits.text_length(tail))
    return truncate(f"{incident.ref}: {escape_mrkdwn(incident.title)}", room) + tail


def channel_topic(policy: Policy, incident: Incident, roles: dict[str, str]) -> str:
    commander = roles.get(COMMANDER)
    parts = [
        incident.severity,
        status_label(policy, incident.status),
        f"IC <@{commander}>" if commander else "IC unassigned",
        escape_mrkdwn(incident.title),
    ]
    return truncate(" | ".join(parts), limits.TOPIC)


def channel_lost(incident: Incident, *, deleted: bool) -> tuple[str, list[Block]]:
    """To the commander: Firebreak lost the incident's channel (deleted, or Firebreak removed)."""
    name = f"#{escape_mrkdwn(incident.slack_channel_name or '')}"
    if deleted:
        text = (
            f"{incident.ref}: its channel {name} was deleted, so nothing Firebreak posts for the "
            "incident reaches anyone there. The incident and its timeline are kept: "
            f"`/incident {incident.ref} status` and the other commands work from any channel."
        )
        return text, [section(f":warning: {text}")]
    text = (
        f"{incident.ref}: Firebreak was removed from {name}, so it can no longer post there or "
        f"keep the pinned summary current. Invite it back (`/invite @Firebreak` in {name}): "
        "what could not be posted meanwhile is posted then (Retry does it again if need be)."
    )
    return _warning_with_retry(incident, text, "Retry")


def channel_shared(incident: Incident, team: str) -> tuple[str, list[Block]]:
    """To the commander: the incident channel is now shared with another organisation."""
    name = f"#{escape_mrkdwn(incident.slack_channel_name or '')}"
    other = f" ({escape_mrkdwn(team)})" if team else ""
    text = (
        f"{incident.ref}: {name} was shared with another organisation{other}. People outside "
        "your company now read what is posted there: the summary, updates and runbook steps. "
        "Notes stay on the timeline, and the postmortem draft is not uploaded to the channel "
        "(it is in Firebreak's console). If this was not meant, stop sharing the channel."
    )
    return text, [section(f":warning: {text}")]


def setup_problem(incident: Incident, problem: str) -> tuple[str, list[Block]]:
    text = (
        f"{incident.ref}: {problem} Retry when the cause is fixed; what is saved in "
        "Firebreak (the incident, its timeline) is not lost."
    )
    return _warning_with_retry(incident, text, "Retry set-up")


def _warning_with_retry(incident: Incident, text: str, label: str) -> tuple[str, list[Block]]:
    """A problem and the button that tries what failed again (``/incident retry``)."""
    retry = button(label, RETRY_SETUP, str(incident.id), style="primary")
    return text, [section(f":warning: {text}"), {"type": "actions", "elements": [retry]}]
