"""``firebreak postmortem INC-42 [--output FILE]``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from bot import cli
from bot import incidents as core
from bot.config import Policy
from bot.db import Database
from bot.postmortem import generate_postmortem, list_postmortems

from .scenario import ALICE, BOB, GRACE, T0, Directory


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The real ``firebreak`` entry point with the postmortem command registered, run in an
    empty directory against the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("FIREBREAK_POLICY_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def declare(db: Database, policy: Policy) -> int:
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title="Queue lag", reporter="U1", severity="SEV2"
        ).incident
    assert incident.id is not None
    return incident.id


def events(db: Database, incident_id: int) -> list[str]:
    with db.transaction() as session:
        return [e.kind for e in core.timeline(session, incident_id)]


def stored(db: Database, incident_id: int) -> list[str]:
    with db.transaction() as session:
        return [p.markdown for p in list_postmortems(session, incident_id)]


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "firebreak.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.usefixtures("run")
def test_it_stores_a_new_version_and_prints_the_file(
    db: Database, policy: Policy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = declare(db, policy)
    assert cli.main(["postmortem", "INC-1"]) == 0
    assert cli.main(["postmortem", "1"]) == 0
    out, err = capsys.readouterr()
    first, second = (tmp_path / "postmortems" / f"INC-1-v{n}.md" for n in (1, 2))
    assert out.splitlines() == [str(first), str(second)]
    assert err == ""
    markdowns = stored(db, incident_id)
    assert [first.read_text(encoding="utf-8"), second.read_text(encoding="utf-8")] == markdowns
    assert markdowns[0].startswith("# INC-1: Queue lag\n")


@pytest.mark.usefixtures("run")
def test_output_dash_prints_the_draft(
    db: Database, policy: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = declare(db, policy)
    assert cli.main(["postmortem", "INC-1", "--output", "-"]) == 0
    assert capsys.readouterr().out == stored(db, incident_id)[0]


@pytest.mark.usefixtures("run")
def test_output_file_gets_a_copy(
    db: Database, policy: Policy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = declare(db, policy)
    # A directory that does not exist is not created behind the person's back.
    assert cli.main(["postmortem", "INC-1", "-o", "review/draft.md"]) == 1
    assert capsys.readouterr().err == (
        "firebreak: review/draft.md: the directory review does not exist; create it first or "
        "choose another path\n"
    )
    assert not (tmp_path / "review").exists()
    (tmp_path / "review").mkdir()
    assert cli.main(["postmortem", "INC-1", "-o", "review/draft.md"]) == 0
    assert capsys.readouterr().out == "wrote review/draft.md\n"
    assert (tmp_path / "review" / "draft.md").read_text(encoding="utf-8") == stored(
        db, incident_id
    )[0]


@pytest.mark.usefixtures("run")
@pytest.mark.parametrize("command", [["postmortem"], ["export"], ["audit", "export"]])
def test_an_output_that_is_a_directory_is_refused_before_anything_is_stored(
    db: Database,
    policy: Policy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """``-o review`` where review is a directory: one line, exit 1, and no postmortem version
    stored, written to the output directory or put on the timeline (``postmortem`` said
    "cannot write: Is a directory" after doing all three)."""
    incident_id = declare(db, policy)
    (tmp_path / "review").mkdir()
    timeline_before = len(events(db, incident_id))
    assert cli.main([*command, "INC-1", "-o", "review"]) == 1
    assert stored(db, incident_id) == []
    assert not (tmp_path / "postmortems").exists()
    assert list((tmp_path / "review").iterdir()) == []
    assert len(events(db, incident_id)) == timeline_before
    assert capsys.readouterr().err == (
        "firebreak: review: is a directory; give the name of a file to write\n"
    )


@pytest.mark.usefixtures("run")
def test_an_unknown_incident_is_one_line_and_exit_1(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["postmortem", "INC-99"]) == 1
    assert capsys.readouterr().err == "firebreak: There is no incident INC-99.\n"
    assert cli.main(["postmortem", "yesterday"]) == 1
    assert "write it like INC-42" in capsys.readouterr().err


@pytest.mark.usefixtures("run")
def test_a_broken_team_template_is_a_warning_with_file_and_line(
    db: Database, policy: Policy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = declare(db, policy)
    (tmp_path / "templates").mkdir()
    template = tmp_path / "templates" / "postmortem.md.j2"
    template.write_text("# {{ incident.ref }}\n{{ incident.nope }}\n", encoding="utf-8")
    policy_file = write_policy(tmp_path, '[postmortem]\ntemplate_dir = "templates"\n')
    assert cli.main(["--policy", str(policy_file), "postmortem", "INC-1"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{tmp_path / 'postmortems' / 'INC-1-v1.md'}\n"
    assert err.startswith(f"firebreak: warning: {template}:2: undefined: ")
    assert err.endswith("(the built-in template was used)\n")
    assert "Traceback" not in err
    assert stored(db, incident_id)[0].startswith("# INC-1: Queue lag\n")


@pytest.mark.usefixtures("run")
def test_an_unwritable_output_directory_keeps_the_version_and_exits_1(
    db: Database, policy: Policy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = declare(db, policy)
    (tmp_path / "blocked").write_text("not a directory")
    policy_file = write_policy(tmp_path, '[postmortem]\noutput_dir = "blocked/drafts"\n')
    assert cli.main(["--policy", str(policy_file), "postmortem", "INC-1"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        f"firebreak: INC-1 postmortem v1 is stored, but {tmp_path / 'blocked' / 'drafts'}"
        "/INC-1-v1.md: cannot write the postmortem draft: "
    )
    assert len(stored(db, incident_id)) == 1


@pytest.mark.usefixtures("run")
def test_a_draft_from_the_command_line_names_people_as_the_bots_draft_did(
    db: Database, policy: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bot's draft named the reporter and commander from Slack; the command line has no
    Slack, and its version showed raw ids, so the versions disagreed on who did what. It now
    uses the names kept with the bot's draft; an id no draft named stays an id."""
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title="Queue lag", reporter=ALICE, severity="SEV2"
        ).incident
        assert incident.id is not None
        core.assign_role(session, policy, incident.id, "commander", BOB, actor=ALICE)
        generate_postmortem(session, policy, incident.id, actor=ALICE, key="bot", names=Directory())
    with freeze_time(T0 + timedelta(minutes=5)), db.transaction() as session:
        core.add_note(session, policy, incident.id, "over to Grace", actor=GRACE)
    assert cli.main(["postmortem", "INC-1", "--output", "-"]) == 0
    bots, from_cli = stored(db, incident.id)
    assert "- **Reported by:** @Alice Ng" in bots and "- **Reported by:** @Alice Ng" in from_cli
    assert "- **Incident commander:** @Bob Okafor" in from_cli
    assert "@U01ALICE" not in from_cli and "@U02BOB" not in from_cli
    assert "@U07GRACE" in from_cli  # no draft named Grace: the id is shown
