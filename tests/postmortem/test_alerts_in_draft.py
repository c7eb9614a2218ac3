"""The draft's Detection says which alerts fired, when, and links to them: "Which alert fired,
and was it the right one?" is answered from the record, not from memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from bot.alerts.intake import ingest
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.postmortem import generate_postmortem

NOW = datetime(2026, 11, 30, 3, 12, tzinfo=UTC)


def alertmanager(*alerts: tuple[str, str, str]) -> dict[str, object]:
    """(instance, status, endsAt) per alert of CheckoutErrors, started at 02:55."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutErrors"}',
        "status": "firing",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "CheckoutErrors", "instance": instance},
                "annotations": {"summary": f"5xx on {instance}"},
                "startsAt": "2026-11-30T02:55:00Z",
                "endsAt": ends,
                "fingerprint": f"fp-{instance}",
                "generatorURL": "https://prometheus.example.com/graph?g0.expr=rate",
            }
            for instance, status, ends in alerts
        ],
    }


def deliver(db: Database, policy: Policy, body: dict[str, object], minutes: float) -> None:
    at = NOW + timedelta(minutes=minutes)
    with freeze_time(at), db.transaction() as session:
        ingest(session, policy, parse("alertmanager", body, now=at), now=at)


def test_the_draft_names_the_alerts_that_fired_with_their_links(
    db: Database, team_policy: Policy
) -> None:
    policy = team_policy
    deliver(db, policy, alertmanager(("web-1", "firing", ""), ("web-2", "firing", "")), 0)
    deliver(db, policy, alertmanager(("web-1", "resolved", "2026-11-30T03:40:00Z")), 30)
    with freeze_time(NOW + timedelta(minutes=45)), db.transaction() as session:
        draft = generate_postmortem(session, policy, 1, actor="U1", key="draft-1")
        markdown = draft.markdown
    assert (
        "  - CheckoutErrors (Alertmanager, ×2): started firing 2026-11-30 02:55 UTC, still firing "
        "when this was drafted: [generator](https://prometheus.example.com/graph?g0.expr=rate)\n"
    ) in markdown
    deliver(db, policy, alertmanager(("web-2", "resolved", "2026-11-30T03:50:00Z")), 40)
    with freeze_time(NOW + timedelta(minutes=45)), db.transaction() as session:
        markdown = generate_postmortem(session, policy, 1, actor="U1", key="draft-2").markdown
    # Resolved when the resolve came, as the timeline says.
    assert (
        "  - CheckoutErrors (Alertmanager, ×2): started firing 2026-11-30 02:55 UTC, resolved "
        "2026-11-30 03:52 UTC: [generator](https://prometheus.example.com/graph?g0.expr=rate)\n"
    ) in markdown
