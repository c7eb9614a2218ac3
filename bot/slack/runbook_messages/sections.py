"""Packing converted Markdown into Slack sections of at most 3,000 characters, cut at safe places
(a code block cut in two is closed and reopened, never inside an entity)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from bot.slack.limits import SECTION_TEXT, fit_prefix, grapheme_start, safe_cut, text_length
from bot.slack.runbook_messages.mrkdwn import _FENCE, Unit, _separator, markdown_units

MIN_SPLIT = 80
_CODE_OVERHEAD = len(_FENCE) * 2 + 2
"""What a code block adds to its text: the fences that open and close it, on their own lines."""


def _safe_cut(text: str, limit: int) -> int:
    """Where to cut prose so that at most ``limit`` (``text_length``) is kept: a line break,
    else a space, never inside a grapheme cluster, a Slack entity (``<url|label>``, ``&amp;``)."""
    if text_length(text) <= limit:
        return len(text)
    end = fit_prefix(text, limit)
    cut = text.rfind("\n", 0, end + 1)
    if cut < end // 2:
        cut = text.rfind(" ", 0, end + 1)
    if cut < end // 2:
        cut = end
    return safe_cut(text, cut, plain=False) or grapheme_start(text, end) or end


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
            extra = text_length(line) + (1 if taken else 0)
            if size + extra > space:
                break
            taken.append(line)
            size += extra
        if taken and len(taken) < len(lines):
            return Unit(True, "\n".join(taken)), Unit(True, "\n".join(lines[len(taken) :]))
        first = lines[0]
        if text_length(first) <= whole - _CODE_OVERHEAD:
            return None
        end = fit_prefix(first, space)
        cut = safe_cut(first, end, plain=False) or grapheme_start(first, end) or end
        head, tail = first[:cut], "\n".join([first[cut:], *lines[1:]])
        return Unit(True, head), Unit(True, tail)
    cut = _safe_cut(unit.text, room)
    head, tail = unit.text[:cut].rstrip(), unit.text[cut:].lstrip(" \n")
    if not head:
        cut = fit_prefix(unit.text, room)
        head, tail = unit.text[:cut], unit.text[cut:]
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
    reserve = text_length(note) + 1 if note else 0
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
        size = text_length(rendered)
        room = int(min(section_cap - text_length(current) - len(sep), total_cap - used - len(sep)))
        if size <= room:
            current += sep + rendered
            used += len(sep) + size
            last = unit
            continue
        can_open = max_sections is None or len(out) + 1 < max_sections
        fresh = int(min(section_cap, total_cap - used))
        # Split only a unit that a fresh section cannot take whole, with room enough here.
        parts = None
        if room > 0 and not (current and can_open and (size <= fresh or room < MIN_SPLIT)):
            parts = _split_unit(unit, room, section_cap)
        if current and can_open and (size <= fresh or room < MIN_SPLIT or parts is None):
            if fresh < MIN_SPLIT and size > fresh:
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
        used += len(sep) + text_length(rendered)
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
