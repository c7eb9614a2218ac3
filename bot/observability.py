"""Logs and metrics.

Logs are JSON lines with a request id per Slack request. Firebreak never logs message bodies,
titles or notes (they may belong to private incidents), and a filter scrubs anything shaped like
a Slack token or the signing secret from every record, whatever logged it.

Metrics are Prometheus counters and histograms served at ``/metrics``.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from bot.priority import run_in_background

# --------------------------------------------------------------------------------------------
# Metrics

INCIDENTS_DECLARED = Counter(
    "firebreak_incidents_declared_total", "Incidents declared", ["severity"]
)
INCIDENTS_OPEN = Gauge(
    "firebreak_incidents_open", "Incidents not yet closed, by severity", ["severity"]
)
ACK_LATENCY = Histogram(
    "firebreak_slack_ack_seconds",
    "Time from receiving a Slack request to sending its acknowledgement",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
)
SLACK_REQUESTS = Counter(
    "firebreak_slack_requests_total", "Requests received from Slack", ["kind", "status"]
)
SLACK_CALLS = Counter(
    "firebreak_slack_api_calls_total", "Slack Web API calls", ["method", "outcome"]
)
SLACK_CALLS_IN_TRANSACTION = Counter(
    "firebreak_slack_calls_in_transaction_total",
    "Slack Web API calls made while holding a database transaction (a defect: each one makes "
    "every other writer wait for Slack)",
    ["method"],
)
SLACK_LATENCY = Histogram(
    "firebreak_slack_api_seconds", "Slack Web API call duration, retries included", ["method"]
)
SLACK_RATE_LIMITED = Counter(
    "firebreak_slack_rate_limited_total", "Slack Web API calls answered with HTTP 429", ["method"]
)
SLACK_EVENTS_RATE_LIMITED = Counter(
    "firebreak_slack_events_rate_limited_total",
    "app_rate_limited notices: Slack is dropping events to Firebreak for a minute",
)
ERRORS = Counter("firebreak_errors_total", "Unexpected errors", ["where"])
EFFECTS_EXECUTED = Counter(
    "firebreak_effects_executed_total", "Effect attempts, by outcome", ["kind", "outcome"]
)
EFFECT_RETRIES = Counter(
    "firebreak_effect_retries_total", "Effect attempts to be retried, by error", ["kind", "reason"]
)
EFFECT_FAILURES = Counter(
    "firebreak_effect_failures_total", "Effects that failed for good", ["kind"]
)
EFFECT_SECONDS = Histogram("firebreak_effect_seconds", "Time to execute one effect", ["kind"])
EFFECTS_PENDING = Gauge("firebreak_effects_pending", "Effects waiting or running")
EFFECTS_FAILED = Gauge("firebreak_effects_failed", "Effects that failed and were not retried")
EFFECTS_OLDEST_AGE = Gauge(
    "firebreak_effects_oldest_age_seconds", "How long the oldest due effect has been waiting"
)
REMINDERS_SENT = Counter(
    "firebreak_reminders_sent_total", "Reminders and escalations sent", ["kind"]
)
SCHEDULER_LAG = Gauge(
    "firebreak_scheduler_lag_seconds",
    "How late the oldest reminder sent in the last scheduler tick was",
)
SCHEDULER_TICKS = Counter("firebreak_scheduler_ticks_total", "Scheduler wake-ups", ["outcome"])

# --------------------------------------------------------------------------------------------
# Request ids

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

P = ParamSpec("P")
R = TypeVar("R")


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A thread pool that runs each task in a copy of the submitter's context, so the request
    id follows the work from the HTTP thread into Bolt's listener threads. It also counts the
    work in flight, so shutdown (and tests) can wait until everything acknowledged is done."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        context = contextvars.copy_context()
        with self._idle:
            self._in_flight += 1
        try:
            future = super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _: object) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no submitted work is pending or running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)


class Workers:
    """The thread pools that finish what the bot acknowledged: ``work`` for everything, and a
    small ``forms`` pool for opening modals, whose trigger ids expire 3 seconds after the click
    and so must never wait behind slow work such as a rate-limited Slack call."""

    def __init__(self, work_threads: int = 4, form_threads: int = 2) -> None:
        self.work = ContextThreadPoolExecutor(
            work_threads, thread_name_prefix="firebreak-work", initializer=run_in_background
        )
        self.forms = ContextThreadPoolExecutor(
            form_threads, thread_name_prefix="firebreak-forms", initializer=run_in_background
        )

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until both pools are idle (a form can lead to work, so forms first)."""
        return self.forms.wait_idle(timeout) and self.work.wait_idle(timeout)

    def shutdown(self, wait: bool = True) -> None:
        self.forms.shutdown(wait=wait)
        self.work.shutdown(wait=wait)


# --------------------------------------------------------------------------------------------
# Logging

_SECRET_SHAPES = re.compile(
    r"\b(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+)"
    # A response_url or incoming webhook: whoever holds one can post as the app.
    r"|https?://hooks\.slack(?:-gov)?\.com/[^\s\"'<>]+"
)


_SHORT = 6
"""Secrets shorter than this are scrubbed as whole words only."""


class RedactSecrets(logging.Filter):
    """Replace Slack tokens and configured secrets in a record's message and arguments, its
    traceback and stack, and its structured fields (nested ones too)."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        given = [s for s in dict.fromkeys(secrets or []) if s]
        self.secrets = [s for s in given if len(s) >= _SHORT]
        # A short secret (a database password "pg1") is scrubbed where it stands alone
        # ("postgresql://app:pg1@db"), not inside longer words it happens to spell.
        short = sorted((s for s in given if len(s) < _SHORT), key=len, reverse=True)
        self.short = (
            re.compile(
                r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, short)) + r")(?![A-Za-z0-9])"
            )
            if short
            else None
        )

    def scrub(self, text: str) -> str:
        text = _SECRET_SHAPES.sub("[redacted]", text)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        if self.short is not None:
            text = self.short.sub("[redacted]", text)
        return text

    def _scrub_value(self, value: object) -> object:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._scrub_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub_value(v) for v in value]
        if type(value) is tuple:
            return tuple(self._scrub_value(v) for v in value)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.scrub(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            # An exception's text (a library echoing a request, say) is formatted here, so it
            # is scrubbed too; formatters print ``exc_text`` when ``exc_info`` is gone.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if key not in ("msg", "message", "name", "levelname", "args", "exc_info"):
                record.__dict__[key] = self._scrub_value(value)
        return True


_TRACEBACKS = logging.Formatter()


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure_logging(
    level: str = "INFO", fmt: str = "json", secrets: list[str] | None = None
) -> None:
    """Configure the root logger once for the process."""
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(
            "{asctime}{levelname}{name}{message}{request_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn repeats each message with terminal colour codes: not for a log store.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        )
    # ISO 8601 in UTC (2026-03-02T10:00:00.123Z) whatever TZ the host has: the lines of all
    # replicas and the timeline's times then read on one clock.
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # The Slack SDKs log request and response bodies at DEBUG: never let them.
    for noisy in ("slack_sdk", "slack_bolt", "markdown_it"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))
    # httpx (the console's sign-in) logs every request's URL at INFO, and urllib3 (Slack calls)
    # at DEBUG, a response_url (a credential) among them; the Web API client logs each failed
    # call at ERROR, which the gateway reports itself, once, with what happens next.
    for chatty in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.getLogger("slack_sdk.web.base_client").setLevel(logging.CRITICAL)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
