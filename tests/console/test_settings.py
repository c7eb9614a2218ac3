"""The console's settings from the environment: one clear line for a bad value."""

from __future__ import annotations

import ipaddress

import pytest

from bot.config import Policy
from bot.console import console_from_environment, load_console_settings
from bot.console.settings import ConsoleSettings
from bot.db import Database
from bot.errors import ConfigError
from tests.console.conftest import directory


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBREAK_CONSOLE_OIDC_CLIENT_ID", "123.456")
    monkeypatch.setenv("FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET", "shh")
    monkeypatch.setenv("FIREBREAK_CONSOLE_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
    monkeypatch.setenv("FIREBREAK_CONSOLE_COOKIE_SECURE", "false")
    settings = load_console_settings(_env_file=None)
    assert settings.oidc_enabled and settings.proxy_enabled
    assert settings.oidc_issuer == "https://slack.com"
    assert settings.trusted_proxies == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.1/32"),
    ]
    assert settings.proxy_user_headers == ["X-Forwarded-User", "X-Auth-Request-User"]
    assert settings.cookie_secure is False


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in ConsoleSettings.model_fields:
        monkeypatch.setenv(f"FIREBREAK_CONSOLE_{field.upper()}", "")
    settings = load_console_settings(_env_file=None)
    for field in ConsoleSettings.model_fields:
        monkeypatch.delenv(f"FIREBREAK_CONSOLE_{field.upper()}")
    assert settings == ConsoleSettings(_env_file=None)  # every default
    assert settings.session_secret is None and settings.oidc_issuer == "https://slack.com"
    assert not settings.oidc_enabled and not settings.proxy_enabled


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "FIREBREAK_CONSOLE_TRUSTED_PROXIES",
            "10.0.0.0/8, proxy.internal",
            "environment: FIREBREAK_CONSOLE_TRUSTED_PROXIES: 'proxy.internal' is not an IP "
            "address or network (e.g. 10.0.0.5 or 10.0.0.0/24)",
        ),
        (
            "FIREBREAK_CONSOLE_OIDC_ISSUER",
            "slack.com",
            "environment: FIREBREAK_CONSOLE_OIDC_ISSUER: must be an http(s) URL such as "
            "https://slack.com",
        ),
        (
            "FIREBREAK_CONSOLE_SESSION_SECRET",
            "hunter2-is-not-32-characters",
            "environment: FIREBREAK_CONSOLE_SESSION_SECRET: too short: use at least 32 random "
            "characters (e.g. the output of `openssl rand -hex 32`)",
        ),
        (
            "FIREBREAK_CONSOLE_PROXY_USER_HEADERS",
            "X-Forwarded-User, bad header",
            "environment: FIREBREAK_CONSOLE_PROXY_USER_HEADERS: 'bad header' is not an HTTP "
            "header name: use letters, digits and '-' (e.g. X-Forwarded-User), several "
            "separated by commas",
        ),
        (
            "FIREBREAK_CONSOLE_OIDC_REDIRECT_URL",
            "javascript:alert1",
            "environment: FIREBREAK_CONSOLE_OIDC_REDIRECT_URL: must be an http(s) URL such as "
            "https://firebreak.example.com/console/auth/callback",
        ),
        (
            "FIREBREAK_CONSOLE_OIDC_TEAM_ID",
            "acme-corp",
            "environment: FIREBREAK_CONSOLE_OIDC_TEAM_ID: 'acme-corp' is not a Slack team id: "
            "T followed by capital letters and digits (T0123ABCD; the workspace's id, not its "
            "name)",
        ),
        (
            "FIREBREAK_CONSOLE_OIDC_CLIENT_ID",
            "123.456",
            "environment: FIREBREAK_CONSOLE_OIDC_CLIENT_ID and "
            "FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET must be set together (the Slack app's "
            "Client ID and Client Secret)",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    policy: Policy,
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        console_from_environment(db, policy, directory=directory())
    assert str(raised.value) == message
