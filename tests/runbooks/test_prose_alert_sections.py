"""An alert's section written only as prose (Grafana Mimir's runbooks: what the alert means,
then "How to **investigate**:" and a bullet list, no command) is what to do about that alert:
a run opened at the alert shows it, not the first step of another alert."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

MIMIR = """\
# Grafana Mimir runbooks

## Alerts

### MimirIngesterUnhealthy

This alert goes off when one or more ingesters are marked as unhealthy. The ring web page
shows which ones are marked as unhealthy.

How to **investigate**:

- The logs of the ingesters involved usually say why they left the ring
- If the pod does not exist anymore, the **Forget** button on the ring page removes it

### MimirRequestErrors

This alert fires when the rate of 5xx errors of a specific route is > 1% for some time.

How to **investigate**:

- If the failing service is going OOM (`OOMKilled`): scale up or increase the memory
- If the failing service is crashing: look for the stack trace in the logs

### MimirCompactorNotRunning

This alert fires when the compactor has not run for a long time.

#### Dashboards

The `Mimir / Compactor` dashboard shows the last successful run.
"""


def test_an_alert_section_of_prose_is_a_step_the_run_opens_at() -> None:
    runbook = parse_runbook(MIMIR, runbook_id="mimir")
    by_alert = {s.alert: s for s in runbook.steps}
    assert set(by_alert) == {
        "MimirIngesterUnhealthy",
        "MimirRequestErrors",
        "MimirCompactorNotRunning",
    }

    index = runbook.first_step_for(["MimirIngesterUnhealthy"])
    assert index is not None
    step = runbook.steps[index]
    assert step.title == "MimirIngesterUnhealthy"
    assert "This alert goes off when" in step.markdown
    assert "the **Forget** button on the ring page removes it" in step.markdown

    index = runbook.first_step_for(["mimirrequesterrors"])  # the runbook_url anchor
    assert index is not None
    step = runbook.steps[index]
    assert step.alert == "MimirRequestErrors"
    assert "scale up or increase the memory" in step.markdown
    assert "look for the stack trace in the logs" in step.markdown

    # What the alert means, over a sub-section that gives no step, is its step.
    index = runbook.first_step_for(["MimirCompactorNotRunning"])
    assert index is not None
    assert "has not run for a long time" in runbook.steps[index].markdown
