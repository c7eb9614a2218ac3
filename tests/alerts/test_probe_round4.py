"""Defects a probe found (round 4): nothing a sender writes reaches Slack's notification text
unescaped or the timeline able to ping, and a sender's wrong date cannot leave an alert firing
for ever."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot.alerts.intake import ingest
from bot.alerts.models import AlertRecord
from bot.alerts.notices import AlertLinks, FiringAgain, Notice, TriageRequest
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.slack.alerts import render
from tests.alerts.conftest import NOW, load

LINKED = "Disk full <https://evil.example|click> <!channel>"


def test_a_pagerduty_event_type_cannot_ping_from_the_timeline() -> None:
    body = load("pagerduty/zulip-v3-incident-triggered-2021")
    body = json.loads(json.dumps(body))
    body["event"]["event_type"] = "incident.<!channel>"
    body["event"]["data"]["status"] = "acknowledged"
    [info] = parse("pagerduty", body, now=NOW).info
    assert "<!channel>" not in info.text
    assert info.text.startswith("PagerDuty: ")


def test_the_notification_text_of_an_alert_message_is_escaped_like_its_blocks() -> None:
    notices: list[Notice] = [
        TriageRequest(
            group_id=1,
            channel="C1",
            source="generic",
            title=LINKED,
            severity="SEV2",
            firing=1,
            open_incidents=[],
        ),
        AlertLinks(incident_id=1, group_id=1, source="generic", title=LINKED, firing=1),
        FiringAgain(
            incident_id=1,
            group_id=1,
            source="generic",
            names=LINKED,
            firing=1,
            alerts=1,
            status="Monitoring",
        ),
    ]
    for notice in notices:
        text, _ = render(notice)
        assert "<https://evil.example|click>" not in text, text
        assert "&lt;https://evil.example|click&gt;" in text, text


def test_a_resolve_dated_correctly_after_a_firing_dated_in_2099_applies(
    db: Database, policy: Policy
) -> None:
    def event(status: str, at: str) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(
            json.dumps(load("pagerduty/zulip-v3-incident-triggered-2021"))
        )
        body["event"]["event_type"] = f"incident.{status}"
        body["event"]["occurred_at"] = at
        body["event"]["id"] = f"event-{status}"
        body["event"]["data"]["status"] = status
        return body

    with db.transaction() as session:
        ingest(
            session,
            policy,
            parse("pagerduty", event("triggered", "2099-01-01T00:00:00Z"), now=NOW),
            now=NOW,
        )
    later = NOW + timedelta(minutes=2)
    resolved = event("resolved", later.isoformat().replace("+00:00", "Z"))
    with db.transaction() as session:
        ingest(session, policy, parse("pagerduty", resolved, now=later), now=later)
    with db.read() as session:
        assert [r.status for r in session.exec(select(AlertRecord)).all()] == ["resolved"]
