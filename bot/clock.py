"""The one place Firebreak reads the time, so tests can freeze it with freezegun."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; naive datetimes are refused, never guessed."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("naive datetime: Firebreak only stores timezone-aware UTC times")
    return value.astimezone(UTC)


def said_at(value: datetime, now: datetime | None = None) -> str:
    """When something happened, for a sentence: ``at 03:12 UTC`` today (UTC), else
    ``on 2026-11-29 at 03:12 UTC``: a time without its day misleads once the day has turned."""
    value = as_utc(value)
    day = "" if value.date() == as_utc(now or utcnow()).date() else f"on {value:%Y-%m-%d} "
    return f"{day}at {value:%H:%M} UTC"
