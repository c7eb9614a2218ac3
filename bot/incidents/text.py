"""Input hygiene shared by every change: text normalisation, limits and id checks."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from bot.clock import as_utc
from bot.errors import InvalidInput

INCIDENT_COUNTER = "incident_number"
TITLE_MAX = 300
SUMMARY_MAX = 10_000
TEXT_MAX = 40_000
SERVICE_MAX = 200
ACTION_TEXT_MAX = 2_000


# --------------------------------------------------------------------------------------------
# Input hygiene

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HALF_PAIR = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` as every database can store it: control characters removed (PostgreSQL
    rejects NUL), surrogate pairs joined into the character they encode, and half of a pair
    (an emoji cut in two by a template), which UTF-8 cannot encode, shown as U+FFFD. Tabs and
    line breaks stay."""
    text = _CONTROL.sub("", text)
    if _HALF_PAIR.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def clean_text(
    value: str | None,
    *,
    label: str,
    max_length: int,
    multiline: bool = True,
    required: bool = False,
) -> str:
    """Normalise user text: NFC, no control characters (PostgreSQL rejects NUL), trimmed.

    Emoji and right-to-left scripts pass through untouched. Too long is an error, not a silent
    cut: the caller decides whether to shorten and keep the rest elsewhere."""
    text = unicodedata.normalize("NFC", value or "")
    text = storable(text).replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        text = " ".join(text.split())
    text = text.strip()
    if required and not shows_something(text):
        raise InvalidInput(f"The {label} is empty: give a few words that say what is wrong.")
    if len(text) > max_length:
        raise InvalidInput(
            f"The {label} is {len(text):,} characters long; the limit is {max_length:,}."
        )
    return text


def shows_something(text: str) -> bool:
    """Whether anything would show: a zero-width space or joiner, a direction mark or a word
    joiner alone (Unicode format characters) shows nothing, like whitespace."""
    return any(not c.isspace() and unicodedata.category(c) != "Cf" for c in text)


def user_id(value: str, label: str = "user") -> str:
    value = (value or "").strip()
    if not value or len(value) > 64 or _CONTROL.search(value):
        raise InvalidInput(f"Not a valid {label} id: {value[:40]!r}.")
    return value


def when(value: datetime | None, now: datetime) -> datetime:
    return now if value is None else as_utc(value)
