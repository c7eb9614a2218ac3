"""Process settings from the environment (``Settings``: the database URL and the Slack
credentials, which differ per deployment and never sit in a file in git), and loading both
sources at start-up."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv.parser import parse_stream
from pydantic import (
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.audit.keys import parse_signing_key
from bot.config.loading import load_policy
from bot.config.policy import Policy
from bot.errors import ConfigError

Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP port to listen on: PORT, and the command line's --port, follow the same rule."""


class EnvironmentSettings(BaseSettings):
    """Settings read from the environment (and an optional ``.env`` file): the base of every
    settings class (``Settings``, the alerts' and the console's), so they read it one way.

    An empty value (``SLACK_APP_TOKEN=`` or ``FIREBREAK_ALERTS_TOKEN=`` left in a .env or a
    manifest) means "not set": the default, or for a required secret the "not set" error,
    never an empty secret, token or host."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    @model_validator(mode="before")
    @classmethod
    def _strip(cls, data: Any) -> Any:
        """Values without the whitespace around them: a Kubernetes Secret made with
        ``echo secret | base64`` ends in a newline, and a signing secret or a token with it
        refused every request while the health checks stayed green. A value that is only
        whitespace is not set, as an empty one is."""
        if not isinstance(data, dict):
            return data
        stripped = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return {k: v for k, v in stripped.items() if v != ""}


class Settings(EnvironmentSettings):
    """Per-deployment settings, read from the environment (and an optional ``.env`` file)."""

    model_config = SettingsConfigDict(populate_by_name=True)

    database_url: str = Field(
        default="sqlite:///firebreak.db",
        alias="DATABASE_URL",
        description="Where Firebreak keeps its data: sqlite:///path/to/firebreak.db (one "
        "process) or postgresql://user:password@host:5432/dbname (several replicas; see "
        "docs/postgresql.md). postgres:// is accepted too.",
    )
    slack_bot_token: SecretStr | None = Field(
        default=None,
        alias="SLACK_BOT_TOKEN",
        description="The app's Bot User OAuth Token (xoxb-..., on the app's OAuth & "
        "Permissions page). Required to serve.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        alias="SLACK_SIGNING_SECRET",
        description="The app's Signing Secret (Basic Information page): every HTTP request "
        "from Slack is verified with it. Required unless SLACK_APP_TOKEN is set.",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        alias="SLACK_APP_TOKEN",
        description="An app-level token with connections:write (xapp-...). When set, Slack's "
        "requests arrive over Socket Mode: no public URL is needed, and SLACK_SIGNING_SECRET "
        "is not used.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        alias="SLACK_API_URL",
        description="Base URL of Slack's Web API; change it only to point at a test double.",
    )
    host: str = Field(
        default="127.0.0.1",
        alias="FIREBREAK_HOST",
        description="Address the HTTP server listens on; 0.0.0.0 in a container.",
    )
    port: Port = Field(
        default=3000,
        alias="PORT",
        description="Port of the HTTP server: /slack/events, /healthz, /readyz, /metrics.",
    )
    policy_file: Path | None = Field(
        default=None,
        alias="FIREBREAK_POLICY_FILE",
        description="The team's policy file; unset: ./firebreak.toml if it exists, else the "
        "built-in defaults.",
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        alias="FIREBREAK_AUDIT_SIGNING_KEY",
        description="Ed25519 private key (PEM, or base64 of the 32 raw bytes) that signs "
        "evidence bundles (`firebreak audit export`, retention). See docs/audit.md.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="FIREBREAK_LOG_LEVEL", description="Least severe level logged."
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        alias="FIREBREAK_LOG_FORMAT",
        description="json: one JSON object per line (UTC, request ids, secrets redacted); "
        "text: for reading in a terminal.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be the app's Bot User OAuth Token, which starts with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "must be an app-level token with connections:write, which starts with xapp-"
            )
        return value

    @field_validator("audit_signing_key")
    @classmethod
    def _audit_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_signing_key(value.get_secret_value())
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def resolved_policy_file(self) -> Path | None:
        """The policy file in use: the configured one, else ./firebreak.toml if present."""
        if self.policy_file is not None:
            return self.policy_file
        local = Path("firebreak.toml")
        # Not is_file(): a directory of that name is a mistake to report, not to skip.
        return local if local.exists() else None


def normalise_database_url(value: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and pick the psycopg 3 driver."""
    value = value.strip()
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            value = "postgresql+psycopg://" + value[len(prefix) :]
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(
            "not a database URL: use sqlite:///path/to/firebreak.db or "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql"
        )
    if url.host and any(c in url.host for c in "@/?#"):
        # The password (or user) holds a character that ends it early: the rest of it would
        # be taken for the host, and shown in every "cannot reach" message. Never echoed.
        raise ValueError(
            "the user or password holds a character a URL reserves (@ / ? # :): "
            "percent-encode it (@ as %40, / as %2F, ? as %3F, # as %23, : as %3A)"
        )
    if url.get_backend_name() == "postgresql" and url.drivername != "postgresql+psycopg":
        # postgresql+psycopg2:// or +asyncpg:// pasted from another application's settings:
        # Firebreak ships psycopg 3, which reads the same URL.
        value = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return value


_PORT = TypeAdapter(Port)


def check_port(value: int, option: str) -> int:
    """A port given on the command line, held to PORT's rule: 0 must not fall back to $PORT,
    and 99999 must not wrap around to another port."""
    try:
        return _PORT.validate_python(value)
    except ValidationError as exc:
        raise ConfigError(f"{option}: {exc.errors()[0]['msg']}") from None


_ENV_NAMES = {name: (field.alias or name.upper()) for name, field in Settings.model_fields.items()}


def _check_env_file(path: Path = Path(".env")) -> None:
    """A line of ``.env`` that is no ``NAME=value`` is refused: python-dotenv would print a
    warning and leave the variable unset, and Firebreak would start without it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # none, or not UTF-8 (said by load_settings)
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(
                f"{path}:{binding.original.line}: cannot read this line: write NAME=value "
                "(a value with spaces or # in quotes)"
            )


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, turning validation errors into one clear line."""
    _check_env_file()
    try:
        return Settings(**overrides)
    except UnicodeDecodeError as exc:
        # .env saved as UTF-16 (some Windows editors) or in a legacy encoding.
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f".env:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}): save it as UTF-8"
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = _ENV_NAMES.get(field, field)
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"environment: {name}: {message}") from None


def load_configuration(policy_path: Path | None = None) -> tuple[Settings, Policy]:
    settings = load_settings()
    path = policy_path or settings.resolved_policy_file()
    return settings, load_policy(path)
