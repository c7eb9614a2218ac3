"""The generic JSON shape, for any tool that can POST JSON (docs/alerts.md)::

    {"title": "Checkout 5xx above 5%", "dedupe_key": "checkout-5xx", "status": "firing",
     "severity": "critical", "service": "checkout", "description": "...",
     "labels": {"team": "payments"}, "links": {"dashboard": "https://..."},
     "runbook_url": "https://...", "alert_key": "eu-west-1"}

``dedupe_key`` is the group (one incident); ``alert_key`` (optional, default the dedupe key)
tells several alerts of one group apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.alerts.model import (
    TITLE_MAX,
    Alert,
    AlertMessage,
    Link,
    PayloadError,
    Status,
    clean,
    labels_of,
    parse_time,
    short_key,
)
from bot.markup import safe_url

_FIELDS = ("title", "dedupe_key", "status", "severity", "service", "description", "runbook_url")


def _links(value: object) -> tuple[Link, ...]:
    pairs: list[tuple[str, object]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, dict):
                raise PayloadError('links must be {"name": "url"} or [{"title": ..., "url": ...}]')
            pairs.append((str(item.get("title") or item.get("name") or "link"), item.get("url")))
    elif value is not None:
        raise PayloadError('links must be {"name": "url"} or [{"title": ..., "url": ...}]')
    out = []
    for name, url in pairs[:20]:
        safe = safe_url(url)
        if safe is not None:
            out.append(Link(clean(name, 40, multiline=False) or "link", safe))
    return tuple(out)


def parse(data: dict[str, Any], now: datetime) -> AlertMessage:
    for name in (*_FIELDS, "alert_key"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise PayloadError(f"{name} must be a string")
    title = clean(data.get("title"), TITLE_MAX, multiline=False)
    key = (data.get("dedupe_key") or "").strip()
    if not title or not key:
        raise PayloadError("title and dedupe_key are required (non-empty strings)")
    status = (data.get("status") or "firing").strip().lower()
    if status not in ("firing", "resolved"):
        raise PayloadError(f"status must be 'firing' or 'resolved', not {status[:20]!r}")
    labels = labels_of(data.get("labels"), "labels")
    # A label ``alertname`` names the rule, as Prometheus names it: runbooks are matched by it.
    rule = clean(labels.get("alertname"), TITLE_MAX, multiline=False) or None
    alert = Alert(
        key=short_key((data.get("alert_key") or key).strip()),
        status=Status(status),
        name=title,
        title=title,
        rule=rule,
        description=clean(data.get("description")),
        labels=labels,
        severity=(data.get("severity") or "").strip() or None,
        service=clean(data.get("service"), 200, multiline=False) or None,
        starts_at=parse_time(data.get("started_at"), now=now),
        links=_links(data.get("links")),
        runbook_url=(data.get("runbook_url") or "").strip() or None,
    )
    return AlertMessage(source="generic", group_key=short_key(key), title=title, alerts=(alert,))
