"""Action ids of the buttons on a runbook run message: ``runbook:<verb>:<run>:<step>``."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RunbookAction:
    """A click on a runbook message, decoded from its ``action_id``."""

    verb: str
    """``done``, ``skip``, ``assign``, ``unassign``, ``reopen`` or ``page``."""
    run_id: int
    step: int | None = None
    page: int | None = None


ACTION_PREFIX = "runbook:"
ACTION_PATTERN = r"^runbook:"
"""Register one Slack action listener with this pattern and route with parse_runbook_action."""
# ASCII digits only (``\d`` also takes other scripts' digits, which ``int`` then refuses), and a
# run id within the database's integer range.
_ACTION_ID = re.compile(
    r"^runbook:(done|skip|assign|unassign|reopen|page):([0-9]{1,9}):([0-9]{1,9})$"
)


def action_id(verb: str, run_id: int, number: int) -> str:
    """``runbook:{verb}:{run_id}:{step_index}``, or ``runbook:page:{run_id}:{page}``."""
    return f"{ACTION_PREFIX}{verb}:{run_id}:{number}"


def parse_runbook_action(action_id: str) -> RunbookAction | None:
    """Decode an action id built by this module; ``None`` for anything else."""
    match = _ACTION_ID.match(action_id or "")
    if match is None:
        return None
    verb, run_id, number = match.group(1), int(match.group(2)), int(match.group(3))
    if verb == "page":
        return RunbookAction(verb, run_id, page=number)
    return RunbookAction(verb, run_id, step=number)


STEP_BLOCK_PREFIX = "runbook-step:"


def step_block_id(index: int, version: str) -> str:
    """The block id of a step's buttons: the step's version rides along, so a click (the
    users menu of Assign has no value of its own) says which state of the step it was made
    on."""
    return f"{STEP_BLOCK_PREFIX}{index}:{version}"


def seen_version(action: dict[str, object]) -> str | None:
    """The step version a click was made on: from its value (``"<step>:<version>"``) or its
    block id; ``None`` for a message drawn before steps carried one."""
    for text in (str(action.get("value") or ""), str(action.get("block_id") or "")):
        head, sep, version = text.removeprefix(STEP_BLOCK_PREFIX).rpartition(":")
        if sep and head.isdigit() and version.isdigit():
            return version
    return None
