"""Files the command line writes (exports, postmortems, evidence bundles)."""

from __future__ import annotations

from pathlib import Path

from bot.errors import FirebreakError


def check_output_file(path: Path) -> None:
    """Refuse an output path whose directory does not exist instead of creating directories
    the person did not ask for (a typo would scatter files)."""
    parent = path.expanduser().parent
    if not parent.is_dir():
        raise FirebreakError(
            f"{path}: the directory {parent} does not exist; create it first or choose another path"
        )
