"""Defects a probe with real-world payloads found (round 7): Grafana's contact point test from a
contact point whose name Go quotes, Datadog's "Warn Recovered" / "Alert Recovered" transitions,
and alerts the policy drops counted in what responders read."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import select

from bot.alerts.model import Status, fingerprint
from bot.alerts.models import AlertGroup, AlertRecord
from bot.alerts.policy import AlertsPolicy, DropRule
from bot.alerts.routing import runbooks_named_by
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.models import Incident
from bot.runbooks.catalog import RunbookCatalog
from tests.alerts.conftest import NOW
from tests.alerts.test_datadog_link_scope_and_grafana_test import grafana_test
from tests.alerts.test_probe_round5 import deliver, notices, pagerduty, texts
from tests.e2e.conftest import ROOT


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("ops.firebreak", "ops\\.firebreak"),
        ("firebreak (prod)", "firebreak \\(prod\\)"),
        ("pager+slack", "pager\\+slack"),
    ],
)
def test_a_contact_point_test_is_recognised_whatever_the_contact_point_is_called(
    name: str, quoted: str
) -> None:
    """Grafana makes the test's group key from the contact point's name as written, and its
    body's ``receiver`` from that name through Go's regexp.QuoteMeta: ``ops\\.firebreak``.
    Before, such a contact point's Test button opened an incident at every click."""
    body = grafana_test(1796039000, receiver=name)
    body["receiver"] = quoted
    parsed = parse("grafana", body, now=NOW)
    assert parsed.ignored


def datadog_default(title: str, **fields: Any) -> dict[str, Any]:
    """Datadog's default webhook payload: the transition only in the title's brackets."""
    return {
        "id": "7912345",
        "title": title,
        "body": "%%%\n@webhook-firebreak CPU usage is high\n%%%",
        "date": "1796039000000",
        "event_type": "query_alert_monitor",
        "alert_id": "4242",
        **fields,
    }


@pytest.mark.parametrize("state", ["Warn Recovered", "Alert Recovered", "Recovered"])
def test_a_datadog_recovery_from_warn_or_alert_resolves_the_alert(state: str) -> None:
    """Datadog titles a monitor coming back from Warn ``[Warn Recovered on {host:web-1}]``:
    the alert resolves and keeps its name. Before, it stayed firing, named with the tag."""
    firing = parse("datadog", datadog_default("[Warn on {host:web-1}] CPU high"), now=NOW)
    back = parse("datadog", datadog_default(f"[{state} on {{host:web-1}}] CPU high"), now=NOW)
    [was], [now] = firing.alerts, back.alerts
    assert (was.status, now.status) == (Status.FIRING, Status.RESOLVED)
    assert was.name == now.name == "CPU high"
    assert firing.group_key == back.group_key


def test_a_recovery_named_in_the_transition_field_resolves_too() -> None:
    body = datadog_default(
        "[Alert Recovered] CPU high", alert_transition="Alert Recovered", alert_type="success"
    )
    [alert] = parse("datadog", body, now=NOW).alerts
    assert (alert.status, alert.name) == (Status.RESOLVED, "CPU high")


# -- alerts the policy drops are never counted --------------------------------------------------

GROUP = '{}/{severity=~"warning|critical"}:{namespace="payments"}'


def kube_alert(name: str, status: str, severity: str, ends: str | None = None) -> dict[str, Any]:
    labels = {"alertname": name, "namespace": "payments", "severity": severity}
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{name} in payments"},
        "startsAt": "2026-11-30T11:55:00Z",
        "endsAt": ends or "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus-0:9090/graph?g0.expr=x",
        "fingerprint": fingerprint(labels),
    }


def alertmanager(*alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "receiver": "firebreak",
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"namespace": "payments"},
        "commonLabels": {"namespace": "payments"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "groupKey": GROUP,
        "truncatedAlerts": 0,
    }


def test_alerts_the_policy_drops_are_not_counted_nor_an_earlier_episode(db: Database) -> None:
    """kube-prometheus' InfoInhibitor (dropped, as docs/alerts.md advises) fires first in its
    namespace's group; KubePodCrashLooping joins, then resolves. One incident, whose timeline
    and summary count the one alert a responder cares about. Before: "1 of 2 firing in this
    group, counting its earlier episodes", a summary of "1 of 2 firing", then "all 2 resolved"
    while InfoInhibitor was still firing."""
    policy = Policy(
        alerts=AlertsPolicy(drop=[DropRule(labels={"alertname": "Watchdog|InfoInhibitor"})])
    )
    inhibitor = kube_alert("InfoInhibitor", "firing", "none")
    crashing = kube_alert("KubePodCrashLooping", "firing", "warning")
    first = deliver(db, policy, "alertmanager", alertmanager(inhibitor), 0)
    assert first.incident_ref is None
    opened = deliver(db, policy, "alertmanager", alertmanager(inhibitor, crashing), 5)
    assert (opened.incident_ref, opened.declared, opened.firing) == ("INC-1", True, 1)
    resolved = kube_alert("KubePodCrashLooping", "resolved", "warning", "2026-11-30T12:09:00Z")
    deliver(db, policy, "alertmanager", alertmanager(inhibitor, resolved), 10)
    assert texts(db, 1, "alert_%") == [
        "Alert firing: KubePodCrashLooping (1 of 1 firing in this group)",
        "Alert resolved: KubePodCrashLooping (0 of 1 firing in this group)",
    ]
    with db.read() as session:
        [group] = session.exec(select(AlertGroup)).all()
        assert (group.episode, group.firing_count, group.alert_count) == (1, 0, 1)
        assert len(session.exec(select(AlertRecord)).all()) == 2  # the dropped one is kept
    [asked] = notices(db, "all_resolved")
    assert asked.incident_id is not None


def test_a_group_of_dropped_alerts_only_is_found_again_and_never_written_twice(
    db: Database,
) -> None:
    """Its rows are looked up like any group's: the same dropped alert three times is one row."""
    policy = Policy(alerts=AlertsPolicy(drop=[DropRule(labels={"alertname": "Watchdog"})]))
    watchdog = kube_alert("Watchdog", "firing", "none")
    for minute in (0, 5, 10):
        assert (
            deliver(db, policy, "alertmanager", alertmanager(watchdog), minute).incident_ref is None
        )
    with db.read() as session:
        assert len(session.exec(select(AlertRecord)).all()) == 1
        [group] = session.exec(select(AlertGroup)).all()
        assert (group.disposition, group.alert_count) == ("dropped", 0)


@pytest.mark.parametrize("description", ["&" * 2000, "<@U1> & <!here> " * 400])
def test_a_description_full_of_characters_slack_escapes_still_opens_its_incident(
    db: Database, description: str
) -> None:
    """Escaped for Slack, 2,000 ``&`` are 10,000 characters: the summary shows as much as fits,
    cut between entities. Before, the incident was refused (422, "The summary is 10,043
    characters long"), and Alertmanager drops a 4xx for good: the alert was lost."""
    alert = kube_alert("KubePodCrashLooping", "firing", "warning")
    alert["annotations"]["description"] = description
    opened = deliver(db, Policy(), "alertmanager", alertmanager(alert), 0)
    assert (opened.incident_ref, opened.declared) == ("INC-1", True)
    with db.read() as session:
        [incident] = session.exec(select(Incident)).all()
    shown = incident.summary.split("\n\n", 1)[1]
    assert len(shown) <= 2000 and shown.endswith("…")
    assert "<" not in shown and ">" not in shown
    assert not re.search(r"&[a-z]*$", shown[:-1])  # whole entities only
    assert len(shown) > 1900  # as much as fits


def test_a_confluence_page_url_names_the_runbook_of_that_title() -> None:
    """Confluence writes a page title's spaces as ``+``: ``/display/SRE/Disk+full`` is the
    runbook titled "Disk full", as ``Disk%20full`` already was."""
    catalog = RunbookCatalog.load([ROOT / "runbooks"])
    by_plus = runbooks_named_by(catalog, "https://wiki.example.com/display/SRE/Disk+full")
    by_space = runbooks_named_by(catalog, "https://wiki.example.com/display/SRE/Disk%20full")
    assert [r.id for r in by_plus] == [r.id for r in by_space] == ["disk-full"]


@pytest.mark.parametrize(
    ("source", "said"),
    [("pagerduty", "Opened by PagerDuty alerts"), ("generic", "Opened by alerts")],
)
def test_the_summary_names_the_sender_as_it_calls_itself(
    db: Database, source: str, said: str
) -> None:
    body = (
        pagerduty("incident.triggered", "E1", "2026-11-30T12:00:00Z", "P2")
        if source == "pagerduty"
        else {"title": "Checkout down", "dedupe_key": "checkout", "status": "firing"}
    )
    assert deliver(db, Policy(), source, body, 0).declared
    with db.read() as session:
        [incident] = session.exec(select(Incident)).all()
    assert incident.summary.startswith(f"{said} (1 firing).")
