"""Files Firebreak writes for people (exports, postmortems, evidence bundles, CSV downloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.errors import FirebreakError


def check_output_file(path: Path) -> None:
    """Refuse an output path whose directory does not exist instead of creating directories
    the person did not ask for (a typo would scatter files)."""
    parent = path.expanduser().parent
    if not parent.is_dir():
        raise FirebreakError(
            f"{path}: the directory {parent} does not exist; create it first or choose another path"
        )


def csv_cell(value: Any) -> str:
    """A value as a CSV cell a spreadsheet shows as text: one that starts like a formula
    (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start like a formula; incident text is data.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
