"""Call-outs, the boxes runbooks put their warnings in, shown in Slack as an emoji and a bold
title: GitHub's ``> [!WARNING]``, Obsidian's ``> [!danger] Production only`` (any of its types,
a title of its own, ``-``/``+`` folding), and MkDocs' ``!!! danger "Do not promote"``. The
marker is markup, not words for responders to read."""

from __future__ import annotations

from bot.runbooks.headings import ADMONITION_TYPES

_WARNING = ("warning", "caution", "attention", "danger", "error", "failure", "fail", "bug")
_EMOJI = dict.fromkeys(_WARNING, ":warning:")
_EMOJI |= dict.fromkeys(("tip", "hint"), ":bulb:")
_EMOJI |= dict.fromkeys(("success", "check", "done"), ":white_check_mark:")
_EMOJI["important"] = ":exclamation:"


def is_callout(kind: str) -> bool:
    return kind.lower() in ADMONITION_TYPES


def emoji(kind: str) -> str:
    return _EMOJI.get(kind.lower(), ":information_source:")
