"""Text in columns of a monospace block, measured as it is shown: a Chinese, Japanese or Korean
character (East Asian Wide or Fullwidth) takes two columns, a combining mark none."""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """How many monospace columns ``text`` takes."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def pad(text: str, width: int, style: str = "") -> str:
    """``text`` padded with spaces to ``width`` columns: to the right, or as a table cell's
    ``text-align`` ``style`` says (``right``, ``center``)."""
    space = max(width - display_width(text), 0)
    if "right" in style:
        return " " * space + text
    if "center" in style:
        left = space // 2 + (space & width & 1)  # where str.center puts the odd space
        return " " * left + text + " " * (space - left)
    return text + " " * space
