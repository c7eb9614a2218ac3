"""Editing a runbook file takes effect without a restart."""

from __future__ import annotations

import os
from pathlib import Path

from bot.config import Policy
from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.reloading import ReloadingCatalog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, *, mtime_ns: int) -> None:
    """Write ``path`` and set its modification time, as an editor saving it at that time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_an_edited_runbook_is_seen_on_the_next_lookup_after_the_interval(tmp_path: Path) -> None:
    runbook = tmp_path / "runbooks" / "disk-full.md"
    write(runbook, "# Disk full\n\n- [ ] df -h\n", mtime_ns=1_000_000_000)
    clock = Clock()
    catalog = ReloadingCatalog([tmp_path / "runbooks"], interval=3.0, clock=clock)
    found = catalog.get("disk-full")
    assert found is not None and found.title == "Disk full"
    assert [s.title for s in found.steps] == ["df -h"]

    write(
        runbook,
        "# Disk almost full\n\n- [ ] df -h\n- [ ] du -sh /var/log\n",
        mtime_ns=2_000_000_000,
    )
    clock.now += 1.0  # within the interval: no check yet
    found = catalog.get("disk-full")
    assert found is not None and found.title == "Disk full"
    assert catalog.reloads == 0

    clock.now += 2.0
    found = catalog.get("disk-full")
    assert found is not None and found.title == "Disk almost full"
    assert [s.title for s in found.steps] == ["df -h", "du -sh /var/log"]
    assert catalog.reloads == 1
    assert [m.runbook.id for m in catalog.search("Disk almost full")] == ["disk-full"]

    clock.now += 3.0  # nothing changed since: no second reload
    assert catalog.get("disk-full") is not None
    assert catalog.reloads == 1


def test_added_and_removed_files_and_a_directory_created_later(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write(first / "latency.md", "# High latency\n- [ ] check p99\n", mtime_ns=1_000_000_000)
    clock = Clock()
    catalog = ReloadingCatalog([first, second], policy=Policy(), interval=3.0, clock=clock)
    assert sorted(r.id for r in catalog) == ["latency"]
    assert len(catalog) == 1

    write(second / "kafka/consumer-lag.md", "# Kafka consumer lag\n- [ ] lag\n", mtime_ns=1)
    (first / "latency.md").unlink()
    clock.now += 3.0
    assert sorted(r.id for r in catalog) == ["kafka/consumer-lag"]
    assert sorted(catalog.runbooks) == ["kafka/consumer-lag"]
    assert catalog.skipped == []
    assert catalog.get("latency") is None
    assert catalog.reloads == 1


def test_a_same_size_edit_with_a_new_time_is_seen(tmp_path: Path) -> None:
    runbook = tmp_path / "db.md"
    write(runbook, "# Database A\n- [ ] x\n", mtime_ns=1_000_000_000)
    clock = Clock()
    catalog = ReloadingCatalog([tmp_path], interval=3.0, clock=clock)
    write(runbook, "# Database B\n- [ ] x\n", mtime_ns=1_000_000_001)
    assert catalog.refresh_if_changed(force=True) is True
    found = catalog.get("db")
    assert found is not None and found.title == "Database B"


def test_it_is_a_runbook_catalog_and_loads_like_one(tmp_path: Path) -> None:
    write(tmp_path / "disk-full.md", "# Disk full\n- [ ] df -h\n", mtime_ns=1)
    catalog = ReloadingCatalog.load([tmp_path], policy=Policy())
    assert isinstance(catalog, RunbookCatalog)
    assert [m.runbook.id for m in catalog.match(title="Disk full on db-3")] == ["disk-full"]
    assert [m.runbook.id for m in catalog.suggest(title="Disk full on db-3")] == ["disk-full"]
