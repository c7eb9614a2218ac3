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
