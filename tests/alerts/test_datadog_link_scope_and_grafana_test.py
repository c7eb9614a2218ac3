"""Two payloads that looked like something else: a Datadog multi-alert monitor whose only scope
is the ``group`` in its monitor link (each host is its own alert), and Grafana's contact point
test (a test, never an incident)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import select

from bot.alerts.model import AlertMessage, Status, fingerprint
from bot.alerts.models import AlertGroup, AlertRecord
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.models import Incident
from tests.alerts.conftest import NOW, ServerFactory
from tests.alerts.test_intake import store
from tests.conftest import Run

# -- Datadog: the scope from the monitor link's ``group`` -----------------------------------

MONITOR = "8248529"
HOST_A = "k3s-example-node-pool-a6e3h"
HOST_B = "k3s-example-node-pool-b7f4k"


def _ms(minute: int) -> int:
    return int(datetime(2026, 11, 30, 11, minute, tzinfo=UTC).timestamp() * 1000)


def cpu_alert(
    host: str, transition: str, minute: int, *, links: list[str] | None = None, **fields: str
) -> dict[str, Any]:
    """What the wild payload looks like: the host only in the title's words and in the Monitor
    Status link's ``group``; no ``$ALERT_SCOPE``, no ``on {host:...}`` in the title."""
    group = quote(f"host:{host}", safe="")
    status = (
        f"https://app.datadoghq.com/monitors/{MONITOR}?group={group}&from_ts={_ms(minute) - 900000}"
        f"&to_ts={_ms(minute)}&event_id=79{minute:04d}&link_source=monitor_notif"
    )
    markdown = " · ".join(
        f"[[{label}]({url})]"
        for label, url in (
            *((f"See also {i}", url) for i, url in enumerate(links or [])),
            ("Monitor Status", status),
            ("Edit Monitor", f"https://app.datadoghq.com/monitors/{MONITOR}/edit"),
        )
    )
    recovered = transition == "Recovered"
    return {
        "id": f"79{minute:04d}",
        "title": f"[P1] [{transition}] CPU usage is high for host {host}",
        "body": (
            f"%%%\n@webhook-firebreak CPU usage is high for host {host}\n\n"
            f"**system.cpu.user** over **\\*** was **{'<=' if recovered else '>'} 90.0** on "
            f"average during the **last 5m**.\n\n- - -\n\n{markdown}\n%%%"
        ),
        "date": str(_ms(minute)),
        "last_updated": str(_ms(minute)),
        "event_type": "query_alert_monitor",
        "alert_id": MONITOR,
        "alert_transition": transition,
        "alert_type": "success" if recovered else "error",
        "alert_priority": "P1",
        "alert_query": "avg(last_5m):avg:system.cpu.user{*} by {host} > 90",
        "tags": "monitor",
        "org": {"id": "1289", "name": "Example"},
        **fields,
    }


def datadog(body: dict[str, Any]) -> AlertMessage:
    return parse("datadog", body, now=NOW)


def test_each_host_of_a_multi_alert_monitor_is_its_own_alert() -> None:
    a_fires = datadog(cpu_alert(HOST_A, "Triggered", 50))
    b_fires = datadog(cpu_alert(HOST_B, "Triggered", 52))
    b_recovers = datadog(cpu_alert(HOST_B, "Recovered", 55))
    assert a_fires.group_key == f"monitor:{MONITOR}:host:{HOST_A}"
    assert b_fires.group_key == b_recovers.group_key == f"monitor:{MONITOR}:host:{HOST_B}"
    assert a_fires.alerts[0].labels["scope"] == f"host:{HOST_A}"
    assert b_recovers.alerts[0].status == Status.RESOLVED


def test_host_b_recovering_leaves_host_a_firing(db: Database, policy: Policy) -> None:
    a_fires = store(db, policy, datadog(cpu_alert(HOST_A, "Triggered", 50)))
    b_fires = store(db, policy, datadog(cpu_alert(HOST_B, "Triggered", 52)))
    b_recovers = store(db, policy, datadog(cpu_alert(HOST_B, "Recovered", 55)))
    assert a_fires.group_id != b_fires.group_id == b_recovers.group_id
    assert a_fires.incident_id != b_fires.incident_id
    with db.read() as session:
        alerts = session.exec(select(AlertRecord)).all()
        assert {a.labels["scope"]: a.status for a in alerts} == {
            f"host:{HOST_A}": "firing",
            f"host:{HOST_B}": "resolved",
        }
        a_group = session.exec(select(AlertGroup).where(AlertGroup.id == a_fires.group_id)).one()
        assert a_group.firing_count == 1


def test_the_same_host_is_one_alert_whichever_source_names_its_scope() -> None:
    """A template that gains ``$ALERT_SCOPE``, or a title that names ``on {host:...}``, keeps
    the alert the link named: its resolve still finds it."""
    from_link = datadog(cpu_alert(HOST_A, "Triggered", 50))
    from_field = datadog(cpu_alert(HOST_A, "Recovered", 55, alert_scope=f" host:{HOST_A} "))
    from_title = datadog(
        cpu_alert(HOST_A, "Recovered", 55, title=f"[P1] [Recovered on {{host:{HOST_A}}}] CPU")
    )
    assert from_link.group_key == from_field.group_key == from_title.group_key
    several = cpu_alert(HOST_A, "Triggered", 50)
    several["body"] = several["body"].replace(
        f"group=host%3A{HOST_A}", f"group=env%3Aprod%2Chost%3A{HOST_A}"
    )
    assert datadog(several).group_key == f"monitor:{MONITOR}:env:prod,host:{HOST_A}"


@pytest.mark.parametrize(
    "other",
    [
        f"https://app.datadoghq.com/monitors/1234?group=host%3A{HOST_B}",  # another monitor
        f"http://app.datadoghq.com/monitors/{MONITOR}?group=host%3A{HOST_B}",  # not https
        f"https://grafana.example.com/monitors#{MONITOR}?group=host%3A{HOST_B}",  # not Datadog
        f"https://app.datadoghq.com/monitors/{MONITOR}/events?group=host%3A{HOST_B}",
    ],
)
def test_only_this_monitors_own_link_names_the_scope(other: str) -> None:
    parsed = datadog(cpu_alert(HOST_A, "Triggered", 50, links=[other]))
    assert parsed.group_key == f"monitor:{MONITOR}:host:{HOST_A}"


@pytest.mark.parametrize(
    "link",
    [
        f"https://app.datadoghq.eu/monitors#{MONITOR}?group=host%3A{HOST_B}&from_ts=1",
        f"https://acme.us5.datadoghq.com/monitors/{MONITOR}?group=host%3A{HOST_B}",
        f"https://app.ddog-gov.com/monitors/{MONITOR}/?event_id=3&group=host%3A{HOST_B}",
    ],
)
def test_link_holds_the_scope_on_every_datadog_site(link: str) -> None:
    """``$LINK`` (the template's ``link``) is the monitor's link too, on any of Datadog's
    sites or an organisation's own subdomain; older links put the monitor after ``#``."""
    body = cpu_alert(HOST_B, "Triggered", 50, link=link)
    body["body"] = "%%%\nCPU usage is high\n%%%"
    assert datadog(body).group_key == f"monitor:{MONITOR}:host:{HOST_B}"


# -- Grafana: the contact point's Test button -----------------------------------------------

GRAFANA = "https://grafana.example.com/"


def grafana_test(
    clicked_at: int,
    *,
    receiver: str = "firebreak",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What Grafana's contact point test sends: its test alert (the person testing may add or
    replace labels and annotations), grouped under ``<receiver>-<fingerprint>-<unix time>``."""
    labels = {"alertname": "TestAlert", "instance": "Grafana", **(labels or {})}
    annotations = {"summary": "Notification test", **(annotations or {})}
    started = datetime.fromtimestamp(clicked_at, UTC).isoformat().replace("+00:00", "Z")
    key_print = fingerprint(labels)
    return {
        "receiver": receiver,
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": started,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": key_print,
                "silenceURL": f"{GRAFANA}alerting/silence/new?alertmanager=grafana"
                "&matcher=alertname%3DTestAlert&matcher=instance%3DGrafana",
                "dashboardURL": "",
                "panelURL": "",
                "values": None,
                "valueString": "[ metric='foo' labels={instance=bar} value=10 ]",
                "orgId": 1,
            }
        ],
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": GRAFANA,
        "version": "1",
        "groupKey": f"{receiver}-{key_print}-{clicked_at}",
        "truncatedAlerts": 0,
        "orgId": 1,
        "title": "[FIRING:1] TestAlert Grafana ",
        "state": "alerting",
        "message": "**Firing**\n\nValue: [no value]\nLabels:\n - alertname = TestAlert\n",
    }


def a_rule_named_test_alert() -> dict[str, Any]:
    """A user's own rule named TestAlert, on the same contact point, saying the same words: a
    real alert, with the group key of its notification policy."""
    body = grafana_test(1796039000)
    alert = body["alerts"][0]
    alert["labels"] = {**alert["labels"], "grafana_folder": "Smoke tests"}
    alert["fingerprint"] = fingerprint(alert["labels"])
    alert["generatorURL"] = f"{GRAFANA}alerting/grafana/bdx7e2/view?orgId=1"
    body["groupLabels"] = {"alertname": "TestAlert", "grafana_folder": "Smoke tests"}
    body["groupKey"] = (
        '{}/{__grafana_autogenerated__="true"}/{__grafana_receiver__="firebreak"}:'
        '{alertname="TestAlert", grafana_folder="Smoke tests"}'
    )
    return body


def test_each_click_of_the_test_button_is_ignored_as_a_test() -> None:
    clicks = [
        grafana_test(1796039000),
        grafana_test(1796039060),
        grafana_test(1796039120, labels={"severity": "critical"}, annotations={"summary": "Hi"}),
    ]
    parsed = [parse("grafana", click, now=NOW) for click in clicks]
    assert len({p.group_key for p in parsed}) == 3
    assert all(p.ignored for p in parsed)
    assert parsed[0].note == (
        "a test from Grafana's contact point 'firebreak': nothing stored, no incident"
    )
    assert not parse("grafana", a_rule_named_test_alert(), now=NOW).ignored


def test_the_older_test_key_of_labels_and_go_time_is_a_test_too() -> None:
    body = grafana_test(1661925244, receiver="")
    body["groupKey"] = (
        '{alertname="TestAlert", instance="Grafana"}2022-08-31 05:54:04.52289368 +0000 UTC '
        "m=+42208.256292221"
    )
    assert parse("grafana", body, now=NOW).ignored


def test_the_receiver_answers_a_test_200_ignored_and_stores_nothing(
    db: Database, serve: ServerFactory
) -> None:
    server = serve()
    for clicked_at in (1796039000, 1796039060):
        answer = server.post("/alerts/grafana", grafana_test(clicked_at))
        assert answer.status == 200, answer.body
        assert answer.json()["status"] == "ignored"
        assert "test from Grafana's contact point 'firebreak'" in answer.json()["note"]
    real = server.post("/alerts/grafana", a_rule_named_test_alert())
    assert real.status == 200 and real.json()["declared"]
    with db.read() as session:
        assert len(session.exec(select(AlertGroup)).all()) == 1
        assert len(session.exec(select(Incident)).all()) == 1


def test_replay_shows_the_test_as_ignored_with_a_note(run: Run, tmp_path: Path) -> None:
    click = tmp_path / "click.json"
    click.write_text(json.dumps(grafana_test(1796039000)), encoding="utf-8")
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(a_rule_named_test_alert()), encoding="utf-8")
    code, out, err = run("alerts", "replay", "--source", "grafana", str(click), str(rule))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"{click}: ignore: a test from Grafana's contact point 'firebreak': "
        "nothing stored, no incident"
    )
    assert lines[1].startswith(f"{rule}: declare: new incident #1;")
