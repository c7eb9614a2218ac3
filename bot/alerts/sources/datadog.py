"""Datadog's webhook integration. The body is a template the user writes (docs/alerts.md has the
one to paste), so every common variable is accepted flat or nested (``alert``/``event``
objects), and Datadog's default template (title, body, id) works too.

Group key, in order: ``$ALERT_CYCLE_KEY``, ``$AGGREG_KEY``, the monitor id with its scope
(``$ALERT_ID`` + ``$ALERT_SCOPE``, the scope read from the default title's ``on {...}`` when
there is no ``$ALERT_SCOPE``, else from the ``group`` of the monitor's link), the monitor
linked from the body, the title. Each alert cycle is a group; ``related`` ties the cycles of
one monitor and scope for the flap window."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.alerts.model import (
    TITLE_MAX,
    Alert,
    AlertMessage,
    Link,
    PayloadError,
    Status,
    clean,
    event_time,
    fingerprint,
    parse_time,
    short_key,
)
from bot.markup import safe_url

_NULLS = {"", "null", "none", "nil"}
_UNFILLED = re.compile(r"\$[A-Z][A-Z0-9_]*")
"""A template variable Datadog left as written (``$ALERT_CYCLE_KEY``, ``$AGGREG_KEY``,
``$ALERT_SCOPE``): it does so when it has no value for it, so the field has none. Taken for a
value, one literal key would be every monitor's group."""


def _absent(text: str) -> bool:
    """A stripped field value that says nothing: blank, a null word, or an unfilled variable."""
    return text.casefold() in _NULLS or bool(_UNFILLED.fullmatch(text))


_RESOLVED_TRANSITIONS = ("recovered", "resolved", "ok", "success")
_PREFIX = re.compile(r"^\s*\[([^\]]*)\]\s*")
_PRIORITY = re.compile(r"^P[1-5]$", re.IGNORECASE)
_MONITOR = re.compile(r"https://[\w.-]*datadoghq\.\w+/monitors[/#](\d+)")
_MD_LINK = re.compile(r"\[\[?([^\]]+)\]\((https?://[^)\s]+)\)")
_TITLE_SCOPE = re.compile(r"\bon\s+\{([^{}]+)\}\s*$")
_URL = re.compile(r"https://[^\s()\[\]<>\"']+", re.IGNORECASE)
_MONITOR_PATH = re.compile(r"/monitors/(\d+)/?")
_MONITOR_FRAGMENT = re.compile(r"(\d+)\?(.*)")
_DATADOG_HOST = re.compile(
    r"(app|us3|us5|ap1)\.datadoghq\.com|([\w-]+\.)?datadoghq\.eu|(app\.)?ddog-gov\.com"
)
"""Datadog's sites, whose monitor links may also take the older ``/monitors#<id>?group=...``."""


def _value(data: dict[str, Any], *paths: str) -> str | None:
    """The first present, non-null value among dotted ``paths`` (``alert.alert_id``)."""
    for path in paths:
        node: Any = data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or isinstance(node, bool):
            continue
        if isinstance(node, dict | list):
            raise PayloadError(f"{path} must be a string, not a JSON {type(node).__name__}")
        text = str(node).strip()
        if not _absent(text):
            return text
    return None


_STATES = frozenset(
    {"triggered", "recovered", "resolved", "warn", "warning", "no data", "alert", "ok"}
)
"""The words Datadog puts in brackets before a monitor's name (``[Triggered on {host:a}]``,
``[Re-Warn]``, ``[P1]``, ``[TEST]``); other brackets (``[prod] API latency``) are the name's."""


def _datadog_tag(tag: str) -> bool:
    word = tag.split(" on ", 1)[0].strip().casefold().removeprefix("re-")
    state = word.removesuffix(" recovered")  # "Warn Recovered", "Alert Recovered"
    return state in _STATES or word in ("renotify", "test") or bool(_PRIORITY.match(word))


def _strip_prefixes(title: str) -> tuple[str, list[str]]:
    """The monitor's name without the state, priority and test tags Datadog puts before it,
    and those tags (first to last)."""
    tags: list[str] = []
    while True:
        match = _PREFIX.match(title)
        if not match or not _datadog_tag(match.group(1)):
            return title.strip(), tags
        tags.append(match.group(1).strip())
        title = title[match.end() :]


def _scope(value: str | None) -> str | None:
    """A scope read as ``_value`` reads the ``$ALERT_SCOPE`` field (stripped; blank, a null
    string or an unfilled variable is none), so one host gives one key whichever source named
    it."""
    text = (value or "").strip()
    return None if _absent(text) else text


def _title_scope(prefixes: list[str]) -> str | None:
    """The scope Datadog's default title names (``[Triggered on {host:web-1}]``): without it,
    every scope of a multi-alert monitor would be one alert, and one host recovering would
    resolve the others."""
    for tag in prefixes:
        found = _TITLE_SCOPE.search(tag)
        if found and (scope := _scope(found.group(1))):
            return scope
    return None


def _link_scope(urls: list[str], monitor: str | None) -> str | None:
    """The scope in the ``group`` of the monitor's link (``.../monitors/8248529?group=host%3Aa``):
    Datadog's Monitor Status link in the body, and ``$LINK``, name a multi-alert monitor's
    scope there when neither the template nor the title does. Only a link to this monitor
    counts (a body may link to others), on any https host: Datadog's sites and an
    organisation's own subdomain."""
    for url in urls:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            continue
        if parts.scheme.lower() != "https":
            continue
        path = _MONITOR_PATH.fullmatch(parts.path)
        fragment = _MONITOR_FRAGMENT.fullmatch(parts.fragment)
        if path:
            linked, query = path.group(1), parts.query
        elif (
            parts.path in ("/monitors", "/monitors/") and fragment and _DATADOG_HOST.fullmatch(host)
        ):
            linked, query = fragment.group(1), fragment.group(2)
        else:
            continue
        if monitor is not None and linked != monitor:
            continue
        scope = _scope(next(iter(parse_qs(query).get("group", [])), None))
        if scope:
            return scope
    return None


_RUNBOOK_WORD = re.compile(r"\b(?:runbook|playbook)(?:s|_url)?\b", re.IGNORECASE)
_LABELLED = re.compile(
    r"\[(?P<md_label>[^\]]*)\]\((?P<md_url>https://[^)\s]+)\)"
    r"|<(?P<slack_url>https://[^|>\s]+)\|(?P<slack_label>[^>]*)>",
    re.IGNORECASE,
)
_BARE = re.compile(r"https://[^\s()\[\]<>\"'|]+", re.IGNORECASE)


def runbook_in(body: str) -> str | None:
    """The runbook a monitor's message links, as teams write it there (Datadog has no runbook
    field), on the first line that says "runbook" or "playbook": a link labelled so
    (``[Runbook](https://...)``, Slack's ``<https://...|Runbook>``), else the first link after
    the word (``Dashboard: https://... Runbook: https://...``), else the first link on the
    next line that has one (a "Runbook:" heading). A sentence's closing punctuation is not
    part of the link."""
    lines = body.splitlines()
    for n, line in enumerate(lines):
        word = _RUNBOOK_WORD.search(line)
        if word is None:
            continue
        for link in _LABELLED.finditer(line):
            label = link.group("md_label") or link.group("slack_label") or ""
            if _RUNBOOK_WORD.search(label):
                return _trimmed(link.group("md_url") or link.group("slack_url"))
        after = _BARE.search(line, word.end())
        if after is not None:
            return _trimmed(after.group(0))
        for following in lines[n + 1 : n + 3]:
            found = _BARE.search(following)
            if found is not None:
                return _trimmed(found.group(0))
        return None
    return None


def _trimmed(url: str) -> str:
    return url.rstrip(".,;:!?")


def parse(data: dict[str, Any], now: datetime) -> AlertMessage:
    raw_title = _value(data, "title", "event_title", "alert_title", "alert.alert_title")
    body = _value(data, "body", "event_msg", "text_only_msg", "message") or ""
    if raw_title is None and not body:
        raise PayloadError(
            "no title or body: paste the template from docs/alerts.md into the Datadog webhook "
            "(it sends at least title, body and alert_transition)"
        )
    title, prefixes = _strip_prefixes(raw_title or "")
    transition = _value(
        data, "alert_transition", "transition", "alert.alert_transition", "event.alert_transition"
    )
    if transition is None:  # the default template: "[Triggered] ..." / "[Recovered on {...}] ..."
        for tag in prefixes:
            word = tag.split(" on ")[0].strip()
            if word and not _PRIORITY.match(word) and word.upper() != "TEST":
                transition = word
                break
    alert_type = (_value(data, "alert_type", "alert.alert_type") or "").lower()
    folded = (transition or "").casefold()
    resolved = (
        any(folded.startswith(t) for t in _RESOLVED_TRANSITIONS)
        or folded.endswith(" recovered")  # "Warn Recovered", "Alert Recovered"
        or alert_type == "success"
    )
    priority = _value(data, "alert_priority", "priority_level", "severity", "alert.alert_priority")
    if priority is None:
        priority = next((t.upper() for t in prefixes if _PRIORITY.match(t)), None)
    monitor = _value(data, "alert_id", "monitor_id", "alert.alert_id")
    if monitor is None:
        found = _MONITOR.search(body)
        monitor = found.group(1) if found else None
    urls = _URL.findall(body) + [url for url in [_value(data, "link")] if url]
    scope = (
        _value(data, "alert_scope", "scopes", "alert.alert_scope")
        or _title_scope(prefixes)
        or _link_scope(urls, monitor)
    )
    cycle = _value(data, "alert_cycle_key", "alert.alert_cycle_key")
    aggregate = _value(data, "aggregate", "aggreg_key", "event.aggreg_key", "alert.aggreg_key")
    # The monitor and scope across alert cycles: a new cycle within the flap window attaches to
    # the incident of the one before (``related``), since each cycle is its own group.
    same_monitor = f"monitor:{monitor}:{scope or ''}" if monitor is not None else aggregate
    group = cycle or aggregate or same_monitor
    if group is None:
        group = "title:" + fingerprint({"title": title or body[:200], "scope": scope or ""})
    tags = _value(data, "tags") or ""
    service = next(
        (
            part.split(":", 1)[1]
            for part in re.split(r"[,\s]+", f"{scope or ''},{tags}")
            if part.startswith("service:") and part.split(":", 1)[1]
        ),
        None,
    )
    links: list[Link] = []
    for label, url in _MD_LINK.findall(body):
        label = label.strip("[] ").lower()
        kind = {"monitor status": "monitor", "related logs": "logs"}.get(label)
        safe = safe_url(url)
        if kind and safe and all(link.kind != kind for link in links):
            links.append(Link(kind, safe))
    for kind, path in (("event", "url"), ("event", "event.event_url"), ("link", "link")):
        safe = safe_url(_value(data, path))
        if safe and all(link.url != safe for link in links):
            links.append(Link(kind, safe))
    name = clean(title or raw_title or "Datadog monitor", TITLE_MAX, multiline=False)
    key = short_key(group)
    date = _value(data, "date", "last_updated")
    event_at = event_time(date, now=now)
    alert = Alert(
        key=key,
        status=Status.RESOLVED if resolved else Status.FIRING,
        name=name,
        title=name,
        description=clean(body.replace("%%%", "")),
        labels={
            k: clean(v, 1000, multiline=False)
            for k, v in (
                ("monitor_id", monitor),
                ("scope", scope),
                ("transition", transition),
                ("event_type", _value(data, "event_type")),
                ("query", _value(data, "alert_query", "alert.alert_query")),
            )
            if v
        }
        # Looked up by (a monitor across its alert cycles), so kept as a key: an index holds it.
        | ({"monitor_key": short_key(same_monitor)} if same_monitor else {}),
        severity=priority,
        service=clean(service, 200, multiline=False) if service else None,
        starts_at=parse_time(date, now=now),
        links=tuple(links),
        runbook_url=_value(data, "runbook_url", "runbook") or runbook_in(body),
        event_at=event_at,  # $DATE: when this transition happened
    )
    return AlertMessage(
        source="datadog",
        group_key=key,
        title=name,
        alerts=(alert,),
        related=("monitor_key", alert.labels["monitor_key"]) if cycle and same_monitor else None,
        phase_label="transition",
    )
