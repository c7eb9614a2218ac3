"""Block Kit as Slack checks and completes it: message content and views are checked against
Block Kit's limits (``bot.slack.limits``, the same rules the bot builds with) and answered with
Slack's error codes (``invalid_blocks``, ``msg_too_long``, ``view_too_large``...); the
``block_id`` and ``action_id`` an app leaves out are filled in, as Slack does, so every element
can be acted on."""

from __future__ import annotations

import json
import random
import string
from typing import Any

from bot.sandbox.args import Args, deep_copy, error_lines
from bot.sandbox.records import JSON, VIEW_SIZE_LIMIT, ApiError
from bot.sandbox.typed import rich_text_elements
from bot.slack.limits import MESSAGE_TEXT, message_errors, text_length, view_errors


def short_id(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=5))


def with_ids(blocks: list[JSON] | None, rng: random.Random) -> list[JSON] | None:
    if blocks is None:
        return None
    result: list[JSON] = deep_copy(blocks)
    for block in result:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", short_id(rng))
        elements: list[Any] = []
        if block.get("type") == "actions":
            elements = list(block.get("elements") or [])
        elif isinstance(block.get("accessory"), dict):
            elements = [block["accessory"]]
        elif isinstance(block.get("element"), dict):
            elements = [block["element"]]
        for element in elements:
            if isinstance(element, dict) and element.get("type") not in ("image", None):
                element.setdefault("action_id", short_id(rng))
    return result


def with_view_ids(view: JSON, rng: random.Random) -> JSON:
    result: JSON = deep_copy(view)
    blocks = result.get("blocks")
    if isinstance(blocks, list):
        result["blocks"] = with_ids(blocks, rng)
    return result


def rich_text_block(escaped: str, rng: random.Random) -> JSON:
    """The ``rich_text`` block Slack attaches to a message a person typed, whose ``text`` is
    ``escaped`` (:func:`bot.sandbox.typed.escape_typed`)."""
    return {
        "type": "rich_text",
        "block_id": short_id(rng),
        "elements": [{"type": "rich_text_section", "elements": rich_text_elements(escaped)}],
    }


def message_content(
    args: Args, rng: random.Random, *, required: bool
) -> tuple[str | None, list[JSON] | None, list[JSON] | None]:
    """Text, blocks and attachments of a message, checked as Slack checks them."""
    text = args.text("text")
    blocks = args.decoded("blocks", "invalid_blocks_format")
    if blocks is not None and not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    attachments = args.decoded("attachments", "invalid_attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise ApiError("invalid_attachments")
    if required and not text and not blocks and not attachments:
        raise ApiError("no_text")
    if text is not None and text_length(text) > MESSAGE_TEXT:
        raise ApiError("msg_too_long")
    if attachments is not None and len(attachments) > 100:
        raise ApiError("too_many_attachments")
    if blocks:
        problems = message_errors(None, blocks)
        if problems:
            raise ApiError(
                "invalid_blocks", errors=problems, response_metadata=error_lines(*problems)
            )
    return text, with_ids(blocks, rng), attachments


def checked_view(args: Args, rng: random.Random, *, kind: str | None) -> JSON:
    view = args.decoded("view", "invalid_arguments")
    if not isinstance(view, dict):
        raise ApiError("invalid_arguments", response_metadata=error_lines("view is required"))
    if len(json.dumps(view)) > VIEW_SIZE_LIMIT:
        raise ApiError("view_too_large")
    if kind is not None and view.get("type") != kind:
        raise ApiError(
            "invalid_arguments",
            response_metadata=error_lines(f"view.type must be {kind}"),
        )
    problems = view_errors(view)
    if problems:
        raise ApiError("invalid_arguments", response_metadata=error_lines(*problems))
    return with_view_ids(view, rng)
