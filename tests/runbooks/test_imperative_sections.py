"""A section whose heading the words do not classify is a step when its items say what to do,
in the common runbook verbs ("Take", "File", "Document"...), and stays where it is in the order;
a context section (Meaning, Impact) stays context whatever its items start with."""

from __future__ import annotations

import pytest

from bot.runbooks.parser import parse_runbook

SECURITY = """\
# Security incident

## Isolate Affected Instances

* Blacklist the IP addresses for any affected instances.

## Forensic Analysis

Once you are confident the systems are secured, you can move onto the forensic analysis stage.

* {first} any read-only images you created and comb through them.
* Identify exactly what happened.

## Internal Communication

* Overview the timeline.
"""


@pytest.mark.parametrize("verb", ["Take", "File", "Document", "Ban", "Raise"])
def test_a_section_of_instructions_is_a_step_in_its_place(verb: str) -> None:
    runbook = parse_runbook(SECURITY.format(first=verb), runbook_id="security")

    assert [s.section for s in runbook.steps] == [
        "Isolate Affected Instances",
        "Forensic Analysis",
        "Internal Communication",
    ]
    assert runbook.context == ()


def test_most_items_saying_what_to_do_make_a_step_whatever_the_first() -> None:
    text = SECURITY.replace("* {first} any", "* Images you created: go through them,").format()
    text = text.replace("* Identify", "* Identify the entry point.\n* Identify")

    runbook = parse_runbook(text, runbook_id="security")

    assert "Forensic Analysis" in [s.section for s in runbook.steps]


def test_a_context_section_stays_context_when_its_items_start_with_a_verb() -> None:
    text = """\
# Disk full

## Impact

- Take-up of new orders stops.
- Page loads fail.

## Mitigation

- Free space on the volume.
"""
    runbook = parse_runbook(text, runbook_id="disk")

    assert [c.title for c in runbook.context] == ["Impact"]
    assert [s.title for s in runbook.steps] == ["Mitigation"]
