"""The message metadata Firebreak writes on what it posts for an effect, and reads back: to find
a message an earlier attempt may have posted, and to know its own messages from people's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EFFECT_EVENT = "firebreak_effect"
"""Message metadata ``event_type`` of every message Firebreak posts for an effect."""


def effect_metadata(effect: str | None) -> dict[str, Any] | None:
    """The metadata of a message posted for ``effect`` (its key); None for no effect."""
    if effect is None:
        return None
    return {"event_type": EFFECT_EVENT, "event_payload": {"effect": effect}}


def posted_by_firebreak(message: Mapping[str, Any], effect: str | None = None) -> bool:
    """Whether Firebreak posted ``message`` (read with its metadata) for an effect: any, or
    ``effect``."""
    metadata = message.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != EFFECT_EVENT:
        return False
    payload = metadata.get("event_payload")
    return effect is None or (isinstance(payload, Mapping) and payload.get("effect") == effect)
