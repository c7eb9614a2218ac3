"""Replies to commands (help, did-you-mean, incident lists), the timeline and action items, and
the App Home."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.config import Policy
from bot.durations import humanize_duration
from bot.markup import neutralise_broadcasts, slack_to_plain
from bot.models import ActionItem, EventKind, Incident, TimelineEvent
from bot.runbooks.progress import step_event_markup
from bot.slack import limits
from bot.slack.blocks.elements import (
    DECLARE_ANYWAY,
    HOME_DECLARE,
    START_SUGGESTED,
    Block,
    button,
    context,
    mention,
    plain,
    section,
    severity_mark,
    status_label,
)
from bot.slack.limits import escape_mrkdwn, truncate
from bot.slack.runbook_messages.mrkdwn import title_mrkdwn


def help_text(policy: Policy) -> str:
    roles = ", ".join(r.key for r in policy.roles)
    severities = ", ".join(s.key for s in policy.severities)
    statuses = ", ".join(s.key for s in policy.statuses)
    return "\n".join(
        [
            "*Firebreak* — `/incident` commands",
            "`/incident` — open the form to declare an incident",
            "`/incident &lt;title&gt;` — declare at once (outside incident channels), "
            "or `/incident declare &lt;title&gt;`",
            "In an incident channel (elsewhere, name the incident by its number or its "
            "channel: `/incident INC-42 status`, `/incident resolve #inc-42-checkout`):",
            "`status` — the summary · `status &lt;status&gt;` (" + statuses + ")",
            "`ack` · `sev &lt;level&gt;` (" + severities + ")",
            "`ic @person` (`ic me`) · `role &lt;role&gt; @person` (" + roles + ")",
            "`update &lt;text&gt;` — post a status update · "
            "`note &lt;text&gt;` — add to the timeline",
            ("`mitigate` · " if any(s.milestone == "mitigated" for s in policy.statuses) else "")
            + "`resolve [text]` · `close` · `reopen [text]`",
            "`timeline` · `runbook [words]` — list or start runbooks · `postmortem`",
            "`action &lt;text&gt; [@owner] [YYYY-MM-DD]` · `actions` · `done &lt;number&gt;`",
            "`list` — open incidents · `retry` — finish a Slack set-up that failed",
            *(
                ["`classify &lt;class&gt;` · `notified &lt;clock&gt; [note]` — regulatory clocks"]
                if policy.clocks
                else []
            ),
            f"React with :{policy.slack.capture_reaction}: to a message to put it on the timeline.",
        ]
    )


def did_you_mean(text: str, suggestion: str, key: str) -> tuple[str, list[Block]]:
    """The answer to ``/incident stauts``: a question, and a button that declares anyway.

    The button carries the typed text and the command's key, so however often it is clicked
    it declares one incident."""
    plain_text = " ".join(slack_to_plain(text).split())
    shown = escape_mrkdwn(truncate(plain_text, 100, plain=True))
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
                    f"Declare “{truncate(plain_text, 40, plain=True)}” anyway",
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
            f"{escape_mrkdwn(truncate(incident.title, 200, plain=True))}"
        )
    if len(incidents) > 40:
        lines.append(f"…and {len(incidents) - 40} more")
    return truncate("\n".join(lines), 3_000 * 10)


# Text people wrote in Slack (or in a form, escaped on the way in) is stored in Slack's own
# markup, so mentions and links keep working, as are the role changes (their mentions);
# everything else is escaped when shown.
_SLACK_FORMATTED = {
    EventKind.MESSAGE,
    EventKind.NOTE,
    EventKind.STATUS_UPDATE,
    EventKind.ACTION_ITEM_ADDED,
    EventKind.ACTION_ITEM_COMPLETED,
    EventKind.ROLE_ASSIGNED,
    EventKind.ROLE_UNASSIGNED,
    EventKind.STATUS_CHANGED,  # the reason given with a resolve or a reopen
    EventKind.PERMISSION_DENIED,  # who was refused, as a mention
}


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
        who = f" {mention(event.actor_id)}" if event.actor_id else ""
        link = f" <{event.source_url}|link>" if event.source_url else ""
        mark = _KIND_MARKS.get(event.kind, "•")
        text = (
            neutralise_broadcasts(event.text, allow=allow_broadcasts)
            if event.kind in _SLACK_FORMATTED
            else step_event_markup(event.text, event.data.get("assignee"))
            if event.kind == EventKind.RUNBOOK_STEP
            else escape_mrkdwn(event.text)
        )
        line = (
            f"`{event.occurred_at:%m-%d %H:%M}` {mark}{who} "
            f"{truncate(text.replace(chr(10), ' '), 400)}{link}"
        )
        if limits.text_length(line) + 1 > budget:
            break
        budget -= limits.text_length(line) + 1
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
            "`/incident action &lt;text&gt; [@owner] [YYYY-MM-DD]`."
        )
    lines = [f"*Action items of {incident.ref}*"]
    # room for the line saying what is left
    budget = ACTION_ITEMS_TEXT - limits.text_length(lines[0]) - 200
    for shown, item in enumerate(items):
        box = "☑" if item.status == "done" else "☐"
        owner = f" — <@{item.owner_id}>" if item.owner_id else ""
        due = f" (due {item.due_on:%Y-%m-%d})" if item.due_on else ""
        text = neutralise_broadcasts(truncate(item.text, 300), allow=allow_broadcasts)
        line = f"{box} {item.number}. {text}{owner}{due}"
        budget -= limits.text_length(line) + 1
        if budget < 0:
            lines.append(
                f"…and {len(items) - shown} more: the postmortem draft lists every one "
                "(`/incident postmortem`)."
            )
            break
        lines.append(line)
    return "\n".join(lines)


ACTION_ITEMS_TEXT = 4_000
"""Slack shows a message's text whole up to about this long."""


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
                f"{escape_mrkdwn(truncate(incident.title, 300, plain=True))}\n"
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
                # The id as code, to copy into `/incident runbook <id>`: never through the
                # title escaper, whose look-alike backticks would be copied with it.
                f"*{title_mrkdwn(truncate(title, 200, plain=True))}*\n"
                f"_{title_mrkdwn(truncate(why, 300, plain=True))}_"
                f" · `{escape_mrkdwn(truncate(runbook_id.replace('`', ''), 200, plain=True))}`",
                accessory=button(
                    "Start",
                    f"{START_SUGGESTED}:{index}",
                    json.dumps({"incident": incident.id, "runbook": runbook_id}),
                ),
            )
        )
    blocks.append(context("Or search: `/incident runbook &lt;words&gt;`"))
    return f"Runbooks that may help with {incident.ref}", blocks
