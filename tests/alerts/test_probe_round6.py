"""Defects a probe with real-world payloads found (round 6), each as a responder or the platform
engineer who set up the sender sees it: Datadog variables left unfilled, a JSON integer too long
for Python, Grafana's test notifications, Grafana's legacy rule tags, and timeline entries that
leave out what an action was about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.alerts.model import PayloadError
from bot.alerts.models import AlertGroup, AlertRecord
from bot.alerts.sources import SOURCES, parse
from bot.config import Policy
from bot.db import Database
from tests.alerts.conftest import CORPUS, NOW, ServerFactory, load
from tests.alerts.test_probe_round5 import deliver, notices, texts
from tests.alerts.test_receiver import counts
from tests.conftest import Run

# -- 1. Datadog variables Datadog left unfilled ------------------------------------------------

UNFILLED = "datadog/probe-unfilled-variables-monitor-"


@pytest.mark.parametrize("aggregate", ["$AGGREG_KEY", None])
def test_unfilled_datadog_keys_never_merge_two_monitors_into_one_incident(
    db: Database, policy: Policy, aggregate: str | None
) -> None:
    """Monitor 111 (CPU) and monitor 222 (disk) both come with ``"alert_cycle_key":
    "$ALERT_CYCLE_KEY"`` as Datadog sends a variable it has no value for (and the aggregate
    unfilled too, or absent): each opens its own incident, and 111 recovering asks to mitigate
    its own incident only, while the disk is still full. Before, the disk alert attached to
    the CPU incident and 111's recovery asked "All alerts resolved: mitigate?" for both."""
    bodies = [load(f"{UNFILLED}{name}") for name in ("111-triggered", "222-triggered")]
    recovered = load(f"{UNFILLED}111-recovered")
    for body in (*bodies, recovered):
        if aggregate is None:
            del body["aggregate"]
    cpu, disk = (deliver(db, policy, "datadog", body, i) for i, body in enumerate(bodies))
    assert (cpu.incident_ref, cpu.declared) == ("INC-1", True)
    assert (disk.incident_ref, disk.declared) == ("INC-2", True)
    back = deliver(db, policy, "datadog", recovered, 2)
    assert (back.incident_ref, back.firing) == ("INC-1", 0)
    assert [n.incident_id for n in notices(db, "all_resolved")] == [1]
    assert texts(db, 2)[-1] == "Alert firing: Disk full on db (1 of 1 firing in this group)"


def test_a_field_that_is_only_an_unfilled_variable_counts_as_absent() -> None:
    """Every field: the scope (``$ALERT_SCOPE`` in the field, the title and the monitor link),
    the monitor, the priority, the date. The monitor comes from the body's link, and no
    ``$VARIABLE`` is shown or kept as a label."""
    parsed = parse("datadog", load(f"{UNFILLED}333-scope-and-keys"), now=NOW)
    [alert] = parsed.alerts
    assert alert.labels["monitor_id"] == "333"
    assert "scope" not in alert.labels
    assert alert.severity is None and alert.event_at is None
    assert not any("$" in value for value in alert.labels.values())
    other = parse("datadog", {**load(f"{UNFILLED}333-scope-and-keys"), "alert_id": "444"}, now=NOW)
    assert other.group_key != parsed.group_key


def test_a_dollar_inside_a_value_is_kept() -> None:
    body = {"title": "$5 checkout failing", "body": "x", "alert_scope": "env:$PROD-eu"}
    [alert] = parse("datadog", body, now=NOW).alerts
    assert (alert.title, alert.labels["scope"]) == ("$5 checkout failing", "env:$PROD-eu")


# -- 2. a JSON integer longer than Python converts ----------------------------------------------

LONG_NUMBER = '{"alerts": [{"labels": {"alertname": "A"}, "startsAt": ' + "9" * 5000 + "}]}"
TOO_LONG = "the body holds a number of more than 4,300 digits, which no field is"


def test_a_number_too_long_for_python_is_a_400_for_every_source(
    db: Database, serve: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, Alertmanager, the generic source and Datadog answered 500 with "Exception in
    ASGI application" in the log, and Alertmanager and Datadog retry a 5xx for ever."""
    server = serve()
    for source in SOURCES:
        answer = server.post(f"/alerts/{source}", LONG_NUMBER)
        assert (answer.status, answer.json()) == (400, {"error": TOO_LONG}), source
    assert counts(db) == (0, 0, 0)
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("source", SOURCES)
def test_replay_reports_a_number_too_long_in_one_line(
    run: Run, tmp_path: Path, source: str
) -> None:
    """Before, ``firebreak alerts replay`` ended in a traceback for every source."""
    path = tmp_path / "long.json"
    path.write_text(LONG_NUMBER, encoding="utf-8")
    assert run("alerts", "replay", str(path), "--source", source) == (
        1,
        "",
        f"{path}: {TOO_LONG}\n",
    )


# -- 3. Grafana's legacy Send Test -------------------------------------------------------------

LEGACY_TEST = "grafana/zulip-legacy-test-notification-ruleid-0"
LEGACY_IGNORED = "a test from Grafana's notification channel: nothing stored, no incident"


def test_the_legacy_send_test_is_answered_ignored_and_stores_nothing(
    db: Database, serve: ServerFactory
) -> None:
    """Grafana before 8 tests a notification channel with its own rule "Test notification" and a
    fixed message; ``ruleId`` is 0 before Grafana 7 and random after. Every click is answered
    200 ignored, as the unified contact point's test is. Before, each click declared an incident
    "Test notification", with its channel and announcement."""
    server = serve()
    clicks = [load(LEGACY_TEST), load(LEGACY_TEST) | {"ruleId": 7533874832689366674}]
    clicks.append(load("grafana/cerebro-legacy-pre8-test-notification-basic-auth"))
    for click in clicks:
        answer = server.post("/alerts/grafana", click)
        assert answer.status == 200, answer.body
        assert (answer.json()["status"], answer.json()["note"]) == ("ignored", LEGACY_IGNORED)
    assert counts(db) == (0, 0, 0)


def test_a_legacy_rule_of_ones_own_named_test_notification_still_fires(
    serve: ServerFactory,
) -> None:
    server = serve()
    own = load(LEGACY_TEST) | {"ruleId": 12, "message": "Checkout test suite failing"}
    answer = server.post("/alerts/grafana", own)
    assert (answer.status, answer.json()["status"], answer.json()["declared"]) == (
        200,
        "stored",
        True,
    )


def test_replay_says_the_legacy_test_is_ignored(run: Run) -> None:
    path = CORPUS / f"{LEGACY_TEST}.json"
    assert run("alerts", "replay", str(path), "--source", "grafana") == (
        0,
        f"{path}: ignore: {LEGACY_IGNORED}\n",
        "",
    )


# -- 4. Grafana tests without a groupKey, and alerts that say nothing ---------------------------

NO_KEY_TEST = "grafana/zulip-v8-test-no-groupkey-go-time-startsat"
NO_LABELS = "grafana/zulip-v8-webhook-test-message-alert-without-labels"


def test_grafanas_own_test_alert_without_a_group_key_is_ignored(
    db: Database, serve: ServerFactory
) -> None:
    """``TestAlert``, ``instance=Grafana``, "Notification test", and no ``groupKey`` to read the
    click's time from. Before, it opened an incident "TestAlert"."""
    answer = serve().post("/alerts/grafana", load(NO_KEY_TEST))
    assert (answer.status, answer.json()["status"]) == (200, "ignored")
    assert "test from Grafana's contact point 'webhook'" in answer.json()["note"]
    assert counts(db) == (0, 0, 0)


def test_a_rule_of_ones_own_without_a_group_key_still_fires() -> None:
    """Without a key only Grafana's own alert, unchanged, is a test: another summary, or another
    label with a value, is an alert someone wrote."""
    for change in ({"summary": "Checkout down"}, {"labels": {"service": "checkout"}}):
        body = load(NO_KEY_TEST)
        alert = body["alerts"][0]
        alert["annotations"] |= {k: v for k, v in change.items() if k == "summary"}
        alert["labels"] |= change.get("labels", {})
        parsed = parse("grafana", body, now=NOW)
        assert not parsed.ignored and parsed.firing == 1, change


def test_a_message_whose_alerts_have_no_labels_or_annotations_is_a_clear_400(
    db: Database, serve: ServerFactory
) -> None:
    """Before, it declared an incident "alert with no name or labels". No real alert is like
    this (Alertmanager refuses one without labels); a 400 shows it at the first test."""
    server = serve()
    for source in ("grafana", "alertmanager"):
        answer = server.post(f"/alerts/{source}", load(NO_LABELS))
        assert answer.status == 400
        assert answer.json()["error"].startswith(
            "no alert in the message has labels or annotations, so nothing says what fired"
        )
    assert counts(db) == (0, 0, 0)
    body = load(NO_LABELS)
    body["alerts"].append({"status": "firing", "labels": {"alertname": "DiskFull"}})
    answer = server.post("/alerts/grafana", body)  # one alert that says something is kept
    assert (answer.status, answer.json()["firing"]) == (200, 2)


# -- 5. Grafana legacy rule tags ---------------------------------------------------------------

TAGGED = "grafana/probe-legacy-rule-tags-team-severity-service"


def test_legacy_rule_tags_set_severity_and_service(db: Database, serve: ServerFactory) -> None:
    """``"tags": {"team": "db", "severity": "critical", "service": "orders-db"}``. Before, the
    incident opened at the default SEV3 with no service."""
    answer = serve().post("/alerts/grafana", load(TAGGED))
    assert (answer.status, answer.json()["severity"]) == (200, "SEV1")
    with db.read() as session:
        [record] = session.exec(select(AlertRecord)).all()
        assert record.labels == {"team": "db", "severity": "critical", "service": "orders-db"}
        assert session.exec(select(AlertGroup)).one().service == "orders-db"


def test_a_drop_rule_matches_legacy_tags(run: Run, tmp_path: Path) -> None:
    path = CORPUS / f"{TAGGED}.json"
    code, out, _ = run("alerts", "replay", str(path), "--source", "grafana")
    assert code == 0 and "severity SEV1; service orders-db;" in out
    policy = tmp_path / "firebreak.toml"
    policy.write_text('[[alerts.drop]]\nlabels = { team = "db" }\n', encoding="utf-8")
    code, out, _ = run(
        "--policy", str(policy), "alerts", "replay", str(path), "--source", "grafana"
    )
    assert code == 0 and f"{path}: drop:" in out


def test_legacy_tags_get_the_hygiene_of_labels() -> None:
    body = load(TAGGED) | {"tags": {"owner": "<!channel> db", "nested": {"a": 1}, "n": 3}}
    [alert] = parse("grafana", body, now=NOW).alerts
    assert alert.labels == {"owner": "@\u2060channel db", "n": "3"}
    with pytest.raises(PayloadError, match="tags must be an object"):
        parse("grafana", load(TAGGED) | {"tags": ["db"]}, now=NOW)


# -- 6. timeline entries name what an action was about -----------------------------------------

OPSGENIE_ACTIONS = [
    ("AssignOwnership", {"owner": "user2@ifountain.com"}, "to user2@ifountain.com"),
    ("AddTeam", {"team": "team2"}, "team team2"),
    ("AddRecipient", {"recipient": "team2_escalation"}, "recipient team2_escalation"),
    ("AddTags", {"addedTags": "tag1,tag2,tag3"}, "added tag1,tag2,tag3"),
    ("RemoveTags", {"removedTags": "tag3"}, "removed tag3"),
    ("Snooze", {"snoozeEndDate": "2015-01-05T11:10:00Z"}, "until 2015-01-05T11:10:00Z"),
]


def opsgenie(action: str, **alert: Any) -> dict[str, Any]:
    """Opsgenie's alert action data (the sample of its docs, in zulip's fixture) for ``action``."""
    body: dict[str, Any] = load("opsgenie/zulip-acknowledge-aliastest")
    body["action"] = action
    body["alert"] |= alert
    return body


@pytest.mark.parametrize(("action", "fields", "about"), OPSGENIE_ACTIONS)
def test_an_opsgenie_entry_names_what_the_action_was_about(
    action: str, fields: dict[str, str], about: str
) -> None:
    """Before, "Opsgenie: AssignOwnership by fili@ifountain.com", with no owner."""
    [info] = parse("opsgenie", opsgenie(action, **fields), now=NOW).info
    assert info.text == f"Opsgenie: {action} by fili@ifountain.com: {about}"


def test_the_entry_is_on_the_incidents_timeline_without_pings(db: Database, policy: Policy) -> None:
    deliver(db, policy, "opsgenie", opsgenie("Create"), 0)
    deliver(db, policy, "opsgenie", opsgenie("AssignOwnership", owner="<!channel> " + "a" * 300), 1)
    deliver(db, policy, "opsgenie", opsgenie("AddTags", addedTags=["db", "sev1"]), 2)
    owner, tags = texts(db, like="alert_note")
    assert owner.startswith(
        "Opsgenie: AssignOwnership by fili@ifountain.com: to @\u2060channel aaa"
    )
    assert len(owner) < 300 and owner.endswith("\u2026")
    assert tags == "Opsgenie: AddTags by fili@ifountain.com: added db,sev1"


def pagerduty_event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """A v3 event about incident PQ1K5C8 in the shape of PagerDuty's webhooks docs."""
    reference = {"id": "PQ1K5C8", "type": "incident_reference", "summary": "Test Incident"}
    return {
        "event": {
            "id": f"E-{event_type}",
            "event_type": event_type,
            "occurred_at": "2026-11-30T11:00:00Z",
            "agent": {"type": "user_reference", "summary": "Ana"},
            "data": {**data, "incident": reference},
        }
    }


@pytest.mark.parametrize(
    ("event_type", "data", "text"),
    [
        (
            "incident.conference_bridge.updated",
            {
                "type": "incident_conference_bridge",
                "conference_numbers": None,
                "conference_url": "https://example.com/123-456-789",
            },
            "PagerDuty: conference bridge updated by Ana: bridge https://example.com/123-456-789",
        ),
        (
            "incident.conference_bridge.updated",
            {"type": "incident_conference_bridge", "conference_url": "javascript:alert(1)"},
            "PagerDuty: conference bridge updated by Ana",
        ),
        (
            "incident.workflow.started",
            {
                "id": "PU3WKIK",
                "type": "incident_workflow_instance",
                "summary": "Manually Started",
                "incident_workflow": {
                    "id": "POWB54R",
                    "type": "incident_workflow_reference",
                    "summary": "Major incident <!here>",
                },
            },
            "PagerDuty: workflow started by Ana: workflow Major incident @\u2060here",
        ),
    ],
)
def test_a_pagerduty_entry_names_the_bridge_and_the_workflow(
    event_type: str, data: dict[str, Any], text: str
) -> None:
    """Before, "PagerDuty: conference bridge updated by Ana" with no address, and "workflow
    started" with no workflow. Only an http(s) address is shown."""
    [info] = parse("pagerduty", pagerduty_event(event_type, data), now=NOW).info
    assert info.text == text
