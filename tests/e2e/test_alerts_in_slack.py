"""Alerts reaching Slack: a group's incident gets its channel through the same effects as a
declare, and its pinned summary says how many alerts are firing as the group grows and
resolves; a storm makes a bounded number of Slack calls, not one per alert."""

from __future__ import annotations

from sqlmodel import select

from bot.alerts.intake import ingest
from bot.alerts.model import AlertMessage
from bot.alerts.sources import parse
from bot.clock import utcnow
from bot.db import Database
from bot.models import Incident
from bot.sandbox import FakeSlack
from tests.e2e.conftest import RunningBot, texts


def group_message(alerts: int, status: str = "firing") -> AlertMessage:
    return parse(
        "alertmanager",
        {
            "version": "4",
            "groupKey": '{}:{alertname="HighLatency"}',
            "status": status,
            "alerts": [
                {"status": status, "labels": {"alertname": "HighLatency", "pod": f"pod-{i}"}}
                for i in range(alerts)
            ],
        },
        now=utcnow(),
    )


def summary(fake: FakeSlack, db: Database) -> str:
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
    return texts(fake.message(incident.slack_channel_id or "", incident.summary_message_ts or ""))


def test_a_storm_is_one_incident_whose_summary_counts_the_alerts(
    fake: FakeSlack, bot: RunningBot, db: Database
) -> None:
    policy = bot.firebreak.policy
    with db.transaction() as session:
        ingest(session, policy, group_message(300))
    bot.settle()
    assert "300 of 300 firing" in summary(fake, db)
    posts = len(fake.calls_to("chat.postMessage"))
    assert posts < 10  # the summary, the announcement, the alert links: not one per alert

    with db.transaction() as session:
        ingest(session, policy, group_message(300, status="resolved"))
    bot.settle()
    assert "all 300 resolved" in summary(fake, db)
    with db.read() as session:
        assert len(session.exec(select(Incident)).all()) == 1
