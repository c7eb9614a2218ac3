"""Which runbook an alert's ``runbook_url`` names, in a catalog that vendors several public
runbook repositories side by side (each has its ``KubePodNotReady``), as platform teams do."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.alerts.model import Alert, AlertMessage, Status
from bot.alerts.routing import runbook_for
from bot.config import Policy
from bot.runbooks.catalog import RunbookCatalog

FILES = {
    # prometheus-operator/runbooks: titled with spaces, alert name as the file name
    "prometheus-operator/content/runbooks/kubernetes/KubePodNotReady.md": (
        "---\ntitle: Kube Pod Not Ready\n---\n# KubePodNotReady\n\n## Mitigation\n\n"
        "1. Describe the pod\n"
    ),
    "prometheus-operator/content/runbooks/node/NodeFilesystemSpaceFillingUp.md": (
        "---\ntitle: Node Filesystem Space Filling Up\n---\n\n## Mitigation\n\n1. Free space\n"
    ),
    # a translation of the same runbook, titled with the bare alert name
    "kubesphere/content.zh/runbooks/kubernetes/KubePodNotReady.md": (
        "# KubePodNotReady\n\n## 缓解\n\n1. 查看 Pod\n"
    ),
    # openshift/runbooks: another runbook for an alert of the same name
    "openshift/alerts/cluster-monitoring-operator/NodeFilesystemSpaceFillingUp.md": (
        "# NodeFilesystemSpaceFillingUp\n\n## Mitigation\n\n1. oc adm top node\n"
    ),
    # kubernetes-mixin: one file, a section per alert
    "kubernetes-mixin/runbook.md": "# Kubernetes alert runbooks\n\n## Mitigation\n\n1. Read\n",
    "gitlab/docs/patroni/postgres.md": "# Postgres\n\n## Mitigation\n\n1. Check lag\n",
}


@pytest.fixture
def catalog(tmp_path: Path) -> RunbookCatalog:
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return RunbookCatalog.load([tmp_path])


def chosen(catalog: RunbookCatalog, url: str, name: str = "KubePodNotReady") -> tuple[str, str]:
    alert = Alert(key="a1", status=Status.FIRING, name=name, title=name, runbook_url=url)
    message = AlertMessage(source="alertmanager", group_key="g", title=name, alerts=(alert,))
    runbook, reason = runbook_for(catalog, Policy(), message, "SEV3")
    return (runbook.id if runbook else ""), reason


def test_the_whole_url_path_decides_not_a_title_equal_to_its_last_segment(
    catalog: RunbookCatalog,
) -> None:
    """kube-prometheus's own URLs: the English runbook, not the translation whose title is
    the bare alert name (both end in runbooks/kubernetes/KubePodNotReady: the host names the
    repository); OpenShift's URL: OpenShift's runbook."""
    assert chosen(
        catalog, "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodnotready"
    ) == (
        "prometheus-operator/content/runbooks/kubernetes/KubePodNotReady",
        "runbook_url of the alert",
    )
    assert chosen(
        catalog,
        "https://runbooks.prometheus-operator.dev/runbooks/node/nodefilesystemspacefillingup",
        "NodeFilesystemSpaceFillingUp",
    )[0] == ("prometheus-operator/content/runbooks/node/NodeFilesystemSpaceFillingUp")
    assert chosen(
        catalog,
        "https://github.com/openshift/runbooks/blob/master/alerts/cluster-monitoring-operator/"
        "NodeFilesystemSpaceFillingUp.md",
        "NodeFilesystemSpaceFillingUp",
    )[0] == ("openshift/alerts/cluster-monitoring-operator/NodeFilesystemSpaceFillingUp")


def test_a_heading_anchor_points_into_the_runbook_it_does_not_hide_it(
    catalog: RunbookCatalog,
) -> None:
    runbook, reason = chosen(
        catalog,
        "https://github.com/kubernetes-monitoring/kubernetes-mixin/tree/master/runbook.md"
        "#alert-name-kubecronjobrunning",
        "KubeCronJobRunning",
    )
    # This copy of runbook.md has no section for the alert: the match rests on the file name.
    assert runbook == "kubernetes-mixin/runbook"
    assert reason.startswith("runbook_url of the alert; weak: only by the generic file name")
    assert chosen(
        catalog, "docs/patroni/postgres.md#replication-is-lagging", "PatroniReplicationLag"
    ) == ("gitlab/docs/patroni/postgres", "runbook_url of the alert")
    # A path that names nothing: the anchor is read as an alert name.
    assert chosen(catalog, "https://wiki.example.com/alerts#alert-name-kubepodnotready")[0] == (
        "kubesphere/content.zh/runbooks/kubernetes/KubePodNotReady"
    )


def test_a_url_that_names_no_runbook_or_several_is_said_not_passed_off_as_a_match(
    catalog: RunbookCatalog,
) -> None:
    _, reason = chosen(
        catalog,
        "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubedeploymentmismatch",
        "KubeDeploymentReplicasMismatch",
    )
    assert "runbook_url of the alert" not in reason
    assert reason.endswith(
        "its runbook_url https://runbooks.prometheus-operator.dev/runbooks/kubernetes/"
        "kubedeploymentmismatch names no runbook of the catalog"
    )
    _, reason = chosen(catalog, "kubepodnotready")
    assert reason.endswith(
        "its runbook_url kubepodnotready names 2 runbooks of the catalog "
        "(kubesphere/content.zh/runbooks/kubernetes/KubePodNotReady, "
        "prometheus-operator/content/runbooks/kubernetes/KubePodNotReady)"
    )
