"""Command-line argument types the CLI's commands share."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A count such as ``--limit``: a whole number of 1 or more (argparse reports the rest as
    usage, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value
