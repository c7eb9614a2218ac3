"""A list each of whose items is only a link within the page is navigation, with or without a
full stop after each link: its sections are the steps, each once."""

from __future__ import annotations

import pytest

from bot.runbooks.parser import parse_runbook

# Excerpt of digital-land/technical-documentation docs/run-book/managing-technical-incidents.md
# @06bd25ff.
PROCEDURE = """\
---
title: Managing technical incidents
---

## Incident response procedure

When an incident occurs the following process should be followed.

1. [Establish an incident lead](#1.-establish-an-incident-lead).
1. [Inform your team](#2.-inform-your-team).
1. [Prioritise the incident](#3.-prioritise-the-incident).

### 1. Establish an incident lead

Establish who your incident lead is.

### 2. Inform your team

Inform the team using the below template in the channel in Slack.

### 3. Prioritise the incident

Prioritise the incident using the [incident priority table](#incident-priority-table).
"""


@pytest.mark.parametrize("stop", [".", ""], ids=["full-stop", "bare"])
def test_links_to_the_sections_are_not_steps_of_their_own(stop: str) -> None:
    text = PROCEDURE if stop else PROCEDURE.replace(").\n", ")\n")
    runbook = parse_runbook(text, runbook_id="incidents")

    assert [s.title for s in runbook.steps] == [
        "Establish an incident lead",
        "Inform your team",
        "Prioritise the incident",
    ]
    shown = "\n".join([s.markdown for s in runbook.steps] + [c.markdown for c in runbook.context])
    assert "(#1.-establish-an-incident-lead)" not in shown


def test_a_list_of_links_with_words_after_them_is_still_read() -> None:
    text = "# Steps\n\n1. [Restart](#restart) the consumers.\n2. [Drain](#drain) the node.\n"
    runbook = parse_runbook(text, runbook_id="x")
    assert [s.title for s in runbook.steps] == ["Restart the consumers.", "Drain the node."]
