"""Crontab lines in the team's timezone: the one place they are parsed (a leaf module, so the
policy can validate its crons without importing the reminders)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.clock import as_utc

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
    """APScheduler's ``CronTrigger`` for a five-field crontab line, weekdays as cron means them."""
    fields = expr.split()
    if len(fields) == 5:
        fields[4] = _crontab_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=zone)


def next_cron_time(expr: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first time ``expr`` fires strictly after ``after``, in UTC."""
    after = as_utc(after)
    fire = cron_trigger(expr, zone).get_next_fire_time(after, after)
    if fire is None:  # pragma: no cover - a crontab line without an end date always fires again
        raise ValueError(f"cron expression {expr!r} never fires again")
    return as_utc(fire)
