"""Datadog: the runbook a monitor's message links (Datadog has no variable for it), or the
``runbook_url`` line docs/alerts.md adds to a monitor's webhook, names the runbook; and when no
runbook is named, replay says what the closest one was ranked by (a service, not words)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.routing import route
from bot.alerts.sources import parse
from bot.config import policy_from_dict
from bot.runbooks.catalog import RunbookCatalog
from tests.alerts.conftest import NOW

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "alerts.md"


def triggered() -> dict[str, Any]:
    """The documented template as Datadog fills it for a disk monitor on host db-1, its
    message linking the runbook in Confluence."""
    return {
        "id": "7390862218960193456",
        "title": "[Triggered on {host:db-1}] Disk almost full on db-1",
        "body": "%%%\nDisk usage on db-1 is above 90%.\n\nRunbook: [Disk full]"
        "(https://acme.atlassian.net/wiki/spaces/SRE/pages/2293765/Disk+full)\n\n"
        "@webhook-firebreak\n\n- - -\n\n[[Monitor Status](https://app.datadoghq.com/"
        "monitors/8248529?group=host%3Adb-1)]\n%%%",
        "date": "1796266800000",
        "last_updated": "1796266800000",
        "event_type": "query_alert_monitor",
        "alert_id": "8248529",
        "alert_cycle_key": "7390862218960193455",
        "aggregate": "9f2c0e1a4b",
        "alert_transition": "Triggered",
        "alert_type": "error",
        "alert_priority": "P2",
        "alert_query": "avg(last_5m):avg:system.disk.in_use{*} by {host} > 0.9",
        "alert_scope": "host:db-1",
        "tags": "env:prod,service:postgres,team:db",
        "link": "https://app.datadoghq.com/event/event?id=7390862218960193456",
        "org": {"id": "1", "name": "Acme"},
    }


@pytest.fixture
def catalog() -> RunbookCatalog:
    return RunbookCatalog.load([ROOT / "runbooks"])


def documented_runbook_line() -> dict[str, Any]:
    """The line docs/alerts.md § Datadog adds to a monitor's own webhook."""
    section = DOCS.read_text(encoding="utf-8").split("## Datadog", 1)[1].split("\n## ", 1)[0]
    found = re.search(r'```json\n\s*("runbook_url": .*?),?\n```', section)
    assert found is not None, "docs/alerts.md § Datadog documents no runbook_url line"
    line: dict[str, Any] = json.loads("{" + found.group(1) + "}")
    return line


def test_the_documented_runbook_url_line_names_the_runbook(catalog: RunbookCatalog) -> None:
    body = {**triggered(), **documented_runbook_line()}
    policy = policy_from_dict({"alerts": {"service_labels": ["service"]}})
    decided = route(policy, catalog, parse("datadog", body, now=NOW))
    assert decided.runbook is not None
    assert (decided.runbook.id, decided.runbook_reason) == ("disk-full", "runbook_url of the alert")


def test_the_runbook_the_monitors_message_links_names_the_runbook(
    catalog: RunbookCatalog,
) -> None:
    policy = policy_from_dict({"alerts": {"service_labels": ["service"]}})
    decided = route(policy, catalog, parse("datadog", triggered(), now=NOW))
    assert decided.runbook is not None
    assert (decided.runbook.id, decided.runbook_reason) == ("disk-full", "runbook_url of the alert")
    # A link on another line (the monitor's status page) is not a runbook.
    unlinked = {**triggered(), "body": triggered()["body"].replace("Runbook: ", "See: ")}
    assert route(policy, catalog, parse("datadog", unlinked, now=NOW)).runbook is None


def test_a_runbook_ranked_first_by_its_service_is_not_said_to_be_closest_by_words(
    catalog: RunbookCatalog,
) -> None:
    policy = policy_from_dict({"alerts": {"service_labels": ["service"]}})
    body = {**triggered(), "body": "%%%\nDisk usage on db-1 is above 90%.\n%%%"}
    decided = route(policy, catalog, parse("datadog", body, now=NOW))
    assert decided.runbook is None
    assert decided.runbook_reason.startswith("none named by the alert; closest by service ")
    assert "closest by words" not in decided.runbook_reason


@pytest.mark.parametrize(
    "message",
    [
        "Runbook: [Disk full](https://wiki.example.com/ops/disk-full)",
        "See the runbook: https://wiki.example.com/ops/disk-full.",
        "<https://wiki.example.com/ops/disk-full|Runbook>",
        "runbook_url: https://wiki.example.com/ops/disk-full",
        "Runbook:\nhttps://wiki.example.com/ops/disk-full",
        "Dashboard: https://dash.example.com/d/disk Runbook: https://wiki.example.com/ops/disk-full",
        "[Dashboard](https://dash.example.com/d/disk) · [Runbook](https://wiki.example.com/ops/disk-full)",
    ],
)
def test_the_runbook_link_is_read_as_teams_write_it(message: str) -> None:
    """The forms monitor messages use: a labelled link (Markdown or Slack's), a bare link after
    the word (a sentence's full stop is not part of it), a heading with the link below, and
    a dashboard link before it on the same line, which is not the runbook."""
    body = {**triggered(), "body": f"%%%\nDisk usage on db-1 is above 90%.\n\n{message}\n%%%"}
    parsed = parse("datadog", body, now=NOW)
    assert [a.runbook_url for a in parsed.alerts] == ["https://wiki.example.com/ops/disk-full"]
