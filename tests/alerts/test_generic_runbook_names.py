"""A ``runbook_url`` ending in a generic file name (``runbook.md``, a wiki's ``Runbook``
page) names a runbook of that name only when more of the URL agrees. Thanos, Linkerd and
kubernetes-mixin link their alerts to ``.../mixin/runbook.md#alert-name-<alert>``: with
kubernetes-mixin's ``runbook.md`` vendored (or a team's ``payments/runbook.md``), a Thanos
alert used to start the Kubernetes runbook at KubeAPIDown."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.alerts.model import AlertMessage
from bot.alerts.routing import route
from bot.alerts.sources import parse
from bot.config import Policy
from bot.runbooks.catalog import RunbookCatalog
from tests.alerts.conftest import NOW

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PAYMENTS = """---
title: Payments service runbook
services: [payments]
---
# Payments service runbook

## Mitigation

1. Fail over payments to the secondary region.
   ```
   ./failover.sh payments
   ```
"""
MIXIN_URL = "https://github.com/kubernetes-monitoring/kubernetes-mixin/tree/master/runbook.md"


def load(tmp_path: Path, *, mixin: bool = True, payments: bool = False) -> RunbookCatalog:
    root = tmp_path / "runbooks"
    shutil.copytree(CORPUS / "prometheus-operator", root / "prometheus-operator")
    if mixin:
        shutil.copytree(CORPUS / "mixins" / "kubernetes-mixin", root / "kubernetes-mixin")
    if payments:
        (root / "payments").mkdir()
        (root / "payments" / "runbook.md").write_text(PAYMENTS, encoding="utf-8")
    return RunbookCatalog.load([root])


def alertmanager(name: str, runbook_url: str, summary: str) -> AlertMessage:
    """Alertmanager's v4 webhook for one firing alert, as a kube-prometheus stack sends it."""
    labels = {"alertname": name, "namespace": "monitoring", "severity": "critical"}
    annotations = {"summary": summary, "runbook_url": runbook_url}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-12-03T03:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": "a1b2c3d4e5f60718",
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


def chosen(found: RunbookCatalog, message: AlertMessage) -> tuple[str, str]:
    decided = route(Policy(), found, message)
    return (decided.runbook.id if decided.runbook else ""), decided.runbook_reason


def test_a_thanos_alert_does_not_start_the_vendored_kubernetes_mixin_runbook(
    tmp_path: Path,
) -> None:
    message = alertmanager(
        "ThanosCompactHalted",
        "https://github.com/thanos-io/thanos/tree/main/mixin/runbook.md"
        "#alert-name-thanoscompacthalted",
        "Thanos Compact has failed to run and now is halted.",
    )
    runbook, reason = chosen(load(tmp_path), message)
    assert runbook == ""
    assert "names no runbook of the catalog" in reason


@pytest.mark.parametrize(
    "url",
    [
        f"{MIXIN_URL}#alert-name-kubepodcrashlooping",
        "https://github.com/acme/platform/wiki/Runbook",
    ],
)
def test_a_teams_runbook_md_is_not_named_by_another_repositorys_runbook_md(
    tmp_path: Path, url: str
) -> None:
    """KubePodCrashLooping linked to kubernetes-mixin (not vendored here) or to a wiki's
    Runbook page: prometheus-operator's runbook for the alert, not payments/runbook.md."""
    message = alertmanager(
        "KubePodCrashLooping", url, "Pod monitoring/grafana-0 (grafana) is in waiting state."
    )
    runbook, _ = chosen(load(tmp_path, mixin=False, payments=True), message)
    assert runbook == "prometheus-operator/kubernetes/KubePodCrashLooping"


def test_an_anchor_naming_an_alert_the_vendored_file_lacks_falls_back_to_the_alert_name(
    tmp_path: Path,
) -> None:
    """The vendored copy stops at the storage group: KubeStateMetricsListErrors has no section
    in it, so its URL into kubernetes-mixin's runbook.md names prometheus-operator's file."""
    message = alertmanager(
        "KubeStateMetricsListErrors",
        f"{MIXIN_URL}#alert-name-kubestatemetricslisterrors",
        "kube-state-metrics is experiencing errors in list operations.",
    )
    runbook, _ = chosen(load(tmp_path), message)
    assert runbook == "prometheus-operator/kube-state-metrics/KubeStateMetricsListErrors"


@pytest.mark.parametrize(
    ("name", "anchor"),
    [("KubeJobFailed", "alert-name-kubejobfailed"), ("KubeAPIDown", "alert-name-kubeapidown")],
)
def test_kubernetes_mixins_own_url_still_names_its_vendored_runbook_md(
    tmp_path: Path, name: str, anchor: str
) -> None:
    message = alertmanager(name, f"{MIXIN_URL}#{anchor}", f"{name} is firing.")
    assert chosen(load(tmp_path, payments=True), message) == (
        "kubernetes-mixin/runbook",
        "runbook_url of the alert",
    )


def test_a_generic_name_under_its_own_directory_or_with_a_section_anchor_still_names_it(
    tmp_path: Path,
) -> None:
    """The team's own link (its directory in the URL) and a runbook.md found only by its
    anchor naming a heading of it still count."""
    found = load(tmp_path, mixin=False, payments=True)
    own = alertmanager(
        "PaymentsFailoverNeeded",
        "https://git.example.com/sre/runbooks/-/blob/main/payments/runbook.md",
        "Payments are failing in eu-west-1.",
    )
    weak = (
        "runbook_url of the alert; weak: only by the generic file name runbook.md, and the "
        "runbook does not name PaymentsFailoverNeeded (add it to its alerts: front matter)"
    )
    assert chosen(found, own) == ("payments/runbook", weak)
    anchored = alertmanager(
        "PaymentsFailoverNeeded",
        "https://git.example.com/sre/handbook/-/blob/main/runbook.md#mitigation",
        "Payments are failing in eu-west-1.",
    )
    assert chosen(found, anchored) == ("payments/runbook", weak)
