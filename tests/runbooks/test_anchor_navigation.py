"""A list whose every item is only a link within the page is navigation, left out like a table
of contents whatever its heading: its items are not walked as steps before the real ones."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

TERMINATING = """\
# Pod stuck in terminating state

## Initial Steps Overview

1) [Check for finalizers](#detailed-step-1)

2) [Force-delete the pod](#detailed-step-2)

## Detailed Steps

### 1) Check for finalizers {#detailed-step-1}

```
kubectl get pod <POD> -o jsonpath='{.metadata.finalizers}'
```

### 2) Force-delete the pod {#detailed-step-2}

```
kubectl delete pod --grace-period=0 --force <POD>
```
"""


def test_a_list_of_in_page_links_is_not_walked_as_steps() -> None:
    runbook = parse_runbook(TERMINATING, runbook_id="pod-terminating")

    assert [s.title for s in runbook.steps] == ["Check for finalizers", "Force-delete the pod"]
    assert "kubectl get pod <POD>" in runbook.steps[0].markdown
    assert "kubectl delete pod --grace-period=0" in runbook.steps[1].markdown


def test_a_step_that_links_within_the_page_stays_a_step() -> None:
    text = """\
# Failover

- [ ] Check [replication lag](#lag) before promoting.
- [ ] Promote the replica.
"""
    runbook = parse_runbook(text, runbook_id="failover")

    assert len(runbook.steps) == 2
