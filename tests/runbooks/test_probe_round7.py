"""Runbooks as teams really write them, from the seventh probe: a call-out after the last item
guards that item, a heading naming two alerts is about both, kubernetes-mixin's alert sections
are the alerts' steps, text after a list that CommonMark ends is not the last item's, and a
TOML front matter error is reported on its own line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.parser import parse_runbook

# -- 1. a call-out after the last item ---------------------------------------------------------

ADMONITION_AFTER_LAST_ITEM = """\
# ES red

## Diagnosis

1. Check health.
2. Retry allocation.

!!! warning "Data loss"
    Never use `allocate_empty_primary`.

    ```
    POST _cluster/reroute?retry_failed=true
    ```
"""


GITHUB_CALL_OUT = """\
> [!WARNING]
> Never use `allocate_empty_primary`.
>
> ```
> POST _cluster/reroute?retry_failed=true
> ```
"""


@pytest.mark.parametrize(
    "text",
    [
        ADMONITION_AFTER_LAST_ITEM,
        ADMONITION_AFTER_LAST_ITEM.split("!!!")[0] + GITHUB_CALL_OUT,
    ],
    ids=["mkdocs", "github"],
)
def test_a_call_out_after_the_last_item_stays_with_that_item(text: str) -> None:
    runbook = parse_runbook(text, runbook_id="es")
    assert [s.title for s in runbook.steps] == ["Check health.", "Retry allocation."]
    last = runbook.steps[-1].markdown
    assert last.startswith("Retry allocation.")
    assert "Never use `allocate_empty_primary`." in last
    assert "```\n> POST _cluster/reroute?retry_failed=true\n> ```" in last


# -- 2. a heading naming two alerts ------------------------------------------------------------

TWO_ALERTS = """\
# Two alerts

## {heading}

### Mitigation

- [ ] Describe the pod: `kubectl describe pod x`

## `KubeJobFailed`

### Mitigation

- [ ] Check the job: `kubectl describe job j`
"""


@pytest.mark.parametrize(
    "heading",
    [
        "KubePodCrashLooping / KubePodNotReady",
        "KubePodCrashLooping, KubePodNotReady",
        "KubePodCrashLooping and KubePodNotReady",
        "`KubePodCrashLooping` / `KubePodNotReady`",
        "Alert: KubePodCrashLooping / KubePodNotReady",
    ],
)
def test_a_heading_naming_two_alerts_is_about_both(tmp_path: Path, heading: str) -> None:
    text = TWO_ALERTS.format(heading=heading)
    (tmp_path / "pods.md").write_text(text, encoding="utf-8")
    catalog = RunbookCatalog.load([tmp_path])
    for alert in ("KubePodCrashLooping", "KubePodNotReady", "KubeJobFailed"):
        [found] = catalog.match(alerts=[alert])
        assert f"alert {alert} (its heading)" in found.reasons
    runbook = parse_runbook(text, runbook_id="pods")
    for alert in ("KubePodCrashLooping", "KubePodNotReady"):
        index = runbook.first_step_for([alert])
        assert index is not None
        assert "`kubectl describe pod x`" in runbook.steps[index].markdown
    index = runbook.first_step_for(["KubeJobFailed"])
    assert index is not None
    assert "`kubectl describe job j`" in runbook.steps[index].markdown


@pytest.mark.parametrize(
    "heading", ["Read / write errors", "Disk, memory and CPU", "PostgreSQL / MySQL", "Read / ..."]
)
def test_a_heading_with_a_slash_or_a_comma_names_no_alert(tmp_path: Path, heading: str) -> None:
    text = f"# Storage\n\n## {heading}\n\n- [ ] Check the disk: `df -h`\n"
    runbook = parse_runbook(text, runbook_id="storage")
    assert [s.alert for s in runbook.steps] == [""]


# -- 3. kubernetes-mixin's runbook.md ----------------------------------------------------------

KUBERNETES_MIXIN = """\
# Kubernetes Alert Runbooks

### Group Name: "kubernetes-apps"
##### Alert Name: "KubeJobFailed"
+ *Message*: `Job {{ $labels.namespace }}/{{ $labels.job_name }} failed to complete.`
+ *Severity*: warning
+ *Action*: Check the job using `kubectl describe job <job>` and look at the pod logs using \
`kubectl logs <pod>` for further information.
##### Alert Name: KubeDeploymentReplicasMismatch
+ *Message*: `Deployment {{ $labels.namespace }}/{{ $labels.deployment }} replica mismatch`
+ *Severity*: warning
+ *Action*: Check the deployment using `kubectl describe deployment <deployment>`

## Other Kubernetes Runbooks and troubleshooting
+ [Troubleshoot Clusters ](https://kubernetes.io/docs/tasks/debug-application-cluster/debug-cluster/)
"""


def test_a_kubernetes_mixin_alert_section_is_the_step_the_run_opens_at() -> None:
    runbook = parse_runbook(KUBERNETES_MIXIN, runbook_id="runbook")
    assert not any("KubeJobFailed" in c.title for c in runbook.context)
    index = runbook.first_step_for(["KubeJobFailed"])
    assert index is not None
    step = runbook.steps[index]
    assert step.title == "KubeJobFailed"
    assert "*Severity*: warning" in step.markdown
    assert "Check the job using `kubectl describe job <job>`" in step.markdown

    index = runbook.first_step_for(["KubeDeploymentReplicasMismatch"])
    assert index is not None
    step = runbook.steps[index]
    assert step.title == "KubeDeploymentReplicasMismatch"
    assert "`kubectl describe deployment <deployment>`" in step.markdown
    assert "KubeJobFailed" not in step.markdown


# -- 4. text after a list that CommonMark ends -------------------------------------------------

PLAIN_HEADINGS = """\
# Queue stuck

Mitigation
1) Disable the flag.
2) Verify metrics.

Verification
- Post-fix checks pass.
"""


def test_a_paragraph_at_column_0_after_a_blank_line_is_not_the_last_items() -> None:
    runbook = parse_runbook(PLAIN_HEADINGS, runbook_id="queue")
    verify = next(s for s in runbook.steps if s.title == "Verify metrics.")
    assert verify.markdown == "Verify metrics."
    shown = [s.markdown for s in runbook.steps] + [c.markdown for c in runbook.context]
    assert any("Post-fix checks pass." in text for text in shown)


# -- 5. TOML front matter errors ---------------------------------------------------------------


def test_invalid_toml_front_matter_is_reported_on_its_line() -> None:
    text = '+++\ntitle = "T"\nalerts = ["X"\n+++\n# T\n\n- [ ] do it\n'
    runbook = parse_runbook(text, runbook_id="t")
    [problem] = runbook.problems
    assert "invalid TOML front matter" in problem.message
    assert problem.line == 3
    text = '+++\ntitle = "T"\nalerts = = ["X"]\n+++\n# T\n\n- [ ] do it\n'
    [problem] = parse_runbook(text, runbook_id="t").problems
    assert problem.line == 3
    assert [s.title for s in parse_runbook(text, runbook_id="t").steps] == ["do it"]
