"""Text previews of runbook messages (``firebreak runbooks show``, ``/incident runbook``
listings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.runbooks.parser import Runbook


def blocks_to_text(blocks: Iterable[Mapping[str, Any]]) -> str:
    """A message as a person reads it in Slack, in plain text (for the CLI preview)."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        text = block.get("text")
        body = str(text.get("text", "")) if isinstance(text, Mapping) else ""
        if kind == "header":
            lines += [body, "=" * min(len(body), 72)]
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "context":
            lines.append(
                " ".join(str(e.get("text", "")) for e in block.get("elements", []) if "text" in e)
            )
        elif kind == "section":
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping) and isinstance(accessory.get("text"), Mapping):
                body += f"  [{accessory['text']['text']}]"
            lines.append(body)
        elif kind == "actions":
            labels = []
            for element in block.get("elements", []):
                inner = element.get("text") or element.get("placeholder") or {}
                labels.append(f"[{inner.get('text', '')}]")
            lines.append(" ".join(labels))
            lines.append("")
    return _unescape("\n".join(lines)).rstrip() + "\n"


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def steps_preview(runbook: Runbook, *, max_steps: int | None = None) -> str:
    """``Title (12 steps)`` and the numbered step titles, for listings and the CLI."""
    count = len(runbook.steps)
    lines = [f"{runbook.title} ({count} step{'s' if count != 1 else ''})"]
    if runbook.description:
        lines.append(runbook.description)
    shown = runbook.steps if max_steps is None else runbook.steps[:max_steps]
    width = len(str(count))
    lines += [f"{i:>{width}}. {step.title}" for i, step in enumerate(shown, start=1)]
    if len(shown) < count:
        lines.append(f"… and {count - len(shown)} more")
    return "\n".join(lines)
