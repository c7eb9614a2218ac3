"""Block Kit for reminders: update nudges, escalations, stale runbook steps, close reminders,
overdue action items and the daily digest.

Pure functions: plain data in, ``ReminderMessage`` (fallback text + blocks) out. They never call
Slack and never read the database, so every message can be checked against Slack's limits
(``bot.slack.limits.message_errors``) in unit tests. User text is escaped and cut to the limits
here, because a payload Slack rejects is a reminder that never arrives.

Buttons carry the action ids the Slack layer routes on:

* ``reminder:update:{incident_id}`` opens the status-update dialog;
* ``reminder:snooze:{reminder_id}:{minutes}:{seq}`` snoozes the reminder;
* ``reminder:stop:{reminder_id}:{seq}`` stops it.

``seq`` numbers the message among the reminder's sends: it tells a click on a message of an
earlier cycle (before a resolve or a reopen) from one on the current cycle's messages. Buttons
posted before it was added (no ``seq``) still parse, with ``seq`` ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bot.config import Policy
from bot.markup import neutralise_broadcasts
from bot.reminders.schedule import snooze_minutes
from bot.reminders.targets import resolve_mentions
from bot.slack.limits import (
    ACTIONS_ELEMENTS,
    BLOCKS_TEXT_BUDGET,
    CONTEXT_TEXT,
    HEADER_TEXT,
    MESSAGE_BLOCKS,
    SECTION_TEXT,
    blocks_text_length,
    escape_mrkdwn,
    truncate,
)

ACTION_PREFIX = "reminder"
TITLE_LIMIT = 200
"""Incident titles are cut to this in reminders: the reminder says what to do, not the story."""
FALLBACK_TEXT_LIMIT = 3_000
TEXT_BUDGET = BLOCKS_TEXT_BUDGET
"""Text across all blocks of one message. Slack answers ``msg_blocks_too_long`` past about
12,000 characters even when every block is within its own limit, so long lists stop here and
say how many more there are."""


@dataclass(frozen=True)
class ReminderMessage:
    """What to post: ``text`` is the notification/fallback text, ``blocks`` the message body."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True)
class ReminderAction:
    """A parsed reminder button click."""

    verb: str
    """``update``, ``snooze`` or ``stop``."""
    target_id: int
    """The incident id for ``update``; the reminder id for ``snooze`` and ``stop``."""
    minutes: int | None = None
    seq: int | None = None
    """Which of the reminder's messages the button is on (``None``: a button of the old
    format, without it)."""


@dataclass(frozen=True)
class OverdueItem:
    number: int
    text: str
    owner_id: str | None
    due_on: date


@dataclass(frozen=True)
class DigestEntry:
    ref: str
    title: str
    severity: str
    status_name: str
    channel_id: str | None
    open_for: str
    """Already humanised, e.g. ``3h 20m``."""
    last_update: str | None
    """How long ago the last status update was (``20m``), or ``None`` if there was none."""
    commander: bool
    """Whether someone holds the Incident Commander role (named, not mentioned: no pings)."""


# --------------------------------------------------------------------------------------------
# Action ids


def update_action_id(incident_id: int) -> str:
    return f"{ACTION_PREFIX}:update:{incident_id}"


def _seq(seq: int | None) -> str:
    return f":{seq}" if seq is not None else ""


def snooze_action_id(reminder_id: int, minutes: int, seq: int | None = None) -> str:
    return f"{ACTION_PREFIX}:snooze:{reminder_id}:{minutes}{_seq(seq)}"


def stop_action_id(reminder_id: int, seq: int | None = None) -> str:
    return f"{ACTION_PREFIX}:stop:{reminder_id}{_seq(seq)}"


_ACTION = re.compile(
    r"^reminder:(?:(update):(\d{1,18})|(stop):(\d{1,18})(?::(\d{1,9}))?"
    r"|(snooze):(\d{1,18}):(\d{1,9})(?::(\d{1,9}))?)$"
)


def parse_action_id(action_id: str) -> ReminderAction | None:
    """``reminder:snooze:7:15:2`` -> ``ReminderAction("snooze", 7, 15, seq=2)``; ``None`` if not
    ours. The old formats (``reminder:snooze:7:15``, ``reminder:stop:7``) give ``seq`` ``None``."""
    match = _ACTION.match(action_id or "")
    if match is None:
        return None
    if match.group(1):
        return ReminderAction("update", int(match.group(2)))
    if match.group(3):
        seq = match.group(5)
        return ReminderAction("stop", int(match.group(4)), seq=int(seq) if seq else None)
    seq = match.group(9)
    return ReminderAction(
        "snooze", int(match.group(7)), int(match.group(8)), seq=int(seq) if seq else None
    )


# --------------------------------------------------------------------------------------------
# Small pieces


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_TEXT)}}


def _context(text: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(text, CONTEXT_TEXT)}],
    }


def _button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def _title(title: str) -> str:
    return escape_mrkdwn(truncate(" ".join(title.split()), TITLE_LIMIT, plain=True))


def _minutes_label(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    if minutes > 60:
        return f"{minutes // 60}h{minutes % 60}m"
    return f"{minutes}m"


def _reminder_buttons(
    reminder_id: int,
    snooze_choices: Sequence[timedelta],
    *,
    stop_label: str,
    stop_confirm: str,
    first: list[dict[str, Any]] | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    elements = list(first or [])
    room = ACTIONS_ELEMENTS - len(elements) - 1
    for minutes in snooze_minutes(snooze_choices)[:room]:
        elements.append(
            _button(
                f"Snooze {_minutes_label(minutes)}",
                snooze_action_id(reminder_id, minutes, seq),
                f"{reminder_id}:{minutes}",
            )
        )
    elements.append(
        _button(
            stop_label,
            stop_action_id(reminder_id, seq),
            str(reminder_id),
            style="danger",
            confirm={
                "title": {"type": "plain_text", "text": "Stop reminders?"},
                "text": {"type": "mrkdwn", "text": truncate(stop_confirm, 300)},
                "confirm": {"type": "plain_text", "text": "Stop"},
                "deny": {"type": "plain_text", "text": "Keep reminding"},
            },
        )
    )
    return {"type": "actions", "block_id": f"reminder:{reminder_id}", "elements": elements}


def _fallback(text: str) -> str:
    return truncate(text, FALLBACK_TEXT_LIMIT)


# --------------------------------------------------------------------------------------------
# Messages


def update_nudge(
    *,
    reminder_id: int,
    incident_id: int,
    incident_ref: str,
    title: str,
    severity: str,
    mention: str,
    quiet_for: str,
    every: str,
    had_update: bool,
    snooze_choices: Sequence[timedelta],
    seq: int | None = None,
    origin: str = "declared",
) -> ReminderMessage:
    """Ask the commander (``mention``: ``<@U..>`` or ``<!channel>``) for a status update."""
    since = (
        f"The last one was {quiet_for} ago"
        if had_update
        else f"There has been none since it was {escape_mrkdwn(origin)} {quiet_for} ago"
    )
    body = (
        f":alarm_clock: {mention} *{incident_ref}* ({escape_mrkdwn(severity)}) needs a status "
        f"update. {since}; {escape_mrkdwn(severity)} incidents post one every {every}."
    )
    blocks = [
        _section(body),
        _context(f"{incident_ref}: {_title(title)}"),
        _reminder_buttons(
            reminder_id,
            snooze_choices,
            seq=seq,
            stop_label="Stop",
            stop_confirm=f"No more status-update reminders for {incident_ref}.",
            first=[
                _button(
                    "Post update",
                    update_action_id(incident_id),
                    str(incident_id),
                    style="primary",
                )
            ],
        ),
    ]
    text = f"{mention} {incident_ref} needs a status update (none for {quiet_for})."
    return ReminderMessage(_fallback(text), blocks)


def escalation(
    *,
    incident_ref: str,
    title: str,
    severity: str,
    channel_id: str | None,
    private: bool,
    tier: int,
    mentions: Sequence[str],
    waited: str,
    in_incident_channel: bool,
) -> ReminderMessage:
    """Nobody acknowledged or took command in time.

    In the escalation channel a private incident is named by its number only: its title and
    channel stay with the people already in it."""
    who = " ".join(mentions)
    again = "still " if tier > 1 else ""
    headline = (
        f":rotating_light: {who + ' ' if who else ''}*{incident_ref}* ({escape_mrkdwn(severity)}) "
        f"has {again}not been acknowledged and has no Incident Commander after {waited}."
    )
    if in_incident_channel:
        ask = (
            "Please acknowledge it (`/incident ack`) or take the Incident Commander role "
            "(`/incident ic me`, or the button on the pinned summary)."
        )
        detail = f"{incident_ref}: {_title(title)}"
    elif private:
        ask = "It is a private incident: ask its responders to add you."
        detail = f"{incident_ref} (private)"
    elif not channel_id:
        ask = (
            "Its channel could not be created yet: acknowledge it "
            f"(`/incident {incident_ref} ack`) or take command (`/incident {incident_ref} ic me`) "
            f"from here, and `/incident {incident_ref} retry` sets the channel up."
        )
        detail = f"{incident_ref}: {_title(title)}"
    else:
        where = f" in <#{channel_id}>" if channel_id else ""
        ask = f"Please join{where} and take command."
        detail = f"{incident_ref}: {_title(title)}"
    blocks = [_section(f"{headline}\n{ask}"), _context(detail)]
    level = "Second escalation" if tier > 1 else "Escalation"
    text = f"{level}: {who + ' ' if who else ''}{incident_ref} is not acknowledged after {waited}."
    return ReminderMessage(_fallback(text), blocks)


def stale_step(
    *,
    reminder_id: int,
    incident_ref: str,
    runbook_title: str,
    step_number: int,
    step_title: str,
    mention: str,
    in_progress_for: str,
    snooze_choices: Sequence[timedelta],
    seq: int | None = None,
) -> ReminderMessage:
    """A runbook step has been in progress for longer than the team expects."""
    step = (
        escape_mrkdwn(truncate(" ".join(step_title.split()), TITLE_LIMIT, plain=True))
        or "(untitled)"
    )
    runbook = escape_mrkdwn(truncate(" ".join(runbook_title.split()), TITLE_LIMIT, plain=True))
    body = (
        f":hourglass: {mention} step {step_number} *{step}* of runbook _{runbook}_ has been in "
        f"progress for {in_progress_for}. Mark it done or skipped, or hand it over."
    )
    blocks = [
        _section(body),
        _context(incident_ref),
        _reminder_buttons(
            reminder_id,
            snooze_choices,
            seq=seq,
            stop_label="Stop",
            stop_confirm=f"No more reminders about step {step_number} of this runbook.",
        ),
    ]
    text = f"{mention} step {step_number} of {runbook} is in progress for {in_progress_for}."
    return ReminderMessage(_fallback(text), blocks)


def close_reminder(
    *,
    reminder_id: int,
    incident_ref: str,
    title: str,
    mention: str,
    resolved_for: str,
    snooze_choices: Sequence[timedelta],
    seq: int | None = None,
) -> ReminderMessage:
    """The incident was resolved a while ago: close it and finish the postmortem."""
    body = (
        f":white_check_mark: {mention} *{incident_ref}* was resolved {resolved_for} ago. "
        "When the follow-up is tracked, close it and finish the postmortem."
    )
    blocks = [
        _section(body),
        _context(f"{incident_ref}: {_title(title)}"),
        _reminder_buttons(
            reminder_id,
            snooze_choices,
            seq=seq,
            stop_label="Stop",
            stop_confirm=f"No more reminders to close {incident_ref}.",
        ),
    ]
    text = (
        f"{mention} {incident_ref} was resolved {resolved_for} ago: "
        "close it and finish the postmortem."
    )
    return ReminderMessage(_fallback(text), blocks)


def overdue_action_items(
    *, incident_ref: str, items: Sequence[OverdueItem], today: date
) -> ReminderMessage:
    """One message per incident channel listing its overdue action items, owners mentioned."""
    lines = []
    for item in items:
        owner = f"<@{item.owner_id}>" if item.owner_id else "no owner"
        days = (today - item.due_on).days
        late = f"{days} day{'s' if days != 1 else ''} overdue"
        # Stored as Slack markup (typed in `/incident action`): shown as typed, mentions and
        # all, as `/incident actions` shows it; only broadcasts are silenced.
        text = neutralise_broadcasts(truncate(" ".join(item.text.split()), 500))
        lines.append(f"• *{item.number}.* {text} — {owner}, due {item.due_on.isoformat()} ({late})")
    count = len(items)
    head = (
        f":clipboard: *{incident_ref}* has {count} overdue action item{'s' if count != 1 else ''}."
        " Mark them done, or change the due date if the plan changed."
    )
    blocks: list[dict[str, Any]] = [_section(head)]
    room = TEXT_BUDGET - blocks_text_length(blocks) - 200  # the "more" note
    chunk: list[str] = []
    chunk_size = used = listed = 0
    for line in lines:
        if used + chunk_size + len(line) + 1 > room:
            break
        if chunk and chunk_size + len(line) + 1 > SECTION_TEXT:
            if len(blocks) >= MESSAGE_BLOCKS - 2:  # room for this chunk and the note
                break
            blocks.append(_section("\n".join(chunk)))
            used += chunk_size
            chunk, chunk_size = [], 0
        chunk.append(line)
        chunk_size += len(line) + 1
        listed += 1
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    if listed < count:
        blocks.append(_context(f"…and {count - listed} more in the incident's action items."))
    owners = sorted({f"<@{i.owner_id}>" for i in items if i.owner_id})
    text = f"{incident_ref}: {count} overdue action item{'s' if count != 1 else ''}" + (
        f" ({', '.join(owners)})" if owners else ""
    )
    return ReminderMessage(_fallback(text), blocks)


def digest(*, entries: Sequence[DigestEntry], day: date) -> ReminderMessage:
    """The daily list of open incidents. The caller leaves private incidents out."""
    heading = f"Open incidents — {day.strftime('%A')} {day.day} {day.strftime('%B %Y')}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(heading, HEADER_TEXT, plain=True)},
        }
    ]
    if not entries:
        blocks.append(_section("No open incidents. :tada:"))
        return ReminderMessage(f"{heading}: none.", blocks)
    count = len(entries)
    blocks.append(_context(f"{count} open incident{'s' if count != 1 else ''}"))
    used = blocks_text_length(blocks)
    shown = 0
    for entry in entries:
        name = f"<#{entry.channel_id}|{entry.ref}>" if entry.channel_id else entry.ref
        update = (
            f"last update {entry.last_update} ago" if entry.last_update else "no status update yet"
        )
        commander = "" if entry.commander else " · *no commander*"
        block = _section(
            f"*{name}* · {escape_mrkdwn(entry.severity)} · {escape_mrkdwn(entry.status_name)}"
            f"{commander}\n{_title(entry.title)}\n_open for {entry.open_for} · {update}_"
        )
        size = blocks_text_length(block)
        if len(blocks) >= MESSAGE_BLOCKS - 1 or used + size > TEXT_BUDGET - 200:
            break
        blocks.append(block)
        used += size
        shown += 1
    if shown < count:
        blocks.append(_context(f"…and {count - shown} more: `/incident list` shows them all."))
    refs = ", ".join(e.ref for e in entries[:20])
    more = f" and {count - 20} more" if count > 20 else ""
    return ReminderMessage(_fallback(f"{heading}: {refs}{more}."), blocks)


# --------------------------------------------------------------------------------------------
# Notices: what the reminders package says, as plain data, rendered here


def render_notice(
    policy: Policy, notice: Mapping[str, Any], groups: Mapping[str, str]
) -> ReminderMessage:
    """A reminder's notice (``bot.reminders.evaluate.notice``) as a Slack message. ``groups``
    maps user-group handles to ids, to turn ``@sre-oncall`` into a real group mention."""
    fields = {k: v for k, v in notice.items() if k != "type"}
    kind = notice.get("type")
    snooze = policy.reminders.snooze_choices
    if kind == "update_nudge":
        return update_nudge(**fields, snooze_choices=snooze)
    if kind == "stale_step":
        return stale_step(**fields, snooze_choices=snooze)
    if kind == "close_reminder":
        return close_reminder(**fields, snooze_choices=snooze)
    if kind == "escalation":
        targets = fields.pop("targets", [])
        return escalation(**fields, mentions=resolve_mentions(targets, groups))
    if kind == "overdue_action_items":
        items = [
            OverdueItem(
                int(i["number"]), str(i["text"]), i.get("owner_id"), date.fromisoformat(i["due_on"])
            )
            for i in fields.get("items", [])
        ]
        return overdue_action_items(
            incident_ref=str(fields["incident_ref"]),
            items=items,
            today=date.fromisoformat(str(fields["today"])),
        )
    if kind == "clock":
        text = truncate(str(fields.get("text") or ""), FALLBACK_TEXT_LIMIT)
        return ReminderMessage(text, [_section(f":stopwatch: {text}")])
    if kind == "digest":
        entries = [DigestEntry(**entry) for entry in fields.get("entries", [])]
        return digest(entries=entries, day=date.fromisoformat(str(fields["day"])))
    raise ValueError(f"unknown notice type {kind!r}")
