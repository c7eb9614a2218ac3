"""Idempotency and dedupe keys as the database stores them (one rule for every table)."""

from __future__ import annotations

import hashlib

KEY_MAX = 255
"""The width of every key column."""


def fit_key(value: str, limit: int = KEY_MAX) -> str:
    """``value`` when it fits in ``limit`` characters, else a stable hash of it. Cutting a long
    key instead would make two keys that share a beginning one key: the second request would be
    taken for a repeat of the first and dropped."""
    if len(value) <= limit:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()
