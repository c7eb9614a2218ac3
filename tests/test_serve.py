"""Start-up checks of `firebreak serve`: bad configuration stops it with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import migrations
from bot.config import Policy, RemindersPolicy, Settings, load_policy
from bot.errors import ConfigError
from bot.runbooks.reloading import ReloadingCatalog
from bot.sandbox import FakeSlack
from bot.server import build_service
from bot.slack.socket_link import SocketLink
from tests.ports import free_port


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(seed=3) as running:
        yield running


def settings_for(fake: FakeSlack, url: str, **extra: str) -> Settings:
    values = {
        "DATABASE_URL": url,
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": "s3cret-s3cret",
        "SLACK_API_URL": fake.api_url,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def test_serve_needs_a_token_and_a_way_to_verify_requests(
    fake: FakeSlack, database_url: str
) -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        build_service(Settings(DATABASE_URL=database_url), Policy(), scheduler=False)
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET is not set"):
        build_service(
            Settings(DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-1"), Policy(), scheduler=False
        )


def test_a_revoked_token_stops_start_up(fake: FakeSlack, database_url: str) -> None:
    settings = settings_for(fake, database_url, SLACK_BOT_TOKEN="xoxb-not-a-real-token")
    with pytest.raises(ConfigError, match=r"environment: SLACK_BOT_TOKEN: .*invalid_auth"):
        build_service(settings, Policy(), scheduler=False)


def test_an_unmigrated_database_stops_start_up(fake: FakeSlack, new_database_url: object) -> None:
    url = new_database_url()  # type: ignore[operator]
    with pytest.raises(ConfigError, match="firebreak db upgrade"):
        build_service(settings_for(fake, url), Policy(), scheduler=False)


def test_an_unknown_user_group_stops_start_up(fake: FakeSlack, database_url: str) -> None:
    policy = Policy(reminders=RemindersPolicy(escalate_to=["@oncall", "@sre-oncall"]))
    with pytest.raises(ConfigError) as info:
        build_service(settings_for(fake, database_url), policy, scheduler=False)
    assert str(info.value) == (
        "firebreak.toml: reminders.escalate_to: unknown user group @sre-oncall"
    )


def test_socket_mode_serves_health_but_not_slack_over_http(
    fake: FakeSlack, database_url: str
) -> None:
    from starlette.routing import Route

    service = build_service(
        settings_for(fake, database_url, SLACK_APP_TOKEN=fake.app_token),
        Policy(),
        scheduler=False,
    )
    try:
        assert isinstance(service.socket_mode, SocketLink)
        paths = {r.path for r in service.web.routes if isinstance(r, Route)}
        assert {"/healthz", "/readyz", "/metrics"} <= paths
    finally:
        service.stop()


def test_the_command_exits_2_with_one_line(
    fake: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "firebreak.toml"
    policy.write_text('[reminders]\nescalate_to = ["@nobody-here"]\n')
    migrations.upgrade(database_url)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": "s3cret-s3cret",
        "SLACK_API_URL": fake.api_url,
        "FIREBREAK_POLICY_FILE": str(policy),
    }
    free = str(free_port())  # a free port, should serve get as far as listening
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", free],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"firebreak: {policy}:2: reminders.escalate_to: unknown user group @nobody-here"
    )


def test_serve_follows_runbook_edits_without_a_restart(
    fake: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """The runbook files are watched: an edit is seen by the next lookup (after a short check
    interval), so fixing a runbook mid-incident needs no restart."""
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "disk.md").write_text("# Disk full\n\n- [ ] Free space\n")
    policy_file = tmp_path / "firebreak.toml"
    policy_file.write_text('[runbooks]\npaths = ["runbooks"]\n')
    policy = load_policy(policy_file)
    service = build_service(settings_for(fake, database_url), policy, scheduler=False)
    try:
        catalog = service.firebreak.catalog
        assert isinstance(catalog, ReloadingCatalog)
        (tmp_path / "runbooks" / "disk.md").write_text("# Disk almost full\n\n- [ ] Free space\n")
        catalog.refresh_if_changed(force=True)
        found = catalog.get("disk")
        assert found is not None and found.title == "Disk almost full"
    finally:
        service.firebreak.close()
