"""A sub-section's number (``#### 6.1 Short-term containment``) is numbering, left out of the
step's title as "6." is; a number that is part of the words stays."""

from __future__ import annotations

import pytest

from bot.runbooks.parser import parse_runbook

# Excerpt of digital-land/technical-documentation docs/run-book/managing-technical-incidents.md
# @06bd25ff.
CONTAIN = """\
# Managing technical incidents

### 6. Contain

Contain the incident to prevent further damage.

#### 6.1 Short-term containment

Isolate affected systems.

#### 6.2 Long-term containment

Apply temporary fixes to keep systems running.
"""


def test_sub_section_numbers_are_not_shown_in_step_titles() -> None:
    runbook = parse_runbook(CONTAIN, runbook_id="incidents")

    titles = [s.title for s in runbook.steps]
    assert titles[-2:] == ["Short-term containment", "Long-term containment"]


@pytest.mark.parametrize(
    ("heading", "title"),
    [
        ("6.1 Short-term containment", "Short-term containment"),
        ("6.1. Short-term containment", "Short-term containment"),
        ("1.2.3 Drain the node", "Drain the node"),
        ("2. Drain the node", "Drain the node"),
        ("10.0.0.1 unreachable", "10.0.0.1 unreachable"),
    ],
)
def test_heading_numbering(heading: str, title: str) -> None:
    text = f"# Node\n\n## Mitigation\n\n### {heading}\n\nRun `kubectl drain`.\n"
    runbook = parse_runbook(text, runbook_id="node")
    assert [s.title for s in runbook.steps] == [title]
