"""Durations in the policy (a leaf module: ``bot.config`` and ``bot.alerts`` both use it).

Teams write "15m", "1h30m", "90s", "2d". A bare number is refused: "15" could mean
seconds or minutes, and guessing wrong escalates 60 times too early or too late."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import (
    BeforeValidator,
)

_DURATION_PART = re.compile(r"(\d+)\s*(d|h|m|s)", re.IGNORECASE)


_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: object) -> timedelta:
    """Parse a positive duration such as ``15m``, ``1h30m``, ``90s`` or ``2d``."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use e.g. 15m, 1h, 90s")
    elif isinstance(value, int | float):
        raise ValueError(
            f'invalid duration {value!r}: a number needs a unit, e.g. "{value}m" for '
            f'minutes or "{value}s" for seconds'
        )
    elif isinstance(value, str):
        text = value.strip()
        compact = text.replace(" ", "")
        if not compact or _DURATION_PART.sub("", compact) != "":
            raise ValueError(f"invalid duration {value!r}: use e.g. 15m, 1h, 1h30m, 90s, 2d")
        parts: dict[str, int] = {}
        for amount, unit in _DURATION_PART.findall(compact):
            key = _DURATION_UNITS[unit.lower()]
            parts[key] = parts.get(key, 0) + int(amount)
        result = timedelta(**parts)
    else:
        raise ValueError(f"invalid duration {value!r}: use e.g. 15m, 1h, 90s")
    if result <= timedelta(0):
        raise ValueError(f"duration must be positive, got {value!r}")
    return result


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def format_duration(value: timedelta) -> str:
    """The inverse of ``parse_duration``: ``timedelta(minutes=90)`` -> ``1h30m``."""
    seconds = int(value.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out) or "0s"
