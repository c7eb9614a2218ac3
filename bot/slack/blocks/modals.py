"""Modals: declare, note, status update, role and capture-to-incident forms."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.config import Policy
from bot.models import Incident
from bot.slack import limits
from bot.slack.blocks.elements import (
    CAPTURE_VIEW,
    DECLARE_VIEW,
    NOTE_VIEW,
    ROLE_VIEW,
    UPDATE_VIEW,
    Block,
    context,
    option,
    plain,
    section,
    severity_label,
)


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
        # The status the form offered its choices from: a choice made after someone else
        # changed it (resolved the incident) must not apply unseen (``change_status(seen=)``).
        {"incident_id": incident.id, "channel": channel, "status": incident.status},
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
    checking: bool = False,
) -> dict[str, Any]:
    """Pick the incident a message from another channel goes to. The message travels in the
    form (Firebreak may not be able to read that channel); a text too long for the form's
    3,000-character metadata is shortened and marked so. ``checking``: private incidents are
    still being checked (the form opens first, within Slack's 3 s, and is updated after)."""
    options = [option(f"{i.ref}: {i.title}", str(i.id)) for i in incidents][: limits.SELECT_OPTIONS]
    still = [context(":hourglass_flowing_sand: Checking which private incidents you can see…")]
    if not options:
        return {
            "type": "modal",
            "callback_id": CAPTURE_VIEW,
            "title": plain("Add to timeline", limits.MODAL_TITLE),
            "close": plain("Close", limits.MODAL_BUTTON),
            "blocks": still
            if checking
            else [section("There is no open incident to add this message to.")],
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
            *(still if checking else []),
        ],
        _capture_metadata(channel, ts, message),
    )


def _capture_metadata(channel: str, ts: str, message: dict[str, Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"channel": channel, "ts": ts}
    if message is None:
        return metadata
    # What the capture needs, as ``IncidentFlows.capture`` reads it: who wrote it (an
    # integration by the name it posts under) and all it says, attachments and blocks included.
    author = limits.message_author(message)
    slim = {"user": author} if author else {}
    text = limits.message_text(message)
    metadata["message"] = {**slim, "text": text}
    while len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))) > (
        limits.PRIVATE_METADATA
    ):
        text = text[: max(len(text) - 200, 0)]
        metadata["message"] = {**slim, "text": text + " […]", "shortened": True}
    return metadata
