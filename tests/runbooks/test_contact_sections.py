"""Sections about whom to call or tell ("Escalation contacts", "Communication channels") that
only list links, handles, channels or numbers are context, shown above the steps, not steps
to tick off; with an instruction, a command or a numbered order, they stay steps."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

LATENCY = """\
# Payments API: high latency

## Overview

The p99 latency of the payments API is above 2 s for 10 minutes.

## Owners

Team Payments (#payments-oncall).

## Escalation contacts

- [Payments on-call](https://example.pagerduty.com/schedules/PAY)
- [DBA on-call](https://example.pagerduty.com/schedules/DBA)

## Escalation

- Primary: @payments-oncall
- Secondary: @dba-oncall
- Vendor support: +1 555 0100

## Communication channels

- #payments-incidents
- #status-page

## Mitigation

Scale the API out:

```
kubectl -n payments scale deploy/payments-api --replicas=10
```

## Related links

- [Postmortem 2024-03: latency after the pool change](https://wiki.example.com/pm/2024-03)
"""


def test_contact_lists_are_context() -> None:
    runbook = parse_runbook(LATENCY)

    assert [s.title for s in runbook.steps] == ["Mitigation"]
    assert [c.title for c in runbook.context] == [
        "Overview",
        "Owners",
        "Escalation contacts",
        "Escalation",
        "Communication channels",
        "Related links",
    ]
    contacts = next(c for c in runbook.context if c.title == "Escalation contacts")
    assert "https://example.pagerduty.com/schedules/DBA" in contacts.markdown


def test_escalation_that_says_what_to_do_stays_a_step() -> None:
    instructed = LATENCY.replace(
        "- Primary: @payments-oncall\n",
        "Page the DBA on-call if the database CPU is above 90%:\n\n- Primary: @payments-oncall\n",
    )
    ordered = LATENCY.replace(
        "- [Payments on-call](https://example.pagerduty.com/schedules/PAY)\n"
        "- [DBA on-call](https://example.pagerduty.com/schedules/DBA)",
        "1. [Payments on-call](https://example.pagerduty.com/schedules/PAY)\n"
        "2. [DBA on-call](https://example.pagerduty.com/schedules/DBA)",
    )
    with_command = LATENCY.replace(
        "- #status-page\n",
        "- #status-page\n\n```\nstatuspage incident create --component payments\n```\n",
    )

    assert "Escalation" in [s.section for s in parse_runbook(instructed).steps]
    assert "Escalation contacts" in [s.section for s in parse_runbook(ordered).steps]
    assert "Communication channels" in [s.title for s in parse_runbook(with_command).steps]


def test_a_mitigation_that_links_to_another_runbook_stays_a_step() -> None:
    text = LATENCY.replace(
        "Scale the API out:\n\n```\n"
        "kubectl -n payments scale deploy/payments-api --replicas=10\n```",
        "- [Failover runbook](https://wiki.example.com/runbooks/payments-failover)",
    )

    assert [s.title for s in parse_runbook(text).steps] == ["Mitigation"]


def test_where_to_look_under_an_action_word_is_context() -> None:
    text = LATENCY.replace("## Related links", "## Troubleshooting dashboards").replace(
        "## Owners\n\nTeam Payments (#payments-oncall).", "## Runbook owners\n\n- @payments-sre"
    )

    runbook = parse_runbook(text)

    assert [s.title for s in runbook.steps] == ["Mitigation"]
    assert {"Troubleshooting dashboards", "Runbook owners"} <= {c.title for c in runbook.context}
