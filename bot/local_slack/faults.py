"""Fault injection: FAULTS_DOC"""

from __future__ import annotations

from bot.local_slack.records import (
    Failure,
    FakeSlackError,
)
from bot.local_slack.workspace import Workspace


class Faults(Workspace):
    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail (``times=None``: until cleared).

        ``error="ratelimited"`` or ``status=429`` answers HTTP 429 with ``Retry-After``
        (``retry_after`` seconds, default 1); ``status=500`` an internal error; any other
        ``error`` is returned as ``{"ok": false, "error": error}`` with HTTP 200."""
        if method not in self._methods:
            raise FakeSlackError(f"the fake does not implement {method}")
        if error == "ratelimited" or status == 429:
            status, error = 429, "ratelimited"
            retry_after = 1 if retry_after is None else retry_after
        elif status >= 500:
            error = error or "internal_error"
        elif error is None:
            raise FakeSlackError("fail() needs an error code or an HTTP status of 429 or 5xx")
        if times is not None and times < 1:
            raise FakeSlackError("times must be at least 1 (or None for every call)")
        with self._lock:
            self._failures.append(Failure(method, error, status, retry_after, times))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def _take_failure(self, method: str) -> Failure | None:
        for failure in self._failures:
            if failure.method == method:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                return failure
        return None
