"""The alerts a runbook's body says it covers, when its front matter does not.

Many runbooks name their alert in the text: kube-prometheus-style pages and team runbooks open
with ``**Alert:** `HighErrorRate``` or ``Alerts: KubeAPIErrorBudgetBurn, KubeAPILatencyHigh``,
and a service's page lists its alerts in a table whose column is headed *Alert*. Only these
explicit forms count, read outside code:

* a line that starts with the label ``Alert:``, ``Alerts:`` or ``Alert name(s):`` (bold or not,
  in a paragraph or a list item), followed by the names: each in backticks or quotes (any
  name, ``Backend service is down`` too), or written bare as an alert's name (``KubeAPIDown``,
  ``etcdNoLeader``, ``disk_full``), separated by ``,`` ``/`` ``&`` ``and`` ``or``; what
  follows the last name (``(DNS probe success < 90%) · **Severity:** page``) is not read;
* the cells of a table column headed ``Alert``, ``Alerts`` or ``Alert name``, read the same way.

``Related alerts:``, ``Firing alerts:`` and CamelCase words in prose name nothing, nor does a
label whose first word is no alert's name (``Alert: fires when the disk is 90 % full``).
Headings naming alerts (``## KubePodCrashLooping``, ``# Alert: HighErrorRate``) are read by
:func:`bot.runbooks.headings.alert_heading`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it.token import Token

from bot.runbooks.headings import is_alert_name
from bot.runbooks.model import DeclaredAlert

_EMPHASIS = r"[*_]{0,2}"
_LABEL = re.compile(
    rf"^\s*{_EMPHASIS}\s*(?:alerts?|alert\s*names?)\s*"
    rf"(?::\s*{_EMPHASIS}|{_EMPHASIS}\s*:)\s*(?P<value>\S.*)$",
    re.IGNORECASE,
)
"""``Alert: X``, ``**Alert:** X``, ``**Alerts**: X``, ``Alert name: X``."""
_HEADER = re.compile(r"^\s*[*_]{0,2}\s*(?:alerts?|alert\s*names?)\s*[*_]{0,2}\s*$", re.IGNORECASE)
_QUOTED = re.compile(r"^(?:`([^`\n]+)`|\"([^\"\n]+)\"|“([^”\n]+)”|'([^'\n]+)')")
_BARE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*")
_SEPARATOR = re.compile(r"^\s*(?:,|/|&|;|\band\b|\bor\b)\s*", re.IGNORECASE)
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
_NOT_IN_A_NAME = re.compile(r"[{}\[\]<>=|$\\]")
NAME_MAX = 120


def declared_alerts(tokens: Sequence[Token]) -> tuple[DeclaredAlert, ...]:
    """The alerts ``tokens`` (a parsed document's, front matter blanked) declare, in order;
    an alert declared twice counts at its first place."""
    found: dict[str, DeclaredAlert] = {}
    heading = in_head = in_cell = False
    column: int | None = None
    cell = -1
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            heading = token.type == "heading_open"
        elif token.type in ("thead_open", "thead_close"):
            in_head = token.type == "thead_open"
            column = None if in_head else column
        elif token.type == "tr_open":
            cell = -1
        elif token.type in ("th_open", "td_open", "th_close", "td_close"):
            in_cell = token.type.endswith("_open")
            cell += 1 if in_cell else 0
        elif token.type != "inline" or heading or token.map is None:
            continue
        elif in_cell:
            if in_head and column is None and _HEADER.match(token.content):
                column = cell
            elif not in_head and cell == column:
                for name in names_in(token.content):
                    found.setdefault(
                        name.casefold(), DeclaredAlert(name, token.map[0] + 1, "table")
                    )
        else:
            for offset, line in enumerate(token.content.split("\n")):
                label = _LABEL.match(line)
                for name in names_in(label.group("value")) if label else []:
                    line_number = token.map[0] + 1 + offset
                    found.setdefault(name.casefold(), DeclaredAlert(name, line_number, "line"))
    return tuple(found.values())


def names_in(value: str) -> list[str]:
    """The alert names at the start of a label's value or a table cell."""
    names: list[str] = []
    rest = value.strip()
    while rest:
        rest = rest.lstrip("*_ ")
        quoted = _QUOTED.match(rest)
        if quoted is not None:
            name = next(g for g in quoted.groups() if g is not None).strip()
            if not _literal(name):
                break
            end = quoted.end()
        else:
            bare = _BARE.match(rest)
            if bare is None or not _bare_name(bare.group(0)):
                break
            name, end = bare.group(0), bare.end()
        names.append(name)
        separator = _SEPARATOR.match(rest[end:].lstrip("*_"))
        if separator is None:
            break
        rest = rest[end:].lstrip("*_")[separator.end() :]
    return names


def _literal(name: str) -> bool:
    """A name written in backticks or quotes: any alert's, as its tool spells it, but no
    expression, template or JSON (``{"alert_type": ...}``, ``up == 0``)."""
    return (
        0 < len(name) <= NAME_MAX
        and any(c.isalpha() for c in name)
        and _NOT_IN_A_NAME.search(name) is None
    )


def _bare_name(word: str) -> bool:
    """A word written bare that is an alert's name: ``KubeAPIDown``, ``etcdNoLeader``,
    ``disk_full``; not ``fires``, nor ``PostgreSQL``."""
    return is_alert_name(word) or _SNAKE.match(word) is not None
