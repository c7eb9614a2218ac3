"""A runbook covering many alerts, one section each, opens at the section of the alert that
started it, not at page 1 (by the alert's name or its ``runbook_url`` anchor)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.alerts.intake import ingest
from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertNotice
from bot.alerts.sources import parse
from bot.alerts.triage import triage_declare
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.runbooks import progress
from bot.runbooks.catalog import RunbookCatalog
from tests.alerts.conftest import NOW

ALERTS = ("MimirIngesterUnhealthy", "MimirRequestLatency", "MimirCompactorNotRunning")
RUNBOOK = "---\ntitle: Mimir\nalerts: [{}]\n---\n# Mimir runbooks\n\n## Alerts\n".format(
    ", ".join(ALERTS)
) + "".join(
    f"\n### {name}\n\nHow it works: {name} fires.\n\nHow to fix it:\n\n"
    + "".join(f"{n}. Check {name} part {n}.\n" for n in range(1, 5))
    for name in ALERTS
)
"""Three alerts, four steps each: with three steps a page, the third alert's first step (the
ninth) is on page 3."""


def catalog(tmp_path: Path) -> RunbookCatalog:
    root = tmp_path / "runbooks" / "mimir"
    root.mkdir(parents=True)
    (root / "_index.md").write_text(RUNBOOK, encoding="utf-8")
    return RunbookCatalog.load([tmp_path / "runbooks"])


def firing(name: str, runbook_url: str | None = None) -> AlertMessage:
    annotations = {"runbook_url": runbook_url} if runbook_url else {}
    alert = {"status": "firing", "labels": {"alertname": name}, "annotations": annotations}
    body = {"version": "4", "groupKey": name, "status": "firing", "alerts": [alert]}
    return parse("alertmanager", body, now=NOW)


def started_page(db: Database, policy: Policy, found: RunbookCatalog, msg: AlertMessage) -> int:
    with db.transaction() as session:
        outcome = ingest(session, policy, msg, catalog=found, now=NOW)
        assert outcome.incident_id is not None
        [run] = progress.incident_runs(session, outcome.incident_id)
        return run.page


def test_a_run_started_for_an_alert_opens_at_its_section(db: Database, tmp_path: Path) -> None:
    found = catalog(tmp_path)
    policy = policy_from_dict(
        {"alerts": {"start_runbook": True}, "runbooks": {"steps_per_page": 3}}
    )
    assert started_page(db, policy, found, firing(ALERTS[2])) == 2  # step 9, page 3
    # A runbook_url anchor names the section too (here the alert's own name names nothing).
    url = "https://github.com/grafana/mimir/blob/main/runbooks/mimir/_index.md#mimirrequestlatency"
    assert started_page(db, policy, found, firing("SomethingElse", url)) == 1  # step 5


def test_a_suggested_runbook_started_later_opens_at_the_alerts_section(
    db: Database, tmp_path: Path
) -> None:
    found = catalog(tmp_path)
    policy = policy_from_dict({"runbooks": {"steps_per_page": 3}})
    with db.transaction() as session:
        outcome = ingest(session, policy, firing(ALERTS[2]), catalog=found, now=NOW)
        assert outcome.incident_id is not None
        [links] = session.exec(select(AlertNotice).where(AlertNotice.kind == "links")).all()
        assert links.payload["runbook_alert"] == ALERTS[2]  # the Start button's section
        [runbook] = list(found)
        change = progress.start_run(
            session,
            policy,
            outcome.incident_id,
            runbook,
            actor="U1",
            alerts=[links.payload["runbook_alert"]],
        )
    assert change.run.page == 2


def test_an_incident_declared_from_triage_opens_the_runbook_at_the_alerts_section(
    db: Database, tmp_path: Path
) -> None:
    found = catalog(tmp_path)
    policy = policy_from_dict(
        {
            "alerts": {"declare": "triage", "triage_channel": "C0TRIAGE", "start_runbook": True},
            "runbooks": {"steps_per_page": 3},
        }
    )
    with db.transaction() as session:
        waiting = ingest(session, policy, firing(ALERTS[2]), catalog=found, now=NOW)
    with db.transaction() as session:
        incident = triage_declare(session, policy, waiting.group_id, actor="U1", catalog=found)
        [run] = progress.incident_runs(session, incident.id or 0)
    assert run.page == 2
