"""Who may post alerts: a shared token (``Authorization: Bearer <token>`` or HTTP Basic with
the token as the password, which is what Alertmanager's and Grafana's ``http_config`` send),
and for PagerDuty also its ``X-PagerDuty-Signature`` (v1, HMAC-SHA256 of the raw body).

Secrets come from the environment only and are compared in constant time; they never appear
in a log line or an answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bot.config import EnvironmentSettings


class AlertSettings(EnvironmentSettings):
    """``FIREBREAK_ALERTS_TOKEN`` (every source), ``FIREBREAK_ALERTS_TOKEN_<SOURCE>`` (one
    source) and ``FIREBREAK_PAGERDUTY_SIGNING_SECRET``. Empty means not set: an empty token
    enables nothing and is never compared with what a sender presents."""

    model_config = SettingsConfigDict(populate_by_name=True)

    token: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_ALERTS_TOKEN",
        description="Token every alert source may present (Authorization: Bearer <token>, or "
        "HTTP Basic with the token as the password). A source with no token (and, for "
        "PagerDuty, no signing secret) is refused.",
    )
    token_alertmanager: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_ALERTS_TOKEN_ALERTMANAGER",
        description="Token for Alertmanager only (POST /alerts/alertmanager), accepted besides "
        "FIREBREAK_ALERTS_TOKEN.",
    )
    token_grafana: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_ALERTS_TOKEN_GRAFANA",
        description="Token for Grafana only (POST /alerts/grafana), accepted besides "
        "FIREBREAK_ALERTS_TOKEN.",
    )
    token_datadog: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_ALERTS_TOKEN_DATADOG",
        description="Token for Datadog only (POST /alerts/datadog), accepted besides "
        "FIREBREAK_ALERTS_TOKEN.",
    )
    token_pagerduty: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_ALERTS_TOKEN_PAGERDUTY",
        description="Token for PagerDuty only (POST /alerts/pagerduty), accepted besides "
        "FIREBREAK_ALERTS_TOKEN.",
    )
    token_opsgenie: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_ALERTS_TOKEN_OPSGENIE",
        description="Token for Opsgenie only (POST /alerts/opsgenie), accepted besides "
        "FIREBREAK_ALERTS_TOKEN.",
    )
    token_generic: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_ALERTS_TOKEN_GENERIC",
        description="Token for the generic JSON source only (POST /alerts/generic), accepted "
        "besides FIREBREAK_ALERTS_TOKEN.",
    )
    pagerduty_signing_secret: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_PAGERDUTY_SIGNING_SECRET",
        description="The signing secret of the PagerDuty webhook subscription: each "
        "delivery's X-PagerDuty-Signature is checked with it.",
    )

    def tokens_for(self, source: str) -> list[bytes]:
        values = [self.token, getattr(self, f"token_{source}", None)]
        return [v.get_secret_value().encode() for v in values if v and v.get_secret_value()]

    def secrets(self) -> list[str]:
        """Every secret set, for log redaction."""
        return secret_values(self)


def secret_values(settings: BaseModel) -> list[str]:
    """The values of every secret field set in ``settings`` (any settings object), for log
    redaction: a secret field added later is redacted without anyone remembering to."""
    return [
        value.get_secret_value()
        for value in (getattr(settings, name) for name in type(settings).model_fields)
        if isinstance(value, SecretStr) and value.get_secret_value()
    ]


def presented_token(authorization: str | None) -> bytes | None:
    """The token in a Bearer or Basic ``Authorization`` header (Basic: the password)."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials.encode()
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return None
        _, sep, password = decoded.partition(b":")
        return password if sep else None
    return None


def token_ok(settings: AlertSettings, source: str, authorization: str | None) -> bool:
    given = presented_token(authorization)
    if given is None:
        return False
    # Compare with every configured token (no early exit on the first match).
    results = [hmac.compare_digest(given, token) for token in settings.tokens_for(source)]
    return any(results)


def pagerduty_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`` (several while a secret rotates)."""
    if not header:
        return False
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    results = [
        hmac.compare_digest(expected.encode(), part.strip().encode())
        for part in header.split(",")
        if part.strip()
    ]
    return any(results)


def authenticate(
    settings: AlertSettings,
    source: str,
    *,
    authorization: str | None,
    body: bytes,
    pagerduty_signature: str | None,
) -> str | None:
    """``None`` when the request may be stored, else why not (safe to show: no secrets)."""
    tokens = settings.tokens_for(source)
    secret = settings.pagerduty_signing_secret
    signed = source == "pagerduty" and secret is not None and bool(secret.get_secret_value())
    if not tokens and not signed:
        return (
            "alerts are not enabled: set FIREBREAK_ALERTS_TOKEN (or "
            f"FIREBREAK_ALERTS_TOKEN_{source.upper()}) on the server"
        )
    if tokens and not token_ok(settings, source, authorization):
        return "missing or wrong token: send Authorization: Bearer <token> (or Basic auth)"
    if (
        signed
        and secret is not None
        and not pagerduty_signature_ok(secret.get_secret_value(), body, pagerduty_signature)
    ):
        return "missing or wrong X-PagerDuty-Signature"
    return None
