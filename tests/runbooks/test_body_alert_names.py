"""Runbooks that name the alerts they cover in their text, not their front matter: a page
opening with ``**Alert:** `AIServiceLatencyHigh``` (its severity on the next line), a section
listing ``Alerts: KubeAPILatencyHigh``, a service page's table of alerts. Only these explicit
forms count: a CamelCase word in prose, ``Related alerts:`` or a code block names nothing."""

from __future__ import annotations

from pathlib import Path

from bot.runbooks.catalog import RunbookCatalog

LATENCY = """# Runbook: AI Service Latency High

**Alert:** `AIServiceLatencyHigh`
**Severity:** Warning
**Team:** AI / Platform SRE

---

## What is happening

The AI service p95 response latency has exceeded 5 seconds over a 5-minute window.

## Mitigation

1. Scale the inference deployment:
   ```
   kubectl -n ai scale deploy/inference --replicas=6
   ```
"""

KUBERNETES = """# Kubernetes troubleshooting

## High API Server Latency

### Symptoms
- kubectl commands slow
- Alerts: KubeAPILatencyHigh, KubeAPIErrorBudgetBurn
- Tenant complaints

### Resolution
1. Check etcd health and latency
2. Review audit log for expensive queries
"""

BACKUPS = """# Backups

**Alert rules** (`rules/backups.yml`):

| Alert | Severity | Trigger |
|-------|----------|---------|
| BackupFailed | P1 | `restic_backup_success == 0` |
| `BackupMissed24h` | P1 | `time() - timestamp > 93600` |

## Restore drill

1. List the snapshots:
   ```
   restic snapshots --latest 5
   ```
"""

DNS = """# Runbook: DNS Resolution Failure

**Alert:** `DNSResolutionFailing` (DNS probe success < 90%) · **Severity:** page

Related alerts: CoreDNSDown. When NodeFilesystemAlmostOutOfSpace fires too, free disk first.

Alert: fires on every resolver at once

## Check
1. Scope: all resolvers or one zone?
   ```
   # Alert: KubeletDown
   dig @10.0.0.10 example.com
   ```
"""


def load(tmp_path: Path, files: dict[str, str]) -> RunbookCatalog:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return RunbookCatalog.load([tmp_path])


def test_an_alert_line_or_list_item_names_the_runbook_for_the_alert(tmp_path: Path) -> None:
    catalog = load(
        tmp_path,
        {"ai/latency.md": LATENCY, "kubernetes/troubleshooting.md": KUBERNETES, "dns.md": DNS},
    )
    [found] = catalog.match(alerts=["AIServiceLatencyHigh"])
    assert (found.runbook.id, found.reasons) == (
        "ai/latency",
        ('alert AIServiceLatencyHigh (its "Alert:" line 3)',),
    )
    for alert in ("KubeAPILatencyHigh", "KubeAPIErrorBudgetBurn"):
        [found] = catalog.match(alerts=[alert])
        assert found.runbook.id == "kubernetes/troubleshooting"
        assert found.reasons == (f'alert {alert} (its "Alert:" line 7)',)
    [found] = catalog.match(alerts=["DNSResolutionFailing"])
    assert found.runbook.id == "dns"


def test_a_table_of_alerts_names_each_alert_in_its_column(tmp_path: Path) -> None:
    catalog = load(tmp_path, {"backups.md": BACKUPS})
    for alert, line in (("BackupFailed", 7), ("BackupMissed24h", 8)):
        [found] = catalog.match(alerts=[alert])
        assert found.reasons == (f"alert {alert} (its alert table, line {line})",)
    assert catalog.match(alerts=["P1"]) == []


def test_prose_related_alerts_and_code_name_no_alert(tmp_path: Path) -> None:
    catalog = load(tmp_path, {"dns.md": DNS})
    for alert in ("CoreDNSDown", "NodeFilesystemAlmostOutOfSpace", "KubeletDown", "fires"):
        assert catalog.match(alerts=[alert]) == []


def test_front_matter_and_a_runbook_of_its_own_outrank_a_mention_in_a_body(
    tmp_path: Path,
) -> None:
    """The dedicated runbook (named after the alert, or naming it in front matter) is the
    alert's; a page that lists it in a table or an ``Alerts:`` line comes after."""
    catalog = load(
        tmp_path,
        {
            "backups.md": BACKUPS,
            "restic/BackupFailed.md": "# Backup failed\n\n## Mitigation\n\n1. Re-run it\n",
            "kubernetes/troubleshooting.md": KUBERNETES,
            "kubernetes/apiserver.md": (
                "---\nalerts: [KubeAPILatencyHigh]\n---\n# API server latency\n\n"
                "## Mitigation\n\n1. Check the apiserver\n"
            ),
        },
    )
    assert [m.runbook.id for m in catalog.match(alerts=["BackupFailed"])] == [
        "restic/BackupFailed",
        "backups",
    ]
    assert [m.runbook.id for m in catalog.match(alerts=["KubeAPILatencyHigh"])] == [
        "kubernetes/apiserver",
        "kubernetes/troubleshooting",
    ]
