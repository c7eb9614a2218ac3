"""Runbooks as teams really write them, from the fifth probe: a folded manual way under a step
stays that step's, a table's links keep their targets in Slack, and an alert's link to the
published page finds the runbook."""

from __future__ import annotations

import pytest

from bot.runbooks.parser import parse_runbook
from bot.slack.runbook_messages import markdown_to_mrkdwn

DETAILS_IN_NUMBERED = """\
# Database restore

## Steps

1. Stop writes.
<details><summary>Manual way</summary>

1. Open the admin UI.
2. Toggle read-only.

</details>

2. Restore the snapshot.
3. Resume writes.
"""

DETAILS_IN_CHECKLIST = """\
# Database restore

## Steps

- [ ] Stop writes.
<details><summary>Manual way</summary>

- [ ] Open the admin UI.

```sh
admin-cli set read-only --cluster orders
```

</details>

- [ ] Restore the snapshot.
- [ ] Resume writes.
"""


@pytest.mark.parametrize("text", [DETAILS_IN_NUMBERED, DETAILS_IN_CHECKLIST])
def test_a_list_folded_in_details_after_an_item_is_part_of_that_item(text: str) -> None:
    steps = parse_runbook(text, runbook_id="restore").steps
    assert [s.title for s in steps] == ["Stop writes.", "Restore the snapshot.", "Resume writes."]
    first = steps[0].markdown
    assert first.startswith("Stop writes.\n\n<details><summary>Manual way</summary>")
    assert "Open the admin UI." in first and first.endswith("</details>")
    assert "admin-cli" not in steps[1].markdown
    if "admin-cli" in text:
        assert "```sh\nadmin-cli set read-only --cluster orders\n```" in first
        assert "```\nadmin-cli set read-only --cluster orders\n```" in markdown_to_mrkdwn(first)
