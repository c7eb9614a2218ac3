"""`firebreak demo` is the README's run command: it plays a whole incident on the configured
database and policy, keeps it there, and can run again."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot import incidents as core
from bot import migrations
from bot.cli import main
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.demo import STARTER_RUNBOOKS, run_demo, shown_url
from bot.effects.models import Effect
from bot.models import Incident, Postmortem, RunbookRun
from tests.conftest import DatabaseFactory
from tests.ports import free_port


def steps(text: str) -> dict[str, str]:
    """Each step's heading (the line after ``── ``) and what was printed under it."""
    result: dict[str, str] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("── "):
            heading = line[3:]
            result[heading] = ""
        elif heading:
            result[heading] += line + "\n"
    return result


def test_the_demo_plays_an_incident_and_runs_again_on_the_same_database(
    database_factory: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_factory.create()
    workdir, files = tmp_path / "work", tmp_path / "demo-files"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # no runbooks/ here: the starter runbooks shipped in the package
    out = io.StringIO()
    assert run_demo(url, out, policy=Policy(), output_dir=files) == 0
    text = out.getvalue()
    played = steps(text)
    assert "Traceback" not in text

    backend = "PostgreSQL" if database_factory.backend == "postgresql" else "SQLite"
    assert f"Firebreak demo: the real bot, on {backend}, against a fake Slack workspace." in text
    assert "Runbooks: 10 from the starter runbooks shipped with Firebreak" in text
    # Each result under its own step.
    assert (
        "Severity changed from SEV2 to SEV1"
        in played["@Ana types /incident sev SEV1  (all EU card payments are failing)"]
    )
    assert "Scribe: @Chloé" in played["@Ben types /incident role scribe @Chloé"]
    assert (
        "has not been acknowledged"
        in played["10m pass and nobody has acknowledged INC-1 (the demo moves the clock forward)"]
    )
    update = next(
        body for heading, body in played.items() if "/incident update Investigating" in heading
    )
    assert "(next update due in 15 min, at " in update
    # The summary and the runbook message agree on the progress.
    assert "*2/9 done, 1 in progress*" in played["@Ben clicks Assign on step 3"]
    summary = played["everyone sees the pinned summary, edited in place all along:"]
    assert "• Database connection exhaustion: 2/9 done" in summary
    # The latest word is the last one said: the reason the incident was resolved with.
    assert "Resolved: error rate back to baseline for 30 min" in summary
    assert "Escalated to @oncall: not acknowledged after 10m" in text
    # One name per person, no clock times written into the script.
    assert "@ben.okafor" not in text and "@Ben" in text
    # (Times shown are relative to now, so a clock time the old script hard-coded may appear
    # legitimately when the test runs at that very hour; such a time is not checked.)
    near_now = {(utcnow() + timedelta(minutes=m)).strftime("%H:%M") for m in range(-90, 91)}
    for hard_coded in ("02:40", "03:15", "02:41"):
        if hard_coded not in near_now:
            assert hard_coded not in text
    # Its files in its own directory, none in the working directory.
    assert (files / "INC-1-v1.md").is_file()
    assert list(workdir.iterdir()) == []
    assert "Done. INC-1 is kept in " in text

    second = io.StringIO()
    assert run_demo(url, second, policy=Policy(), output_dir=files) == 0
    assert "Traceback" not in second.getvalue()
    assert "Done. INC-2 is kept in " in second.getvalue()
    assert (files / "INC-2-v1.md").is_file()

    db = Database(url)
    try:
        with db.transaction() as session:
            incidents = session.exec(select(Incident).order_by(col(Incident.id))).all()
            assert [(i.ref, i.status) for i in incidents] == [
                ("INC-1", "closed"),
                ("INC-2", "closed"),
            ]
            assert len(session.exec(select(Postmortem)).all()) == 2
            assert len(session.exec(select(RunbookRun)).all()) == 2
    finally:
        db.dispose()

    # The README's next step works on what the demo kept.
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["postmortem", "INC-1", "--output", str(tmp_path / "again.md")]) == 0
    assert (
        (tmp_path / "again.md")
        .read_text()
        .startswith("# INC-1: Checkout returns 500s for EU customers")
    )
    assert main(["export", "INC-2", "--output", str(tmp_path / "inc-2.json")]) == 0


def test_the_command_honours_database_url_and_the_policy(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    url = database_factory.create()
    policy = tmp_path / "firebreak.toml"
    policy.write_text(
        'default_severity = "P2"\n'
        '[[severities]]\nkey = "P1"\nname = "Outage"\nack_within = "5m"\nupdate_every = "20m"\n'
        '[[severities]]\nkey = "P2"\nname = "Degraded"\nack_within = "15m"\n'
        'update_every = "1h"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DATABASE_URL": url, "FIREBREAK_TEST_DATABASE_URL": ""},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    played = steps(result.stdout)
    assert "15m pass and nobody has acknowledged INC-1 (the demo moves the clock forward)" in played
    assert (
        "Severity changed from P2 to P1"
        in played["@Ana types /incident sev P1  (all EU card payments are failing)"]
    )
    assert "Runbooks: 10 from the starter runbooks shipped with Firebreak" in result.stdout
    assert (tmp_path / "INC-1-v1.md").is_file()
    db = Database(url)
    try:
        with db.transaction() as session:
            [incident] = session.exec(select(Incident)).all()
            assert (incident.severity, incident.status) == ("P1", "closed")
    finally:
        db.dispose()


def test_the_package_ships_the_starter_runbooks() -> None:
    """An installed wheel has no runbooks/ directory; the demo falls back to these."""
    root = Path(__file__).resolve().parent.parent
    shipped = sorted(p.name for p in STARTER_RUNBOOKS.glob("*.md"))
    assert shipped == sorted(p.name for p in (root / "runbooks").glob("*.md"))
    assert len(shipped) == 10


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "notaurl",
            "firebreak: --database-url: not a database URL: use sqlite:///path/to/firebreak.db "
            "or postgresql://user:password@host:5432/dbname\n",
        ),
        (
            "mysql://u@db/fb",
            "firebreak: --database-url: unsupported database 'mysql': use sqlite or postgresql\n",
        ),
    ],
)
def test_a_bad_database_url_option_is_refused_like_database_url(
    url: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["demo", "--database-url", url]) == 2
    captured = capsys.readouterr()
    assert captured.err == message
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_postgres_url_option_is_named_not_firebreak_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    port = free_port()  # a port nobody listens on
    # postgres:// as Heroku and others write it: normalised to the psycopg driver
    assert main(["demo", "--database-url", f"postgres://fb:pw@127.0.0.1:{port}/demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f'firebreak: database: cannot reach PostgreSQL database "demo" at 127.0.0.1:{port} '
    )
    assert "firebreak.db" not in err and "pw" not in err
    assert err.count("\n") == 1
    assert not (tmp_path / "firebreak.db").exists()


def test_the_demo_refuses_a_database_holding_incidents_it_did_not_make(
    database_factory: DatabaseFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo's bot works through all of a database's pending Slack work against a fake
    Slack. Before, run on the database of a real `firebreak serve`, it gave real incidents
    channels that do not exist in Slack and failed their invites for good."""
    url = database_factory.create()
    migrations.upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            core.declare_incident(session, Policy(), title="Real outage", reporter="U0REAL0001")
        with db.read() as session:
            pending = {e.id: e.state for e in session.exec(select(Effect)).all()}
    finally:
        db.dispose()
    assert pending and set(pending.values()) == {"pending"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)

    assert main(["demo", "--output-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("firebreak: ") and captured.err.count("\n") == 1
    assert "holds 1 incident(s) not recorded as the demo's" in captured.err
    assert "firebreak demo --database-url sqlite:///firebreak-demo.db" in captured.err
    db = Database(url)
    try:
        with db.read() as session:
            [incident] = session.exec(select(Incident)).all()
            assert incident.slack_channel_id is None
            assert {e.id: e.state for e in session.exec(select(Effect)).all()} == pending
    finally:
        db.dispose()


def test_the_demo_never_prints_the_database_password() -> None:
    url = "postgresql+psycopg://fb:hunter2pw@db.internal:5432/firebreak"
    assert shown_url(url) == "postgresql+psycopg://fb:***@db.internal:5432/firebreak"
    assert shown_url("sqlite:////tmp/demo.db") == "sqlite:////tmp/demo.db"
