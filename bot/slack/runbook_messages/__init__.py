"""Runbooks in Slack: markdown -> ``mrkdwn``, and the Block Kit message of a runbook run.

By concept: ``mrkdwn`` (the converter), ``sections`` (packing into sections), ``actions`` (the
buttons' action ids), ``message`` (the run message and its pages), ``preview`` (text previews)
and ``fit`` (the Slack checks ``firebreak runbooks lint`` adds).

Pure functions: data in, dicts out. Slack's ``mrkdwn`` is not Markdown: bold is ``*x*``, links
are ``<url|text>``, there are no headings, tables or images, and ``&``, ``<``, ``>`` must be
escaped. The converter walks markdown-it's syntax tree, so code stays verbatim (only ``&<>``
escaped) and every construct gets a readable form.

Every payload built here stays within Slack's limits (checked by
:func:`bot.slack.limits.message_errors` in the tests): at most 50 blocks, 3,000 characters per
section, unique action ids. Long steps are split between sections at safe places (a code block
cut in two is closed and reopened) and, past a per-page budget, cut with a note that says where
the rest is. The budget keeps the whole page near 12,000 characters because Slack rejects
messages whose blocks are much larger than that (``msg_blocks_too_long``) even when each block is
within its own limit.
"""

from __future__ import annotations

from bot.slack.runbook_messages.actions import (
    ACTION_PATTERN,
    ACTION_PREFIX,
    RunbookAction,
    action_id,
    parse_runbook_action,
    seen_version,
    step_block_id,
)
from bot.slack.runbook_messages.message import (
    CONTEXT_CUT_NOTE,
    CONTEXT_SECTIONS_MAX,
    FALLBACK_TEXT_MAX,
    PAGE_TEXT_BUDGET,
    STEP_SECTIONS_MAX,
    SlackMessage,
    message_text_size,
    page_count,
    preview_run_view,
    render_run_message,
    render_runbook_pages,
)
from bot.slack.runbook_messages.mrkdwn import (
    URL_MAX,
    Unit,
    join_units,
    markdown_to_mrkdwn,
    markdown_units,
    title_mrkdwn,
)
from bot.slack.runbook_messages.preview import blocks_to_text, steps_preview
from bot.slack.runbook_messages.sections import MIN_SPLIT, mrkdwn_sections, pack_sections

__all__ = [
    "ACTION_PATTERN",
    "ACTION_PREFIX",
    "CONTEXT_CUT_NOTE",
    "CONTEXT_SECTIONS_MAX",
    "FALLBACK_TEXT_MAX",
    "MIN_SPLIT",
    "PAGE_TEXT_BUDGET",
    "STEP_SECTIONS_MAX",
    "URL_MAX",
    "RunbookAction",
    "SlackMessage",
    "Unit",
    "action_id",
    "blocks_to_text",
    "join_units",
    "markdown_to_mrkdwn",
    "markdown_units",
    "message_text_size",
    "mrkdwn_sections",
    "pack_sections",
    "page_count",
    "parse_runbook_action",
    "preview_run_view",
    "render_run_message",
    "render_runbook_pages",
    "seen_version",
    "step_block_id",
    "steps_preview",
    "title_mrkdwn",
]
