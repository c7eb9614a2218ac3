"""Runbook front matter: YAML (``---``) or TOML (``+++``) at the top of the file, read into
title, description, owner and the lists a runbook is matched on (services, alerts, ...)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.runbooks.model import Problem

TEXT_KEYS = ("title", "description", "owner")
LIST_KEYS = {
    "services": ("services", "service"),
    "severities": ("severities", "severity"),
    "alerts": ("alerts", "alert"),
    "tags": ("tags", "tag"),
}
KNOWN_KEYS = frozenset(TEXT_KEYS) | {alias for names in LIST_KEYS.values() for alias in names}


@dataclass
class _FrontMatter:
    data: dict[str, Any] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)
    lines: int = 0
    """How many lines of the file (delimiters included) the front matter takes."""
    start_line: int = 1
    problems: list[Problem] = field(default_factory=list)


def _split_front_matter(lines: list[str]) -> _FrontMatter:
    """The front matter at the top of ``lines``. Blank lines before it (an editor's, or a
    template's) are forgiven when what follows is clean front matter, with a warning: sites
    such as Hugo and Jekyll would show it as text."""
    start = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if start and lines[start].rstrip() in ("---", "+++"):
        shifted = _split_at_top(lines[start:])
        if shifted.lines and not shifted.problems:
            shifted.lines += start
            shifted.start_line += start
            shifted.key_lines = {k: line + start for k, line in shifted.key_lines.items()}
            shifted.problems.append(
                Problem(
                    start + 1,
                    "warning",
                    f"the front matter starts on line {start + 1}, after blank lines; "
                    "documentation sites read it only on line 1: remove the blank lines",
                )
            )
            return shifted
    return _split_at_top(lines)


def _split_at_top(lines: list[str]) -> _FrontMatter:
    fm = _FrontMatter()
    if not lines:
        return fm
    opener = lines[0].rstrip()
    if opener not in ("---", "+++"):
        return fm
    closers = ("---", "...") if opener == "---" else ("+++",)
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in closers), None)
    if end is None:
        fm.problems.append(
            Problem(
                1,
                "warning",
                f"the file starts with {opener} but the front matter is never closed with "
                f"{closers[0]}; it is shown as text",
            )
        )
        return fm
    fm.lines = end + 1
    raw = "\n".join(lines[1:end])
    if opener == "+++":
        _load_toml(raw, fm)
        return fm
    _load_yaml(raw, fm)
    inside = lines[1:end]
    if (
        fm.problems
        and any(_HEADING.match(line) for line in inside)
        and not any(_YAML_KEY.match(line) for line in inside)
    ):
        # Not YAML, and a Markdown heading inside: a horizontal rule at the top of the page
        # (as GitHub shows it), not front matter. Shown as the page it is.
        return _FrontMatter(
            problems=[
                Problem(
                    1,
                    "warning",
                    "the file starts with --- but what follows is not YAML front matter (it "
                    "has a heading); it is shown as text. For a rule at the top, write *** "
                    "instead",
                )
            ]
        )
    return fm


_HEADING = re.compile(r"#{1,6}[ \t]+\S")
_YAML_KEY = re.compile(r"\s*[\w-]+\s*:")
"""A ``key:`` line: with one, broken front matter is reported as such (its ``# comment``
lines look like headings)."""


# libyaml's parser when PyYAML was built with it: five times faster on a large catalog.
_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(raw: str, fm: _FrontMatter) -> None:
    if not raw.strip():
        return
    try:
        loader = _YamlLoader(raw)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        # "while parsing a flow sequence" points at where the unclosed [ or { began
        mark = exc.context_mark or exc.problem_mark
        line = 2 + (mark.line if mark is not None else 0)
        reason = exc.problem or exc.context or "cannot be parsed"
        fm.problems.append(Problem(line, "error", f"invalid YAML front matter: {reason}"))
        return
    except Exception as exc:
        # Any failure of the YAML library (e.g. ValueError for a date like 2024-13-45) must
        # leave the runbook usable: the body still loads.
        fm.problems.append(Problem(2, "error", f"invalid YAML front matter: {exc}"))
        return
    if data is None:
        return
    if not isinstance(data, dict):
        fm.problems.append(
            Problem(2, "error", "front matter must be key: value pairs (e.g. title: Disk full)")
        )
        return
    fm.data = {str(k): v for k, v in data.items()}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            fm.key_lines[str(key_node.value)] = 2 + key_node.start_mark.line


def _load_toml(raw: str, fm: _FrontMatter) -> None:
    try:
        fm.data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        # "Unclosed array (at end of document)" gives no line: the front matter's last one,
        # where the reader ran out of it (the first line inside is the file's second)
        found = re.search(r"line (\d+)", str(exc))
        last = len(raw.rstrip().split("\n"))
        line = 1 + (int(found.group(1)) if found else last)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        fm.problems.append(Problem(line, "error", f"invalid TOML front matter: {reason}"))


@dataclass
class _Meta:
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


_SCALAR = (str, int, float)


def _read_meta(fm: _FrontMatter) -> _Meta:
    meta = _Meta()
    for key, value in fm.data.items():
        line = fm.key_lines.get(key, fm.start_line)
        if key in TEXT_KEYS:
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, _SCALAR):
                fm.problems.append(
                    Problem(line, "error", f"front matter {key!r} must be text, not a list or map")
                )
                continue
            setattr(meta, key, " ".join(str(value).split()) or None)
        elif key in KNOWN_KEYS:
            name = next(n for n, aliases in LIST_KEYS.items() if key in aliases)
            names = _names(value)
            if names is None:
                fm.problems.append(
                    Problem(
                        line,
                        "error",
                        f"front matter {key!r} must be a name or a list of names "
                        f"(e.g. {key}: [a, b])",
                    )
                )
                continue
            meta.lists[name] = tuple(dict.fromkeys(meta.lists.get(name, ()) + names))
        else:
            meta.unknown.append(key)
    return meta


def _names(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, bool):
        return None
    if isinstance(value, _SCALAR):
        return tuple(p.strip() for p in str(value).split(",") if p.strip())
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, _SCALAR):
                return None
            if str(item).strip():
                out.append(str(item).strip())
        return tuple(out)
    return None
