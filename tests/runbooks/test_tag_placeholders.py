"""A placeholder written as a tag on a line of its own (``- <oncall-lead-handle>``, ``<TBD>``)
is shown as written, not hidden as HTML, and lint flags ``<TBD>`` / ``<todo>`` and a label whose
value is a placeholder ("Owner: TODO"); real HTML on its own line stays HTML."""

from __future__ import annotations

from pathlib import Path

from bot.runbooks.lint import lint_paths
from bot.runbooks.parser import parse_runbook
from bot.slack.limits import message_errors
from bot.slack.runbook_messages import preview_run_view, render_run_message
from bot.slack.runbook_messages.fit import SLACK_CHECKS

ESCALATE = """\
# Escalate

## Escalation

- Page the on-call lead:
- <oncall-lead-handle>

<TBD>
"""

OWNERS = """\
# X

## Escalation

- <todo>
- Owner: TODO
- Pager/Phone: <TBD>
- Check the todo list service.
"""


def shown(markdown: str) -> str:
    view = preview_run_view(parse_runbook(markdown, runbook_id="ops/test"), run_id=7)
    message = render_run_message(view, steps_per_page=10)
    assert message_errors(message.text, message.blocks) == []
    return "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")


def warnings(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "escalate.md").write_text(text, encoding="utf-8")
    report = lint_paths([tmp_path], checks=SLACK_CHECKS)
    return [m.format().replace(str(tmp_path) + "/", "") for m in report.messages]


def test_a_tag_placeholder_on_its_own_line_is_shown_as_written() -> None:
    text = shown(ESCALATE)

    assert "&lt;oncall-lead-handle&gt;" in text
    assert "&lt;TBD&gt;" in text


def test_real_html_on_its_own_line_stays_html() -> None:
    text = shown(
        "# Escalate\n\n- Page the lead\n\n<details>\n<summary>Numbers</summary>\n\n"
        "Call 555.\n\n</details>\n\n<!-- keep in sync -->\n"
    )

    assert "keep in sync" not in text
    assert "&lt;details&gt;" not in text
    assert "Call 555." in text


def test_lint_flags_tag_placeholders_and_placeholder_values(tmp_path: Path) -> None:
    assert warnings(tmp_path, ESCALATE) == [
        "escalate.md:8: warning: placeholder text (TODO): fill it in",
    ]
    assert warnings(tmp_path, OWNERS) == [
        "escalate.md:5: warning: placeholder text (TODO): fill it in",
        "escalate.md:6: warning: placeholder text (TODO): fill it in",
        "escalate.md:7: warning: placeholder text (TODO): fill it in",
    ]
