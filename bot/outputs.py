"""Files Firebreak writes for people (exports, postmortems, evidence bundles, CSV downloads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bot.errors import FirebreakError


def check_output_file(path: Path) -> None:
    """Refuse, before anything is done or stored, an output file that could not be written:
    its directory does not exist (created for nobody: a typo would scatter files), it is a
    directory, or it may not be written."""
    target = _in_existing_directory(path)
    if target.is_dir():
        raise FirebreakError(f"{path}: is a directory; give the name of a file to write")
    if target.exists() and not os.access(target, os.W_OK):
        raise FirebreakError(f"{path}: cannot write: permission denied")


def check_output_dir(path: Path, *, create: bool = True) -> None:
    """Refuse a directory to write files in that could not be: its parent does not exist, it
    is a file, or it may not be written. With ``create`` a missing directory is fine (the
    caller makes it); without, it is refused too (an archive is a mount someone made: a typo
    must not become a new directory)."""
    target = _in_existing_directory(path)
    if target.exists() and not target.is_dir():
        raise FirebreakError(f"{path}: not a directory; choose another path")
    if not create and not target.exists():
        raise FirebreakError(
            f"{path}: the directory does not exist; create (or mount) it first or choose "
            "another path"
        )
    if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
        raise FirebreakError(f"{path}: cannot write in it: permission denied")


def _in_existing_directory(path: Path) -> Path:
    target = path.expanduser()
    parent = target.parent
    if not parent.is_dir():
        raise FirebreakError(
            f"{path}: the directory {parent} does not exist; create it first or choose another path"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FirebreakError(f"{path}: cannot write in {parent}: permission denied")
    return target


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
