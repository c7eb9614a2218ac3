"""The normalised shape every source's payload is parsed into.

Parsers (``bot.alerts.sources``) never touch the database or Slack: they turn one webhook body
into one :class:`AlertMessage`. Everything downstream (routing, grouping, storing) only sees
these plain values, so a payload can be replayed without side effects.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.incidents.text import shows_something, storable
from bot.keys import fit_key

FIRING = "firing"
RESOLVED = "resolved"

TITLE_MAX = 300
TEXT_MAX = 4_000
KEY_MAX = 200
LABEL_MAX = 1_000
MAX_LABELS = 100


class Status(StrEnum):
    FIRING = FIRING
    RESOLVED = RESOLVED


SOURCE_TITLES = {
    "alertmanager": "Alertmanager",
    "grafana": "Grafana",
    "datadog": "Datadog",
    "pagerduty": "PagerDuty",
    "opsgenie": "Opsgenie",
    "generic": "Alerts",
}
PRINCIPAL_PREFIX = "alerts:"
"""Alert-declared incidents are reported by ``alerts:<source>``, a principal that is no person."""


def reporter_of(source: str) -> str:
    """The principal an alert-declared incident is reported by: ``alerts:<source>``."""
    return f"{PRINCIPAL_PREFIX}{source}"


def principal_title(actor: str) -> str | None:
    """The tool an ``alerts:<source>`` principal stands for, as people call it (``Alertmanager``);
    ``None`` for any other principal."""
    if not actor.startswith(PRINCIPAL_PREFIX):
        return None
    source = actor.removeprefix(PRINCIPAL_PREFIX)
    return SOURCE_TITLES.get(source, source.capitalize() or None)


class PayloadError(ValueError):
    """The body is JSON but not a shape the source sends; the message says what is wrong."""


@dataclass(frozen=True)
class Link:
    """A link from the alert, http(s) only (``safe_url`` refuses everything else)."""

    kind: str
    url: str


@dataclass(frozen=True)
class Alert:
    """One alert: its dedupe key within the group (a fingerprint) and what it says."""

    key: str
    status: Status
    name: str
    title: str
    rule: str | None = None
    """The rule the alert is about when its name says more than the rule's (Grafana's alert
    that rule ``CPU high`` returned no data is named ``CPU high (no data)``): runbooks are
    matched by the rule, the timeline reads the name."""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    severity: str | None = None
    """The source's own severity or priority (``critical``, ``P1``, ``warning``), unmapped."""
    service: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    links: tuple[Link, ...] = ()
    runbook_url: str | None = None
    """The raw runbook reference (an http(s) URL or a catalog path); never shown unless safe."""
    event_at: datetime | None = None
    """When the event this status reports happened, when the source says so (PagerDuty's
    ``occurred_at``, Opsgenie's ``updatedAt``, Alertmanager's ``startsAt`` of a firing alert and
    ``endsAt`` of a resolved one). Senders do not deliver in order: a status older than the
    newest one applied to the alert is stale: the message is still stored (and answered 2xx),
    its status is not applied."""


def stale(applied_at: datetime | None, alert: Alert) -> bool:
    """The alert reports an event older than the newest one applied to it (``applied_at``):
    senders do not deliver in order (a PagerDuty ``acknowledged`` after its ``resolved``, an
    Opsgenie Create after its Close, an Alertmanager firing copy after the resolve), and the
    newest event wins. Undated events apply in arrival order. The one rule: the receiver
    (``bot.alerts.intake``) and ``firebreak alerts replay`` both ask it."""
    return applied_at is not None and alert.event_at is not None and alert.event_at < applied_at


@dataclass(frozen=True)
class Info:
    """Something that happened to the group that is not a firing/resolved change: a PagerDuty
    note or acknowledgement, an Opsgenie custom action. Recorded on the incident's timeline."""

    key: str
    """Unique per event (the source's event id, else a hash of the body)."""
    text: str
    severity: str | None = None
    """A priority the event sets (PagerDuty's ``priority_updated``), unmapped: the policy maps
    it to a severity, which is recorded with the text and kept as the group's severity."""
    at: datetime | None = None
    """When the sender says it happened (Opsgenie's ``alert.updatedAt``), if it says: a
    priority change that comes before the alert that opens its group is weighed against that
    alert's own priority by it (``bot.alerts.priorities.prevails``)."""


@dataclass(frozen=True)
class AlertMessage:
    """One webhook body, normalised. ``group_key`` says which incident it belongs to."""

    source: str
    group_key: str
    title: str
    alerts: tuple[Alert, ...] = ()
    info: tuple[Info, ...] = ()
    note: str | None = None
    """Why the message carries no alerts (a test notification, a text-only body)."""
    ignored: bool = False
    """Nothing in it concerns an incident (PagerDuty's ``pagey.ping``, ``service.updated``): it
    is answered 2xx, so the sender keeps the subscription, and stored nowhere."""
    truncated: int = 0
    """Alerts of the group the sender left out (Alertmanager's ``truncatedAlerts``): while any
    are, the listed ones resolving never means that the whole group has resolved."""
    same_as: tuple[str, str] | None = None
    """``(label, value)``: when no group has ``group_key`` yet, the group of the same source
    whose alert carries this label value is this message's group (an Opsgenie Escalate that
    names only the ``alertId`` its Create carried beside the alias)."""
    merged: bool = False
    """The sender closed its incident by merging it into another (PagerDuty's
    ``merge_resolve_reason``): its alerts resolve, but the impact goes on in the other one, so
    nobody is asked to mitigate and nothing is mitigated for it."""
    phase_label: str | None = None
    """The label holding the sender's own word for an alert's state beyond firing or resolved
    (Datadog's ``transition``: Warn, Triggered, No Data): a change of it while the status
    stays (a Warn escalating to Triggered) goes on the timeline; a renotification (``Re-…``,
    ``Renotify``) is no change."""
    starts_name_occurrences: bool = False
    """The alerts' ``starts_at`` names an occurrence (Alertmanager's and Grafana's
    ``startsAt``): an alert still firing that comes with a later start ended and fired again
    in between, though no resolve came (``send_resolved: false``, or a resolve lost)."""
    related: tuple[str, str] | None = None
    """``(label, value)`` shared by every group of one thing across groups (a Datadog monitor
    and scope across its alert cycles): a new group firing within the flap window of such a
    group's incident attaches to that incident."""

    def __post_init__(self) -> None:
        # A sender's title of only zero-width characters (cleaned to nothing) still gets an
        # incident a title people can read, instead of the alert being refused and lost.
        fallback = (
            self.title
            or next((a.title or a.name for a in self.alerts if a.title or a.name), "")
            or f"{SOURCE_TITLES.get(self.source, self.source)} alert"
        )
        object.__setattr__(self, "title", fallback)
        if any(not (a.title and a.name) for a in self.alerts):
            named = tuple(
                replace(a, title=a.title or a.name or fallback, name=a.name or a.title or fallback)
                for a in self.alerts
            )
            object.__setattr__(self, "alerts", named)

    @property
    def firing(self) -> int:
        return sum(1 for a in self.alerts if a.status == Status.FIRING)


# --------------------------------------------------------------------------------------------
# Hygiene shared by every parser


_BROADCAST = re.compile(r"<!(channel|here|everyone|subteam\^[^>|]*)(\|[^>]*)?>", re.IGNORECASE)
_MENTION = re.compile(r"<([@#][A-Z0-9]+)(\|[^>]*)?>")


def neutralise(text: str) -> str:
    """Slack control sequences made inert: ``<!channel>`` becomes the text ``@channel`` with a
    word joiner after the ``@`` so it can never ping, whatever renders it later; user and
    channel mentions lose their angle brackets."""
    text = _BROADCAST.sub(lambda m: "@\u2060" + m.group(1).split("^")[0], text)
    text = _MENTION.sub(lambda m: m.group(1)[0] + "\u2060" + m.group(1)[1:], text)
    return text.replace("@channel", "@\u2060channel").replace("@here", "@\u2060here")


def clean(value: object, limit: int = TEXT_MAX, *, multiline: bool = True) -> str:
    """Text from a payload: NFC, no control characters, no pings, cut to ``limit`` with an
    ellipsis (alerts are shown, not edited, so a 10,000-character description is shortened,
    never refused)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = unicodedata.normalize("NFC", text)
    text = storable(text).replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        text = " ".join(text.split())
    text = neutralise(text.strip())
    if not shows_something(text):
        return ""  # zero-width spaces and direction marks alone say nothing
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text


def short_key(value: str) -> str:
    """A dedupe key that fits the database: long keys become a stable hash."""
    return fit_key(storable(value), KEY_MAX)


def body_digest(data: object) -> str:
    """A key for a delivery whose sender gives it no id: the hash of its body, so a retry of
    the same delivery is recognised."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def labels_of(value: object, what: str, limit: int = LABEL_MAX) -> dict[str, str]:
    """A JSON object of label -> text (null means empty; ``true`` and ``false`` as JSON writes
    them, so a rule written against the payload matches; nested objects and lists are no
    labels and are left out); anything else is a payload error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be an object of names to values")
    out: dict[str, str] = {}
    for name, item in list(value.items())[:MAX_LABELS]:
        if isinstance(item, dict | list):
            continue
        written = json.dumps(item) if isinstance(item, bool) else "" if item is None else item
        out[clean(name, 200, multiline=False)] = clean(written, limit, multiline=limit > LABEL_MAX)
    return out


def text_field(data: dict[str, object], name: str, what: str) -> str | None:
    """A string (or number) field; ``None`` when absent or null; a payload error otherwise."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise PayloadError(f"{what}.{name} must be a string")
    return str(value)


_ZERO_YEAR = 1970


def parse_time(value: object, *, now: datetime) -> datetime | None:
    """RFC 3339 text or epoch seconds/ms/ns. Zero (``0001-01-01``), unparseable or missing
    times are ``None``; future times are clamped to ``now`` (a wrong clock never dates an
    alert after it was received)."""
    result: datetime | None = None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        try:
            # Inside the try: a 400-digit integer overflows a float, and "²" passes isdigit().
            number = float(value)
            for divisor in (1, 1e3, 1e6, 1e9):
                if number / divisor < 1e11:
                    number /= divisor
                    break
            result = datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        # Go prints nanoseconds; Python takes at most microseconds.
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        try:
            result = datetime.fromisoformat(text)
            if result.tzinfo is None:
                result = result.replace(tzinfo=UTC)
            # Inside the try: year 1 east of UTC, or year 9999 west of it, has no UTC time.
            result = result.astimezone(UTC)
        except (OverflowError, ValueError):
            return None
    if result is None or result.year < _ZERO_YEAR:
        return None
    return min(result, now)


SENDER_CLOCK_AHEAD = timedelta(minutes=15)
"""How far a sender's clock may run ahead of Firebreak's with its events still in order."""


def event_time(value: object, *, now: datetime) -> datetime | None:
    """When a sender says an event happened, to order its events (``stale``). As
    ``parse_time``, except that a time up to ``SENDER_CLOCK_AHEAD`` in the future is kept: a
    sender whose clock runs a few minutes ahead dates its firing and its resolve both in
    Firebreak's future, and clamping both to their arrival would let a late copy of the firing
    look newer than the resolve. A time further ahead is no clock running fast but a wrong
    date (a year 2099): it counts as ``now``, when it came, so a resolve dated correctly
    after it is not taken for older and dropped, leaving the alert firing for ever."""
    horizon = now + SENDER_CLOCK_AHEAD
    when = parse_time(value, now=horizon)
    return now if when is not None and when >= horizon else when


# --------------------------------------------------------------------------------------------
# Alertmanager's fingerprint: FNV-1a 64 over the sorted label pairs, 0xff after each name/value

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1


def fingerprint(labels: dict[str, str]) -> str:
    """The fingerprint Alertmanager gives an alert with these labels (16 hex digits)."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8") + b"\xff":
                value ^= byte
                value = (value * _FNV_PRIME) & _MASK
    return f"{value:016x}"
