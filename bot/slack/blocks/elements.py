"""Action and view ids the Slack layer routes on, and the small builders every message uses
(text objects, sections, buttons, options, labels, mentions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.alerts.model import principal_title
from bot.config import Policy
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
    return {
        "type": "plain_text",
        "text": truncate(text.strip() or "-", limit, plain=True),
        "emoji": True,
    }


def mrkdwn(text: str, limit: int = limits.SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text.strip() or " ", limit)}


def section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": mrkdwn(text), **extra}


def within_budget(
    blocks: list[Block], shrinkable: list[int], budget: int = limits.BLOCKS_TEXT_BUDGET
) -> list[Block]:
    """``blocks`` with the text of the sections at ``shrinkable`` cut (marked) so the whole
    message stays within ``budget`` characters of text, which Slack counts across all blocks
    (``msg_blocks_too_long``). The space left by the other blocks is shared evenly: a short
    section keeps all of its text, and the longer ones split the rest."""
    total = limits.blocks_text_length(blocks)
    if total <= budget:
        return blocks
    texts = {i: str(blocks[i]["text"]["text"]) for i in shrinkable}
    length = limits.text_length
    left = budget - (total - sum(length(text) for text in texts.values()))
    fitted = list(blocks)
    waiting = sorted(texts, key=lambda i: len(texts[i]))
    while waiting:
        i = waiting.pop(0)
        share = max(left // (len(waiting) + 1), SHRUNK_MIN)
        if length(texts[i]) > share:
            fitted[i] = {**blocks[i], "text": mrkdwn(texts[i], share)}
        left -= min(length(texts[i]), share)
    return fitted


SHRUNK_MIN = 200
"""The least a shrunk section keeps: its heading and the start of what it says."""


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
    """``SEV1 — Critical``; a name that starts with its key (``P2 - High``) as it is."""
    found = policy.find_severity(severity)
    if found is None or not found.name:
        return severity
    if found.name.casefold().startswith(found.key.casefold()):
        return found.name
    return f"{found.key} — {found.name}"


def status_label(policy: Policy, status: str) -> str:
    found = policy.find_status(status)
    return found.label if found else status


def mention(user: str | None) -> str:
    """A Slack user as a mention; a principal that is not a Slack user as plain text: an alert
    source (``alerts:alertmanager``) as the tool's name (``Alertmanager``), since
    ``<@alerts:alertmanager>`` is a broken mention; nor is an integration's name (``Uptime``)."""
    if not user:
        return "_unassigned_"
    if user[:1] in ("U", "W") and user.isascii() and user.isalnum() and user.isupper():
        return f"<@{user}>"
    return escape_mrkdwn(principal_title(user) or user)
