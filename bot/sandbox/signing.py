"""Slack request signing (version ``v0``), as Slack documents it for requests it sends to apps.

Slack signs every request with the app's signing secret: ``v0=`` followed by the hex
HMAC-SHA256 of ``v0:{timestamp}:{raw body}``, sent in ``X-Slack-Signature`` beside
``X-Slack-Request-Timestamp``. The bot must reject a wrong signature, and a timestamp more than
five minutes away from its clock (a replayed request). The simulator signs with these functions,
so a test that passes here passes against Slack's own verifier
(``slack_sdk.signature.SignatureVerifier``) too.
"""

from __future__ import annotations

import hashlib
import hmac

from bot.clock import utcnow

SIGNATURE_VERSION = "v0"
SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def sign(signing_secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The ``X-Slack-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    base = b":".join((SIGNATURE_VERSION.encode("ascii"), str(timestamp).encode("ascii"), b""))
    digest = hmac.new(_bytes(signing_secret), base + _bytes(body), hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def current_timestamp() -> int:
    """Unix seconds from ``bot.clock``, so a frozen clock in a test signs at the frozen time."""
    return int(utcnow().timestamp())


def signed_headers(
    signing_secret: str,
    body: bytes | str,
    *,
    timestamp: int | None = None,
    content_type: str = FORM_CONTENT_TYPE,
) -> dict[str, str]:
    """The headers Slack sends with ``body``: content type, timestamp and signature."""
    when = current_timestamp() if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        TIMESTAMP_HEADER: str(when),
        SIGNATURE_HEADER: sign(signing_secret, when, body),
    }
