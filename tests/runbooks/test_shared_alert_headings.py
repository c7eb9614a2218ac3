"""Two alert headings in a row share the text under the second (grafana/tempo's runbook:
``## TempoRequestErrors`` then ``## TempoRequestLatency``): the section is each alert's."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

TEMPO = """\
# Runbook

This document should help with remediating operational issues in Tempo.

## TempoCompactorUnhealthy

Use the "Forget" button on `/compactor/ring` to drop any unhealthy compactors.

## TempoRequestErrors
## TempoRequestLatency

Use the Reads or Writes dashboard to identify the component that is struggling and scale it up.

## TempoPollsFailing

Check the component that is raising this metric and look for any obvious logs.
"""


def test_an_alert_heading_with_no_text_shares_the_next_alerts_section() -> None:
    runbook = parse_runbook(TEMPO, runbook_id="tempo")

    assert [s.section for s in runbook.steps] == [
        "TempoCompactorUnhealthy",
        "TempoRequestErrors / TempoRequestLatency",
        "TempoPollsFailing",
    ]
    shared = runbook.steps[1]
    assert shared.markdown.startswith("Use the Reads or Writes dashboard")
    assert runbook.first_step_for(["TempoRequestErrors"]) == 1
    assert runbook.first_step_for(["TempoRequestLatency"]) == 1
    assert runbook.first_step_for(["TempoPollsFailing"]) == 2


def test_an_empty_heading_that_names_no_alert_is_not_merged() -> None:
    text = TEMPO.replace("## TempoRequestErrors\n", "## Requests\n")

    runbook = parse_runbook(text, runbook_id="tempo")

    assert runbook.first_step_for(["TempoRequestLatency"]) is not None
    assert "Requests / TempoRequestLatency" not in [s.section for s in runbook.steps]
