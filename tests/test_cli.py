from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot import __version__, migrations
from bot import incidents as core
from bot.alerts.intake import ingest
from bot.cli import main
from bot.config import Policy, load_policy
from bot.db import Database
from bot.db_errors import explain_database_error
from bot.models import Postmortem
from tests.alerts.test_episodes_and_order import FIRING, RESOLVED, alertmanager
from tests.conftest import DatabaseFactory
from tests.ports import free_port


def test_db_upgrade_migrates_a_new_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/fb.db")
    assert main(["db", "current"]) == 1
    assert not (tmp_path / "fb.db").exists()
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_bad_policy_file_exits_2_with_one_line(tmp_path: Path) -> None:
    policy = tmp_path / "firebreak.toml"
    policy.write_text('[[severities]]\nkey = "P1"\ndescription = "x"\nupdate_every = "often"\n')
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--policy", str(policy), "policy", "check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "severities.0.update_every: invalid duration 'often'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_environment_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "incidents"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "oracle://db"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "firebreak: environment: DATABASE_URL: unsupported database 'oracle': "
        "use sqlite or postgresql"
    )


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_no_command_is_usage_on_stderr_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: firebreak")


@pytest.mark.parametrize("command", [["effects"], ["alerts", "list"]])
@pytest.mark.parametrize("limit", ["-1", "0", "ten"])
def test_a_limit_that_is_not_a_count_is_usage(
    command: list[str], limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--limit", limit])
    assert info.value.code == 2
    assert "argument --limit:" in capsys.readouterr().err


def test_invalid_toml_is_reported_at_its_line(tmp_path: Path) -> None:
    policy = tmp_path / "firebreak.toml"
    policy.write_text("[alerts]\ndeclare = \n")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--policy", str(policy), "policy", "check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"firebreak: {policy}:2: invalid TOML: Invalid value (column 11)\n"


def test_export_writes_the_incident_and_its_timeline(
    db: Database,
    policy: Policy,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title="Queue lag", reporter="U1", severity="SEV2"
        ).incident
        assert incident.id is not None
        core.add_note(session, policy, incident.id, "consumer group rebalancing", actor="U2")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "INC-1", "--output", "out.json"]) == 0
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["incident"]["ref"] == "INC-1"
    assert document["incident"]["severity"] == "SEV2"
    assert [e["kind"] for e in document["timeline"]] == ["declared", "note"]
    assert document["metrics_seconds"]["time_to_resolve"] is None
    assert main(["export", "INC-9"]) == 1


def test_export_has_the_alerts_that_fired_in_the_incident(
    db: Database,
    policy: Policy,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The console sends people here for an incident's full record: every alert with its
    source and times, and those that fired again under a later incident, as they were."""
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    steps = ((FIRING, 2, 0), (RESOLVED, 2, 5), (FIRING, 1, 45))
    for name, keep, minutes in steps:  # two alerts; one fires again after the flap window
        starts = "2026-11-30T12:44:00Z" if minutes == 45 else None
        with db.transaction() as session:
            if minutes == 45:  # INC-1 resolved meanwhile: the alert firing again opens INC-2
                resolved = at + timedelta(minutes=10)
                core.resolve_incident(session, policy, 1, actor="U1", now=resolved)
            message = alertmanager(name, keep=keep, starts=starts)
            ingest(session, policy, message, now=at + timedelta(minutes=minutes))
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["export", "INC-1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [(a["source"], a["status"]) for a in first["alerts"]] == [("alertmanager", "resolved")]
    assert [(a["source"], a["name"], a["resolved_at"]) for a in first["earlier_alerts"]] == [
        ("alertmanager", "ICMP ping failed", (at + timedelta(minutes=5)).isoformat())
    ]
    assert main(["export", "INC-2"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert [a["status"] for a in second["alerts"]] == ["firing"] and second["earlier_alerts"] == []


# --------------------------------------------------------------------------------------------
# Failures end in one line and the right exit code, never a traceback.


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        timeout=120,
        check=False,
    )


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def declare(database_url: str, title: str = "Queue lag") -> None:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            core.declare_incident(session, Policy(), title=title, reporter="U1", severity="SEV2")
    finally:
        database.dispose()


def test_export_to_a_missing_directory_fails_without_creating_it(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    declare(database_url)
    target = tmp_path / "missing" / "dir" / "e.json"
    result = run_cli(
        "export", "INC-1", "-o", str(target), env={"DATABASE_URL": database_url}, cwd=tmp_path
    )
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"firebreak: {target}: the directory {target.parent} does not exist; create it first "
        "or choose another path"
    )
    assert not (tmp_path / "missing").exists()


def test_postmortem_to_a_missing_directory_fails_without_creating_it(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    declare(database_url)
    target = tmp_path / "missing" / "pm.md"
    result = run_cli(
        "postmortem", "INC-1", "-o", str(target), env={"DATABASE_URL": database_url}, cwd=tmp_path
    )
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"firebreak: {target}: the directory {target.parent} does not exist; create it first "
        "or choose another path"
    )
    assert not (tmp_path / "missing").exists()
    with db.transaction() as session:
        assert session.exec(select(Postmortem)).all() == []


@pytest.mark.parametrize(
    "command",
    [["incidents"], ["incidents", "--all"], ["export", "INC-1"], ["postmortem", "INC-1"]],
)
def test_a_typo_in_a_sqlite_path_creates_no_database(command: list[str], tmp_path: Path) -> None:
    typo = tmp_path / "firebrake.db"
    result = run_cli(*command, env={"DATABASE_URL": f"sqlite:///{typo}"}, cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f"firebreak: no Firebreak database at {typo}; run `firebreak db upgrade` or check "
        "DATABASE_URL"
    )
    assert list(tmp_path.iterdir()) == []


def test_reading_an_unmigrated_database_says_to_upgrade(
    new_database_url: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database_url()
    empty = Database(url)  # an empty database (on SQLite, an empty file)
    empty.ping()
    empty.dispose()
    result = run_cli("incidents", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("firebreak: no Firebreak schema in ")
    assert line.endswith("; run `firebreak db upgrade` or check DATABASE_URL")


def test_a_schema_newer_than_the_code_is_refused(
    new_database_url: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database_url()
    migrations.upgrade(url)
    database = Database(url)
    try:
        with database.transaction() as session:
            session.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    finally:
        database.dispose()
    expected = (
        "firebreak: database: the schema is at revision 9999_from_the_future, which this "
        f"Firebreak ({__version__}, latest revision {migrations.head_revision()}) does not "
        "know: a newer version migrated it; run that version, or downgrade the database with it"
    )
    port = str(free_port())  # a free port, should serve get as far as listening
    for command in (["db", "upgrade"], ["incidents"], ["serve", "--port", port]):
        result = run_cli(
            *command,
            env={
                "DATABASE_URL": url,
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s3cret",
                "FIREBREAK_LOG_FORMAT": "text",
            },
            cwd=tmp_path,
        )
        assert result.returncode == 2, command
        assert result.stderr.strip().splitlines()[-1] == expected
        assert "Traceback" not in result.stderr
    result = run_cli("db", "current", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == (
        "9999_from_the_future (ahead: a newer Firebreak migrated it; this one "
        f"({__version__}) knows revisions up to {migrations.head_revision()}: run the newer "
        "version)\n"
    )


def test_downgrade_keeps_the_data_on_both_backends(
    new_database_url: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database_url()
    migrations.upgrade(url)
    declare(url, "Disk full on db-3")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    assert main(["db", "downgrade", migrations.CHAIN_REVISION, "--yes"]) == 0
    database = Database(url)
    try:
        assert migrations.current_revision(database.engine) == migrations.CHAIN_REVISION
        with database.engine.connect() as connection:
            titles = connection.execute(text("SELECT title FROM incidents")).scalars().all()
            kinds = connection.execute(text("SELECT kind FROM timeline_events")).scalars().all()
        assert titles == ["Disk full on db-3"]
        assert kinds == ["declared"]
        assert main(["db", "upgrade"]) == 0
        assert migrations.is_at_head(database.engine)
        if database.backend == "sqlite":
            with database.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        database.dispose()


@pytest.mark.parametrize("revision", ["0003", "base", "-8"])
def test_a_downgrade_that_would_drop_the_timelines_hash_chain_is_refused(
    revision: str,
    new_database_url: Callable[[], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Below the hash chain's revision the timeline loses its hashes and its append-only
    guard, and the next upgrade would chain whatever was edited meanwhile: with events on the
    timeline it is refused, and nothing changes. Any downgrade asks for --yes first."""
    url = new_database_url()
    migrations.upgrade(url)
    declare(url, "Disk full on db-3")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    assert main(["db", "downgrade", revision]) == 2
    assert "add --yes to do it" in capsys.readouterr().err
    assert main(["db", "downgrade", revision, "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"firebreak: database: refusing to migrate back to {revision!r}: ")
    assert "the timeline holds 1 events" in err and err.count("\n") == 1
    database = Database(url)
    try:
        assert migrations.is_at_head(database.engine)
    finally:
        database.dispose()


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    runbook = Path(__file__).resolve().parent.parent / "runbooks" / "disk-full.md"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "runbooks", "show", str(runbook), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` that has read what it wanted
    with process.stderr:
        stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert stderr == ""


def read_only_url(path: Path) -> str:
    # Tests run as root, which file modes do not stop; SQLite's read-only mode is the same
    # failure as a file the service user cannot write.
    return f"sqlite:///file:{path}?mode=ro&uri=true"


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve", "--port", "{free}"]])
def test_a_read_only_sqlite_file_is_one_clear_line(command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "fb.db"
    migrations.upgrade(f"sqlite:///{path}")
    free = str(free_port())  # a free port, should serve get as far as listening
    result = run_cli(
        *[part.format(free=free) for part in command],
        env={
            "DATABASE_URL": read_only_url(path),
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s3cret",
            "FIREBREAK_LOG_FORMAT": "text",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"firebreak: database: {path} is read-only: Firebreak must be able to write the file "
        "and its directory (for the -wal and -shm files); fix the permissions or DATABASE_URL"
    )
    assert "database at revision" not in result.stdout


def test_an_unreachable_postgresql_is_one_line_exit_1(tmp_path: Path) -> None:
    port = free_port()  # a port nobody listens on
    url = f"postgresql://firebreak@127.0.0.1:{port}/firebreak"
    serve_port = str(free_port())  # a free port, should serve get as far as listening
    for command in (["db", "upgrade"], ["incidents"], ["serve", "--port", serve_port]):
        result = run_cli(
            *command,
            env={
                "DATABASE_URL": url,
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s3cret",
                "FIREBREAK_LOG_FORMAT": "text",
            },
            cwd=tmp_path,
        )
        assert result.returncode == 1, command
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            f'firebreak: database: cannot reach PostgreSQL database "firebreak" at '
            f"127.0.0.1:{port} (Connection refused): check that PostgreSQL is running and "
            "that DATABASE_URL names the right host and port"
        )


def test_postgresql_set_up_mistakes_are_one_line(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    """A role without rights on schema public, a database or a role that does not exist: the
    first things that go wrong on a new PostgreSQL. (On the SQLite run, its counterpart: a
    database that cannot be written.)"""
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret"}
    if database_factory.admin_url is None:
        path = tmp_path / "fb.db"
        migrations.upgrade(f"sqlite:///{path}")
        result = run_cli(
            "db", "upgrade", env={**env, "DATABASE_URL": read_only_url(path)}, cwd=tmp_path
        )
        assert result.returncode == 2
        assert one_line(result.stderr).startswith(f"firebreak: database: {path} is read-only")
        return
    url = make_url(database_factory.create())
    role = f"firebreak_norights_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_factory.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        as_role = url.set(username=role).render_as_string(hide_password=False)
        where = f'PostgreSQL database "{url.database}" at {url.host}:{url.port or 5432}'
        free = str(free_port())  # a free port, should serve get as far as listening
        for command in (["db", "upgrade"], ["serve", "--port", free]):
            result = run_cli(*command, env={**env, "DATABASE_URL": as_role}, cwd=tmp_path)
            assert result.returncode == 2, command
            assert "Traceback" not in result.stderr
            assert result.stderr.strip().splitlines()[-1] == (
                f'firebreak: database: permission denied for schema public: the role "{role}" '
                f"cannot create Firebreak's tables in {where}; as the database owner run GRANT "
                f'USAGE, CREATE ON SCHEMA public TO "{role}" (or make "{role}" the owner of the '
                "database) and start again"
            )
        missing = url.set(database="firebreak_no_such_db").render_as_string(hide_password=False)
        result = run_cli("incidents", env={**env, "DATABASE_URL": missing}, cwd=tmp_path)
        assert result.returncode == 2
        assert one_line(result.stderr) == (
            'firebreak: database: PostgreSQL database "firebreak_no_such_db" at '
            f"{url.host}:{url.port or 5432} does not exist: create it (createdb "
            f"--owner={url.username} firebreak_no_such_db) or fix the database name in "
            "DATABASE_URL"
        )
        nobody = url.set(username="firebreak_no_such_role").render_as_string(hide_password=False)
        result = run_cli("db", "upgrade", env={**env, "DATABASE_URL": nobody}, cwd=tmp_path)
        assert result.returncode == 2
        assert one_line(result.stderr) == (
            'firebreak: database: PostgreSQL has no role "firebreak_no_such_role": create it '
            "(createuser --pwprompt firebreak_no_such_role) or fix the user name in DATABASE_URL"
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def _serve_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/firebreak.db")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret-s3cret")
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("FIREBREAK_HOST", raising=False)


def test_an_empty_signing_secret_is_not_set_and_serve_touches_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "")
    monkeypatch.setenv("SLACK_APP_TOKEN", "")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "firebreak: environment: SLACK_SIGNING_SECRET is not set; it is needed to verify "
        "requests from Slack (or set SLACK_APP_TOKEN for Socket Mode).\n"
    )
    assert not (tmp_path / "firebreak.db").exists()  # credentials are checked before migrating


def test_an_unusable_audit_signing_key_stops_serve_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Retention signs bundles hours after start-up: a key that cannot sign is said at once."""
    _serve_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("FIREBREAK_AUDIT_SIGNING_KEY", "not-a-key-c2VjcmV0")
    assert main(["serve"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "firebreak: environment: FIREBREAK_AUDIT_SIGNING_KEY: not an Ed25519 private key "
        "(give PEM or base64 of the 32 raw bytes)\n"
    )
    assert "c2VjcmV0" not in captured.out + captured.err
    assert not (tmp_path / "firebreak.db").exists()


def test_empty_console_settings_are_unset_and_an_empty_client_secret_stops_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_environment(monkeypatch, tmp_path)
    for name in ("OIDC_ISSUER", "SESSION_HOURS", "COOKIE_SECURE", "TRUSTED_PROXIES"):
        monkeypatch.setenv(f"FIREBREAK_CONSOLE_{name}", "")  # the defaults
    monkeypatch.setenv("FIREBREAK_CONSOLE_OIDC_CLIENT_ID", "123.456")
    monkeypatch.setenv("FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET", "")  # not an empty secret
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "firebreak: environment: FIREBREAK_CONSOLE_OIDC_CLIENT_ID and "
        "FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET must be set together (the Slack app's Client ID "
        "and Client Secret)\n"
    )
    assert not (tmp_path / "firebreak.db").exists()


def test_serve_without_a_bot_token_creates_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_environment(monkeypatch, tmp_path)
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    assert main(["serve"]) == 2
    assert "environment: SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
    assert not (tmp_path / "firebreak.db").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FIREBREAK_CONSOLE_SESSION_HOURS", "0"),
        ("FIREBREAK_CONSOLE_TRUSTED_PROXIES", "not-an-ip"),
    ],
)
def test_a_bad_console_setting_stops_serve_before_it_creates_the_database(
    name: str,
    value: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve_environment(monkeypatch, tmp_path)
    monkeypatch.setenv(name, value)
    assert main(["serve"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("firebreak: ") and name in error and error.count("\n") == 1
    assert not (tmp_path / "firebreak.db").exists()


def test_an_empty_optional_variable_is_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_APP_TOKEN", "")
    monkeypatch.setenv("FIREBREAK_HOST", "")
    assert main(["policy", "check"]) == 0
    assert "built-in defaults: ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("99999", "--port: Input should be less than or equal to 65535"),
        ("0", "--port: Input should be greater than or equal to 1"),
        ("-1", "--port: Input should be greater than or equal to 1"),
    ],
)
def test_serve_port_is_held_to_the_rule_of_port(
    port: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve_environment(monkeypatch, tmp_path)
    assert main(["serve", "--port", port]) == 2
    assert capsys.readouterr().err == f"firebreak: {message}\n"
    assert not (tmp_path / "firebreak.db").exists()


def test_a_port_in_use_stops_serve_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_environment(monkeypatch, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("PORT", str(port))
        assert main(["serve"]) == 2
    assert capsys.readouterr().err == (
        f"firebreak: cannot listen on 127.0.0.1:{port}: the address is already in use; stop "
        "what listens there, or choose another port (PORT or --port)\n"
    )
    assert not (tmp_path / "firebreak.db").exists()


def test_policy_check_refuses_a_graph_where_incidents_never_resolve(tmp_path: Path) -> None:
    policy = tmp_path / "firebreak.toml"
    policy.write_text(
        '[[statuses]]\nkey = "open"\nnext = []\n'
        '[[statuses]]\nkey = "orphan"\nnext = ["resolved"]\n'
        '[[statuses]]\nkey = "resolved"\nphase = "resolved"\nnext = ["closed"]\n'
        '[[statuses]]\nkey = "closed"\nphase = "closed"\n'
    )
    result = run_cli("--policy", str(policy), "policy", "check", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"firebreak: {policy}:1: statuses: no resolved status can be reached from 'open', so "
        "an incident there could never be resolved: extend its next\n"
    )


def test_a_huge_duration_is_a_one_line_error_not_a_traceback(tmp_path: Path) -> None:
    policy = tmp_path / "firebreak.toml"
    policy.write_text(
        'default_severity = "P1"\n[[severities]]\nkey = "P1"\nupdate_every = "1000000000d"\n'
    )
    result = run_cli("--policy", str(policy), "policy", "check", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"firebreak: {policy}:4: severities.0.update_every: duration '1000000000d' is too long: "
        "at most 365d\n"
    )


@pytest.mark.parametrize(
    ("command", "revision"), [("upgrade", "9999"), ("downgrade", "foo"), ("downgrade", "-100")]
)
def test_an_unknown_revision_is_one_line_and_changes_nothing(
    command: str,
    revision: str,
    new_database_url: Callable[[], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = new_database_url()
    migrations.upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    sure = ["--yes"] if command == "downgrade" else []
    assert main(["db", command, revision, *sure]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"firebreak: database: cannot migrate to {revision!r}: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    engine = create_engine(url)
    try:
        assert migrations.current_revision(engine) == migrations.head_revision()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (":99999/fb", 'at 127.0.0.1:99999: invalid port number: "99999"'),
        ("/fb?sslmode=bogus", 'at 127.0.0.1:5432: invalid sslmode value: "bogus"'),
        ("/fb?foo=bar", 'at 127.0.0.1:5432: invalid connection option "foo"'),
    ],
)
def test_a_bad_setting_in_database_url_exits_2_not_try_again(
    query: str, detail: str, tmp_path: Path
) -> None:
    url = f"postgresql://fb:secret@127.0.0.1{query}"
    for command in (["db", "upgrade"], ["incidents"]):
        result = run_cli(*command, env={"DATABASE_URL": url}, cwd=tmp_path)
        assert result.returncode == 2, command
        assert one_line(result.stderr) == (
            f'firebreak: database: PostgreSQL database "fb" {detail}: fix this setting in '
            "DATABASE_URL"
        )
    assert list(tmp_path.iterdir()) == []


def test_policy_check_warns_when_the_default_severity_map_matches_no_severity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "firebreak.toml"
    (tmp_path / "runbooks").mkdir()
    policy.write_text(
        'default_severity = "P2"\n[[severities]]\nkey = "P1"\n[[severities]]\nkey = "P2"\n'
    )
    assert main(["--policy", str(policy), "policy", "check"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"{policy}: warning: alerts.severity_map: the default map (critical -> SEV1, ...) "
        "matches none of the severities (P1, P2), so every alert gets P2; set [alerts] "
        "severity_map\n"
    )
    assert captured.out == f"{policy}: ok: 2 severities, 6 statuses, 4 roles\n"
    policy.write_text(policy.read_text() + '[alerts]\nseverity_map = { critical = "P1" }\n')
    assert main(["--policy", str(policy), "policy", "check"]) == 0
    assert capsys.readouterr().err == ""


def test_a_sqlite_directory_that_cannot_be_made_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the directory should be", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path}/data/sub/f.db"},
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        f"firebreak: database: cannot create the directory {tmp_path}/data/sub for the SQLite "
        "file (Not a directory)"
    )


HOMELESS = """
import os, pathlib, sys
def home():
    # As on a container user id with no passwd entry: only HOME can name a home directory.
    if "HOME" not in os.environ:
        raise RuntimeError("Could not determine home directory.")
    return pathlib.Path(os.environ["HOME"])
pathlib.Path.home = classmethod(lambda cls: home())
from bot import server  # what `firebreak serve` imports: Slack's SDK with it
print("imported", server.__name__)
"""


def test_no_home_directory_is_not_a_crash(tmp_path: Path) -> None:
    """An arbitrary user id with no HOME (OpenShift, ``env -i``): Slack's SDK looks up a home
    directory as it is imported, and every command died with a traceback."""
    result = subprocess.run(
        [sys.executable, "-c", HOMELESS],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "imported bot.server\n"


def test_a_firebreak_toml_that_is_a_directory_is_an_error_not_the_defaults(
    tmp_path: Path,
) -> None:
    (tmp_path / "firebreak.toml").mkdir()
    result = run_cli("policy", "check", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "firebreak: firebreak.toml: cannot read the policy file: Is a directory\n"
    )


def test_every_command_warns_of_a_firebreak_variable_it_does_not_read(tmp_path: Path) -> None:
    """Before, only `serve` said so: `FIREBREAK_POLICY_FIL=... firebreak policy check` checked
    the built-in defaults, said ok and exited 0, the misspelt variable ignored without a word."""
    policy = tmp_path / "team.toml"
    policy.write_text('default_severity = "SEV2"\n')
    env = {"FIREBREAK_POLICY_FIL": str(policy), "FIREBREAK_SERVICE_HOST": "10.0.0.1"}
    result = run_cli("policy", "check", env=env, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.splitlines()[0] == (
        "firebreak: warning: FIREBREAK_POLICY_FIL is not a Firebreak variable "
        "(did you mean FIREBREAK_POLICY_FILE?)"
    )
    assert "FIREBREAK_SERVICE_HOST" not in result.stderr  # Kubernetes sets it for a Service
    assert result.stdout.startswith("built-in defaults: ok")


def test_incidents_lines_up_however_long_the_policys_status_keys(
    db: Database,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    toml = tmp_path / "firebreak.toml"
    toml.write_text(
        '[[statuses]]\nkey = "investigating"\nnext = ["resolved"]\n\n'
        '[[statuses]]\nkey = "resolved"\nphase = "resolved"\nnext = ["postmortem-review"]\n\n'
        '[[statuses]]\nkey = "postmortem-review"\nphase = "resolved"\nnext = ["closed"]\n\n'
        '[[statuses]]\nkey = "closed"\nphase = "closed"\n'
    )
    policy = load_policy(toml)
    with db.transaction() as session:
        first = core.declare_incident(session, policy, title="Checkout down", reporter="U1")
        core.declare_incident(session, policy, title="Search slow", reporter="U1")
        assert first.incident.id is not None
        core.resolve_incident(session, policy, first.incident.id, actor="U1")
        core.change_status(session, policy, first.incident.id, "postmortem-review", actor="U1")
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["--policy", str(toml), "incidents"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["investigating", "postmortem-review"]
    dates = {line.index(" 20") for line in lines}
    named = zip(lines, ["Search slow", "Checkout down"], strict=True)
    titles = {line.index(title) for line, title in named}
    assert len(dates) == 1 and len(titles) == 1  # one column each


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (
            "server closed the connection unexpectedly\n\tThis probably means the server "
            "terminated abnormally",
            "was lost (server closed the connection unexpectedly): run the command again",
        ),
        (
            "terminating connection due to administrator command",
            "was lost (terminating connection due to administrator command): run the command",
        ),
        (
            'connection failed: connection to server at "127.0.0.1", port 5 failed: server '
            "closed the connection unexpectedly",
            "cannot reach",  # never connected: where it is, not a lost connection
        ),
    ],
)
def test_a_connection_lost_mid_command_is_told_apart_from_an_unreachable_database(
    raised: str, said: str
) -> None:
    """Connected, then cut off (a failover, a restart): the database is there and the URL is
    right, so the line says to run it again, not to check both."""
    error = explain_database_error(
        OperationalError("SELECT 1", None, Exception(raised)),
        "postgresql://firebreak@db.internal:5432/firebreak",
    )
    assert said in str(error)
    assert "\n" not in str(error)
