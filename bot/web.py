"""The HTTP server: ``/slack/events`` for Slack, ``/healthz``, ``/readyz`` and ``/metrics``.

Starlette on uvicorn. Bolt's dispatch is synchronous, so it runs in a worker thread and the event
loop keeps accepting requests; Bolt returns the acknowledgement as soon as a listener calls
``ack()`` and finishes the work on its own thread pool. Bodies over 1 MiB are refused before
anything reads them (Slack never sends more than a few kilobytes).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

from anyio import CapacityLimiter, to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import migrations, observability, priority
from bot.alerts.receiver import alert_routes
from bot.clock import utcnow
from bot.config import Policy
from bot.console import Console, console_routes
from bot.db import Database
from bot.effects import store as effect_store
from bot.http_body import BodyTooLarge, BodyTooSlow, read_body
from bot.models import Incident
from bot.runbooks.catalog import RunbookCatalog
from bot.slack import shapes

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
DISPATCH_THREADS = 8
"""Slack requests dispatched through Bolt at once; the rest wait in the event loop. Python runs
one thread at a time: forty threads sharing it would each hold a request open forty times as
long, and a thread holding the database's writer would wait its turn among all of them."""


def _kind(body: str, content_type: str) -> str:
    if "application/json" in content_type:
        return "event"
    if body.startswith("payload=") or "&payload=" in body:
        return "interaction"
    if "command=" in body:
        return "command"
    return "other"


def create_web_app(
    bolt: App | None,
    database: Database,
    *,
    signing_secret: str | None = None,
    on_startup: Callable[[], None] | None = None,
    on_shutdown: Callable[[], None] | None = None,
    console: Console | None = None,
    readiness: Callable[[], str | None] | None = None,
    policy: Policy | None = None,
    catalog: RunbookCatalog | None = None,
) -> Starlette:
    """``readiness`` returns why the service is not ready yet (e.g. "slack unreachable"), or
    ``None``; ``/readyz`` reports it."""
    verifier = SignatureVerifier(signing_secret) if signing_secret else None
    limiter: list[CapacityLimiter] = []

    def dispatchers() -> CapacityLimiter:
        # Made on first use: a limiter belongs to the running event loop.
        if not limiter:
            limiter.append(CapacityLimiter(DISPATCH_THREADS))
        return limiter[0]

    async def slack_events(request: Request) -> Response:
        rid = uuid.uuid4().hex[:16]
        token = observability.request_id.set(rid)
        started = time.perf_counter()
        try:
            kind, response = await answer_slack(request, started)
            # Every answer, refusals included, carries the id, and every Slack request leaves
            # one line with it: the id a person quotes from an error message leads to the
            # request and to everything its work logged (ids and numbers only, never bodies).
            response.headers["x-request-id"] = rid
            log.log(
                logging.INFO if response.status_code < 400 else logging.WARNING,
                "slack request",
                extra={
                    "kind": kind,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response
        finally:
            observability.request_id.reset(token)

    async def answer_slack(request: Request, started: float) -> tuple[str, Response]:
        if bolt is None:
            return "other", PlainTextResponse("Slack is not configured here", status_code=404)
        try:
            body = await read_body(request, MAX_BODY)
        except BodyTooLarge:
            observability.SLACK_REQUESTS.labels(kind="other", status="413").inc()
            return "other", PlainTextResponse("request body too large", status_code=413)
        except BodyTooSlow:
            observability.SLACK_REQUESTS.labels(kind="other", status="408").inc()
            return "other", PlainTextResponse("request body too slow", status_code=408)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:  # Slack only ever sends UTF-8
            observability.SLACK_REQUESTS.labels(kind="other", status="400").inc()
            return "other", PlainTextResponse("request body is not UTF-8", status_code=400)
        kind = _kind(text, request.headers.get("content-type", ""))
        if kind == "other" and parse_qs(text).get("ssl_check") == ["1"]:
            # Slack checking the certificate of the command's URL, possibly unsigned (Bolt
            # answers it before verifying too): an empty 200 that reads and stores nothing.
            observability.SLACK_REQUESTS.labels(kind="other", status="200").inc()
            return "other", Response(status_code=200)
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            # Slack sends whole seconds; anything else ("abc", "", "1e9") is not Slack, and the
            # signature check would fail on it with an exception instead of an answer.
            observability.SLACK_REQUESTS.labels(kind="unverified", status="401").inc()
            return "unverified", PlainTextResponse("invalid request timestamp", status_code=401)
        if verifier is not None and not verifier.is_valid_request(text, dict(request.headers)):
            # Forged, unsigned or replayed (older than 5 minutes): refused before anything
            # reads the body.
            observability.SLACK_REQUESTS.labels(kind="unverified", status="401").inc()
            return "unverified", PlainTextResponse("invalid request signature", status_code=401)
        content_type = request.headers.get("content-type", "")
        try:
            # Bolt parses the body once; the shape check reads what Bolt parsed.
            bolt_request: BoltRequest | None = BoltRequest(
                body=text, query=str(request.url.query), headers=dict(request.headers)
            )
        except Exception:  # a body Bolt cannot parse (broken JSON in payload=, a JSON array)
            bolt_request = None
        problem = shapes.malformed(
            text, content_type, bolt_request.body if bolt_request is not None else None
        )
        if problem is None and bolt_request is None:
            problem = "the body cannot be parsed"
        if problem is not None or bolt_request is None:
            # Signed, but not a shape Slack sends: refused before Bolt or a listener reads (or
            # stores) any of it.
            observability.SLACK_REQUESTS.labels(kind=kind, status="400").inc()
            log.warning("malformed slack request", extra={"kind": kind, "problem": problem})
            return kind, PlainTextResponse(f"malformed request: {problem}", status_code=400)
        response = await to_thread.run_sync(bolt.dispatch, bolt_request, limiter=dispatchers())
        observability.ACK_LATENCY.labels(kind=kind).observe(time.perf_counter() - started)
        observability.SLACK_REQUESTS.labels(kind=kind, status=str(response.status)).inc()
        headers = response.first_headers_without_set_cookie()
        return kind, Response(content=response.body, status_code=response.status, headers=headers)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        def check() -> tuple[bool, str]:
            try:
                database.ping()
                schema = migrations.schema_state(database.engine)
            except Exception as exc:  # any failure means "not ready", with the reason
                return False, f"database unreachable: {type(exc).__name__}"
            if schema == "behind":
                return False, "database schema is not at this version's migration"
            try:
                # A replica that can read but not write (disk full, read-only file or role)
                # would acknowledge requests it cannot record: it is not ready.
                database.probe_write()
            except Exception as exc:
                return False, f"database not writable: {type(exc).__name__}"
            reason = readiness() if readiness is not None else None
            if reason is not None:
                return False, reason
            if schema == "ahead":
                return True, "ok (the database schema is newer: a newer version migrated it)"
            return True, "ok"

        ready, reason = await run_in_threadpool(check)
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "detail": reason},
            status_code=200 if ready else 503,
        )

    async def metrics(_: Request) -> Response:
        await run_in_threadpool(_update_gauges, database)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            await run_in_threadpool(on_startup)
        try:
            yield
        finally:
            if on_shutdown is not None:
                await run_in_threadpool(on_shutdown)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *console_routes(console),
            *alert_routes(database, policy=policy, catalog=catalog),
        ],
        lifespan=lifespan,
        middleware=[Middleware(AnswersFirst)],
    )


class AnswersFirst:
    """Counts a Slack request or an alert as in flight from the moment its whole body has
    arrived until the last byte of its answer is sent, so background work gives way
    (``bot.priority``) for it. Not before the body is complete: a body trickling in (anyone can
    send one, unauthenticated) must not slow Firebreak's work down while it trickles."""

    PATHS = ("/slack/events", "/alerts/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.PATHS):
            await self.app(scope, receive, send)
            return
        counted = False

        async def arrived() -> Message:
            nonlocal counted
            message = await receive()
            if not counted and message["type"] == "http.request" and not message.get("more_body"):
                priority.REQUESTS_IN_FLIGHT.begin()
                counted = True
            return message

        try:
            await self.app(scope, arrived, send)
        finally:
            if counted:
                priority.REQUESTS_IN_FLIGHT.end()


def _update_gauges(database: Database) -> None:
    try:
        with database.read() as session:
            rows: list[Any] = list(
                session.exec(
                    select(Incident.severity, func.count())
                    .where(col(Incident.closed_at).is_(None))
                    .group_by(col(Incident.severity))
                ).all()
            )
            backlog = effect_store.backlog(session)
    except Exception:
        log.warning("metrics: database unavailable")
        return
    observability.INCIDENTS_OPEN.clear()
    for severity, count in rows:
        observability.INCIDENTS_OPEN.labels(severity=severity).set(count)
    observability.EFFECTS_PENDING.set(backlog.pending)
    observability.EFFECTS_FAILED.set(backlog.failed)
    oldest = backlog.oldest_due
    age = max((utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    observability.EFFECTS_OLDEST_AGE.set(age)
