"""One parser per source; each turns a decoded JSON body into an :class:`AlertMessage`.

``parse(source, data, now=...)`` is the single entry point. A body of the wrong shape raises
:class:`PayloadError` with a message that says what is wrong (the receiver answers 400).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.alerts.model import AlertMessage, PayloadError
from bot.alerts.sources import datadog as datadog
from bot.alerts.sources import generic as generic
from bot.alerts.sources import opsgenie as opsgenie
from bot.alerts.sources import pagerduty as pagerduty
from bot.alerts.sources import prometheus as prometheus

Parser = Callable[[dict[str, object], datetime], AlertMessage]

PARSERS: dict[str, Parser] = {
    "alertmanager": prometheus.parse_alertmanager,
    "grafana": prometheus.parse_grafana,
    "datadog": datadog.parse,
    "pagerduty": pagerduty.parse,
    "opsgenie": opsgenie.parse,
    "generic": generic.parse,
}

SOURCES = tuple(PARSERS)


def parse(source: str, data: object, *, now: datetime) -> AlertMessage:
    """Parse one body from ``source``; ``KeyError`` for an unknown source."""
    parser = PARSERS[source]
    if isinstance(data, list):
        raise PayloadError(
            "the body is a JSON array; send one JSON object per request "
            f"(the {source} webhook shape)"
        )
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object (the {source} webhook shape)")
    return parser(data, now)
