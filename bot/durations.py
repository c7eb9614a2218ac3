"""Durations in the policy and durations shown to people (a leaf module: ``bot.config``,
``bot.alerts`` and everything that shows how long something took use it).

Teams write "15m", "1h30m", "90s", "2d". A bare number is refused: "15" could mean
seconds or minutes, and guessing wrong escalates 60 times too early or too late."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import (
    BeforeValidator,
)

LONGEST = timedelta(days=365)
"""The longest cadence, delay or window: anything longer is a typo, and dates that far out
overflow (``declared_at + 3000000d`` is past the year 9999)."""
LONGEST_RETENTION = timedelta(days=36500)
"""Retention periods run to years (10 for some regulators), so they get a hundred."""

_DURATION_PART = re.compile(r"(\d+)\s*(d|h|m|s)", re.IGNORECASE)


_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: object, longest: timedelta = LONGEST) -> timedelta:
    """Parse a positive duration such as ``15m``, ``1h30m``, ``90s`` or ``2d``, at most
    ``longest``."""
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
        try:
            for amount, unit in _DURATION_PART.findall(compact):
                key = _DURATION_UNITS[unit.lower()]
                parts[key] = parts.get(key, 0) + int(amount)
            result = timedelta(**parts)
        except (OverflowError, ValueError):  # past timedelta's range, or thousands of digits
            raise ValueError(_too_long(value, longest)) from None
    else:
        raise ValueError(f"invalid duration {value!r}: use e.g. 15m, 1h, 90s")
    if result <= timedelta(0):
        raise ValueError(f"duration must be positive, got {value!r}")
    if result > longest:
        raise ValueError(_too_long(value, longest))
    return result


def _too_long(value: object, longest: timedelta) -> str:
    shown = value if len(str(value)) <= 40 else str(value)[:40] + "..."
    return f"duration {shown!r} is too long: at most {format_duration(longest)}"


def _retention(value: object) -> timedelta:
    return parse_duration(value, LONGEST_RETENTION)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
RetentionDuration = Annotated[timedelta, BeforeValidator(_retention)]


def format_duration(value: timedelta) -> str:
    """The inverse of ``parse_duration``: ``timedelta(minutes=90)`` -> ``1h30m``."""
    seconds = int(value.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out) or "0s"


def humanize_duration(value: timedelta | None) -> str:
    """How long something took, for people: ``2d 2h 30m``, ``1h 5m``, ``45s`` (seconds only
    under a minute); ``unknown`` for a missing value. The one way Firebreak shows a duration:
    the pinned summary, lists, reminders, the console and postmortems.

    Rounded to the nearest minute (half a minute up), so the figure mostly agrees with the
    times shown beside it: 00:05 to 00:12 is ``7m`` even when it was 6 minutes 59.9 seconds
    (where the two times' seconds differ by more than half a minute, it is a minute off what a
    reader subtracts: 00:05:20 to 00:12:50 is ``8m``). Under
    a minute it is rounded to the nearest second; 59.5 seconds or more is ``1m``, never
    ``60s``, and a carry goes up a unit (``1h 59m 40s`` is ``2h``, never ``1h 60m``)."""
    if value is None:
        return "unknown"
    seconds = max(value.total_seconds(), 0.0)
    if seconds < 59.5:
        return f"{int(seconds + 0.5)}s"
    minutes = int(seconds / 60 + 0.5)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = ((days, "d"), (hours, "h"), (minutes, "m"))
    return " ".join(f"{amount}{unit}" for amount, unit in parts if amount)
