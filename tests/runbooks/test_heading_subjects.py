"""A context word makes a heading context only where it is the heading's subject ("Alert",
"Related runbooks"), not where it qualifies the problem a procedure fixes ("Alert storm",
"Alerts not firing", "x509 certificate related errors")."""

from __future__ import annotations

import pytest

from bot.runbooks.headings import heading_kind
from bot.runbooks.parser import parse_runbook

# Excerpt of ai-cherry/sophia-intel-ai infrastructure/alertmanager/RUNBOOK.md @bbc0e982.
EMERGENCIES = """\
# AlertManager Operations Runbook

## Emergency Procedures

### 🚨 AlertManager Complete Failure

**Immediate Actions**:
```bash
kubectl delete pods -n monitoring -l app=alertmanager
```

### 🔥 Alert Storm (> 1000 alerts/minute)

**Symptoms**: Notification channels overwhelmed, high latency

**Immediate Actions**:
```bash
# 3. Apply targeted silence
kubectl exec -n monitoring alertmanager-0 -- amtool silence add --duration="30m" alertname=~".+"

# 4. Scale up AlertManager
kubectl scale statefulset -n monitoring alertmanager --replicas=5
```

## Troubleshooting Guide

### Issue: Alerts Not Firing

```bash
# 1. Check Prometheus configuration
kubectl get servicemonitor -n monitoring alertmanager -o yaml
```

### Issue: Notifications Not Sent

```bash
# 1. Check notification logs
kubectl logs -n monitoring alertmanager-0 | grep -i notify
```
"""

# Excerpt of istio/istio.io content/en/docs/ops/common-problems/injection/index.md @0b776fa6.
ISTIO = """\
# Sidecar injection problems

## Pods cannot be created at all

Run `kubectl describe -n namespace deployment name` on the failing
pod's deployment.

### x509 certificate related errors

`x509: certificate signed by unknown authority` errors are typically
caused by an empty `caBundle` in the webhook configuration.

Verify the `caBundle` in the `mutatingwebhookconfiguration` matches the
   root certificate mounted in the `istiod` pod.

If the CA certificate does not match, restart the `istiod` pods.

## Limitations for using Tcpdump in pods

Tcpdump doesn't work in the sidecar pod.
"""


def test_emergency_procedures_named_after_their_alerts_are_steps() -> None:
    runbook = parse_runbook(EMERGENCIES, runbook_id="am")

    assert [s.title for s in runbook.steps] == [
        "🚨 AlertManager Complete Failure",
        "🔥 Alert Storm (> 1000 alerts/minute)",
        "Issue: Alerts Not Firing",
        "Issue: Notifications Not Sent",
    ]
    assert "kubectl scale statefulset" in runbook.steps[1].markdown
    assert runbook.context == ()


def test_a_fix_for_certificate_related_errors_is_a_step() -> None:
    runbook = parse_runbook(ISTIO, runbook_id="istio")

    steps = "\n".join(s.markdown for s in runbook.steps)
    assert "restart the `istiod` pods" in steps
    assert all("istiod" not in c.markdown for c in runbook.context)
    assert [c.title for c in runbook.context] == ["Limitations for using Tcpdump in pods"]


@pytest.mark.parametrize(
    "title",
    [
        "Alert",
        "Alerts",
        "Alert details",
        "Automatic alerts",
        "Related",
        "Related alerts",
        "Related runbooks",
        "Related runbooks for mitigation",
        "About this alert",
    ],
)
def test_headings_about_alerts_or_related_pages_stay_context(title: str) -> None:
    assert heading_kind(title) == "context"


# The same runbook's last section.
CONTACTS = """\
# AlertManager Operations Runbook

## Emergency Procedures

### Restart AlertManager

```bash
kubectl delete pods -n monitoring -l app=alertmanager
```

## Contact Information

- **On-Call Schedule**: https://pagerduty.sophia-intel-ai.com
- **Slack Channel**: #alertmanager-ops
"""


def test_contact_information_is_context_not_a_step() -> None:
    runbook = parse_runbook(CONTACTS, runbook_id="am")

    assert [s.title for s in runbook.steps] == ["Restart AlertManager"]
    assert [c.title for c in runbook.context] == ["Contact Information"]


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("Contact details", "context"),
        ("Contact the DBA team", "action"),
        ("Contact", "action"),
        ("Check details", "action"),
    ],
)
def test_contact_as_a_noun_or_a_verb(title: str, kind: str) -> None:
    assert heading_kind(title) == kind
