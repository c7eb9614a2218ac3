"""How the console shows things: names, times in the viewer's timezone, safe links, Slack
markup made readable, the timeline, CSV cells, Markdown, and the chart for each insight."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from bot.console import charts
from bot.console import insights as ins
from bot.console import queries as q
from bot.markup import NameResolver, safe_url


class People:
    """Names for user ids on one page, asking the resolver once per id."""

    def __init__(self, names: NameResolver | None) -> None:
        self.names = names
        self._seen: dict[str, str] = {}

    def __call__(self, user_id: str | None) -> str:
        if not user_id:
            return "—"
        if user_id not in self._seen:
            found = None
            if self.names is not None:
                try:
                    found = self.names.user(user_id)
                except Exception:  # a name is a nicety: show the id
                    found = None
            self._seen[user_id] = found or user_id
        return self._seen[user_id]


def _time_html(value: datetime) -> str:
    iso = value.astimezone(UTC).isoformat()
    day, seconds, minutes = iso[:10], iso[11:19], iso[11:16]
    return (
        f'<time datetime="{day}T{seconds}Z" title="{day} {seconds} UTC">{day} {minutes} UTC</time>'
    )


def when(value: datetime | None) -> Markup:
    """A time people read in their own timezone (console.js); UTC on hover and without JS."""
    if value is None:
        return Markup('<span class="unknown">—</span>')
    return Markup(_time_html(value))


_SLACK_TOKEN = re.compile(
    r"<([@#!])([^<>|\n]*)(?:\|([^<>\n]*))?>"  # a mention, a channel, a broadcast
    r"|<((?:https?|mailto|tel|ftp|slack)[^<>|\n]*)(?:\|([^<>\n]*))?>"  # a link
)
"""Slack's own markup; anything else in angle brackets (``<b>`` in an alert's title, stored as
the sender wrote it) is shown as written."""


def slack_text(text: str, people: Callable[[str | None], str]) -> str:
    """Slack markup made readable: mentions as names, links as their labels. The result is
    plain text (autoescaped by the template)."""

    def token(match: re.Match[str]) -> str:
        if match.group(4) is not None:  # a link: its label, else the address
            return match.group(5) or match.group(4)
        sigil, target, label = match.group(1), match.group(2), match.group(3)
        if sigil == "@":
            return "@" + (label or people(target))
        if sigil == "#":
            return "#" + (label or target)
        return "@" + (label or target.split("^")[0])  # !here, !subteam^S1|@oncall

    if "<" not in text and "&" not in text:
        return text
    text = _SLACK_TOKEN.sub(token, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def timeline_html(events: Sequence[q.EventRow], people: Callable[[str | None], str]) -> Markup:
    """The timeline's list items, built here rather than in the template: an incident can have
    10,000 events, and this is several times faster. Every piece of text is escaped."""
    labels: dict[str, str] = {}
    parts = []
    for e in events:
        label = labels.get(e.kind)
        if label is None:
            label = labels[e.kind] = str(escape(event_label(e.kind)))
        actor = f'<span class="actor">{escape(people(e.actor_id))}:</span> ' if e.actor_id else ""
        url = safe_url(e.source_url)
        link = (
            f' <a class="source" href="{escape(url)}" rel="noopener noreferrer">View in Slack</a>'
            if url
            else ""
        )
        parts.append(
            f'<li class="ev ev-{escape(e.kind)}"><div><span class="when">'
            f"{_time_html(e.occurred_at)}</span></div>"
            f'<div class="kind">{label}</div><div class="body">{actor}'
            f'<span class="text">{escape(slack_text(e.text, people))}</span>{link}</div></li>\n'
        )
    return Markup("".join(parts))


def event_label(kind: str) -> str:
    return kind.replace("_", " ").capitalize()


def markdown_renderer() -> MarkdownIt:
    """html=False: HTML inside a postmortem (an incident title with <script>) is shown as text.
    Only absolute http(s) links become links, as everywhere in the console: a relative or
    protocol-relative link (``//elsewhere.example``) or ``tel:`` in a note stays text."""
    renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    renderer.validateLink = lambda url: safe_url(url) is not None  # type: ignore[method-assign]
    return renderer


def _short_period(label: str) -> str:
    """``2026-W07`` -> ``W07``; ``2026-02`` -> ``Feb 2026`` (axis labels; tables keep the
    full label)."""
    if "-W" in label:
        return label.split("-", 1)[1]
    try:
        return date.fromisoformat(label + "-01").strftime("%b %Y")
    except ValueError:
        return label


def chart_for(table: ins.Table) -> Markup:
    labels = [str(row[0]) for row in table.rows]
    if table.columns[0] == "period":
        labels = [_short_period(label) for label in labels]
    if table.key in RESPONSE_KEYS:
        series = [
            ("median", [_num(r[2]) for r in table.rows]),
            ("p90", [_num(r[3]) for r in table.rows]),
        ]
        return charts.line_chart(table.title, labels, series, table.unit)
    if table.key == "time_in_status":
        return charts.hbar_chart(
            "Median hours in each status", labels, [_num(r[2]) for r in table.rows], "hours"
        )
    if table.key == "runbooks":
        return charts.hbar_chart(table.title, labels, [_num(r[1]) for r in table.rows], "runs")
    names = table.columns[1:-1]
    series = [(name, [_num(r[i + 1]) for r in table.rows]) for i, name in enumerate(names)]
    return charts.bar_chart(table.title, labels, series, table.unit)


RESPONSE_KEYS = frozenset(ins.RESPONSE_METRICS)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
