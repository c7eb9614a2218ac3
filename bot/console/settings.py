"""The console's settings, from the environment (``FIREBREAK_CONSOLE_...``).

Two ways to sign in, either or both:

* **Sign in with Slack** (OpenID Connect): set ``FIREBREAK_CONSOLE_OIDC_CLIENT_ID`` and
  ``FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET`` (the Slack app's client id and secret). The issuer is
  ``https://slack.com`` unless ``FIREBREAK_CONSOLE_OIDC_ISSUER`` names another provider.
* **A trusted auth proxy** (oauth2-proxy and the like): set ``FIREBREAK_CONSOLE_TRUSTED_PROXIES``
  to the proxy's addresses or networks; the user header (``X-Forwarded-User`` or
  ``X-Auth-Request-User``) must carry the Slack user id and is believed only from those addresses.

Without either, the console refuses every page with a message saying what to set.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from bot.config import EnvironmentSettings
from bot.errors import ConfigError
from bot.markup import safe_url

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SESSION_SECRET_MIN = 32
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
_TEAM_ID = re.compile(r"^T[A-Z0-9]+$")


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ConsoleSettings(EnvironmentSettings):
    """Empty means not set (``EnvironmentSettings``): the default, or for the client secret
    the error that it must be set with the client id."""

    model_config = SettingsConfigDict(env_prefix="FIREBREAK_CONSOLE_")

    session_secret: SecretStr | None = None
    """Signs session cookies. Set it (32+ random characters) so sessions survive restarts and
    work across replicas; without it a random key is made at start (sessions end on restart)."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    """How long a console sign-in lasts, in hours."""
    cookie_secure: bool = True
    """Secure cookies (HTTPS only). Turn off only for plain http on localhost."""

    oidc_client_id: str | None = None
    """Sign in with Slack (OpenID Connect): the Slack app's Client ID (Basic Information page).
    Set together with the client secret."""
    oidc_client_secret: SecretStr | None = None
    """The Slack app's Client Secret, set together with the client id."""
    oidc_issuer: str = "https://slack.com"
    """The OpenID Connect provider; change it only to sign in through another provider."""
    oidc_scopes: str = "openid profile"
    """Scopes requested at sign-in, separated by spaces."""
    oidc_user_claim: str = "https://slack.com/user_id"
    """The token claim that carries the person's Slack user id."""
    oidc_team_id: str | None = None
    """When set, only people whose token carries this ``https://slack.com/team_id`` may sign in."""
    oidc_redirect_url: str | None = None
    """The callback URL registered with the provider; by default derived from the request
    (``https://<host>/console/auth/callback``)."""

    trusted_proxies: Annotated[list[Network], NoDecode] = Field(default_factory=list)
    """Addresses or networks of a trusted auth proxy (oauth2-proxy and the like), separated by
    commas (10.0.0.5, 10.0.0.0/24); only requests from them may name the user in a header."""
    proxy_user_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["X-Forwarded-User", "X-Auth-Request-User"]
    )
    """Headers, separated by commas, in which a trusted proxy names the Slack user id."""

    @field_validator("session_secret")
    @classmethod
    def _session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never carries the value: it is a secret.
        if value is not None and len(value.get_secret_value()) < SESSION_SECRET_MIN:
            raise ValueError(
                f"too short: use at least {SESSION_SECRET_MIN} random characters "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return value

    @field_validator("proxy_user_headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        value = _split(value)
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, str) or not _HEADER_NAME.match(item):
                    raise ValueError(
                        f"{item!r} is not an HTTP header name: use letters, digits and '-' "
                        "(e.g. X-Forwarded-User), several separated by commas"
                    )
        return value

    @field_validator("oidc_redirect_url")
    @classmethod
    def _redirect_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = safe_url(value)
        if url is None:
            raise ValueError(
                "must be an http(s) URL such as https://firebreak.example.com/console/auth/callback"
            )
        return url

    @field_validator("oidc_team_id")
    @classmethod
    def _team_id(cls, value: str | None) -> str | None:
        if value is not None and not _TEAM_ID.match(value.strip()):
            raise ValueError(
                f"{value!r} is not a Slack team id: T followed by capital letters and digits "
                "(T0123ABCD; the workspace's id, not its name)"
            )
        return value.strip() if value is not None else None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        value = _split(value)
        if not isinstance(value, list):
            return value
        networks = []
        for item in value:
            try:
                networks.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return networks

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://slack.com")
        return value

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_client_id and self.oidc_client_secret)

    @property
    def proxy_enabled(self) -> bool:
        return bool(self.trusted_proxies)


def load_console_settings(**overrides: Any) -> ConsoleSettings:
    """Read the settings, turning a validation error into one line naming the variable."""
    try:
        settings = ConsoleSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"environment: FIREBREAK_CONSOLE_{field.upper()}: {message}") from None
    if bool(settings.oidc_client_id) != bool(settings.oidc_client_secret):
        raise ConfigError(
            "environment: FIREBREAK_CONSOLE_OIDC_CLIENT_ID and "
            "FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET must be set together (the Slack app's Client ID "
            "and Client Secret)"
        )
    return settings
