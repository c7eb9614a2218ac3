"""Working hours: when a reminder that waits for them may go out, in the team's timezone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from bot.clock import as_utc
from bot.config import Policy

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def next_working_time(policy: Policy, when: datetime) -> datetime:
    """``when`` if it falls in the team's working hours, else the next start of working hours
    (``reminders.working_hours`` on ``reminders.working_days`` in ``policy.timezone``), in UTC."""
    rules = policy.reminders
    zone = policy.zone
    opens_at, closes_at = (time.fromisoformat(p) for p in rules.working_hours.split("-"))
    when = as_utc(when)
    local_day = when.astimezone(zone).date()
    for offset in range(8):
        day = local_day + timedelta(days=offset)
        if _DAY_NAMES[day.weekday()] not in rules.working_days:
            continue
        opens = datetime.combine(day, opens_at, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(day, closes_at, tzinfo=zone).astimezone(UTC)
        if when >= closes:
            continue
        return max(when, opens)
    raise AssertionError("working_days is never empty")  # pragma: no cover - config validates
