"""Where a key is written in a TOML file, so a configuration error can say ``file:line:``.

``tomllib`` returns plain data with no positions, and the validation error names the key by
its path (``("severities", 2, "name")``). This reads the file's lines for that path: table
headers (``[reminders]``, ``[[severities]]``, counted to give each array entry its index) and
``key =`` lines (dotted keys included). The line is the key's own, or the nearest enclosing
one written (the ``[[severities]]`` header of an entry missing a key, the ``drop = [...]`` line
of an inline array). Multi-line strings and arrays are skipped over, so a line inside them is
never taken for a key."""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_PART = re.compile(r"""[A-Za-z0-9_-]+|"([^"]*)"|'([^']*)'""")


def _parts(dotted: str) -> list[str]:
    return [m.group(1) or m.group(2) or m.group(0) for m in _PART.finditer(dotted)]


def toml_line(text: str, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of ``text`` that writes the value at ``loc``, or of the nearest
    enclosing key or table written; None when nothing of it is written (a default)."""
    wanted = [str(part) for part in loc]
    table: list[str] = []
    entries: dict[tuple[str, ...], int] = {}
    best: tuple[int, int] | None = None  # (matched length, line)
    open_quote: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if open_quote is not None:  # inside a multi-line string
            if line.count(open_quote) % 2 == 1:
                open_quote = None
            continue
        path: list[str] | None = None
        header = _HEADER.match(line)
        if header:
            name = _within_entries(_parts(header.group(2)), entries)
            if header.group(1) == "[[":
                index = entries.get(tuple(name), -1) + 1
                entries[tuple(name)] = index
                table = [*name, str(index)]
            else:
                table = name
            path = table
        else:
            key = _KEY.match(line)
            if key:
                path = table + _parts(key.group(1))
                rest = line[key.end() :]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        open_quote = quote
        if path is None:
            continue
        # An array of tables is written as its first entry's header.
        matched = len(wanted) if path[: len(wanted)] == wanted else len(path)
        if path[:matched] != wanted[:matched]:
            continue
        if best is None or matched > best[0]:
            best = (matched, number)
    return best[1] if best else None


def _within_entries(name: list[str], entries: dict[tuple[str, ...], int]) -> list[str]:
    """A header's path with the index of each array of tables it is under: after
    ``[[severities]]``, ``[severities.x]`` is ``x`` of the latest entry (``severities.0.x``)."""
    path: list[str] = []
    for number, part in enumerate(name, start=1):
        path.append(part)
        if number < len(name) and tuple(path) in entries:
            path.append(str(entries[tuple(path)]))
    return path
