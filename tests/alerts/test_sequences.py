"""Realistic sequences from every tool, with payloads written here (not the corpus), delivered
over HTTP to two replicas (two servers, two connection pools, one database), every webhook
delivered twice as a retry would: exactly the incidents, attachments and resolutions a
responder expects."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.alerts.models import AlertGroup
from bot.db import Database
from bot.models import Incident, TimelineEvent
from tests.alerts.conftest import Server, send


def am(status: str, *pods: str, resolved: tuple[str, ...] = ()) -> dict[str, Any]:
    def alert(pod: str, state: str) -> dict[str, Any]:
        return {
            "status": state,
            "labels": {"alertname": "PaymentsLatency", "severity": "warning", "pod": pod},
            "annotations": {"summary": "p99 above 2s", "runbook_url": "javascript:void(0)"},
            "startsAt": "2026-11-30T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=latency",
        }

    return {
        "version": "4",
        "groupKey": '{}:{alertname="PaymentsLatency"}',
        "status": status,
        "receiver": "firebreak",
        "alerts": [alert(p, "firing") for p in pods] + [alert(p, "resolved") for p in resolved],
    }


def texts(db: Database, number: int) -> list[str]:
    with db.read() as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        events = session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident.id)
            .order_by(col(TimelineEvent.id))
        ).all()
        return [e.text for e in events if e.kind.startswith("alert_")]


def test_alertmanager_group_grows_partly_resolves_resolves_and_fires_again(
    db: Database, replicas: list[Server]
) -> None:
    assert send(replicas, "alertmanager", am("firing", "a"))["declared"] is True
    send(replicas, "alertmanager", am("firing", "a", "b", "c"))
    send(replicas, "alertmanager", am("firing", "a", "b", resolved=("c",)))
    last = send(replicas, "alertmanager", am("resolved", resolved=("a", "b", "c")))
    assert last["firing"] == 0
    again = send(replicas, "alertmanager", am("firing", "b"))  # within the flap window
    assert again["incident"] == "INC-1" and again["declared"] is False
    assert texts(db, 1) == [
        "Alert firing: PaymentsLatency (1 of 1 firing in this group)",
        "2 alerts firing: PaymentsLatency ×2 (3 of 3 firing in this group)",
        "Alert resolved: PaymentsLatency (2 of 3 firing in this group)",
        "2 alerts resolved: PaymentsLatency ×2 (0 of 3 firing in this group)",
        "Alert firing: PaymentsLatency (1 of 3 firing in this group)",
    ]
    with db.read() as session:
        assert len(session.exec(select(Incident)).all()) == 1
        incident = session.exec(select(Incident)).one()
        assert incident.severity == "SEV3" and incident.reporter_id == "alerts:alertmanager"


def test_the_same_grafana_alert_three_times_is_one_entry(
    db: Database, replicas: list[Server]
) -> None:
    body = {
        "version": "1",
        "status": "firing",
        "receiver": "firebreak",
        "groupKey": '{}/{}:{alertname="DiskFull"}',
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
                "annotations": {"summary": "<!channel> disk 98% on db-1"},
                "fingerprint": "0a1b2c3d4e5f6071",
                "startsAt": "2026-11-30T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "silenceURL": "https://grafana.example.com/alerting/silence/new",
            }
        ],
        "title": "[FIRING:1] DiskFull",
    }
    for _ in range(3):
        send(replicas, "grafana", body)
    assert texts(db, 1) == ["Alert firing: DiskFull (1 of 1 firing in this group)"]
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert incident.severity == "SEV1"
        assert "<!channel>" not in incident.title


def test_pagerduty_triggered_acknowledged_resolved(db: Database, replicas: list[Server]) -> None:
    def event(event_id: str, kind: str, status: str) -> dict[str, Any]:
        return {
            "event": {
                "id": event_id,
                "event_type": f"incident.{kind}",
                "resource_type": "incident",
                "occurred_at": "2026-11-30T10:00:00Z",
                "agent": {"summary": "Ana Oncall", "type": "user_reference"},
                "data": {
                    "id": "Q1ABCDEF123456",
                    "type": "incident",
                    "status": status,
                    "title": "Checkout API error rate",
                    "html_url": "https://acme.pagerduty.com/incidents/Q1ABCDEF123456",
                    "service": {"summary": "checkout"},
                    "priority": {"summary": "P2"},
                    "urgency": "high",
                },
            }
        }

    send(replicas, "pagerduty", event("01TRIG", "triggered", "triggered"))
    send(replicas, "pagerduty", event("01ACK", "acknowledged", "acknowledged"))
    done = send(replicas, "pagerduty", event("01RES", "resolved", "resolved"))
    assert done["firing"] == 0
    assert texts(db, 1) == [
        "Alert firing: Checkout API error rate (1 of 1 firing in this group)",
        "PagerDuty: acknowledged by Ana Oncall",
        "Alert resolved: Checkout API error rate (0 of 1 firing in this group)",
    ]
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert (incident.severity, incident.service) == ("SEV2", "checkout")


def test_datadog_and_opsgenie_cycles(db: Database, replicas: list[Server]) -> None:
    def dd(transition: str, event_id: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "title": f"[{transition}] Queue depth high on orders",
            "body": "%%%\nqueue depth 12k\n%%%",
            "alert_transition": transition,
            "alert_cycle_key": "cycle-778",
            "alert_id": "778",
            "alert_priority": "P1",
            "tags": "service:orders,env:prod",
        }

    send(replicas, "datadog", dd("Triggered", "1"))
    send(replicas, "datadog", dd("Re-Triggered", "2"))
    send(replicas, "datadog", dd("Recovered", "3"))

    def og(action: str) -> dict[str, Any]:
        return {
            "action": action,
            "alert": {
                "alias": "orders-db-replication",
                "message": "Replication lag",
                "priority": "P3",
            },
        }

    send(replicas, "opsgenie", og("Create"))
    send(replicas, "opsgenie", og("AddNote"))
    send(replicas, "opsgenie", og("Close"))
    assert texts(db, 1) == [
        "Alert firing: Queue depth high on orders (1 of 1 firing in this group)",
        "Alert resolved: Queue depth high on orders (0 of 1 firing in this group)",
    ]
    assert texts(db, 2) == [
        "Alert firing: Replication lag (1 of 1 firing in this group)",
        "Opsgenie: AddNote",
        "Alert resolved: Replication lag (0 of 1 firing in this group)",
    ]
    with db.read() as session:
        incidents = session.exec(select(Incident).order_by(col(Incident.number))).all()
        assert [(i.severity, i.service) for i in incidents] == [("SEV1", "orders"), ("SEV3", None)]
        assert len(session.exec(select(AlertGroup)).all()) == 2
