"""Runbooks as teams really write them, from the sixth probe: an alert's name quoted in its
heading still finds the runbook, and a step shows the chapter it is in, so the first step of
removing a replica is not taken for the first step of replacing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.parser import parse_runbook
from bot.slack.runbook_messages import render_runbook_pages

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
        assert f"alert {alert} (its heading)" in found.reasons


# GitLab's docs/patroni/unhealthy_patroni_node_handling.md (runbooks repository), shortened:
# two chapters each open with "Step 1", which the bot drops from the steps' names.
GITLAB_CHAPTERS = """\
# Patroni

## Diagnose

### Node availability

Execute `gitlab-patronictl list` and check the node is listed.

## Removing an unhealthy replica

**IMPORTANT:** make sure the workload is drained.

### Step 1 - Stop patroni service on the node

1. Stop the service

   ```
   sudo systemctl stop patroni
   ```

1. Check that patroni service is stopped

## Replacing the removed replica

### Step 1 - Take a disk snapshot

1. Log into the backup node and snapshot:

   ```
   /usr/local/bin/gcs-snapshot.sh
   ```
"""


def test_a_step_shows_the_chapter_it_is_in() -> None:
    runbook = parse_runbook(GITLAB_CHAPTERS, runbook_id="patroni")
    removing = "Removing an unhealthy replica › Stop patroni service on the node"
    assert [(s.section, s.title) for s in runbook.steps] == [
        ("Diagnose", "Node availability"),
        (removing, "Stop the service"),
        (removing, "Check that patroni service is stopped"),
        (
            "Replacing the removed replica › Take a disk snapshot",
            "Log into the backup node and snapshot",
        ),
    ]
    [page] = render_runbook_pages(runbook, steps_per_page=10)
    shown = "\n".join(b["text"]["text"] for b in page.blocks if b["type"] == "section")
    order = ["*Diagnose*", "*1. Node", f"*{removing}*", "*2. Stop", "*3.* Check", "*Replacing"]
    assert [shown.index(part) for part in order] == sorted(shown.index(p) for p in order)
    assert shown.count(f"*{removing}*") == 1
    assert shown.index("*Replacing the removed replica › Take a disk snapshot*") < shown.index(
        "gcs-snapshot.sh"
    )


# GitLab's docs/patroni/scale-down-patroni.md (runbooks repository), shortened: the mental
# model sums up, as a numbered list, the steps the Execution chapter then gives.
GITLAB_MENTAL_MODEL = """\
# Scale Down Patroni

## Mental Model

Let's build a mental model of what all are at play before you scale down Patroni cluster.

What this means is that we need to be aware of and think of:

1. Choose a node that is not already the primary or specially configured.
1. Stop chef-client so that any change we make to the replica node and Patroni doesn't get \
overwritten
1. Make a Terraform change and merge.

# Execution

## Step 1 - Stop chef-client

- On the replica node run: `sudo chef-client-disable "Removing patroni node: Ref issue prod#xyz"`

## Step 2 - Terraform change to decrease the count

1. Choose a node that is not already the primary or specially configured.
1. Remove the nodes entry for the relevant node in the relavent cluster in terraform.
"""


@pytest.mark.parametrize("heading", ["Mental Model", "Concepts", "How it works"])
def test_a_mental_model_is_context_not_steps_done_twice(heading: str) -> None:
    text = GITLAB_MENTAL_MODEL.replace("Mental Model", heading)
    runbook = parse_runbook(text, runbook_id="scale-down")
    assert [c.title for c in runbook.context] == [heading]
    assert "Make a Terraform change and merge." in runbook.context[0].markdown
    assert [s.title for s in runbook.steps] == [
        "Stop chef-client",
        "Choose a node that is not already the primary or specially configured.",
        "Remove the nodes entry for the relevant node in the relavent cluster in terraform.",
    ]
