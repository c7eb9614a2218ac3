"""Prometheus Alertmanager (webhook v4, and the v3 shape) and Grafana unified alerting
(``version: "1"``, the same shape with extra URLs), plus Grafana's legacy pre-8 shape."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.alerts.model import (
    FIRING,
    RESOLVED,
    TEXT_MAX,
    TITLE_MAX,
    Alert,
    AlertMessage,
    Info,
    Link,
    PayloadError,
    Status,
    body_digest,
    clean,
    event_time,
    fingerprint,
    labels_of,
    parse_time,
    short_key,
    text_field,
)
from bot.markup import safe_url

_RUNBOOK_ANNOTATIONS = ("runbook_url", "runbook", "runbookUrl", "runbook_link")
_TITLE_ANNOTATIONS = ("summary", "title", "message")
_DESCRIPTION_ANNOTATIONS = ("description", "message", "summary", "Error")
"""``Error``: what Grafana says went wrong with a rule's query (a ``DatasourceError`` alert)."""
_GRAFANA_STATE_ALERTS = {"DatasourceNoData": "no data", "DatasourceError": "query failed"}
"""The alerts Grafana raises for a rule whose query returns nothing or fails: named after the
rule (its ``rulename`` label) and the state (``CPU high (no data)``), so the timeline does not
read as the rule firing, and matching runbooks as the rule's."""
_LINK_FIELDS = (
    ("generator", "generatorURL"),
    ("silence", "silenceURL"),
    ("dashboard", "dashboardURL"),
    ("panel", "panelURL"),
)


def _raw_labels(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _status(value: object, fallback: str | None, ends_at: datetime | None, now: datetime) -> Status:
    if isinstance(value, str) and value.strip().lower() in (FIRING, RESOLVED):
        return Status(value.strip().lower())
    if fallback in (FIRING, RESOLVED):
        return Status(fallback)
    # No status anywhere: an alert whose end time has passed has resolved.
    return Status.RESOLVED if ends_at is not None and ends_at < now else Status.FIRING


_NO_VALUE = "<no value>"
"""What a Go template prints for a missing field (``{{ .Labels.pod }}`` on an alert without
``pod``): a value nobody wrote, so it counts as absent."""


def _first(values: dict[str, str], names: tuple[str, ...]) -> str:
    """The first of ``names`` with a value; empty, blank and ``<no value>`` count as absent."""
    for name in names:
        value = values.get(name, "").strip()
        if value and value != _NO_VALUE:
            return values[name]
    return ""


def _event_at(raw: dict[str, Any], status: Status, now: datetime) -> datetime | None:
    """A firing alert is as new as its start, a resolved one as its end, and never older than
    its start (a sender's clocks can disagree: an end dated before the start is still after
    it): a late firing of an alert already resolved (the same startsAt) is older than the end
    recorded. A resolve with no end applies in arrival order."""
    starts = event_time(raw.get("startsAt"), now=now)
    if status == Status.FIRING:
        return starts
    ends = event_time(raw.get("endsAt"), now=now)
    return None if ends is None else max(ends, starts or ends)


def _labels_title(labels: dict[str, str]) -> str:
    """A title for an alert (or group) with no ``alertname`` and no summary: its first labels,
    as Alertmanager shows them (``job=node instance=db-1:9100``), rather than just "alert"."""
    shown = [f"{k}={v}" for k, v in sorted(labels.items()) if k != "severity"][:3]
    return " ".join(shown) or "alert with no name or labels"


def _alert(
    raw: object, index: int, common: dict[str, str], top_status: str | None, now: datetime
) -> Alert:
    where = f"alerts[{index}]"
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} must be an object")
    raw_labels = _raw_labels(raw.get("labels"))
    labels = labels_of(raw.get("labels"), f"{where}.labels")
    annotations = labels_of(raw.get("annotations"), f"{where}.annotations", TEXT_MAX)
    for name in ("startsAt", "endsAt", "generatorURL", "fingerprint", "status"):
        text_field(raw, name, where)
    ends_at = parse_time(raw.get("endsAt"), now=now)
    status = _status(raw.get("status"), top_status, ends_at, now)
    given = raw.get("fingerprint")
    key = (
        given.strip()
        if isinstance(given, str) and given.strip()
        else fingerprint(raw_labels or common)
    )
    name = labels.get("alertname") or common.get("alertname") or _first(labels, ("gems_alertname",))
    title = _first(annotations, _TITLE_ANNOTATIONS) or name or _labels_title(labels)
    state = _GRAFANA_STATE_ALERTS.get(name or "")
    rule = None
    if state and labels.get("rulename"):
        rule = labels["rulename"]
        title = f"{rule if title == labels.get('alertname') else title} ({state})"
        name = f"{rule} ({state})"
    links = []
    for kind, field_name in _LINK_FIELDS:
        url = safe_url(raw.get(field_name))
        if url is not None:
            links.append(Link(kind, url))
    image = safe_url(raw.get("imageURL"))
    if image is not None:
        links.append(Link("image", image))
    runbook = _first(annotations, _RUNBOOK_ANNOTATIONS) or None
    starts_at = parse_time(raw.get("startsAt"), now=now)
    return Alert(
        key=short_key(key),
        status=status,
        name=clean(name or title, TITLE_MAX, multiline=False),
        title=clean(title, TITLE_MAX, multiline=False),
        rule=clean(rule, TITLE_MAX, multiline=False) if rule else None,
        description=clean(_first(annotations, _DESCRIPTION_ANNOTATIONS)),
        labels=labels,
        annotations=annotations,
        severity=labels.get("severity") or labels.get("priority") or None,
        starts_at=starts_at,
        ends_at=ends_at,
        links=tuple(links),
        runbook_url=runbook,
        event_at=_event_at(raw, status, now),
    )


def _group_key(data: dict[str, Any]) -> str:
    """Alertmanager's ``groupKey``; without one (a custom template, an old sender), the
    receiver and the ``groupLabels``: what Alertmanager builds the key from, and the same for
    every message of the group, however its alerts come and go (``commonLabels`` and the alert
    set change as alerts join, so an alert could fire in one group and resolve in another).
    No ``groupLabels`` (null or empty) is ``group_by: []``: one group for the receiver."""
    given = data.get("groupKey")
    if isinstance(given, int | float) and not isinstance(given, bool):
        given = str(given)  # Alertmanager before 0.7 sent a number
    if isinstance(given, str) and given.strip():
        return short_key(_organisation(data) + given.strip())
    receiver = str(data.get("receiver") or "")
    labels = fingerprint(_raw_labels(data.get("groupLabels")))
    return short_key(f"{_organisation(data)}{receiver}:groupLabels:{labels}")


def _organisation(data: dict[str, Any]) -> str:
    """Grafana's ``orgId`` for any organisation but the first: two organisations (staging
    and production, two teams) with the same contact point, folder and rule send the same
    ``groupKey``, and must not share an incident. The first (``1``, every single-organisation
    Grafana) adds nothing, so its groups keep the keys they had."""
    org = data.get("orgId")
    if isinstance(org, bool) or not isinstance(org, int | str):
        return ""
    org = str(org).strip()
    return "" if org in ("", "1") else f"org:{org[:20]}:"


def _prometheus(source: str, data: dict[str, Any], now: datetime) -> AlertMessage:
    raw_alerts = data.get("alerts")
    if raw_alerts is None:
        raise PayloadError(
            f"no 'alerts' list: this is not a {source} webhook body "
            "(expected receiver, status, alerts, groupKey)"
        )
    if not isinstance(raw_alerts, list):
        raise PayloadError("'alerts' must be a list of alert objects")
    for name in ("receiver", "status", "externalURL", "title", "groupKey"):
        text_field(data, name, "body")
    top = data.get("status")
    top_status = top.strip().lower() if isinstance(top, str) else None
    common = _raw_labels(data.get("commonLabels"))
    labels_of(data.get("groupLabels"), "groupLabels")
    labels_of(data.get("commonLabels"), "commonLabels")
    labels_of(data.get("commonAnnotations"), "commonAnnotations")
    alerts = [_alert(raw, i, common, top_status, now) for i, raw in enumerate(raw_alerts)]
    if alerts and not any(alert.labels or alert.annotations for alert in alerts):
        # Alertmanager refuses an alert without labels and Grafana's all have some: no real
        # alert is like this, and an incident of it could say nothing. 4xx, not 200: a
        # custom payload template that drops them must be seen at its first test, not
        # after every real alert has been swallowed.
        raise PayloadError(
            "no alert in the message has labels or annotations, so nothing says what fired: "
            "send the webhook body as the sender makes it (a custom payload template must keep "
            "each alert's labels)"
        )
    group_labels = labels_of(data.get("groupLabels"), "groupLabels")
    common_labels = labels_of(data.get("commonLabels"), "commonLabels")
    name = (
        group_labels.get("alertname")
        or common_labels.get("alertname")
        or (_labels_title(group_labels) if group_labels else "")
        or (alerts[0].name if alerts else "")
    )
    if name in _GRAFANA_STATE_ALERTS and alerts:
        name = alerts[0].title  # the rule, "CPU high (no data)" (see ``_alert``)
    common_annotations = labels_of(data.get("commonAnnotations"), "commonAnnotations")
    summary = _first(common_annotations, _TITLE_ANNOTATIONS)
    title = summary if summary and name and summary != name else ""
    title = f"{name}: {title}" if name and title else (name or title or source + " alert")
    return AlertMessage(
        source=source,
        group_key=_group_key(data),
        title=clean(title, TITLE_MAX, multiline=False),
        alerts=tuple(alerts),
        note=None if alerts else "the message lists no alerts",
        truncated=_truncated(data.get("truncatedAlerts")),
        starts_name_occurrences=True,
    )


def _truncated(value: object) -> int:
    """How many alerts ``max_alerts`` left out of the message (null or absent: none)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def parse_alertmanager(data: dict[str, Any], now: datetime) -> AlertMessage:
    return _prometheus("alertmanager", data, now)


_LEGACY_STATES = {"alerting": FIRING, "no_data": FIRING, "ok": RESOLVED}
"""Grafana's legacy states that change the alert; the others (``paused``, ``pending``, or a
state Firebreak does not know) leave it as it was: a paused rule stopped evaluating, a pending
one has not fired yet, and neither says the condition is over."""


_LEGACY_TITLE_STATE = re.compile(r"^\s*\[(alerting|ok|no data|pending|paused)\]\s*", re.IGNORECASE)
"""Grafana's legacy ``title`` starts with the state (``[Alerting] High CPU alert``); the
alert's title is the rest, so it reads the same when it resolves."""


def _grafana_legacy(data: dict[str, Any], now: datetime) -> AlertMessage:
    """Grafana before 8 (legacy alerting): one rule per message, ``state`` says firing."""
    for name in ("ruleName", "title", "message", "state", "ruleUrl", "imageUrl"):
        text_field(data, name, "body")
    state = str(data.get("state") or "").strip().lower()
    # The rule's tags are its labels: severity, service and [[alerts.drop]] rules read them.
    labels = labels_of(data.get("tags"), "tags")
    rule_id = data.get("ruleId")
    rule_name = clean(data.get("ruleName") or data.get("title") or "Grafana alert", TITLE_MAX)
    key = f"rule:{rule_id}" if rule_id not in (None, 0, "0", "") else f"rule:{rule_name}"
    links = [
        Link(kind, url)
        for kind, url in (
            ("generator", safe_url(data.get("ruleUrl"))),
            ("image", safe_url(data.get("imageUrl"))),
        )
        if url is not None
    ]
    if state not in _LEGACY_STATES:
        shown = clean(state, 40, multiline=False) or "none"
        digest = body_digest(data)
        text = f"Grafana: {rule_name}: state {shown}, not firing (the alert is left as it was)"
        return AlertMessage(
            source="grafana",
            group_key=short_key(key),
            title=rule_name,
            info=(Info(key=f"grafana:{digest}", text=text),),
            note=f"Grafana legacy state {shown!r}: stored, no alert changed",
        )
    alert = Alert(
        key=short_key(key),
        status=Status(_LEGACY_STATES[state]),
        name=rule_name,
        title=clean(
            _LEGACY_TITLE_STATE.sub("", str(data.get("title") or "")) or rule_name,
            TITLE_MAX,
            multiline=False,
        ),
        description=clean(data.get("message")),
        labels=labels,
        links=tuple(links),
    )
    message = AlertMessage(
        source="grafana", group_key=short_key(key), title=alert.title, alerts=(alert,)
    )
    return _ignored_test(message, "notification channel") if _legacy_test(data) else message


_LEGACY_TEST_MESSAGE = "someone is testing the alert notification within grafana."
"""The message of Grafana's legacy test notification (a notification channel's Send Test),
``Grafana`` or ``grafana`` by version."""


def _legacy_test(data: dict[str, Any]) -> bool:
    """The body is a legacy notification channel's Send Test: Grafana's own test rule, titled
    ``[Alerting] Test notification`` (its name) and carrying Grafana's fixed message. Its
    ``ruleId`` says nothing (0 before 7, a random number after), so it is not read: a user's
    own rule named "Test notification" with its own message still fires."""
    title = _LEGACY_TITLE_STATE.sub("", str(data.get("title") or "")).strip()
    message = str(data.get("message") or "").strip().casefold()
    return title.casefold() == "test notification" and message == _LEGACY_TEST_MESSAGE


def _ignored_test(message: AlertMessage, sender: str) -> AlertMessage:
    """A test Grafana sends from ``sender`` (its contact point, a legacy notification
    channel): ignored as PagerDuty's ping is, answered 2xx, never stored, however often it is
    sent. Its alert stays on the message (what it carried); nothing acts on the alerts of an
    ignored message."""
    return replace(
        message,
        title=f"Grafana {sender} test",
        note=f"a test from Grafana's {sender}: nothing stored, no incident",
        ignored=True,
    )


_GO_QUOTED_META = re.compile(r"\\([\\.+*?()|\[\]{}^$])")
"""A character Go's regexp.QuoteMeta escaped."""
_GO_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4} \S+( m=[+-][\d.]+)?")
"""Go's ``time.Time.String()``: ``2022-08-31 05:54:04.52289368 +0000 UTC m=+42208.256292221``."""


_TEST_LABELS = {"alertname": "TestAlert", "instance": "Grafana"}
_TEST_SUMMARY = "Notification test"
"""The labels and summary of the alert Grafana's contact point test sends when the person
testing gives none of their own."""


def _contact_point_test(data: dict[str, Any]) -> bool:
    """The body is Grafana's contact point test (the Test button, or the API behind it). Its one
    alert is ``TestAlert``, ``instance="Grafana"``, "Notification test" unless the person
    testing gave their own labels and annotations, and its ``groupKey`` is made from that
    alert's labels and the time of the click: each click would be a new group, and a new
    incident. That key is what is recognised (``<receiver>-<fingerprint>-<unix time>``, or in
    older versions the labels then a Go time), not the labels: a user's own rule named
    ``TestAlert`` has a real group key (``{}/{...}:{alertname="TestAlert"}``) and still fires.
    A body with no key is a test only when its alert is Grafana's own, unchanged."""
    raw_alerts = data.get("alerts")
    key = data.get("groupKey")
    if not isinstance(raw_alerts, list) or len(raw_alerts) != 1:
        return False
    raw = raw_alerts[0]
    labels = _raw_labels(raw.get("labels")) if isinstance(raw, dict) else {}
    if not labels:
        return False
    if not isinstance(key, str) or not key.strip():
        # No key to recognise (a body made without one): only Grafana's own test alert,
        # labels and summary as it makes them, is a test.
        annotations = _raw_labels(raw.get("annotations")) if isinstance(raw, dict) else {}
        shown = {name: value for name, value in labels.items() if value}
        return shown == _TEST_LABELS and annotations.get("summary") == _TEST_SUMMARY
    given = raw.get("fingerprint")
    prints = {fingerprint(labels)} | ({given.strip()} if isinstance(given, str) else set())
    # The key holds the contact point's name as written; the body's ``receiver`` is that name
    # through Go's regexp.QuoteMeta (``ops\.firebreak`` for ``ops.firebreak``).
    receiver = str(data.get("receiver") or "")
    names = {receiver, _GO_QUOTED_META.sub(r"\1", receiver)}
    newer = re.fullmatch(r"(.*)-([0-9a-f]{16})-\d+", key)
    if newer and newer.group(1) in names and newer.group(2) in prints:
        return True
    # Prometheus' LabelSet.String(): sorted name="value" pairs, values quoted as Go quotes.
    pairs = ", ".join(
        f"{name}={json.dumps(labels[name], ensure_ascii=False)}" for name in sorted(labels)
    )
    return key.startswith("{" + pairs + "}") and bool(
        _GO_TIME.fullmatch(key.removeprefix("{" + pairs + "}"))
    )


def parse_grafana(data: dict[str, Any], now: datetime) -> AlertMessage:
    if "alerts" not in data and ("evalMatches" in data or "ruleId" in data or "state" in data):
        return _grafana_legacy(data, now)
    if "alerts" not in data and isinstance(data.get("text"), str):
        # A Slack-shaped body ({"text": ...}): a contact-point test posted to the wrong
        # integration. Kept, shown on the list, never turned into an incident.
        return AlertMessage(
            source="grafana",
            group_key="text:" + fingerprint({"text": data["text"]}),
            title=clean(data["text"], TITLE_MAX, multiline=False),
            note="a text-only body (not Grafana's webhook shape): stored, no alerts in it",
        )
    message = _prometheus("grafana", data, now)
    if _contact_point_test(data):
        receiver = clean(data.get("receiver") or "", 100, multiline=False)
        return _ignored_test(message, "contact point" + (f" {receiver!r}" if receiver else ""))
    return message
