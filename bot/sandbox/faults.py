"""Fault injection: Slack failing the way it really fails.

``fake.fail(method, ...)`` arms a fault for the next ``times`` calls to a Web API method
(``times=None``: until ``clear_failures()``). Every call is still recorded in ``fake.calls``
with the fault that answered it (``ApiCall.fault``), what the method did (``ApiCall.outcome``)
and whether its side effects happened (``ApiCall.applied``), so a test can assert exact counts:
two ``chat.postMessage`` calls, one message.

Before the work (the default, ``after_work=False``): Slack does nothing and answers

* ``mode="error"`` (the default): Slack's JSON error. ``error="some_code"`` answers
  ``{"ok": false, "error": "some_code"}`` with HTTP ``status`` (200 unless given);
  ``error="ratelimited"`` or ``status=429`` answers HTTP 429 with ``Retry-After``:
  ``retry_after`` seconds (1 unless given), sent verbatim when it is a string (``"0"``,
  ``"86400"``, ``"abc"``: a client must cope with each), or no header at all with
  ``retry_after_header=False``; ``status=500`` (or any 5xx) answers
  ``{"ok": false, "error": "internal_error"}`` (or ``error``) with that status.
* ``mode="500"``: HTTP 500 with ``{"ok": false, "error": "internal_error"}``.
* ``mode="html"``: an HTML error page from the load balancer, HTTP ``status`` (503 unless a
  5xx is given; 502 and 504 are the other usual ones), ``Content-Type: text/html``.
* ``mode="garbage"``: HTTP 200 whose body is not JSON (a response cut off mid-way), with a
  JSON content type.
* ``mode="reset"``: the connection is closed without an answer (TCP reset).
* ``mode="hang"``: no answer; the connection is held for ``hang_seconds`` (default 5), then
  closed without an answer, so a client without a shorter timeout sees a dropped connection.
  A hang is bounded and stoppable: ``clear_failures()`` and ``stop()`` release every
  connection being held, so a test never stalls.

After the work (``after_work=True``): Slack performs the method (posts the message, creates
the channel...) and then answers with the fault (any mode but a 429: Slack does not rate-limit
a call it has carried out). This is the case an exactly-once client must survive: a retry
after it must not post the message twice. ``ApiCall.outcome`` holds what Slack did (the
message ``ts``, the channel id) although the client never saw it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Literal

from bot.sandbox.records import JSON, Failure, FakeSlackError, FaultMode
from bot.sandbox.workspace import Workspace

DEFAULT_HANG_SECONDS = 5.0
MAX_HANG_SECONDS = 120.0
_MODES: tuple[FaultMode, ...] = ("error", "500", "html", "garbage", "reset", "hang")
_JSON_TYPE = "application/json; charset=utf-8"
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class Answer:
    """What the HTTP server sends for a Web API call: a response, or a dropped connection
    (``drop="reset"`` at once, ``drop="hang"`` after ``hold`` seconds or on release)."""

    status: int
    headers: dict[str, str]
    body: bytes
    drop: Literal["reset", "hang"] | None = None
    hold: float = 0.0
    release: threading.Event | None = None


def json_answer(status: int, response: JSON, headers: dict[str, str] | None = None) -> Answer:
    return Answer(
        status, {"Content-Type": _JSON_TYPE, **(headers or {})}, json.dumps(response).encode()
    )


def _html_page(status: int) -> bytes:
    reason = _REASONS.get(status, "Server Error")
    return (
        f"<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
        f"<body><h1>{status} {reason}</h1><p>The server is temporarily unable to service "
        "your request. Please try again later.</p></body></html>\n"
    ).encode()


class Faults(Workspace):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._release = threading.Event()

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | str | None = None,
        times: int | None = 1,
        mode: FaultMode = "error",
        after_work: bool = False,
        hang_seconds: float = DEFAULT_HANG_SECONDS,
        retry_after_header: bool = True,
        fields: JSON | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail (``times=None``: until cleared).
        ``fields`` are added to the JSON error (``missing_scope`` carries ``needed`` and
        ``provided``).

        See the module docstring for every mode. Without ``mode``: ``error="ratelimited"`` or
        ``status=429`` answers HTTP 429 with ``Retry-After`` (``retry_after`` seconds, default
        1); ``status=500`` an internal error; any other ``error`` is returned as
        ``{"ok": false, "error": error}`` with HTTP 200."""
        if method not in self._methods:
            raise FakeSlackError(f"the fake does not implement {method}")
        if mode not in _MODES:
            raise FakeSlackError(f"unknown fault mode {mode!r}: one of {', '.join(_MODES)}")
        if times is not None and times < 1:
            raise FakeSlackError("times must be at least 1 (or None for every call)")
        if not 0 <= hang_seconds <= MAX_HANG_SECONDS:
            raise FakeSlackError(f"hang_seconds must be between 0 and {MAX_HANG_SECONDS:.0f}")
        if mode == "error":
            if error == "ratelimited" or status == 429:
                if after_work:
                    raise FakeSlackError("Slack does not rate-limit a call it has carried out")
                status, error = 429, "ratelimited"
                if retry_after is None and retry_after_header:
                    retry_after = 1
            elif status >= 500:
                error = error or "internal_error"
            elif error is None:
                raise FakeSlackError(
                    "fail() needs an error code, an HTTP status of 429 or 5xx, or a mode"
                )
        elif mode == "500":
            status, error = 500, error or "internal_error"
        elif mode == "html":
            status = status if 500 <= status <= 599 else 503
            error = error or "html_error_page"
        else:
            status, error = (200 if mode == "garbage" else 0), error or mode
        header = str(retry_after) if retry_after is not None and retry_after_header else None
        with self._lock:
            self._failures.append(
                Failure(
                    method,
                    error,
                    status,
                    header,
                    times,
                    mode,
                    after_work,
                    hang_seconds,
                    dict(fields or {}),
                )
            )

    def clear_failures(self) -> None:
        """Disarm every fault and release every connection a ``hang`` is holding."""
        with self._lock:
            self._failures.clear()
            self._release_hangs()

    def _release_hangs(self) -> None:
        self._release.set()
        self._release = threading.Event()

    def _take_failure(self, method: str) -> Failure | None:
        for failure in self._failures:
            if failure.method == method:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                return failure
        return None

    def _fault_answer(self, failure: Failure) -> tuple[Answer, JSON]:
        """What the client gets for ``failure``, and the JSON recorded as sent ({} if none)."""
        if failure.mode in ("reset", "hang"):
            drop: Literal["reset", "hang"] = "reset" if failure.mode == "reset" else "hang"
            answer = Answer(0, {}, b"", drop, failure.hang_seconds, self._release)
            return answer, {}
        if failure.mode == "html":
            headers = {"Content-Type": "text/html; charset=utf-8"}
            return Answer(failure.status, headers, _html_page(failure.status)), {}
        if failure.mode == "garbage":
            return Answer(200, {"Content-Type": _JSON_TYPE}, b'{"ok":true,"chan'), {}
        response: JSON = {**failure.fields, "ok": False, "error": failure.error}
        headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
        return json_answer(failure.status, response, headers), response
