"""Every secret the service is configured with stays out of its logs, not just Slack's: the alert
tokens (shared and per source), PagerDuty's signing secret, the console's OIDC client secret and
session secret, the audit signing key, and the password in the database URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.observability import RedactSecrets
from tests.service.conftest import BOUND

ROOT = Path(__file__).resolve().parents[2]

SECRETS = {
    "SLACK_SIGNING_SECRET": "slack-signing-4f1d2c9e",
    "FIREBREAK_AUDIT_SIGNING_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",  # a usable key
    "FIREBREAK_ALERTS_TOKEN": "alerts-shared-1a2b3c4d",
    "FIREBREAK_ALERTS_TOKEN_ALERTMANAGER": "alerts-am-5e6f7a8b",
    "FIREBREAK_ALERTS_TOKEN_GRAFANA": "alerts-grafana-9c0d1e2f",
    "FIREBREAK_ALERTS_TOKEN_DATADOG": "alerts-datadog-3a4b5c6d",
    "FIREBREAK_ALERTS_TOKEN_PAGERDUTY": "alerts-pd-7e8f9a0b",
    "FIREBREAK_ALERTS_TOKEN_OPSGENIE": "alerts-opsgenie-1c2d3e4f",
    "FIREBREAK_ALERTS_TOKEN_GENERIC": "alerts-generic-5a6b7c8d",
    "FIREBREAK_PAGERDUTY_SIGNING_SECRET": "pagerduty-signing-9e0f1a2b",
    "FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET": "console-oidc-3c4d5e6f",
    "FIREBREAK_CONSOLE_SESSION_SECRET": "console-session-7a8b9c0d1e2f3a4b5c6d7e8f",
}

DATABASE_PASSWORD = "database-password-6b7c8d9e"
"""The password inside ``DATABASE_URL``."""

# The service's own logging set-up, then a line, an exception and a structured field that each
# carry every secret (a library echoing a request, a careless log call).
LEAKY_SERVICE = """
import logging, os
from bot.config import Settings
from bot.server import configure_service_logging

configure_service_logging(Settings())
secrets = os.environ["LEAKED"].split(",")
log = logging.getLogger("somewhere.deep")
log.warning("calling with %s", " and ".join(secrets))
try:
    raise RuntimeError("refused: " + " ".join(secrets))
except RuntimeError:
    log.exception("call failed")
log.warning("retrying", extra={"request": {"auth": secrets}})
"""


def test_every_configured_secret_is_redacted_from_the_logs(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "FIREBREAK_", "DATABASE_URL"))
    }
    env.update(SECRETS)
    env.update(
        FIREBREAK_CONSOLE_OIDC_CLIENT_ID="123.456",
        DATABASE_URL=f"postgresql://firebreak:{DATABASE_PASSWORD}@db.internal:5432/firebreak",
        LEAKED=",".join([*SECRETS.values(), DATABASE_PASSWORD]),
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-c", LEAKY_SERVICE],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
        env=env,
        cwd=tmp_path,  # no .env file to read
    )
    assert result.returncode == 0, result.stderr
    assert "call failed" in result.stderr and "RuntimeError: refused: [redacted]" in result.stderr
    leaked = [name for name, secret in SECRETS.items() if secret in result.stderr]
    leaked += ["DATABASE_URL"] if DATABASE_PASSWORD in result.stderr else []
    assert leaked == [], result.stderr


def test_a_short_secret_is_redacted_where_it_stands_alone() -> None:
    """A short database password is still a secret; it is not scrubbed out of longer words."""
    redact = RedactSecrets(["pg1", "longer-secret-value"])
    assert redact.scrub("connect postgresql://app:pg1@db.internal/firebreak failed") == (
        "connect postgresql://app:[redacted]@db.internal/firebreak failed"
    )
    assert redact.scrub("password pg1") == "password [redacted]"
    assert redact.scrub("pg12 and xpg1 and pg1_x") == "pg12 and xpg1 and [redacted]_x"
    assert redact.scrub("token=longer-secret-value2") == "token=[redacted]2"
