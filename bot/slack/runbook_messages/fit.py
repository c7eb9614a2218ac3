"""Whether a runbook fits in Slack: the checks ``firebreak runbooks lint`` adds to the domain's
(``bot.runbooks.lint``), which knows runbooks but not Slack. A line longer than a block is an
error, a title cut in the header a warning, a page Slack would reject an error, and a step cut
because it is too long for one message a warning."""

from __future__ import annotations

import re

from bot.config import Policy
from bot.runbooks.lint import Add, RunbookCheck
from bot.runbooks.parser import Runbook
from bot.slack.limits import HEADER_TEXT, SECTION_TEXT, message_errors
from bot.slack.runbook_messages.message import render_runbook_pages

_CUT_NOTE = "too long for Slack"
"""What the note on a step cut in the run message says (``message._cut_note``)."""


def check_lines(runbook: Runbook, text: str, policy: Policy, add: Add) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > SECTION_TEXT:
            add(
                number,
                "error",
                f"line is {len(line):,} characters long; Slack shows at most {SECTION_TEXT:,} "
                "in a block: break it into shorter lines",
            )


def check_pages(runbook: Runbook, text: str, policy: Policy, add: Add) -> None:
    if len(runbook.title) > HEADER_TEXT - len("Runbook: "):
        add(1, "warning", f"title is {len(runbook.title)} characters; Slack shows the first 140")
    cut_lines: set[int] = set()
    for number, page in enumerate(
        render_runbook_pages(runbook, steps_per_page=policy.runbooks.steps_per_page), start=1
    ):
        for error in message_errors(page.text, page.blocks):
            add(1, "error", f"Slack would reject page {number} of this runbook: {error}")
        for block in page.blocks:
            block_text = block.get("text")
            if isinstance(block_text, dict) and _CUT_NOTE in str(block_text.get("text", "")):
                match = re.search(r"\(line (\d+)\)", str(block_text["text"]))
                cut_lines.add(int(match.group(1)) if match else 1)
    for step_number, step in enumerate(runbook.steps, start=1):
        if step.line in cut_lines:
            add(
                step.line,
                "warning",
                f"step {step_number} is too long for one Slack message and is cut: split it "
                "into smaller steps",
            )


SLACK_CHECKS: tuple[RunbookCheck, ...] = (check_lines, check_pages)
"""The Slack checks, for ``lint_paths(..., checks=SLACK_CHECKS)``."""
