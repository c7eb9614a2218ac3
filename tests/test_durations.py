"""How long something took, as people read it next to the times it ran between."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.durations import humanize_duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (-3, "0s"),
        (45, "45s"),
        (59.4, "59s"),
        (59.5, "1m"),  # never "60s"
        (89.9, "1m"),
        (90, "2m"),  # half a minute goes up
        (419.9, "7m"),  # 00:05 to 00:12 with the ack a tenth of a second early: not "6m"
        (5399.6, "1h 30m"),  # 00:00 to 01:30: not "1h 29m"
        (3599.5, "1h"),  # never "60m"
        (7170, "2h"),  # 1h 59m 30s: never "1h 60m"
        (86370, "1d"),  # never "23h 60m"
        (2 * 86400 + 2 * 3600 + 30 * 60, "2d 2h 30m"),
        (3600 + 5 * 60 + 29, "1h 5m"),
    ],
)
def test_a_duration_is_rounded_to_the_nearest_unit_shown(seconds: float, shown: str) -> None:
    assert humanize_duration(timedelta(seconds=seconds)) == shown


def test_an_unknown_duration_says_so() -> None:
    assert humanize_duration(None) == "unknown"
