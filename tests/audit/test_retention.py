"""Retention: nothing by default; export before removal; a chained tombstone remains."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from freezegun import freeze_time
from sqlalchemy import func, select

from bot import incidents as core
from bot.alerts.intake import ingest
from bot.audit import retention
from bot.audit.bundle import verify_bundle
from bot.audit.verify import verify_chains
from bot.cli import main
from bot.config import Policy, load_policy
from bot.console.queries import incident_alerts
from bot.db import Database
from bot.models import EventKind, Incident, Postmortem, TimelineEvent
from tests.alerts.test_episodes_and_order import FIRING, RESOLVED, alertmanager
from tests.audit.helpers import project_with_dot_env, tamper
from tests.audit.test_bundle import public, raw_key

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def incident(db: Database, policy: Policy, title: str, closed_days_ago: int | None) -> int:
    start = NOW - timedelta(days=(closed_days_ago or 0) + 1)
    with freeze_time(start), db.transaction() as session:
        created = core.declare_incident(session, policy, title=title, reporter="U1").incident
        assert created.id is not None
        core.add_note(session, policy, created.id, f"{title}: rolled back", actor="U2")
        session.add(
            Postmortem(
                incident_id=created.id,
                version=1,
                generation_key=f"pm:{created.id}",
                markdown="# Postmortem\n",
                template="default",
                created_at=start,
                created_by="U1",
            )
        )
    if closed_days_ago is not None:
        with freeze_time(NOW - timedelta(days=closed_days_ago)), db.transaction() as session:
            core.close_incident(session, policy, created.id, actor="U1")
    return created.id


def count(db: Database, model: type[TimelineEvent] | type[Postmortem], incident_id: int) -> int:
    with db.read() as session:
        return int(
            session.execute(
                select(func.count()).select_from(model).where(model.incident_id == incident_id)  # type: ignore[arg-type]
            ).scalar_one()
        )


@pytest.fixture
def pci(tmp_path: Path) -> Path:
    path = tmp_path / "firebreak.toml"
    path.write_text(
        '[retention]\nexport_after = "30d"\nremove_after = "90d"\narchive_dir = "archive"\n'
    )
    (tmp_path / "archive").mkdir()
    return path


def test_nothing_is_due_or_removed_without_a_retention_policy(
    db: Database,
    policy: Policy,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = incident(db, policy, "Ancient", 1000)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with db.read() as session:
        assert retention.due(session, policy, now=NOW) == []
    assert main(["audit", "retention", "--apply"]) == 0
    assert "no retention policy" in capsys.readouterr().out
    assert count(db, TimelineEvent, old) == 4


def test_retention_lists_then_exports_then_removes_leaving_a_chained_tombstone(
    db: Database,
    pci: Path,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = load_policy(pci)
    old = incident(db, policy, "Old", 100)
    recent = incident(db, policy, "Recent", 40)
    fresh = incident(db, policy, "Fresh", 5)
    active = incident(db, policy, "Active", None)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with freeze_time(NOW):
        assert main(["--policy", str(pci), "audit", "retention"]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "INC-1 closed 2026-02-21: export due, removal due (exports first)",
            "INC-2 closed 2026-04-22: export due",
            "run with --apply to export and remove",
        ]
        assert list((tmp_path / "archive").iterdir()) == []
        old_events = count(db, TimelineEvent, old)
        assert old_events == 4  # declared, note, resolved, closed
        assert main(["--policy", str(pci), "audit", "retention", "--apply"]) == 0
    out = capsys.readouterr().out
    assert "  removed 4 events; tombstone recorded" in out
    archive = tmp_path / "archive"
    assert sorted(p.name for p in archive.iterdir()) == ["INC-1.zip", "INC-2.zip"]
    bundle = verify_bundle(archive / "INC-1.zip")
    assert bundle.ok and bundle.events == 4
    with db.read() as session:
        [tombstone] = core.timeline(session, old, include_retracted=True)
        removed = session.get(Incident, old)
        report = verify_chains(session)
    assert tombstone.kind == EventKind.RETENTION_TOMBSTONE
    assert tombstone.prev_hash == bundle.chain_head
    assert tombstone.data["chain_head"] == bundle.chain_head
    assert tombstone.data["removed_events"] == 4
    assert removed is not None and removed.title == retention.REMOVED_TITLE
    assert report.ok and report.events == 1 + 4 + 4 + 2
    assert count(db, Postmortem, old) == 0
    assert [count(db, TimelineEvent, i) for i in (recent, fresh, active)] == [4, 4, 2]
    assert [count(db, Postmortem, i) for i in (recent, fresh, active)] == [1, 1, 1]
    with zipfile.ZipFile(archive / "INC-1.zip") as files:
        assert json.loads(files.read("incident.json"))["title"] == "Old"
    with freeze_time(NOW):  # again: INC-1 is gone, INC-2 already exported
        assert main(["--policy", str(pci), "audit", "retention", "--apply"]) == 0
    assert capsys.readouterr().out.splitlines() == ["INC-2 closed 2026-04-22: exported"]


def test_removal_is_refused_when_the_timeline_changed_after_the_export(
    db: Database, pci: Path
) -> None:
    policy = load_policy(pci)
    old = incident(db, policy, "Old", 100)
    with db.read() as session:
        [item] = retention.due(session, policy, now=NOW)
    retention.export_incident(db, policy, item, None)
    with db.transaction() as session:
        core.add_note(session, policy, old, "one more thing", actor="U2")
    with pytest.raises(retention.RetentionError, match=r"timeline changed since INC-1\.zip"):
        retention.remove_incident(db, policy, item, now=NOW)
    assert count(db, TimelineEvent, old) == 5
    assert count(db, Postmortem, old) == 1


def test_retention_apply_with_a_bad_signing_key_exits_2_before_exporting_or_removing(
    db: Database,
    pci: Path,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = load_policy(pci)
    old = incident(db, policy, "Old", 100)
    project_with_dot_env(monkeypatch, tmp_path, database_url, "nonsense")
    with freeze_time(NOW):
        assert main(["--policy", str(pci), "audit", "retention", "--apply"]) == 2
    assert capsys.readouterr().err == (
        "firebreak: environment: FIREBREAK_AUDIT_SIGNING_KEY: not an Ed25519 private key "
        "(give PEM or base64 of the 32 raw bytes)\n"
    )
    assert list((tmp_path / "archive").iterdir()) == []
    assert count(db, TimelineEvent, old) == 4


@pytest.mark.parametrize("archive", ["typo-mount/evidence", "evidnce"])
@pytest.mark.parametrize("command", [["audit", "retention", "--apply"], ["policy", "check"]])
def test_an_archive_dir_that_does_not_exist_is_refused_before_anything_is_exported_or_removed(
    db: Database,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    archive: str,
    command: list[str],
) -> None:
    """A typo of the archive's mount is not created (with its parents) to receive bundles of
    incidents that are then removed: exit 2, the key and the path named, nothing written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    (tmp_path / "evidence").mkdir()
    policy_file = tmp_path / "firebreak.toml"
    policy_file.write_text(
        f'[retention]\nexport_after = "30d"\nremove_after = "90d"\n\narchive_dir = "{archive}"\n'
    )
    old = incident(db, load_policy(policy_file), "Old", 100)
    with freeze_time(NOW):
        assert main(["--policy", str(policy_file), *command]) == 2
    target = tmp_path / archive
    reason = (
        f"the directory {target.parent} does not exist; create it first or choose another path"
        if "/" in archive
        else "the directory does not exist; create (or mount) it first or choose another path"
    )
    assert capsys.readouterr().err == (
        f"firebreak: {policy_file}:5: retention.archive_dir: {target}: {reason}\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence", "firebreak.toml"]
    assert count(db, TimelineEvent, old) == 4
    assert count(db, Postmortem, old) == 1


def test_retention_reads_the_signing_key_once_and_signs_every_bundle_with_it(
    db: Database,
    pci: Path,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = load_policy(pci)
    for days in (100, 60, 40):
        incident(db, policy, f"Closed {days} days ago", days)
    project_with_dot_env(monkeypatch, tmp_path, database_url, raw_key())
    signer = public()
    parse = Ed25519PrivateKey.from_private_bytes
    parsed: list[bytes] = []

    def counting(data: bytes) -> Ed25519PrivateKey:
        parsed.append(data)
        return parse(data)

    monkeypatch.setattr(Ed25519PrivateKey, "from_private_bytes", staticmethod(counting))
    with freeze_time(NOW):
        assert main(["--policy", str(pci), "audit", "retention"]) == 0  # checks the settings
        checking = len(parsed)
        assert main(["--policy", str(pci), "audit", "retention", "--apply"]) == 0
    bundles = sorted((tmp_path / "archive").iterdir())
    assert [b.name for b in bundles] == ["INC-1.zip", "INC-2.zip", "INC-3.zip"]
    assert [verify_bundle(b).signed_by for b in bundles] == [signer] * 3
    # Beyond the settings' check at start-up: once for the command, not once per incident.
    assert len(parsed) - 2 * checking == 1


def test_an_incident_whose_alert_later_fired_in_another_is_removed_and_the_other_keeps_it(
    db: Database,
    pci: Path,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """INC-1 (resolved, left open) keeps a record of the alert that fired in it and since
    fired again in INC-2; removing INC-2 (its alert rows too) by retention must not fail on
    that record, and INC-1 still lists the alert."""
    policy = load_policy(pci)
    start = NOW - timedelta(days=100)

    def send(name: str, minutes: int, starts: str) -> None:
        at = start + timedelta(minutes=minutes)
        message = alertmanager(name, keep=1, starts=starts)
        with freeze_time(at), db.transaction() as session:
            ingest(session, policy, message, now=at)

    send(FIRING, 0, "2026-02-21T11:00:00Z")
    send(RESOLVED, 5, "2026-02-21T11:00:00Z")
    with freeze_time(start + timedelta(minutes=6)), db.transaction() as session:
        core.resolve_incident(session, policy, 1, actor="U1")
    send(FIRING, 120, "2026-02-21T13:59:00Z")  # after the flap window, INC-1 resolved: INC-2
    with freeze_time(start + timedelta(hours=3)), db.transaction() as session:
        core.close_incident(session, policy, 2, actor="U1")
    monkeypatch.setenv("DATABASE_URL", database_url)
    with freeze_time(NOW):
        assert main(["--policy", str(pci), "audit", "retention", "--apply"]) == 0
    assert "removed" in capsys.readouterr().out
    with db.read() as session:
        assert [(a.name, a.status) for a in incident_alerts(session, 1)] == [
            ("ICMP ping failed", "resolved")
        ]
        assert incident_alerts(session, 2) == []


def test_an_incident_whose_latest_events_were_deleted_is_flagged_at_export_and_never_removed(
    db: Database,
    pci: Path,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Deleting an incident's latest events leaves a chain that holds but ends before the head
    its incident row names. The export says so, the bundle does not verify (its incident.json
    names the head), and retention removes nothing: removing it would remove the evidence."""
    policy = load_policy(pci)
    old = incident(db, policy, "Old", 100)
    with db.read() as session:
        latest = core.timeline(session, old, include_retracted=True)[-1]
    tamper(db, "DELETE FROM timeline_events WHERE id = :id", id=latest.id)
    monkeypatch.setenv("DATABASE_URL", database_url)
    bundle = tmp_path / "INC-1-export.zip"
    assert main(["--policy", str(pci), "audit", "export", "INC-1", "--output", str(bundle)]) == 1
    assert "the chain of INC-1 does not verify" in capsys.readouterr().err
    with zipfile.ZipFile(bundle) as files:
        chain = json.loads(files.read("chain.json"))
    assert chain["verified_at_export"] is False
    assert "the last 1 event(s) of INC-1 were deleted" in chain["first_break"]
    report = verify_bundle(bundle)
    assert not report.ok
    assert "the last 1 event(s) of INC-1 were deleted" in report.problems[0]
    with freeze_time(NOW):
        assert main(["--policy", str(pci), "audit", "retention", "--apply"]) == 1
    err = capsys.readouterr().err
    assert "the chain of INC-1 does not verify" in err and "nothing removed" in err
    assert count(db, TimelineEvent, old) == 3
    with db.read() as session:
        [broken] = verify_chains(session, [1]).breaks
    assert "the last 1 event(s) of INC-1 were deleted" in broken.detail


def test_removal_is_refused_when_the_incident_rows_head_disagrees_with_a_verified_bundle(
    db: Database, pci: Path
) -> None:
    policy = load_policy(pci)
    old = incident(db, policy, "Old", 100)
    with db.read() as session:
        [item] = retention.due(session, policy, now=NOW)
    retention.export_incident(db, policy, item, None)
    assert verify_bundle(item.bundle).ok
    tamper(db, "UPDATE incidents SET chain_events = chain_events + 1 WHERE id = :i", i=old)
    with pytest.raises(retention.RetentionError, match="does not end at the head on its incident"):
        retention.remove_incident(db, policy, item, now=NOW)
    assert count(db, TimelineEvent, old) == 4
