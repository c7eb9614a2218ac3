"""A run started at an alert's section of a runbook covering many alerts (Grafana Mimir's
``_index.md``, kubernetes-mixin's ``runbook.md``) points "Next" and the ▶ at the first step of
that section, not at step 1 (another alert's), and the alert's post names the section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlmodel import select

from bot.alerts.intake import ingest
from bot.alerts.model import AlertMessage
from bot.alerts.models import AlertNotice
from bot.alerts.notices import notice_from
from bot.alerts.replay import Rehearsal
from bot.alerts.sources import parse
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.runbooks import progress
from bot.runbooks.catalog import RunbookCatalog
from bot.slack.alerts import render
from bot.slack.runbook_messages import render_run_message
from tests.alerts.conftest import NOW

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "mixins"
MIMIR = "https://grafana.com/docs/mimir/latest/manage/mimir-runbooks/"
MIXIN = "https://github.com/kubernetes-monitoring/kubernetes-mixin/tree/master/runbook.md"


def load(tmp_path: Path) -> RunbookCatalog:
    for name in ("mimir-runbooks", "kubernetes-mixin"):
        shutil.copytree(CORPUS / name, tmp_path / "runbooks" / name)
    return RunbookCatalog.load([tmp_path / "runbooks"])


def alertmanager(name: str, runbook_url: str, summary: str) -> AlertMessage:
    labels = {"alertname": name, "namespace": "mimir", "severity": "critical"}
    annotations = {"summary": summary, "runbook_url": runbook_url}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-11-30T11:58:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": "5f0e3c2a9b1d4e77",
    }
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "status": "firing",
        "receiver": "firebreak",
        "groupLabels": {"alertname": name},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }
    return parse("alertmanager", body, now=NOW)


def policy(per_page: int) -> Policy:
    return policy_from_dict(
        {"alerts": {"start_runbook": True}, "runbooks": {"steps_per_page": per_page}}
    )


def started(
    db: Database, found: RunbookCatalog, message: AlertMessage, per_page: int
) -> tuple[progress.RunView, str]:
    """The run the alert started, and the text of the alert's post in the channel."""
    with db.transaction() as session:
        outcome = ingest(session, policy(per_page), message, catalog=found, now=NOW)
        assert outcome.incident_id is not None
        [run] = progress.incident_runs(session, outcome.incident_id)
        [row] = session.exec(select(AlertNotice).where(AlertNotice.kind == "links")).all()
        notice = notice_from({"type": f"alerts.{row.kind}", **row.payload})
    assert notice is not None
    _, blocks = render(notice)
    return run, json.dumps(blocks)


def test_a_mimir_alert_on_page_three_points_next_at_its_own_section(
    db: Database, tmp_path: Path
) -> None:
    message = alertmanager(
        "MimirRequestErrors",
        f"{MIMIR}#mimirrequesterrors",
        "The route api_v1_push in mimir/distributor is experiencing 3.2% errors.",
    )
    run, post = started(db, load(tmp_path), message, per_page=2)
    assert (run.page, run.next_step) == (2, 4)  # step 5, the section's first, page 3 of 3
    shown = render_run_message(run, steps_per_page=2)
    assert shown.text.endswith("0/6 done. Next: step 5: MimirRequestErrors")
    assert ":arrow_forward: *5. MimirRequestErrors*" in json.dumps(shown.blocks)
    assert (
        "Runbook started: *Grafana Mimir runbooks*, at the section for *MimirRequestErrors*" in post
    )


def test_a_kubernetes_mixin_alert_puts_the_marker_on_its_own_alert(
    db: Database, tmp_path: Path
) -> None:
    message = alertmanager(
        "KubeJobFailed",
        f"{MIXIN}#alert-name-kubejobfailed",
        "Job mimir/compactor-cleanup-28871234 failed to complete.",
    )
    run, post = started(db, load(tmp_path), message, per_page=20)
    blocks = json.dumps(render_run_message(run, steps_per_page=20).blocks)
    assert ":arrow_forward: *9. KubeJobFailed*" in blocks
    assert ":arrow_forward: *1. KubeAPIDown*" not in blocks
    assert "at the section for *KubeJobFailed*" in post  # spelled as the runbook has it


def test_next_stays_in_the_section_then_goes_on_then_wraps_to_the_top(
    db: Database, tmp_path: Path
) -> None:
    """Ticked out of order: a step above the section changes nothing; the section's steps
    are followed by the ones after it, then the first one still open from the top."""
    message = alertmanager(
        "MimirRequestLatency",
        f"{MIMIR}#mimirrequestlatency",
        "api_v1_push in mimir/distributor is experiencing 2.41s 99th percentile latency.",
    )
    run, _ = started(db, load(tmp_path), message, per_page=2)
    assert run.next_step == 3

    def tick(index: int) -> int | None:
        with db.transaction() as session:
            change = progress.update_step(
                session, policy(2), run.id, index, "done", actor="U1", now=NOW
            )
        return change.run.next_step

    assert tick(0) == 3  # someone ticks MimirIngesterRestarts: still this alert's
    assert tick(3) == 4
    assert tick(4) == 5
    assert tick(5) == 1  # nothing left after the section: the first open from the top
    assert tick(1) == 2


def test_a_run_not_started_at_a_section_still_starts_at_step_one(
    db: Database, tmp_path: Path
) -> None:
    """KubeAPIDown is the first alert of kubernetes-mixin's file, so nothing changes."""
    message = alertmanager(
        "KubeAPIDown",
        f"{MIXIN}#alert-name-kubeapidown",
        "KubeAPI has disappeared from Prometheus target discovery.",
    )
    run, _ = started(db, load(tmp_path), message, per_page=20)
    assert (run.start_step, run.next_step) == (0, 0)


def test_replay_says_at_which_section_a_run_would_open(tmp_path: Path) -> None:
    """Tuning anchors (``#mimir-ingester-restarts`` or ``#mimiringesterrestarts``) is checked
    with a replay, not live."""
    rehearsal = Rehearsal(policy_from_dict({}), load(tmp_path))
    errors = rehearsal.play(
        alertmanager("MimirRequestErrors", f"{MIMIR}#mimirrequesterrors", "5xx"), NOW
    )
    assert (errors.runbook, errors.runbook_section) == ("mimir-runbooks", "MimirRequestErrors")
    assert errors.as_dict()["runbook_section"] == "MimirRequestErrors"
