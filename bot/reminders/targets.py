"""Escalation targets from the policy: people, user groups by id or by handle."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)


def resolve_mentions(targets: Iterable[str], groups: Mapping[str, str]) -> list[str]:
    """Escalation targets from the policy as Slack mentions.

    ``U..``/``W..`` -> ``<@U..>``; ``S..`` -> ``<!subteam^S..>``; ``@handle`` -> the group's
    mention when the handle is known, else the handle as plain text (the escalation still goes
    out: a missing ping is better than a missing escalation)."""
    out = []
    for target in targets:
        if target.startswith("@"):
            group = groups.get(target[1:].lower())
            out.append(f"<!subteam^{group}>" if group else target)
        elif target.startswith("S"):
            out.append(f"<!subteam^{target}>")
        else:
            out.append(f"<@{target}>")
    return out


def unknown_targets(targets: Iterable[str], groups: Mapping[str, str]) -> list[str]:
    """The user-group targets (ids or handles) that the workspace does not have."""
    ids = set(groups.values())
    return [
        t
        for t in targets
        if (t.startswith("@") and t[1:].lower() not in groups)
        or (t.startswith("S") and t not in ids)
    ]
