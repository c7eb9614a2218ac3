from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot import incidents as core
from bot.cli import main
from bot.config import Policy
from bot.db import Database


def test_db_upgrade_migrates_a_new_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/fb.db")
    assert main(["db", "current"]) == 1
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
