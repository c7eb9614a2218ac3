"""Whether a runbook fits in Slack: the checks ``firebreak runbooks lint`` adds to the domain's
(``bot.runbooks.lint``), which knows runbooks but not Slack. A line of code (or a word) longer
than a block is an error (long prose is wrapped at spaces), a title cut in the header a warning,
a page Slack would reject an error, and a step cut because it is too long for one message a
warning."""

from __future__ import annotations

from bot.config import Policy
from bot.runbooks.lint import Add, RunbookCheck
from bot.runbooks.parser import Runbook, make_markdown
from bot.slack.limits import HEADER_TEXT, SECTION_TEXT, message_errors, text_length
from bot.slack.runbook_messages.message import render_runbook_pages, steps_cut_when_next

_MD = make_markdown()


def _unsplittable_lines(text: str) -> set[int]:
    """0-based lines of code blocks and tables: shown line by line, so a line too long for a
    section is cut in the middle of the command."""
    lines: set[int] = set()
    for token in _MD.parse(text):
        if token.type in ("fence", "code_block", "table_open") and token.map:
            lines.update(range(*token.map))
    return lines


def check_lines(runbook: Runbook, text: str, policy: Policy, add: Add) -> None:
    """A line longer than a section is an error only when it cannot be split: prose is wrapped
    at a space (``sections._safe_cut`` looks in the second half of a section), a command or a
    word of more than half a section is cut where it does not end."""
    code = _unsplittable_lines(text)
    for number, line in enumerate(text.splitlines(), start=1):
        size = text_length(line)
        if size <= SECTION_TEXT:
            continue
        if number - 1 in code or max(map(text_length, line.split())) > SECTION_TEXT // 2:
            add(
                number,
                "error",
                f"line is {size:,} characters long; Slack shows at most {SECTION_TEXT:,} "
                "in a block and cuts it where it does not end: break it into shorter lines",
            )


def check_pages(runbook: Runbook, text: str, policy: Policy, add: Add) -> None:
    size = text_length(runbook.title)
    if size > HEADER_TEXT - len("Runbook: "):
        add(1, "warning", f"title is {size} characters; Slack shows the first 140")
    for number, page in enumerate(
        render_runbook_pages(runbook, steps_per_page=policy.runbooks.steps_per_page), start=1
    ):
        for error in message_errors(page.text, page.blocks):
            add(1, "error", f"Slack would reject page {number} of this runbook: {error}")
    for index in steps_cut_when_next(runbook, steps_per_page=policy.runbooks.steps_per_page):
        add(
            runbook.steps[index].line,
            "warning",
            f"step {index + 1} is too long for one Slack message: even when it is the step to "
            "do, Slack shows it cut, with a pointer to this file; split it into smaller steps",
        )


SLACK_CHECKS: tuple[RunbookCheck, ...] = (check_lines, check_pages)
"""The Slack checks, for ``lint_paths(..., checks=SLACK_CHECKS)``."""
