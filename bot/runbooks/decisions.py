"""Decisions written between steps, and sections that only list whom or what to look at.

A decision ("If the lag is still growing after 5 minutes, go to step 4; otherwise continue.",
"**Decision:** ...", "If a deploy went out: ... / If not: ...") is read where the responder
decides: at the start of the step it gates, not at the end of the step before it, which a
responder has ticked off (and Slack shows folded) by the time the decision is due.

Only text that routes the procedure is a decision: a "Decision:" label, a condition that says
where to go ("go to", "skip to", "continue with", "otherwise", "next step", "step 4"), or
branches ("If ...:" paragraphs or list items, two or more). A remark on what the previous
command printed ("If this fails, check the logs.") stays with that command.
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"^\s*(?:decision(?:\s+point)?|decide|branch)\s*[:：.\-–—]", re.IGNORECASE)
"""A paragraph labelled as a decision: ``**Decision:** ...``, ``Decision point - ...``."""
_CONDITION = re.compile(
    r"^\s*(?:if|when|unless|otherwise|once|in case|depending on|based on)\b", re.IGNORECASE
)
_ROUTE = re.compile(
    r"\b(?:go(?:ing)?\s+(?:straight\s+|back\s+|directly\s+|on\s+)?to|skip(?:ping)?\s+"
    r"(?:to|ahead|over|the\s+next|the\s+rest|steps?)|jump\s+to|proceed\s+(?:to|with)|"
    r"continue\s+(?:to|with|from|at)|move\s+on\s+to|return\s+to|repeat\s+steps?|otherwise|"
    r"else|(?:next|previous|following)\s+(?:step|section)|steps?\s+\d+)\b",
    re.IGNORECASE,
)
"""Words that send the responder somewhere: "go to step 4", "otherwise continue"."""
_BRANCH = re.compile(r"^\s*(?:if|when|unless|otherwise)\b[^.:!?]*[:：]", re.IGNORECASE)
"""A branch: "If a deploy went out: roll it back", "Otherwise: page the owners"."""


def is_decision(text: str) -> bool:
    """Plain text that decides where the procedure goes: a decision label, or a condition
    that routes ("If ..., go to step 4", "Otherwise, continue with *Scale the pool*")."""
    if _LABEL.match(text):
        return True
    return bool(_CONDITION.match(text) and _ROUTE.search(text))


def is_branch(text: str) -> bool:
    """Plain text that opens one branch of a decision ("If no deploy went out: ...")."""
    return bool(_BRANCH.match(text))


def decision_start(texts: list[str]) -> int | None:
    """Where a decision starts among consecutive prose blocks (their plain text; a list's
    items joined by newlines): the first block that is one, or the first of two or more
    branches in a row ("If X: ..." then "If Y: ..."), or a list of branches."""
    for index, text in enumerate(texts):
        if is_decision(text):
            return index
        items = [line for line in text.split("\n") if line.strip()]
        if len(items) >= 2 and all(is_branch(item) for item in items):
            return index  # a list of branches
        following = texts[index + 1] if index + 1 < len(texts) else ""
        if is_branch(text) and (is_branch(following) or is_decision(following)):
            return index
    return None


_REFERENCE_ITEM = re.compile(
    r"^\s*(?:[^\s:]{1,40}(?:\s+[^\s:]{1,40}){0,4}\s*[:：\-–—]\s*)?"
    r"(?:(?:[@#][\w.\-]+|<[^>\s]+>|[\w.+\-]+@[\w.\-]+|https?://\S+|\+?[\d ()\-]{7,})"
    r"(?:\s*(?:,|/|\bor\b|\band\b)\s*)?)+\s*(?:\([^()]*\))?\s*$",
    re.IGNORECASE,
)
"""A list item that only names where someone or something is: a handle or channel
(``@dba-oncall``, ``#payments-incidents``), an address or a phone number, after a label at
most ("Primary: @payments-oncall", "DBA on-call - +1 555 0100")."""


def is_reference_item(text: str, *, link_only: bool) -> bool:
    """A list item with nothing to do in it: only a link (``link_only``: its whole text is a
    link's label), or a handle, channel, address or phone number after a short label."""
    return link_only or bool(_REFERENCE_ITEM.match(text))
