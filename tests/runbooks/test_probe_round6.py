"""Runbooks as teams really write them, from the sixth probe: an alert's name quoted in its
heading still finds the runbook."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runbooks.catalog import RunbookCatalog

# kubernetes-monitoring/kubernetes-mixin runbook.md: most alert names are quoted, some are not.
KUBERNETES_MIXIN = """\
# Kubernetes Alert Runbooks

### Group Name: "kubernetes-absent"
##### Alert Name: "KubeAPIDown"
+ *Message*: `KubeAPI has disappeared from Prometheus target discovery.`
+ *Severity*: critical
##### Alert Name: KubeSchedulerDown
+ *Message*: `KubeScheduler has disappeared from Prometheus target discovery`
+ *Severity*: critical
"""


@pytest.mark.parametrize(
    "quoted", ['"KubeAPIDown"', "'KubeAPIDown'", "“KubeAPIDown”", "`KubeAPIDown`", "KubeAPIDown"]
)
def test_an_alert_named_in_quotes_in_its_heading_finds_the_runbook(
    tmp_path: Path, quoted: str
) -> None:
    text = KUBERNETES_MIXIN.replace('"KubeAPIDown"', quoted)
    (tmp_path / "runbook.md").write_text(text, encoding="utf-8")
    catalog = RunbookCatalog.load([tmp_path])
    for alert in ("KubeAPIDown", "KubeSchedulerDown"):
        [found] = catalog.match(alerts=[alert])
        assert found.runbook.id == "runbook"
        assert f"alert {alert}" in found.reasons
