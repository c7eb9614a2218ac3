"""An auditor verifies a copy of the database they may not write: a snapshot on read-only
media, or in a directory that is not theirs. Reading a WAL database normally creates its -shm
file beside it; ``audit verify`` and ``audit export`` read the copy without writing anything.
Before, both stopped with "the file is read-only: Firebreak must be able to write it"."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import migrations
from bot.cli import main
from bot.config import Policy
from bot.db import Database
from tests.audit.helpers import declare_with_notes


@pytest.fixture
def snapshot(tmp_path: Path) -> Iterator[Path]:
    """A copy of a database with two incidents, in a directory nobody may write (for root,
    whom permissions do not stop, the directory is made immutable)."""
    live = tmp_path / "live" / "firebreak.db"
    url = f"sqlite:///{live}"
    migrations.upgrade(url)
    db = Database(url)
    declare_with_notes(db, Policy(), 2)
    declare_with_notes(db, Policy(), 1, title="Search")
    db.dispose()
    copy = tmp_path / "evidence" / "firebreak.db"
    copy.parent.mkdir()
    shutil.copyfile(live, copy)
    copy.chmod(0o444)
    root = os.geteuid() == 0
    if root:
        subprocess.run(["chattr", "+i", str(copy.parent)], check=True)
    else:
        copy.parent.chmod(0o555)
    try:
        with pytest.raises(OSError):
            (copy.parent / "probe").touch()  # nothing can be created beside the copy
        yield copy
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(copy.parent)], check=True)
        copy.parent.chmod(0o755)


def test_a_read_only_copy_is_verified_and_exported_without_writing_it(
    snapshot: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{snapshot}")
    monkeypatch.chdir(tmp_path)
    before = snapshot.read_bytes()
    assert main(["audit", "verify"]) == 0
    assert "2 incidents, 5 events checked" in capsys.readouterr().out
    out = tmp_path / "INC-1.zip"
    assert main(["audit", "export", "INC-1", "-o", str(out)]) == 0
    assert f"wrote {out}: " in capsys.readouterr().out
    assert main(["audit", "verify-bundle", str(out)]) == 0
    assert snapshot.read_bytes() == before
    assert sorted(p.name for p in snapshot.parent.iterdir()) == ["firebreak.db"]
