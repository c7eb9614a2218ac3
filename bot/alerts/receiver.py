"""``POST /alerts/<source>``: the webhook receivers, on the same server as ``/slack/events``.

Answers: 200 stored (JSON with the group and incident), or ignored (an event about no incident,
such as PagerDuty's ping: nothing stored); 400 not JSON / wrong shape (the message
says what is wrong); 401 unauthenticated (nothing stored); 404 unknown source; 413 body over
5 MB; 415 a compressed body (``Content-Encoding``); 422 refused by the incident policy (nothing
stored); 503 the database could not store it (nothing stored; senders retry on 5xx). ``PUT`` is
answered as ``POST`` (Grafana's webhook can be set to send with it).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

from anyio import CapacityLimiter, to_thread
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.alerts.auth import AlertSettings, authenticate
from bot.alerts.intake import Outcome, ingest
from bot.alerts.model import AlertMessage, PayloadError
from bot.alerts.sources import SOURCES, parse
from bot.clock import utcnow
from bot.config import Policy, load_configuration
from bot.db import Database
from bot.errors import ConfigError, FirebreakError
from bot.http_body import BODY_SECONDS, BodyTooLarge, BodyTooSlow, NotJSON, load_json, read_body
from bot.incidents.text import storable
from bot.runbooks.catalog import RunbookCatalog

log = logging.getLogger(__name__)

MAX_BODY = 5 * 1024 * 1024
ATTEMPTS = 3
STORE_WITHIN = 5.0
"""Seconds from the body's arrival within which an alert is stored, or else answered 503 with
nothing kept. Another process holding SQLite's writer (a backup, a CLI run) or a lock that
PostgreSQL waits on (a migration) would otherwise keep the sender waiting for the busy timeout
once per attempt (90 s), past the time senders wait for an answer; a 503 is retried by every
one of them, and the retry is stored once."""
STORE_THREADS = 4
"""Webhooks stored at once by one process. More only queue on the same row locks (a group's,
the incident counter's) and the same interpreter while holding them: measured with
``bench/alerts.py``, 4 instead of Starlette's 40 took the paced storm's p99 from about
1.15 s to 0.6–0.8 s (docs/performance.md)."""

ALERT_REQUESTS = Counter(
    "firebreak_alert_requests_total",
    "Alert webhook requests by source and answer",
    ["source", "status"],
)
ALERT_LATENCY = Histogram(
    "firebreak_alert_request_seconds", "Time to store one alert webhook", ["source"]
)


def decode(body: bytes) -> object:
    """The JSON in a body, or ``PayloadError`` saying where it breaks."""
    if not body.strip():
        raise PayloadError("the body is empty: send the alert as a JSON object")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8 text") from None
    try:
        data = load_json(text)
        # Only a \u escape can put a NUL or half a surrogate pair in valid JSON.
        return _storable(data) if _UNSTORABLE_ESCAPE.search(text) else data
    except NotJSON as exc:
        raise PayloadError(f"the body {exc}") from None
    except RecursionError:  # _storable, on a body as deep as json.loads could still read
        raise PayloadError("the body is nested too deeply") from None


_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:00[01][0-9a-fA-F]|007[fF]|[dD][89a-fA-F])")


def _storable(value: object) -> object:
    """Every string in a decoded body as the database can store it (``storable``): a sender
    whose template cut an emoji in two, or put a NUL in a priority, still has its alert kept."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): _storable(item) for key, item in value.items()}
    return value


@dataclass
class _Config:
    policy: Policy
    catalog: RunbookCatalog | None
    settings: AlertSettings


class AlertReceiver:
    """Holds what the routes need; the policy, catalog and settings are read on first use when
    not given (so building the web app never depends on them)."""

    def __init__(
        self,
        database: Database,
        *,
        policy: Policy | None = None,
        catalog: RunbookCatalog | None = None,
        settings: AlertSettings | None = None,
    ) -> None:
        self.database = database
        self._given = (policy, catalog, settings)
        self._config: _Config | None = None
        self._lock = threading.Lock()
        self._limiter: CapacityLimiter | None = None

    def _storers(self) -> CapacityLimiter:
        # Made on first use: a limiter belongs to the running event loop.
        if self._limiter is None:
            self._limiter = CapacityLimiter(STORE_THREADS)
        return self._limiter

    def config(self) -> _Config:
        with self._lock:
            if self._config is None:
                policy, catalog, settings = self._given
                if policy is None:
                    _, policy = load_configuration()
                if catalog is None:
                    catalog = RunbookCatalog.from_policy(policy)
                self._config = _Config(policy, catalog, settings or AlertSettings())
            return self._config

    def store(self, message: AlertMessage, until: float | None = None) -> Outcome:
        """Store ``message``, waiting for the database until ``until`` (``time.monotonic()``)
        at most."""
        config = self.config()
        # A deadlock, a dropped connection or a lost race on a unique key: the transaction
        # rolled back, so trying again cannot store anything twice.
        return self.database.transact(
            lambda session: ingest(
                session, config.policy, message, catalog=config.catalog, now=utcnow()
            ),
            attempts=ATTEMPTS,
            retry_on=(OperationalError, IntegrityError),
            until=until,
        )

    async def receive(self, request: Request) -> Response:
        source = str(request.path_params.get("source", ""))
        started = time.perf_counter()
        response = await self._answer(source, request)
        known = source if source in SOURCES else "unknown"
        ALERT_REQUESTS.labels(source=known, status=str(response.status_code)).inc()
        if known != "unknown":
            ALERT_LATENCY.labels(source=known).observe(time.perf_counter() - started)
        log.log(
            logging.INFO if response.status_code < 400 else logging.WARNING,
            "alert webhook",
            extra={
                "source": known,
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response

    async def _answer(self, source: str, request: Request) -> Response:
        if source not in SOURCES:
            return _error(404, f"unknown alert source; use one of: {', '.join(SOURCES)}")
        try:
            config = await run_in_threadpool(self.config)
        except ConfigError as exc:
            # The sender may be anyone (nothing is authenticated yet): the why, with the policy
            # file's path and values, is for the operator's log only.
            log.error("alert webhook refused: the configuration is invalid: %s", exc)
            return _error(503, "the server's configuration is invalid; its log says why")
        try:
            body = await read_body(request, MAX_BODY)
        except BodyTooLarge:
            return _error(413, f"the body is over {MAX_BODY // (1024 * 1024)} MB")
        except BodyTooSlow:
            # A 5xx, not 408: Alertmanager and Datadog retry on 5xx only, and drop a 4xx for
            # good; nothing was stored, and the same body sent again is welcome.
            return _error(
                503,
                f"the body did not arrive within {BODY_SECONDS:.0f} s; nothing was stored; "
                "send it again",
            )
        refusal = authenticate(
            config.settings,
            source,
            authorization=request.headers.get("authorization"),
            body=body,
            pagerduty_signature=request.headers.get("x-pagerduty-signature"),
        )
        if refusal is not None:
            return _error(401, refusal, headers={"WWW-Authenticate": 'Bearer realm="firebreak"'})
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return _error(
                415, f"Content-Encoding {encoding[:40]} is not accepted: send the body uncompressed"
            )
        try:
            message = parse(source, decode(body), now=utcnow())
        except PayloadError as exc:
            return _error(400, str(exc))
        if message.ignored:
            return JSONResponse({"status": "ignored", "source": source, "note": message.note})
        try:
            until = time.monotonic() + STORE_WITHIN  # the queue for a store thread counts too
            outcome = await to_thread.run_sync(self.store, message, until, limiter=self._storers())
        except FirebreakError as exc:
            return _error(422, str(exc))
        except (DBAPIError, OperationalError) as exc:
            log.error("alert not stored", extra={"error": type(exc.orig or exc).__name__})
            return _error(503, "the alert could not be stored; nothing was kept, retry")
        return JSONResponse(
            {
                "status": "stored",
                "source": source,
                "group": outcome.group_id,
                "disposition": outcome.disposition,
                "incident": outcome.incident_ref,
                "declared": outcome.declared,
                "firing": outcome.firing,
                "severity": outcome.severity,
                "note": message.note,
            }
        )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def alert_routes(
    database: Database,
    *,
    policy: Policy | None = None,
    catalog: RunbookCatalog | None = None,
    settings: AlertSettings | None = None,
) -> list[Route]:
    """The routes to add to the web app (``bot/web.py``)."""
    receiver = AlertReceiver(database, policy=policy, catalog=catalog, settings=settings)
    # PUT too: Grafana's webhook contact point can be set to send with it (``httpMethod``).
    return [Route("/alerts/{source}", receiver.receive, methods=["POST", "PUT"])]
