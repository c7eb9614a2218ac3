"""Evidence bundles: what they hold, and every way a changed bundle is caught offline."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from freezegun import freeze_time
from sqlalchemy import text

from bot import incidents as core
from bot.audit import guard, regulatory
from bot.audit.bundle import build_files, verify_bundle, write_bundle
from bot.audit.keys import load_public_key, load_signing_key
from bot.cli import main
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import ConfigError
from bot.models import EventKind, Postmortem, RunbookRun, RunbookStepState
from tests.audit.helpers import project_with_dot_env

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEED = bytes(range(32))


def raw_key(seed: bytes = SEED) -> str:
    return base64.b64encode(seed).decode()


def public(seed: bytes = SEED) -> str:
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def dora() -> Policy:
    return policy_from_dict({"clocks": [{"preset": "dora"}]})


def make_incident(db: Database, policy: Policy) -> int:
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title="Card payments failing", reporter="U1", detected_at=T0
        ).incident
        assert incident.id is not None
        iid = incident.id
        core.add_note(session, policy, iid, "Rolled back 4.2.1", actor="U2")
        core.record_timeline_event(
            session,
            policy,
            iid,
            kind=EventKind.PERMISSION_DENIED,
            text="<@U9> may not close INC-1",
            actor="U9",
            data={"action": "close"},
        )
        core.record_timeline_event(
            session,
            policy,
            iid,
            kind=EventKind.REMINDER_SENT,
            text="Reminded <@U2> to post a status update",
            data={"reminder": "update"},
        )
        regulatory.classify_incident(session, policy, iid, "major", actor="U2")
        run = RunbookRun(
            incident_id=iid,
            runbook_id="bad-deploy.md",
            title="Bad deploy",
            content_hash="0" * 64,
            snapshot={"steps": [{"title": "Roll back"}]},
            step_count=1,
            started_at=T0,
            started_by="U2",
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        session.add(RunbookStepState(run_id=run.id, step_index=0, state="done", updated_at=T0))
        for version in (1, 2):
            session.add(
                Postmortem(
                    incident_id=iid,
                    version=version,
                    generation_key=f"pm:{version}",
                    markdown=f"# Postmortem v{version}\n",
                    template="default",
                    created_at=T0,
                    created_by="U1",
                )
            )
    return iid


def export(db: Database, policy: Policy, iid: int, path: Path, seed: bytes | None = SEED) -> None:
    key = load_signing_key(raw_key(seed)) if seed else None
    with freeze_time(T0 + timedelta(hours=2)), db.read() as session:
        write_bundle(session, policy, iid, path, signing_key=key)


def rewrite(path: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    change(files)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def test_the_bundle_holds_the_whole_record_and_verifies_offline(
    db: Database, dora: Policy, tmp_path: Path
) -> None:
    iid = make_incident(db, dora)
    path = tmp_path / "INC-1.zip"
    export(db, dora, iid, path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        files = {name: archive.read(name) for name in names}
    assert {
        "incident.json",
        "timeline.json",
        "timeline.csv",
        "postmortems/v1.md",
        "postmortems/v2.md",
        "reminders_sent.json",
        "access_refusals.json",
        "clocks.json",
        "chain.json",
        "tables/runbook_runs.json",
        "tables/runbook_step_states.json",
        "tables/reminders.json",
        "tables/postmortems.json",
        "tables/alert_groups.json",
        "manifest.json",
        "manifest.sig",
    } <= set(names)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest["files"]) == set(names) - {"manifest.json", "manifest.sig"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256(files[name]).hexdigest()
    timeline = json.loads(files["timeline.json"])
    assert [e["kind"] for e in timeline] == [
        "declared",
        "note",
        "permission_denied",
        "reminder_sent",
        "classified",
        "clock_started",
    ]
    assert manifest["chain_head"] == timeline[-1]["hash"]
    assert len(files["timeline.csv"].decode().splitlines()) == 7
    assert [e["text"] for e in json.loads(files["access_refusals.json"])] == [
        "<@U9> may not close INC-1"
    ]
    assert len(json.loads(files["reminders_sent.json"])) == 1
    [clock] = json.loads(files["clocks.json"])
    assert (clock["clock"], clock["due_at"]) == ("initial", "2026-03-02T13:00:00+00:00")
    assert json.loads(files["tables/runbook_runs.json"])[0]["snapshot"] == {
        "steps": [{"title": "Roll back"}]
    }
    assert json.loads(files["tables/runbook_step_states.json"])[0]["state"] == "done"
    assert json.loads(files["chain.json"])["verified_at_export"] is True
    report = verify_bundle(path, public_key=load_public_key(public()))
    assert report.ok, report.problems
    assert (report.incident, report.events, report.signed_by) == ("INC-1", 6, public())


def _flip_byte(files: dict[str, bytes]) -> None:
    data = bytearray(files["timeline.json"])
    at = data.index(b"Rolled back 4.2.1")
    data[at] = ord("r")
    files["timeline.json"] = bytes(data)


def _forge_manifest(files: dict[str, bytes]) -> None:
    _flip_byte(files)
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["timeline.json"]["sha256"] = hashlib.sha256(
        files["timeline.json"]
    ).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        (
            _flip_byte,
            [
                "timeline.json: SHA-256",
                "does not match the manifest",
                "timeline.json: INC-1 event 2 (note): content does not match its hash",
            ],
        ),
        (
            lambda files: files.pop("postmortems/v1.md"),
            ["postmortems/v1.md: listed in the manifest but missing from the bundle"],
        ),
        (
            lambda files: files.update({"notes.txt": b"added later"}),
            ["notes.txt: not in the manifest: added after the export"],
        ),
        (
            _forge_manifest,
            [
                "manifest.json: the signature does not match: manifest changed",
                "timeline.json: INC-1 event 2 (note): content does not match its hash",
            ],
        ),
        (lambda files: files.pop("manifest.sig"), ["manifest.sig: missing"]),
    ],
    ids=["one-byte", "file-missing", "file-added", "manifest-forged", "signature-removed"],
)
def test_a_changed_bundle_is_caught_and_the_file_named(
    db: Database,
    dora: Policy,
    tmp_path: Path,
    change: Callable[[dict[str, bytes]], None],
    problems: list[str],
) -> None:
    iid = make_incident(db, dora)
    path = tmp_path / "INC-1.zip"
    export(db, dora, iid, path)
    rewrite(path, change)
    report = verify_bundle(path)
    text_ = "\n".join(report.problems)
    assert not report.ok
    for expected in problems:
        assert expected in text_


def test_a_byte_changed_in_the_archive_itself_names_the_damaged_file(
    db: Database, dora: Policy, tmp_path: Path
) -> None:
    iid = make_incident(db, dora)
    path = tmp_path / "INC-1.zip"
    export(db, dora, iid, path, seed=None)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("incident.json")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 5] ^= 0xFF  # inside the compressed data
    path.write_bytes(bytes(data))
    problems = verify_bundle(path).problems
    assert len(problems) == 1
    assert problems[0].startswith("incident.json: ")


def test_a_bundle_signed_by_another_key_is_refused(
    db: Database, dora: Policy, tmp_path: Path
) -> None:
    iid = make_incident(db, dora)
    path = tmp_path / "INC-1.zip"
    export(db, dora, iid, path, seed=bytes(32))
    assert verify_bundle(path).ok  # intact, but by whom?
    [problem] = verify_bundle(path, public_key=load_public_key(public())).problems
    assert problem.startswith(f"manifest.sig: signed by key {public(bytes(32))[:16]}…")
    assert problem.endswith("wrong key")
    export(db, dora, iid, path, seed=None)
    [unsigned] = verify_bundle(path, public_key=load_public_key(public())).problems
    assert unsigned == "manifest.sig: missing: the bundle is not signed"


def test_signing_keys_from_pem_or_base64_and_bad_ones_are_refused(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert load_signing_key(pem) is not None
    assert load_signing_key(raw_key()) is not None
    assert load_signing_key("") is None
    for bad in ("not a key", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError, match="FIREBREAK_AUDIT_SIGNING_KEY: not an Ed25519"):
            load_signing_key(bad)
    pub = tmp_path / "signer.pub"
    pub.write_text(
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert load_public_key(str(pub)) is not None


def test_the_cli_exports_verifies_and_names_problems(
    db: Database,
    dora: Policy,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FIREBREAK_AUDIT_SIGNING_KEY", raw_key())
    policy_file = tmp_path / "firebreak.toml"
    policy_file.write_text('[[clocks]]\npreset = "dora"\n')
    make_incident(db, dora)
    out = tmp_path / "INC-1.zip"
    assert main(["--policy", str(policy_file), "audit", "export", "INC-1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: " in printed
    assert f"signed with Ed25519 public key {public()}" in printed
    assert main(["audit", "verify-bundle", str(out), "--public-key", public()]) == 0
    assert "OK: INC-1, " in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0
    assert "1 incidents, 6 events checked" in capsys.readouterr().out
    rewrite(out, lambda files: files.update({"extra.txt": b"x"}))
    assert main(["audit", "verify-bundle", str(out)]) == 1
    assert capsys.readouterr().out == (
        f"{out}: extra.txt: not in the manifest: added after the export\n"
    )
    with db.transaction() as session:
        guard.lift(session, "attack")
        session.execute(text("UPDATE timeline_events SET text = 'fine' WHERE kind = 'note'"))
        guard.restore(session)
    assert main(["audit", "verify", "INC-1"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("INC-1 event 2 (note): content does not match its hash")
    assert "1 chains broken" in captured.err
    assert main(["audit", "verify", "INC-9"]) == 1
    assert capsys.readouterr().err == "firebreak: INC-9: no such incident\n"
    assert main(["audit", "verify", "INC-99999999999"]) == 1  # larger than any number stored
    assert "INC-99999999999: no such incident" in capsys.readouterr().err
    monkeypatch.setenv("FIREBREAK_AUDIT_SIGNING_KEY", "nonsense")
    assert main(["audit", "export", "INC-1", "-o", str(out)]) == 2
    assert "FIREBREAK_AUDIT_SIGNING_KEY: not an Ed25519 private key" in capsys.readouterr().err
    (tmp_path / "junk.zip").write_bytes(b"junk")
    assert main(["audit", "verify-bundle", str(tmp_path / "junk.zip")]) == 1
    assert "not a readable evidence bundle" in capsys.readouterr().err


def test_a_signing_key_in_dot_env_signs_as_one_in_the_environment_does(
    db: Database,
    dora: Policy,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_incident(db, dora)
    project_with_dot_env(monkeypatch, tmp_path, database_url, raw_key())
    (tmp_path / "firebreak.toml").write_text('[[clocks]]\npreset = "dora"\n')
    out = tmp_path / "INC-1.zip"
    assert main(["audit", "export", "INC-1", "-o", str(out)]) == 0
    assert f"signed with Ed25519 public key {public()}" in capsys.readouterr().out
    assert verify_bundle(out, public_key=load_public_key(public())).ok


def test_a_bad_signing_key_in_dot_env_exits_2_and_writes_nothing(
    db: Database,
    dora: Policy,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_incident(db, dora)
    project_with_dot_env(monkeypatch, tmp_path, database_url, "nonsense")
    (tmp_path / "firebreak.toml").write_text('[[clocks]]\npreset = "dora"\n')
    out = tmp_path / "INC-1.zip"
    assert main(["audit", "export", "INC-1", "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "firebreak: environment: FIREBREAK_AUDIT_SIGNING_KEY: not an Ed25519 private key "
        "(give PEM or base64 of the 32 raw bytes)\n"
    )
    assert captured.out == ""
    assert not out.exists()


def test_a_second_copy_of_a_file_placed_in_the_archive_is_named(
    db: Database, dora: Policy, tmp_path: Path
) -> None:
    iid = make_incident(db, dora)
    path = tmp_path / "INC-1.zip"
    export(db, dora, iid, path)
    with zipfile.ZipFile(path) as archive:
        files = [(name, archive.read(name)) for name in archive.namelist()]
    forged = b'[{"text": "nothing happened"}]'
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("timeline.json", forged)  # the copy an extracting tool may show
        for name, data in files:
            archive.writestr(name, data)
    report = verify_bundle(path, public_key=load_public_key(public()))
    assert report.problems == [
        "timeline.json: in the archive 2 times: a copy was added after the export "
        "(tools disagree on which one they show)"
    ]


def test_a_bundle_unpacked_and_zipped_again_still_verifies(
    db: Database, dora: Policy, tmp_path: Path
) -> None:
    """``unzip`` then ``zip -r`` adds an entry for each directory (``tables/``): not a file
    added after the export. A file added in one still is."""
    iid = make_incident(db, dora)
    path = tmp_path / "INC-1.zip"
    export(db, dora, iid, path)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(unpacked)
    repacked = tmp_path / "INC-1-repacked.zip"
    with zipfile.ZipFile(repacked, "w") as archive:
        for item in sorted(unpacked.rglob("*")):
            archive.write(item, item.relative_to(unpacked).as_posix())
    with zipfile.ZipFile(repacked) as archive:
        assert "tables/" in archive.namelist()
    report = verify_bundle(repacked, public_key=load_public_key(public()))
    assert report.problems == []
    with zipfile.ZipFile(repacked, "a") as archive:
        archive.writestr("tables/extra.json", b"[]")
    report = verify_bundle(repacked, public_key=load_public_key(public()))
    assert report.problems == ["tables/extra.json: not in the manifest: added after the export"]


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        (["timeline.json"], "manifest.json: not valid JSON with a files list"),
        ({}, "manifest.json: not valid JSON with a files list"),
        ({"timeline.json": "abc"}, "manifest.json: a files entry is not an object with a sha256"),
    ],
    ids=["files-a-list", "files-empty", "entry-a-string"],
)
def test_a_malformed_manifest_is_one_line_naming_it(
    db: Database,
    dora: Policy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: object,
    problem: str,
) -> None:
    iid = make_incident(db, dora)
    path = tmp_path / "INC-1.zip"
    export(db, dora, iid, path, seed=None)

    def change(contents: dict[str, bytes]) -> None:
        manifest = json.loads(contents["manifest.json"])
        manifest["files"] = files
        contents["manifest.json"] = json.dumps(manifest).encode()

    rewrite(path, change)
    assert main(["audit", "verify-bundle", str(path)]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (f"{path}: {problem}\n", "")


def test_timeline_csv_cells_that_look_like_formulas_open_as_text(
    db: Database, dora: Policy, tmp_path: Path
) -> None:
    iid = make_incident(db, dora)
    with db.transaction() as session:
        core.add_note(session, dora, iid, '=HYPERLINK("https://evil.example","x")', actor="U2")
        core.add_note(session, dora, iid, "-1", actor="U2")
    with db.read() as session:
        files, _ = build_files(session, dora, iid, now=T0)
    rows = list(csv.DictReader(io.StringIO(files["timeline.csv"].decode())))
    assert [row["text"] for row in rows[-2:]] == ['\'=HYPERLINK("https://evil.example","x")', "-1"]
    assert json.loads(files["timeline.json"])[-2]["text"].startswith("=HYPERLINK(")
