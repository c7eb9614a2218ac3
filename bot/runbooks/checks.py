"""Problems in a runbook's Markdown that a reader would trip over: a code block never closed
(everything after it becomes code) and a reference link with no definition (shown as brackets).
Each is reported at its line, for ``firebreak runbooks lint``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from markdown_it.token import Token

from bot.runbooks.document import _inline_with_lines, _ref_key
from bot.runbooks.model import Problem

_UNRESOLVED_REF = re.compile(r"\[([^\]\n]+)\]\[([^\]\n]*)\]")


def unclosed_fences(tokens: Sequence[Token], lines: Sequence[str]) -> list[Problem]:
    problems = []
    for token in tokens:
        if token.type != "fence" or token.map is None:
            continue
        start, end = token.map
        closing = lines[end - 1] if end - 1 > start else ""
        closing = closing.lstrip(" \t>").strip()
        marker = token.markup
        if not (closing.startswith(marker) and set(closing) == {marker[0]}):
            problems.append(
                Problem(
                    start + 1,
                    "error",
                    f"code block opened with {marker} is never closed: add a line with "
                    f"{marker} after the code",
                )
            )
    return problems


_LOG_TOKEN = re.compile(r"^(?:[A-Z][A-Z0-9_]*|[\d:.\-/TZ+ ]+)$")
"""What a log line puts in brackets before the message: a level (``ERROR``, ``WARN``) or a
timestamp."""


def _looks_like_log(text: str, label: str) -> bool:
    """``[ERROR][pool] connection refused`` quoted from a log: CommonMark shows it as text (an
    undefined reference is no link), and so does every viewer. Reference links are written with
    words before a label (``[the dashboard][grafana]``) or a number (``[Grafana][1]``); a log
    level or a timestamp in the first brackets with a label that is not a number is log output.
    (An all-caps word before a number, ``[API][1]``, is still taken for a link.)"""
    return bool(_LOG_TOKEN.match(text.strip())) and not label.strip().isdigit()


def undefined_references(tokens: Sequence[Token], refs: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for line, child in _inline_with_lines(tokens):
        if child.type != "text":
            continue
        for match in _UNRESOLVED_REF.finditer(child.content):
            label = match.group(2) or match.group(1)
            if _looks_like_log(match.group(1), match.group(2)):
                continue
            if _ref_key(label) not in refs:
                problems.append(
                    Problem(
                        line,
                        "warning",
                        f"link [{match.group(1)}][{match.group(2)}] has no definition: add a "
                        f"line '[{label}]: https://...' or use an inline link",
                    )
                )
    return problems
