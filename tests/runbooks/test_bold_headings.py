"""Runbooks exported from Google Docs or Confluence put their headings in bold on a line of
their own (``**Diagnosis**``, ``**Step 1: Check the pods**``): each is read as the heading it
stands for, not as a step whose text is the bold word."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

EXPORTED = """\
# Payments API errors

**Impact**

Customers cannot pay; the checkout page shows an error.

**Diagnosis**

Open the payments dashboard and find the failing dependency.

**Mitigation**

**Step 1: Check the pods**

```sh
kubectl get pods -n payments
```

**Note**

Pods in CrashLoopBackOff are restarted by the next step.

**Step 2: Restart the deployment**

```sh
kubectl rollout restart deploy/payments -n payments
```
"""


def test_bold_lines_that_stand_for_headings_are_read_as_headings() -> None:
    runbook = parse_runbook(EXPORTED, runbook_id="payments")
    assert [(s.title, s.section) for s in runbook.steps] == [
        ("Diagnosis", "Diagnosis"),
        ("Check the pods", "Mitigation"),
        ("Restart the deployment", "Mitigation"),
    ]
    assert [c.title for c in runbook.context] == ["Impact"]
    assert runbook.context[0].markdown == (
        "Customers cannot pay; the checkout page shows an error."
    )
    diagnosis, check, restart = runbook.steps
    assert diagnosis.markdown == "Open the payments dashboard and find the failing dependency."
    assert check.markdown.startswith("```sh\nkubectl get pods -n payments\n```")
    # A bold call-out word is no heading: its text stays with the step it is about.
    assert "**Note**\n\nPods in CrashLoopBackOff" in check.markdown
    assert restart.markdown == ("```sh\nkubectl rollout restart deploy/payments -n payments\n```")
    assert not any(s.markdown.strip("*: ") in ("Impact", "Diagnosis") for s in runbook.steps)
