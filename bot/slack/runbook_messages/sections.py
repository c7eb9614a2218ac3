"""Packing converted Markdown into Slack sections of at most 3,000 characters, cut at safe places
(a code block cut in two is closed and reopened, never inside an entity)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from bot.slack.limits import SECTION_TEXT
from bot.slack.runbook_messages.mrkdwn import _FENCE, Unit, _separator, markdown_units

MIN_SPLIT = 80
_CODE_OVERHEAD = len(_FENCE) * 2 + 2
"""What a code block adds to its text: the fences that open and close it, on their own lines."""


def _safe_cut(text: str, limit: int) -> int:
    """Where to cut prose at or before ``limit``: a line break, else a space, never inside a
    Slack entity (``<url|label>``, ``&amp;``)."""
    if len(text) <= limit:
        return len(text)
    cut = text.rfind("\n", 0, limit + 1)
    if cut < limit // 2:
        cut = text.rfind(" ", 0, limit + 1)
    if cut < limit // 2:
        cut = limit
    opened, closed = text.rfind("<", 0, cut), text.rfind(">", 0, cut)
    if opened > closed and opened > 0:
        cut = opened
    return _entity_safe(text, cut) or limit


def _entity_safe(text: str, cut: int) -> int:
    amp = text.rfind("&", max(0, cut - 5), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        return amp
    return cut


def _split_unit(unit: Unit, room: int, whole: int) -> tuple[Unit, Unit] | None:
    """Split ``unit`` so the first part renders in at most ``room`` characters.

    A code block is split at line ends only: a command cut in two halves, each in its own Slack
    code block, is copied and run as two broken commands. Only a line longer than a whole section
    (``whole`` characters) is cut inside; ``None`` when no line fits in ``room`` but the next one
    fits in a section of its own (the caller starts one, or cuts the step there)."""
    if unit.code:
        space = room - _CODE_OVERHEAD
        if space < 1:
            return None
        lines = unit.text.split("\n")
        taken: list[str] = []
        size = 0
        for line in lines:
            extra = len(line) + (1 if taken else 0)
            if size + extra > space:
                break
            taken.append(line)
            size += extra
        if taken and len(taken) < len(lines):
            return Unit(True, "\n".join(taken)), Unit(True, "\n".join(lines[len(taken) :]))
        first = lines[0]
        if len(first) <= whole - _CODE_OVERHEAD:
            return None
        cut = _entity_safe(first, min(space, len(first))) or min(space, len(first))
        head, tail = first[:cut], "\n".join([first[cut:], *lines[1:]])
        return Unit(True, head), Unit(True, tail)
    cut = _safe_cut(unit.text, room)
    head, tail = unit.text[:cut].rstrip(), unit.text[cut:].lstrip(" \n")
    if not head:
        head, tail = unit.text[:room], unit.text[room:]
    return Unit(False, head), Unit(False, tail)


def pack_sections(
    units: Sequence[Unit],
    *,
    section_limit: int = SECTION_TEXT,
    total_limit: int | None = None,
    max_sections: int | None = None,
    note: str = "",
) -> tuple[list[str], bool]:
    """Pack rendered units into section texts of at most ``section_limit`` characters.

    A code block that does not fit is closed at the end of one section and reopened in the next.
    With ``total_limit`` / ``max_sections`` the text is cut when the budget runs out and ``note``
    is added to the last section. Returns the texts and whether anything was cut."""
    reserve = len(note) + 1 if note else 0
    section_cap = section_limit - reserve
    total_cap = (total_limit if total_limit is not None else math.inf) - reserve
    out: list[str] = []
    current, last = "", None
    used = 0
    cut = False
    queue = deque(u for u in units if u.text.strip())
    while queue:
        unit = queue.popleft()
        sep = _separator(last, unit) if current else ""
        rendered = unit.render()
        room = int(min(section_cap - len(current) - len(sep), total_cap - used - len(sep)))
        if len(rendered) <= room:
            current += sep + rendered
            used += len(sep) + len(rendered)
            last = unit
            continue
        can_open = max_sections is None or len(out) + 1 < max_sections
        fresh = int(min(section_cap, total_cap - used))
        # Split only a unit that a fresh section cannot take whole, with room enough here.
        parts = None
        if room > 0 and not (current and can_open and (len(rendered) <= fresh or room < MIN_SPLIT)):
            parts = _split_unit(unit, room, section_cap)
        if current and can_open and (len(rendered) <= fresh or room < MIN_SPLIT or parts is None):
            if fresh < MIN_SPLIT and len(rendered) > fresh:
                cut = True
                break
            out.append(current)
            current, last = "", None
            queue.appendleft(unit)
            continue
        if room < MIN_SPLIT and current:
            cut = True
            break
        if parts is None:
            cut = True
            break
        head, tail = parts
        rendered = head.render()
        current += sep + rendered
        used += len(sep) + len(rendered)
        last = head
        if tail.text.strip():
            queue.appendleft(tail)
    if current or not out:
        out.append(current)
    if cut and note:
        out[-1] = f"{out[-1]}\n{note}" if out[-1] else note
    return out, cut


def mrkdwn_sections(markdown: str, limit: int = SECTION_TEXT) -> list[str]:
    """Markdown as mrkdwn section texts of at most ``limit`` characters each (nothing cut)."""
    texts, _ = pack_sections(markdown_units(markdown), section_limit=limit)
    return [t for t in texts if t] or [""]
