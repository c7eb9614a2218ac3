"""Incident channel names that Slack always accepts.

Slack channel names are at most 80 characters of lowercase letters, digits, ``-`` and ``_``.
Titles are anything people type at 3 a.m.: emoji, accents, Arabic, Chinese, 3,000 characters.
Letters of alphabets are spelled in ASCII (``anyascii``): accented and other Latin letters
(``ı``, ``ß``, ``ł``, ``ø``), Greek, Cyrillic, Armenian, Georgian, Korean and Japanese kana.
Chinese characters (whose reading depends on the language) and right-to-left scripts (written
without most vowels, so a spelling would be unreadable) are left out, as are emoji and
symbols; a title of nothing else falls back to the incident number alone (always unique).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from functools import lru_cache

from anyascii import anyascii

from bot.slack.limits import CHANNEL_NAME

_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")
SLUG_WORDS = 6


@lru_cache(maxsize=4096)
def _spelled(char: str) -> str:
    """``char`` in ASCII, or a space where it is left out (see the module's docstring)."""
    if char.isascii():
        return char
    category = unicodedata.category(char)
    if category[0] not in "LNM" or unicodedata.bidirectional(char) in ("R", "AL"):
        return " "
    if "IDEOGRAPH" in unicodedata.name(char, "IDEOGRAPH"):
        return " "
    return anyascii(char)


def slugify(text: str, *, max_words: int = SLUG_WORDS) -> str:
    """``"Checkout: 500s on /pay (EU)"`` -> ``"checkout-500s-on-pay-eu"``."""
    folded = "".join(_spelled(c) for c in unicodedata.normalize("NFC", text))
    words = [w for w in _NOT_ALLOWED.split(folded.lower().replace("_", "-")) if w]
    slug = "-".join(words[:max_words])
    return _DASHES.sub("-", slug).strip("-_")


def clean_channel_name(name: str) -> str:
    name = _NOT_ALLOWED.sub("-", name.lower())
    return _DASHES.sub("-", name).strip("-_")


def incident_channel_name(
    pattern: str, *, number: int, title: str, severity: str, declared_at: datetime, attempt: int = 1
) -> str:
    """The channel name for an incident; ``attempt`` > 1 adds a suffix after ``name_taken``."""
    suffix = f"-{attempt}" if attempt > 1 else ""
    values = {
        "number": str(number),
        "severity": severity.lower(),
        "date": declared_at.strftime("%Y%m%d"),
    }
    slug = slugify(title)
    while True:
        name = clean_channel_name(pattern.format(slug=slug, **values))
        if len(name) + len(suffix) <= CHANNEL_NAME or not slug:
            break
        # Too long: drop words from the end of the slug, then cut the last one.
        words = slug.split("-")
        slug = "-".join(words[:-1]) if len(words) > 1 else slug[: len(slug) // 2]
    name = name[: CHANNEL_NAME - len(suffix)].rstrip("-_")
    return (name or f"inc-{number}") + suffix
