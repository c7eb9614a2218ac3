"""Block Kit builders: plain data in, Slack payloads out. No I/O here.

Every builder keeps to Slack's limits (``bot.slack.limits``): text is truncated at its limit with
a visible mark, lists are capped with an "and N more" line, so a 3,000-character title or a
300-event timeline never produces a payload Slack rejects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.config import COMMANDER, Policy
from bot.incidents import humanize_duration, incident_metrics
from bot.markup import neutralise_broadcasts, slack_to_plain
from bot.models import ActionItem, EventKind, Incident, TimelineEvent
from bot.slack import limits
from bot.slack.limits import escape_mrkdwn, truncate

Block = dict[str, Any]

# Action ids the Slack layer routes on.
ACK_IC = "incident:ack_ic"
ACKNOWLEDGE = "incident:ack"
SEVERITY = "incident:severity"
STATUS = "incident:status"
ASSIGN_ROLE = "incident:assign_role"
ADD_NOTE = "incident:add_note"
POST_UPDATE = "incident:post_update"
RESOLVE = "incident:resolve"
REOPEN = "incident:reopen"
CLOSE = "incident:close"
RETRY_SETUP = "incident:retry_setup"
HOME_DECLARE = "home:declare"
START_SUGGESTED = "suggest:start"
DECLARE_ANYWAY = "incident:declare_anyway"  # routed with the incident buttons

# Modal callback ids.
DECLARE_VIEW = "declare"
NOTE_VIEW = "add_note"
UPDATE_VIEW = "post_update"
ROLE_VIEW = "assign_role"
CAPTURE_VIEW = "capture_to_incident"

_SEVERITY_MARKS = ("🔴", "🟠", "🟡", "🔵", "⚪")


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text.strip() or "-", limit), "emoji": True}


def mrkdwn(text: str, limit: int = limits.SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text.strip() or " ", limit)}


def section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": mrkdwn(text), **extra}


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [mrkdwn(t, limits.CONTEXT_TEXT) for t in texts[: limits.CONTEXT_ELEMENTS]],
    }


def button(
    text: str,
    action_id: str,
    value: str | None = None,
    *,
    style: str | None = None,
    url: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, limits.BUTTON_TEXT),
        "action_id": action_id,
    }
    if value is not None:
        element["value"] = value[: limits.BUTTON_VALUE]
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, yes: str, no: str = "Cancel") -> dict[str, Any]:
    return {
        "title": plain(title, 100),
        "text": mrkdwn(text, 300),
        "confirm": plain(yes, 30),
        "deny": plain(no, 30),
    }


def option(text: str, value: str, description: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "text": plain(text, limits.OPTION_TEXT),
        "value": value[: limits.OPTION_VALUE],
    }
    if description:
        result["description"] = plain(description, limits.OPTION_TEXT)
    return result


def slack_date(value: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A time that Slack shows in each reader's own timezone, with a UTC fallback."""
    fallback = value.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(value.timestamp())}^{fmt}|{fallback}>"


def severity_mark(policy: Policy, severity: str) -> str:
    keys = [s.key for s in policy.severities]
    index = keys.index(severity) if severity in keys else len(_SEVERITY_MARKS) - 1
    return _SEVERITY_MARKS[min(index, len(_SEVERITY_MARKS) - 1)]


def severity_label(policy: Policy, severity: str) -> str:
    found = policy.find_severity(severity)
    return f"{found.key} — {found.name}" if found and found.name else severity


def status_label(policy: Policy, status: str) -> str:
    found = policy.find_status(status)
    return found.name or found.key if found else status


def mention(user: str | None) -> str:
    """A Slack user as a mention; a principal that is not a Slack user (``alerts:grafana``)
    as plain text."""
    if not user:
        return "_unassigned_"
    return f"<@{user}>" if user[:1] in ("U", "W") and ":" not in user else escape_mrkdwn(user)


# --------------------------------------------------------------------------------------------
# The incident summary (pinned in the incident channel, edited in place)


@dataclass(frozen=True)
class IncidentSnapshot:
    """Everything the summary shows, read in one transaction."""

    incident: Incident
    roles: dict[str, str]
    now: datetime
    latest_update: TimelineEvent | None = None
    open_action_items: int = 0
    runbooks: Sequence[tuple[str, int, int]] = field(default_factory=tuple)
    """(title, done, total) for each runbook run in the incident."""
    clocks: Sequence[str] = field(default_factory=tuple)
    """One line per regulatory clock: its state and the next deadline."""


def _is_active(policy: Policy, incident: Incident) -> bool:
    status = policy.find_status(incident.status)
    return status is None or status.phase == "active"


def summary_fields(policy: Policy, snap: IncidentSnapshot) -> list[dict[str, Any]]:
    incident = snap.incident
    other_roles = [
        f"{role.short or role.name}: {mention(snap.roles.get(role.key))}"
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
                "options": [
                    option(s.name or s.key, s.key, s.description or None) for s in next_statuses
                ][: limits.SELECT_OPTIONS],
            }
        )
    elements.append(button("Assign role", ASSIGN_ROLE, value))
    elements.append(button("Add note", ADD_NOTE, value))
    if _is_active(policy, incident):
        elements.append(button("Post update", POST_UPDATE, value))
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
    else:
        if incident.closed_at is None:
            elements.append(button("Close", CLOSE, value, style="primary"))
        elements.append(button("Reopen", REOPEN, value))
    return {"type": "actions", "block_id": f"incident:{incident.id}", "elements": elements}


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
    if incident.summary:
        blocks.append(section("*Summary*\n" + neutralise_broadcasts(incident.summary, allow=allow)))
    if snap.latest_update is not None:
        update = snap.latest_update
        blocks.append(
            section(
                f"*Latest update* ({slack_date(update.occurred_at)}, {mention(update.actor_id)})\n"
                + neutralise_broadcasts(update.text, allow=allow)
            )
        )
    if snap.runbooks:
        lines = [f"• {escape_mrkdwn(t)}: {done}/{total} done" for t, done, total in snap.runbooks]
        blocks.append(section("*Runbooks*\n" + "\n".join(lines[:20])))
    if snap.clocks:
        clocks = [f"• {escape_mrkdwn(line)}" for line in snap.clocks[:10]]
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
    return truncate(text, 3_000), blocks


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


def channel_topic(policy: Policy, incident: Incident, roles: dict[str, str]) -> str:
    commander = roles.get(COMMANDER)
    parts = [
        incident.severity,
        status_label(policy, incident.status),
        f"IC <@{commander}>" if commander else "IC unassigned",
        escape_mrkdwn(incident.title),
    ]
    return truncate(" | ".join(parts), limits.TOPIC)


def setup_problem(incident: Incident, problem: str) -> tuple[str, list[Block]]:
    text = (
        f"{incident.ref}: {problem} Retry when the cause is fixed; what is saved in "
        "Firebreak (the incident, its timeline) is not lost."
    )
    return text, [
        section(f":warning: {text}"),
        {
            "type": "actions",
            "elements": [button("Retry set-up", RETRY_SETUP, str(incident.id), style="primary")],
        },
    ]


# --------------------------------------------------------------------------------------------
# Modals


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> Block:
    # Action ids are unique within the view: the block id doubles as the action id.
    element = {**element, "action_id": block_id}
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def _text_input(
    action_id: str,
    *,
    multiline: bool = False,
    max_length: int = 3000,
    initial: str | None = None,
    placeholder: str | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_id,
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial:
        element["initial_value"] = initial[:max_length]
    if placeholder:
        element["placeholder"] = plain(placeholder, limits.PLACEHOLDER_TEXT)
    return element


def metadata_json(metadata: dict[str, Any]) -> str:
    """``private_metadata`` as compact JSON; never cut (cut JSON is unreadable), so callers
    keep what they store small and ``capture_modal`` shortens the one long value it carries."""
    text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
    if len(text) > limits.PRIVATE_METADATA:
        raise ValueError(f"private_metadata of {len(text)} characters is over Slack's limit")
    return text


def _modal(
    callback_id: str, title: str, submit: str, blocks: list[Block], metadata: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, limits.MODAL_TITLE),
        "submit": plain(submit, limits.MODAL_BUTTON),
        "close": plain("Cancel", limits.MODAL_BUTTON),
        "private_metadata": metadata_json(metadata),
        "blocks": blocks,
    }


def declare_modal(
    policy: Policy,
    *,
    title: str = "",
    origin_channel: str | None = None,
    reporter: str | None = None,
) -> dict[str, Any]:
    default = policy.severity(policy.default_severity)
    severity_options = [
        option(severity_label(policy, s.key), s.key, s.description) for s in policy.severities
    ][: limits.SELECT_OPTIONS]
    initial = next(o for o in severity_options if o["value"] == default.key)
    blocks = [
        _input(
            "title",
            "What is wrong?",
            _text_input(
                "value",
                max_length=300,
                initial=title,
                placeholder="Checkout returns 500s for EU customers",
            ),
        ),
        _input(
            "severity",
            "Severity",
            {
                "type": "static_select",
                "action_id": "value",
                "options": severity_options,
                "initial_option": initial,
            },
            hint="; ".join(f"{s.key}: {s.description}" for s in policy.severities),
        ),
        _input(
            "summary",
            "Impact and what you know so far",
            _text_input("value", multiline=True, max_length=3000),
            optional=True,
        ),
        _input(
            "service",
            "Affected service",
            _text_input("value", max_length=200, placeholder="payments-api"),
            optional=True,
        ),
        _input(
            "impact_started",
            "When did the impact start?",
            {"type": "datetimepicker", "action_id": "value"},
            optional=True,
        ),
        _input(
            "responders",
            "Responders to invite",
            {"type": "multi_users_select", "action_id": "value"},
            optional=True,
        ),
        _input(
            "private",
            "Visibility",
            {
                "type": "checkboxes",
                "action_id": "value",
                "options": [
                    option(
                        "Private incident", "private", "Private channel; left out of announcements"
                    )
                ],
            },
            optional=True,
        ),
    ]
    return _modal(
        DECLARE_VIEW,
        "Declare an incident",
        "Declare",
        blocks,
        {"channel": origin_channel, "reporter": reporter},
    )


def note_modal(incident: Incident, *, channel: str | None = None) -> dict[str, Any]:
    return _modal(
        NOTE_VIEW,
        f"Note on {incident.ref}",
        "Add note",
        [
            _input("note", "Note for the timeline", _text_input("value", multiline=True)),
        ],
        {"incident_id": incident.id, "channel": channel},
    )


def update_modal(
    policy: Policy, incident: Incident, *, channel: str | None = None
) -> dict[str, Any]:
    current = policy.find_status(incident.status)
    blocks = [
        _input(
            "update",
            "Status update for stakeholders",
            _text_input(
                "value", multiline=True, placeholder="What changed, what is next, next update at …"
            ),
        )
    ]
    if current and current.next:
        blocks.append(
            _input(
                "status",
                "Change status too?",
                {
                    "type": "static_select",
                    "action_id": "value",
                    "options": [option(policy.status(k).name or k, k) for k in current.next],
                },
                optional=True,
            )
        )
    return _modal(
        UPDATE_VIEW,
        f"Update on {incident.ref}",
        "Post update",
        blocks,
        {"incident_id": incident.id, "channel": channel},
    )


def role_modal(policy: Policy, incident: Incident, *, channel: str | None = None) -> dict[str, Any]:
    return _modal(
        ROLE_VIEW,
        f"Roles on {incident.ref}",
        "Assign",
        [
            _input(
                "role",
                "Role",
                {
                    "type": "static_select",
                    "action_id": "value",
                    "options": [option(r.name, r.key, r.description) for r in policy.roles],
                },
            ),
            _input("user", "Person", {"type": "users_select", "action_id": "value"}),
        ],
        {"incident_id": incident.id, "channel": channel},
    )


def capture_modal(
    incidents: Sequence[Incident],
    *,
    channel: str,
    ts: str,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Pick the incident a message from another channel goes to. The message travels in the
    form (Firebreak may not be able to read that channel); a text too long for the form's
    3,000-character metadata is shortened and marked so."""
    options = [option(f"{i.ref}: {i.title}", str(i.id)) for i in incidents][: limits.SELECT_OPTIONS]
    if not options:
        return {
            "type": "modal",
            "callback_id": CAPTURE_VIEW,
            "title": plain("Add to timeline", limits.MODAL_TITLE),
            "close": plain("Close", limits.MODAL_BUTTON),
            "blocks": [section("There is no open incident to add this message to.")],
        }
    return _modal(
        CAPTURE_VIEW,
        "Add to timeline",
        "Add",
        [
            _input(
                "incident",
                "Incident",
                {"type": "static_select", "action_id": "value", "options": options},
            ),
        ],
        _capture_metadata(channel, ts, message),
    )


def _capture_metadata(channel: str, ts: str, message: dict[str, Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"channel": channel, "ts": ts}
    if message is None:
        return metadata
    slim = {k: message.get(k) for k in ("user", "bot_id") if message.get(k)}
    text = str(message.get("text") or "")
    metadata["message"] = {**slim, "text": text}
    while len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))) > (
        limits.PRIVATE_METADATA
    ):
        text = text[: max(len(text) - 200, 0)]
        metadata["message"] = {**slim, "text": text + " […]", "shortened": True}
    return metadata


# --------------------------------------------------------------------------------------------
# Replies to commands


def help_text(policy: Policy) -> str:
    roles = ", ".join(r.key for r in policy.roles)
    severities = ", ".join(s.key for s in policy.severities)
    return "\n".join(
        [
            "*Firebreak* — `/incident` commands",
            "`/incident` — open the form to declare an incident",
            "`/incident <title>` — declare at once (outside incident channels), "
            "or `/incident declare <title>`",
            "In an incident channel (elsewhere, add the number: `/incident INC-42 status`):",
            "`status` · `ack` · `sev <level>` (" + severities + ")",
            "`ic @person` (`ic me`) · `role <role> @person` (" + roles + ")",
            "`update <text>` — post a status update · `note <text>` — add to the timeline",
            "`mitigate` · `resolve [text]` · `close` · `reopen [text]`",
            "`timeline` · `runbook [words]` — list or start runbooks · `postmortem`",
            "`action <text> [@owner] [YYYY-MM-DD]` · `actions` · `done <number>`",
            "`list` — open incidents · `retry` — finish a Slack set-up that failed",
            f"React with :{policy.slack.capture_reaction}: to a message to put it on the timeline.",
        ]
    )


def did_you_mean(text: str, suggestion: str, key: str) -> tuple[str, list[Block]]:
    """The answer to ``/incident stauts``: a question, and a button that declares anyway.

    The button carries the typed text and the command's key, so however often it is clicked
    it declares one incident."""
    plain_text = " ".join(slack_to_plain(text).split())
    shown = escape_mrkdwn(truncate(plain_text, 100))
    question = (
        f":grey_question: Did you mean `/incident {suggestion}`? "
        f"Nothing was declared. Type `/incident help` for the commands."
    )
    value = json.dumps({"text": text, "key": key}, separators=(",", ":"))
    return question, [
        section(question),
        {
            "type": "actions",
            "elements": [
                button(
                    f"Declare “{truncate(plain_text, 40)}” anyway",
                    DECLARE_ANYWAY,
                    value,
                    style="danger",
                )
            ],
        },
        context(f"Declaring opens an incident titled _{shown}_, with a channel and pages."),
    ]


def incident_list(
    policy: Policy, incidents: Sequence[Incident], commanders: dict[int, str], now: datetime
) -> str:
    if not incidents:
        return "No open incidents. :tada:"
    lines = []
    for incident in incidents[:40]:
        where = f"<#{incident.slack_channel_id}>" if incident.slack_channel_id else ""
        ic = commanders.get(incident.id or 0)
        lines.append(
            f"{severity_mark(policy, incident.severity)} *{incident.ref}* {where} "
            f"{incident.severity} · {status_label(policy, incident.status)} · "
            f"IC {mention(ic)} · {humanize_duration(now - incident.declared_at)} — "
            f"{escape_mrkdwn(truncate(incident.title, 200))}"
        )
    if len(incidents) > 40:
        lines.append(f"…and {len(incidents) - 40} more")
    return truncate("\n".join(lines), 3_000 * 10)


# Text people wrote in Slack (or in a form, escaped on the way in) is stored in Slack's own
# markup, so mentions and links keep working; everything else is escaped when shown.
_SLACK_FORMATTED = {EventKind.MESSAGE, EventKind.NOTE, EventKind.STATUS_UPDATE}

_KIND_MARKS: dict[str, str] = {
    EventKind.DECLARED: "🚨",
    EventKind.SEVERITY_CHANGED: "📶",
    EventKind.STATUS_CHANGED: "🔁",
    EventKind.ACKNOWLEDGED: "👀",
    EventKind.ROLE_ASSIGNED: "🧑‍🚒",
    EventKind.NOTE: "📝",
    EventKind.STATUS_UPDATE: "📣",
    EventKind.MESSAGE: "📌",
    EventKind.RUNBOOK_STEP: "✅",
    EventKind.RUNBOOK_STARTED: "📖",
    EventKind.ESCALATED: "🚩",
    EventKind.REMINDER_SENT: "⏰",
    EventKind.ACTION_ITEM_ADDED: "🛠",
    EventKind.POSTMORTEM_GENERATED: "🧾",
}


def timeline_blocks(
    incident: Incident,
    events: Sequence[TimelineEvent],
    *,
    limit: int = 60,
    allow_broadcasts: bool = False,
) -> tuple[str, list[Block]]:
    """The latest events that fit in one message (Slack caps the text of a message's blocks).
    Broadcast mentions in what people wrote stay silent unless ``allow_broadcasts``."""
    lines: list[str] = []
    budget = limits.BLOCKS_TEXT_BUDGET - 600
    for event in reversed(list(events)[-limit:]):
        who = f" <@{event.actor_id}>" if event.actor_id else ""
        link = f" <{event.source_url}|link>" if event.source_url else ""
        mark = _KIND_MARKS.get(event.kind, "•")
        text = (
            neutralise_broadcasts(event.text, allow=allow_broadcasts)
            if event.kind in _SLACK_FORMATTED
            else escape_mrkdwn(event.text)
        )
        line = (
            f"`{event.occurred_at:%m-%d %H:%M}` {mark}{who} "
            f"{truncate(text.replace(chr(10), ' '), 400)}{link}"
        )
        if len(line) + 1 > budget:
            break
        budget -= len(line) + 1
        lines.append(line)
    lines.reverse()
    header = f"*Timeline of {incident.ref}* (UTC)"
    if len(events) > len(lines):
        header += f" — the last {len(lines)} of {len(events)} events"
    blocks: list[Block] = [section(header)]
    for chunk in limits.chunk_text("\n".join(lines) or "_nothing yet_", limits.SECTION_TEXT):
        blocks.append(section(chunk))
    blocks.append(context("The whole timeline is in the postmortem draft: `/incident postmortem`"))
    return f"Timeline of {incident.ref}", blocks


def action_items_text(
    incident: Incident, items: Sequence[ActionItem], *, allow_broadcasts: bool = False
) -> str:
    """Action items as typed: their text is stored in Slack's markup (``&``, ``<``, ``>``
    arrive escaped once), so it is shown as is, never escaped a second time."""
    if not items:
        return (
            f"{incident.ref} has no action items yet. Add one with "
            "`/incident action <text> [@owner] [YYYY-MM-DD]`."
        )
    lines = [f"*Action items of {incident.ref}*"]
    for item in items[:50]:
        box = "☑" if item.status == "done" else "☐"
        owner = f" — <@{item.owner_id}>" if item.owner_id else ""
        due = f" (due {item.due_on:%Y-%m-%d})" if item.due_on else ""
        text = neutralise_broadcasts(truncate(item.text, 300), allow=allow_broadcasts)
        lines.append(f"{box} {item.number}. {text}{owner}{due}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# App Home


def home_view(
    policy: Policy, incidents: Sequence[Incident], commanders: dict[int, str], now: datetime
) -> dict[str, Any]:
    blocks: list[Block] = [
        {"type": "header", "text": plain("Incidents", limits.HEADER_TEXT)},
        {
            "type": "actions",
            "elements": [button("Declare an incident", HOME_DECLARE, style="danger")],
        },
        {"type": "divider"},
    ]
    if not incidents:
        blocks.append(section("No open incidents. :tada:"))
    room = limits.VIEW_BLOCKS - len(blocks) - 2
    for incident in incidents[:room]:
        where = f"<#{incident.slack_channel_id}>" if incident.slack_channel_id else "—"
        lock = "🔒 " if incident.private else ""
        blocks.append(
            section(
                f"{severity_mark(policy, incident.severity)} {lock}*{incident.ref}* "
                f"{escape_mrkdwn(truncate(incident.title, 300))}\n"
                f"{incident.severity} · {status_label(policy, incident.status)} · IC "
                f"{mention(commanders.get(incident.id or 0))} · open "
                f"{humanize_duration(now - incident.declared_at)} · {where}"
            )
        )
    if len(incidents) > room:
        blocks.append(context(f"…and {len(incidents) - room} more: `/incident list`"))
    blocks.append(context(f"As of {now:%Y-%m-%d %H:%M} UTC"))
    return {"type": "home", "blocks": blocks}


def suggestions_blocks(
    incident: Incident, suggestions: Sequence[tuple[str, str, str]]
) -> tuple[str, list[Block]]:
    """(runbook id, title, why) for each suggested runbook, with a Start button each."""
    blocks: list[Block] = [section(f"*Runbooks that may help with {incident.ref}*")]
    for index, (runbook_id, title, why) in enumerate(suggestions[:10]):
        blocks.append(
            section(
                f"*{escape_mrkdwn(truncate(title, 200))}*\n_{escape_mrkdwn(truncate(why, 300))}_",
                accessory=button(
                    "Start",
                    f"{START_SUGGESTED}:{index}",
                    json.dumps({"incident": incident.id, "runbook": runbook_id}),
                ),
            )
        )
    blocks.append(context("Or search: `/incident runbook <words>`"))
    return f"Runbooks that may help with {incident.ref}", blocks
