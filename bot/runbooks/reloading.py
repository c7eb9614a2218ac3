"""A runbook catalog that follows its files: edit a runbook, and the next lookup sees the edit.

Teams fix runbooks during and after incidents; a restart to pick up a typo fix is a chore that
nobody remembers at 3 a.m. ``ReloadingCatalog`` is a ``RunbookCatalog`` whose lookups first check
(at most every ``interval`` seconds) the names, sizes and modification times of the files under
its directories, and load the catalog again when any changed, appeared or disappeared. The check
is a directory walk and a ``stat`` per file, far below a millisecond for the starter runbooks
and a few for thousands.

Every lookup answers from one loaded snapshot, so a reload never mixes two versions of the
index, and a runbook already started keeps its steps: runs copy them at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bot.config import Policy
from bot.runbooks.catalog import Match, RunbookCatalog, catalog_directories, iter_files
from bot.runbooks.parser import Runbook

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 3.0

Fingerprint = tuple[tuple[str, bool, tuple[tuple[str, int, int], ...]], ...]


def fingerprint(directories: Sequence[Path]) -> Fingerprint:
    """What changes when a runbook file is edited, added, removed or renamed."""
    result = []
    for directory in directories:
        files = []
        if directory.is_dir():
            for path in iter_files(directory):
                try:
                    stat = path.stat()
                except OSError:  # removed while walking
                    continue
                files.append((str(path), stat.st_mtime_ns, stat.st_size))
        result.append((str(directory), directory.is_dir(), tuple(files)))
    return tuple(result)


class ReloadingCatalog(RunbookCatalog):
    """``RunbookCatalog.load`` that reloads itself when the files change."""

    def __init__(
        self,
        directories: Sequence[Path],
        *,
        policy: Policy | None = None,
        interval: float = RELOAD_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policy=policy)
        self.directories = list(directories)
        self.interval = interval
        self.reloads = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._fingerprint = fingerprint(self.directories)
        self._snapshot = RunbookCatalog.load(self.directories, policy=policy)
        self._checked_at = clock()
        self._publish()

    @classmethod
    def load(cls, directories: Sequence[Path], *, policy: Policy | None = None) -> ReloadingCatalog:
        return cls(directories, policy=policy)

    def refresh_if_changed(self, *, force: bool = False) -> bool:
        """Reload when the files changed; checks at most every ``interval`` seconds unless
        ``force``. Returns whether it reloaded. Never raises: the old catalog stays."""
        now = self._clock()
        if not force and now - self._checked_at < self.interval:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread is checking right now
        try:
            self._checked_at = now
            current = fingerprint(self.directories)
            if current == self._fingerprint:
                return False
            snapshot = RunbookCatalog.load(self.directories, policy=self.policy)
            self._snapshot, self._fingerprint = snapshot, current
            self.reloads += 1
            self._publish()
            log.info("runbooks reloaded", extra={"count": len(snapshot)})
            return True
        except Exception:
            log.exception("runbooks could not be reloaded; the loaded ones stay")
            return False
        finally:
            self._lock.release()

    def snapshot(self) -> RunbookCatalog:
        self.refresh_if_changed()
        return self._snapshot

    def _publish(self) -> None:
        # For code that reads the fields directly (``catalog.runbooks``, ``catalog.skipped``).
        self.runbooks = self._snapshot.runbooks
        self.skipped = self._snapshot.skipped

    # Every lookup answers from one snapshot.

    def __len__(self) -> int:
        return len(self.snapshot())

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self.snapshot())

    def get(self, name: str) -> Runbook | None:
        return self.snapshot().get(name)

    def match(
        self,
        *,
        title: str = "",
        summary: str = "",
        service: str | None = None,
        severity: str | None = None,
        alerts: Sequence[str] = (),
        limit: int | None = 10,
    ) -> list[Match]:
        return self.snapshot().match(
            title=title,
            summary=summary,
            service=service,
            severity=severity,
            alerts=alerts,
            limit=limit,
        )

    def suggest(
        self,
        *,
        title: str = "",
        summary: str = "",
        service: str | None = None,
        severity: str | None = None,
        alerts: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Match]:
        return self.snapshot().suggest(
            title=title,
            summary=summary,
            service=service,
            severity=severity,
            alerts=alerts,
            limit=limit,
        )

    def search(self, query: str, *, limit: int | None = 10) -> list[Match]:
        return self.snapshot().search(query, limit=limit)


def follow_catalog(policy: Policy) -> ReloadingCatalog:
    """The policy's runbooks, reloaded when their files change (what ``serve`` runs with)."""
    catalog = ReloadingCatalog.load(catalog_directories(policy), policy=policy)
    log.info("runbooks loaded", extra={"count": len(catalog)})
    return catalog
