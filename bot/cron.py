"""Crontab lines in the team's timezone: the one place they are parsed (a leaf module, so the
policy can validate its crons without importing the reminders)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from bot.clock import as_utc


class UnsupportedCron(ValueError):
    """A line that parses but that Firebreak will not run: it would not do what it says."""


_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_weekdays(field_text: str) -> str:
    """Rewrite crontab day-of-week numbers as names.

    Crontab counts Sunday as 0 (and 7); APScheduler 3 counts Monday as 0, so ``1-5`` would mean
    Tuesday to Saturday there. Names mean the same to both, so numeric parts become name lists;
    anything unusual is left for APScheduler to accept or reject."""
    parts = []
    for part in field_text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                if not step_text:
                    parts.append(part)
                    continue
                low, high = 0, 6
            elif "-" in base:
                low, high = (int(x) for x in base.split("-", 1))
            else:
                low = int(base)
                high = 7 if step_text else low
        except ValueError:
            parts.append(part)  # names (mon-fri) or something APScheduler will explain
            continue
        if not (0 <= low <= high <= 7) or step < 1:
            parts.append(part)
            continue
        days = sorted({d % 7 for d in range(low, high + 1, step)})
        parts.append(",".join(_CRONTAB_DAYS[d] for d in days))
    return ",".join(parts)


def cron_trigger(expr: str, zone: ZoneInfo) -> Any:
    """An APScheduler trigger for a five-field crontab line, read as cron reads it: weekdays
    counted from Sunday, and a line that restricts both the day of the month and the day of
    the week fires on a day that matches either (``0 9 1,15 * 1``: the 1st, the 15th and every
    Monday), where APScheduler alone would want both. ``ValueError`` for a line cron would not
    run, or one that never fires (``0 9 30 2 *``)."""
    fields = expr.split()
    if "#" in expr:
        raise UnsupportedCron("'#' (the nth weekday of the month) is not supported")
    # As cron decides it: a field that starts with '*' (even '*/2') restricts nothing.
    either_day = len(fields) == 5 and not fields[2].startswith("*") and "*" not in fields[4][:1]
    if len(fields) == 5:
        fields[4] = _crontab_weekdays(fields[4])
    trigger: Any = CronTrigger.from_crontab(" ".join(fields), timezone=zone)
    if either_day:
        minute, hour, day, month, weekday = fields
        trigger = OrTrigger(
            [
                CronTrigger.from_crontab(f"{minute} {hour} {day} {month} *", timezone=zone),
                CronTrigger.from_crontab(f"{minute} {hour} * {month} {weekday}", timezone=zone),
            ]
        )
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=zone)) is None:
        raise UnsupportedCron("it never fires: no month has that day")
    return trigger


def next_cron_time(expr: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first time ``expr`` fires strictly after ``after``, in UTC.

    The line is read on the team's wall clock, and each wall-clock time it names is then
    placed on the UTC timeline. (APScheduler 3 places them itself, but around a change of the
    clocks it can answer a time that is not after ``after``, or already past: a digest would be
    sent again and again.) When the clocks go back, an hour of wall-clock time happens twice: a
    line with a fixed hour ("30 2 * * *") fires the first time round only, as cron does; a line
    whose hour is a wildcard ("*/15 * * * *") keeps its pace through both. When they go forward,
    a time that never happens on the wall clock fires once, as much later as the clocks jumped
    (02:30 on the night the clocks go from 02:00 to 03:00 fires at 03:30)."""
    after = as_utc(after)
    trigger = cron_trigger(expr, _WALL)
    fields = expr.split()
    both_times_round = len(fields) == 5 and "*" in fields[1]
    # The wall clock may read up to a clock change less than it did at ``after``: start there.
    reading = _reading(after, zone) - _CLOCK_CHANGE
    found: datetime | None = None
    while True:
        fire = trigger.get_next_fire_time(None, reading)
        if fire is None:  # pragma: no cover - a line without an end date always fires again
            raise ValueError(f"cron expression {expr!r} never fires again")
        if found is not None and fire > _reading(found, zone) + 2 * _CLOCK_CHANGE:
            return found  # no later reading can come earlier
        later = [
            m for m in _moments(fire.replace(tzinfo=None), zone, both_times_round) if m > after
        ]
        if later:
            moment = min(later)
            if not _clock_changes_near(zone, after, moment):
                return moment  # the readings are in the order of the moments
            found = moment if found is None else min(found, moment)
        reading = fire + _TICK


def _reading(moment: datetime, zone: ZoneInfo) -> datetime:
    """What ``zone``'s wall clock reads at ``moment`` (as a time in ``_WALL``)."""
    return moment.astimezone(zone).replace(tzinfo=_WALL, fold=0)


def _clock_changes_near(zone: ZoneInfo, start: datetime, end: datetime) -> bool:
    """Whether ``zone`` changes its clocks from a while before ``start`` to after ``end``
    (inside the repeated hour, wall-clock readings are not in the order of the moments)."""
    margin = 2 * _CLOCK_CHANGE
    return (start - margin).astimezone(zone).utcoffset() != (end + margin).astimezone(
        zone
    ).utcoffset()


_WALL = ZoneInfo("UTC")
"""Wall-clock readings are computed in a zone without clock changes, then placed."""
_CLOCK_CHANGE = timedelta(hours=1)
_TICK = timedelta(microseconds=1)


def _moments(wall: datetime, zone: ZoneInfo, both_times_round: bool) -> list[datetime]:
    """The UTC moments at which ``zone``'s wall clock reads ``wall``: one; two when the clocks
    went back (the second only if ``both_times_round``); when they went forward past it, the
    reading as much later as the jump."""
    first = as_utc(wall.replace(tzinfo=zone, fold=0))
    second = as_utc(wall.replace(tzinfo=zone, fold=1))
    if first == second:
        return [first]
    if first.astimezone(zone).replace(tzinfo=None) != wall:  # skipped: the clocks went forward
        return [max(first, second)]
    return [first, second] if both_times_round else [first]
