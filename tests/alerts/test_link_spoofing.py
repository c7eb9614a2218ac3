"""Nothing in an alert can show one address and link to another, or format Slack text: a link
whose label reads as another address shows its target's host, and the alert's description in
the incident summary is shown as written."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.alerts.intake import ingest
from bot.alerts.notices import AlertLinks
from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from bot.models import Incident
from bot.slack.alerts import render
from bot.slack.blocks.incident import incident_summary
from bot.slack.summary import snapshot
from tests.alerts.conftest import NOW

# Slack link markup: <target|label>
LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")


def _links(blocks: object) -> list[tuple[str, str]]:
    return LINK.findall(str(blocks))


def test_a_link_label_that_shows_another_address_shows_the_targets_host() -> None:
    payload = {
        "title": "Disk full",
        "dedupe_key": "disk",
        "links": [
            {"title": "https://bank.example", "url": "https://evil.example/x"},
            {"title": "bank.example/login", "url": "https://evil.example/y"},
            {"title": "grafana.example.com", "url": "https://grafana.example.com/d/1"},
            {"title": "dashboard", "url": "https://grafana.example.com/d/2"},
        ],
    }
    alert = parse("generic", payload, now=NOW).alerts[0]
    links = [{"kind": link.kind, "url": link.url} for link in alert.links]
    _, blocks = render(AlertLinks(1, 1, "generic", "Disk full", 1, links, None, None, False))
    assert _links(blocks) == [
        ("https://evil.example/x", "evil.example"),
        ("https://evil.example/y", "evil.example"),
        ("https://grafana.example.com/d/1", "grafana.example.com"),  # its own host: honest
        ("https://grafana.example.com/d/2", "dashboard"),
    ]
    assert "bank.example" not in str(blocks)


def test_an_alert_description_cannot_link_or_mention_in_the_incident_summary(
    db: Database, policy: Policy
) -> None:
    description = (
        "Log in at <https://evil.example|https://bank.example> and ask <@U0ADMIN> in <#C0SEC>"
    )
    msg = parse(
        "generic",
        {"title": "Payments down", "dedupe_key": "pay", "description": description},
        now=NOW,
    )
    with db.transaction() as session:
        outcome = ingest(session, policy, msg, now=NOW)
    assert outcome.declared
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert incident.id is not None
        _, blocks = incident_summary(policy, snapshot(session, incident.id, policy))
    summary = next(b["text"]["text"] for b in blocks if "*Summary*" in str(b.get("text", "")))
    assert _links(summary) == []
    assert "<@" not in summary and "<#" not in summary
    assert "&lt;https://evil.example|https://bank.example&gt;" in summary  # shown as written
