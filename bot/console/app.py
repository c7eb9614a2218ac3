"""The console's pages and sign-in routes, mounted under ``/console`` by ``bot.web``.

Every page needs a signed-in viewer (session cookie or trusted proxy header); only the static
stylesheet and script and the sign-in pages are served to anyone. Pages are read-only; the one
form that changes anything (sign-out) carries a CSRF token and must come from our own origin.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.access import Directory
from bot.config import Policy
from bot.console import insights as ins
from bot.console import queries as q
from bot.console.auth import AuthError, OidcClient, Sessions, Viewer, proxy_user, same_token
from bot.console.present import (
    People,
    chart_for,
    event_label,
    markdown_renderer,
    slack_text,
    timeline_html,
    when,
)
from bot.console.settings import ConsoleSettings, load_console_settings
from bot.db import INTEGER_MAX, Database, whole_number
from bot.durations import humanize_duration
from bot.errors import InvalidInput
from bot.export import export_incident
from bot.markup import NameResolver, safe_url
from bot.outputs import csv_cell

log = logging.getLogger(__name__)

BASE = "/console"
STATIC = Path(__file__).parent / "static"
FORM_MAX = 4096

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Adds the security headers to every console response, and ``no-store`` to pages (they
    hold incident data that must not linger in shared caches)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(f"{BASE}/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {h for h, _ in SECURITY_HEADERS}
                ]
                headers += SECURITY_HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    name: str
    description: str = ""


class NeedSignIn(Exception):
    pass


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Console:
    """Everything the console needs. ``directory`` decides private-incident visibility with
    ``bot.access.can_see``; ``names`` turns user ids into names (optional); ``demo_users``
    turns on the local demo sign-in (only ``firebreak demo --serve`` passes them)."""

    database: Database
    policy: Policy
    directory: Directory
    settings: ConsoleSettings
    names: NameResolver | None = None
    demo_users: Sequence[DemoUser] = ()
    http: httpx.Client | None = None
    sessions: Sessions = field(init=False)
    oidc: OidcClient | None = field(init=False)
    visibility: q.VisibilityCache = field(init=False)

    def __post_init__(self) -> None:
        secret = self.settings.session_secret
        if secret is None and self.settings.oidc_enabled:
            log.warning(
                "console: FIREBREAK_CONSOLE_SESSION_SECRET is not set; sessions end on restart"
            )
        self._secret = secret.get_secret_value() if secret else secrets.token_urlsafe(32)
        self.sessions = Sessions(
            self._secret,
            max_age=timedelta(hours=self.settings.session_hours),
            secure=self.settings.cookie_secure,
        )
        self.oidc = OidcClient(self.settings, self.http) if self.settings.oidc_enabled else None
        self.visibility = q.VisibilityCache()
        self.env = Environment(
            loader=PackageLoader("bot.console", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=when,
            label=event_label,
            slack=slack_text,
            safe_url=safe_url,
            duration=humanize_duration,
        )
        self.env.globals.update(
            base=BASE,
            policy=self.policy,
            urlencode=urlencode,
            page_query=lambda flt, **changes: urlencode(flt.query(**changes)),
        )
        self.markdown = markdown_renderer()
        asset = (STATIC / "console.css").read_bytes() + (STATIC / "console.js").read_bytes()
        self.asset_version = hashlib.sha256(asset).hexdigest()[:10]

    # ----------------------------------------------------------------------------------------
    # Who is looking

    def viewer(self, request: Request) -> Viewer:
        user = proxy_user(request, self.settings)
        if user is not None:
            csrf = hmac.new(self._secret.encode(), user.encode(), "sha256").hexdigest()
            return Viewer(user, People(self.names)(user), "proxy", csrf)
        viewer = self.sessions.read(request)
        if viewer is None:
            raise NeedSignIn
        if viewer.via == "demo" and not self.demo_users:
            raise AuthError("Demo sessions are not accepted here; sign in again.", status=401)
        return viewer

    def visible(self, session: Session, viewer: Viewer) -> q.Visibility:
        return self.visibility.get(
            viewer.user_id,
            lambda: q.compute_visibility(session, self.policy, viewer.user_id, self.directory),
        )

    # ----------------------------------------------------------------------------------------
    # Rendering

    def render(
        self,
        request: Request,
        template: str,
        viewer: Viewer | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            viewer=viewer,
            request=request,
            asset_version=self.asset_version,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def error(
        self, request: Request, status: int, message: str, viewer: Viewer | None = None
    ) -> HTMLResponse:
        return self.render(request, "error.html.j2", viewer, status=status, message=message)

    def page(self, handler: Callable[[Request, Viewer], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                viewer = self.viewer(request)
            except NeedSignIn:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(
                    f"{BASE}/auth/login?{urlencode({'next': target[:2000]})}", status_code=303
                )
            except AuthError as exc:
                if exc.status == 401:
                    response = self.login_page(request, str(exc), status=401)
                    self.sessions.end(response)
                    return response
                return self.error(request, exc.status, str(exc))
            try:
                return handler(request, viewer)
            except InvalidInput as exc:
                return self.error(request, 400, str(exc), viewer)
            except Refused as exc:
                return self.error(request, exc.status, str(exc), viewer)

        return endpoint

    # ----------------------------------------------------------------------------------------
    # Sign-in

    def login_page(self, request: Request, message: str = "", status: int = 200) -> HTMLResponse:
        if not (self.oidc or self.settings.proxy_enabled or self.demo_users):
            message = message or (
                "The console is not configured for signing in. Set "
                "FIREBREAK_CONSOLE_OIDC_CLIENT_ID and FIREBREAK_CONSOLE_OIDC_CLIENT_SECRET "
                "(Sign in with Slack) or FIREBREAK_CONSOLE_TRUSTED_PROXIES (an auth proxy)."
            )
            status = 503 if status == 200 else status
        return self.render(
            request,
            "login.html.j2",
            None,
            status=status,
            message=message,
            next=_next(request.query_params.get("next")),
            oidc=self.oidc is not None,
            proxy=self.settings.proxy_enabled,
            demo_users=self.demo_users,
            demo_token=self.sessions.form_token("demo") if self.demo_users else "",
        )

    def redirect_uri(self, request: Request) -> str:
        if self.settings.oidc_redirect_url:
            return self.settings.oidc_redirect_url
        return str(request.url.replace(path=f"{BASE}/auth/callback", query="", fragment=""))

    def start(self, request: Request) -> Response:
        if self.oidc is None:
            return self.login_page(request, "Sign in with Slack is not configured here.", 404)
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        try:
            url = self.oidc.authorize_url(self.redirect_uri(request), state, nonce)
        except AuthError as exc:
            return self.login_page(request, str(exc), exc.status)
        response = RedirectResponse(url, status_code=303)
        self.sessions.start_pending(
            response, {"s": state, "n": nonce, "next": _next(request.query_params.get("next"))}
        )
        return response

    def callback(self, request: Request) -> Response:
        params = request.query_params
        scratch = Response()
        try:
            if self.oidc is None:
                raise AuthError("Sign in with Slack is not configured here.", status=404)
            if params.get("error"):
                raise AuthError(
                    f"Slack did not sign you in: {params['error'][:100]}. Try again.", status=401
                )
            pending = self.sessions.take_pending(request, scratch)
            state, code = params.get("state", ""), params.get("code", "")
            if not same_token(state, pending.get("s", "")):
                raise AuthError(
                    "The sign-in answer does not match the sign-in this browser started "
                    "(state); start again."
                )
            if not code or len(code) > 2000:
                raise AuthError("The sign-in answer has no code; start again.")
            token = self.oidc.exchange(code, self.redirect_uri(request))
            claims = self.oidc.verify(token, pending.get("n", ""))
        except AuthError as exc:
            log.info("console sign-in refused", extra={"reason": str(exc)})
            response: Response = self.login_page(request, str(exc), exc.status)
            self.sessions.end_pending(response)
            return response
        user = str(claims[self.oidc.user_claim])
        name = str(claims.get("name") or claims.get("given_name") or user)
        done = RedirectResponse(_next(pending.get("next")), status_code=303)
        self.sessions.end_pending(done)
        self.sessions.start(done, user, name, "oidc")
        log.info("console sign-in", extra={"user": user, "via": "oidc"})
        return done

    async def demo_sign_in(self, request: Request) -> Response:
        form = await _form(request)
        if not self.demo_users:
            return self.error(request, 404, "The demo sign-in is only available in the demo.")
        if not _same_origin(request) or not self.sessions.check_form_token(
            form.get("token", ""), "demo"
        ):
            return self.login_page(request, "That sign-in form is stale; try again.", 403)
        user = next((u for u in self.demo_users if u.user_id == form.get("user")), None)
        if user is None:
            return self.login_page(request, "Choose one of the demo people.", 400)
        response = RedirectResponse(_next(form.get("next")), status_code=303)
        self.sessions.start(response, user.user_id, user.name, "demo")
        return response

    async def sign_out(self, request: Request) -> Response:
        form = await _form(request)
        try:
            viewer = self.viewer(request)
        except (NeedSignIn, AuthError):
            away = RedirectResponse(f"{BASE}/auth/login", status_code=303)
            self.sessions.end(away)
            return away
        if not _same_origin(request) or not same_token(form.get("csrf", ""), viewer.csrf):
            return self.error(
                request, 403, "The sign-out form did not come from this page; try again.", viewer
            )
        response = self.login_page(request, "You are signed out.")
        self.sessions.end(response)
        return response

    # ----------------------------------------------------------------------------------------
    # Pages

    def incidents_page(self, request: Request, viewer: Viewer) -> Response:
        params = parse_qs(request.url.query, keep_blank_values=False)
        flt = q.parse_filter(params, self.policy)
        with self.database.read() as session:
            visibility = self.visible(session, viewer)
            result = q.list_page(session, self.policy, visibility, flt)
        status = 200
        if flt.page > result.pages:
            status = 404
        return self.render(
            request,
            "incidents.html.j2",
            viewer,
            status=status,
            flt=flt,
            result=result,
            people=People(self.names),
            sorts=list(q.SORTS),
        )

    def _incident(self, session: Session, viewer: Viewer, number: int) -> Any:
        incident = q.visible_incident(session, self.policy, viewer.user_id, self.directory, number)
        if incident is None:
            raise Refused(404, f"There is no incident INC-{number} that you may see.")
        return incident

    def incident_page(self, request: Request, viewer: Viewer) -> Response:
        number = _path_number(request, "number", "incident")
        with self.database.read() as session:
            incident = self._incident(session, viewer, number)
            story = q.incident_story(session, self.policy, incident)
            postmortems = q.postmortem_view(session, story.incident.id or 0, None, None)
        people = People(self.names)
        return self.render(
            request,
            "incident.html.j2",
            viewer,
            story=story,
            postmortems=postmortems.versions,
            people=people,
            timeline=timeline_html(story.timeline, people),
        )

    def postmortem_page(self, request: Request, viewer: Viewer) -> Response:
        number = _path_number(request, "number", "incident")
        version = _int_param(request, "version")
        compare = _int_param(request, "compare")
        with self.database.read() as session:
            incident = self._incident(session, viewer, number)
            view = q.postmortem_view(session, incident.id, version, compare)
        html = Markup(self.markdown.render(view.current.markdown)) if view.current else None
        return self.render(
            request, "postmortem.html.j2", viewer, incident=incident, view=view, html=html
        )

    def postmortem_download(self, request: Request, viewer: Viewer) -> Response:
        number = _path_number(request, "number", "incident")
        version = _path_number(request, "version", "postmortem version")
        with self.database.read() as session:
            incident = self._incident(session, viewer, number)
            view = q.postmortem_view(session, incident.id, version, None)
        assert view.current is not None
        return PlainTextResponse(
            view.current.markdown,
            media_type="text/markdown; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="INC-{number}-v{version}.md"'},
        )

    def export_download(self, request: Request, viewer: Viewer) -> Response:
        number = _path_number(request, "number", "incident")
        with self.database.read() as session:
            self._incident(session, viewer, number)
            data = export_incident(session, self.policy, f"INC-{number}")
        return Response(
            json.dumps(data, indent=2, ensure_ascii=False, default=str),
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="INC-{number}.json"'},
        )

    def _insights(self, request: Request, viewer: Viewer) -> tuple[ins.Range, list[ins.Table]]:
        params = request.query_params
        period = params.get("period", "week")
        first = q.parse_date(params.get("from", "").strip(), "from")
        last = q.parse_date(params.get("to", "").strip(), "to")
        rng = ins.make_range(period, first, last, self.policy.zone)
        with self.database.read() as session:
            visibility = self.visible(session, viewer)
            tables = ins.all_insights(session, self.policy, visibility, rng)
        return rng, tables

    def insights_page(self, request: Request, viewer: Viewer) -> Response:
        rng, tables = self._insights(request, viewer)
        query = {
            "period": rng.period,
            "from": rng.first_day.isoformat(),
            "to": rng.last_day.isoformat(),
        }
        return self.render(
            request,
            "insights.html.j2",
            viewer,
            rng=rng,
            items=[(t, chart_for(t)) for t in tables],
            query=urlencode(query),
        )

    def insights_csv(self, request: Request, viewer: Viewer) -> Response:
        key = request.path_params["key"]
        _, tables = self._insights(request, viewer)
        table = next((t for t in tables if t.key == key), None)
        if table is None:
            raise Refused(404, f"There is no insight {key[:40]!r}.")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([csv_cell(c) for c in table.columns])
        for row in table.rows:
            writer.writerow([csv_cell(v) for v in row])
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="firebreak-{key}.csv"'},
        )

    def home(self, request: Request, viewer: Viewer) -> Response:
        return RedirectResponse(f"{BASE}/incidents", status_code=303)

    def routes(self) -> list[BaseRoute]:
        p = self.page
        return [
            Route("/", p(self.home)),
            Route("/incidents", p(self.incidents_page)),
            Route("/incidents/{number}", p(self.incident_page)),
            Route("/incidents/{number}/postmortem", p(self.postmortem_page)),
            Route("/incidents/{number}/postmortem-v{version}.md", p(self.postmortem_download)),
            Route("/incidents/{number}/export.json", p(self.export_download)),
            Route("/insights", p(self.insights_page)),
            Route("/insights/{key:str}.csv", p(self.insights_csv)),
            Route("/auth/login", self.login_page),
            Route("/auth/start", self.start),
            Route("/auth/callback", self.callback),
            Route("/auth/demo", self.demo_sign_in, methods=["POST"]),
            Route("/auth/logout", self.sign_out, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]

    def asgi(self) -> ASGIApp:
        app = Starlette(routes=self.routes())

        async def not_found(request: Request, exc: Exception) -> Response:
            return PlainTextResponse("Not found", status_code=404)

        app.add_exception_handler(404, not_found)
        return SecurityHeaders(app)


def _path_number(request: Request, name: str, what: str) -> int:
    """A number in the URL's path (``whole_number``); anything else names no page: 404."""
    value = str(request.path_params[name])
    number = whole_number(value)
    if number is None:
        raise Refused(404, f"There is no {what} {value[:40]!r}.")
    return number


def _int_param(request: Request, name: str) -> int | None:
    """A number in the query string (``whole_number``), or ``None`` if absent; anything else
    is a bad request: 400 saying what to use."""
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    number = whole_number(value)
    if number is None:
        raise InvalidInput(
            f"The {name} {value[:20]!r} is not a version number: use a whole number from 1 "
            f"to {INTEGER_MAX}."
        )
    return number


def _next(value: str | None) -> str:
    """Where to go after signing in: a console path on this site, never elsewhere."""
    if (
        value
        and value.startswith(f"{BASE}/")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) <= 2000
        and not any(ord(c) < 32 for c in value)
    ):
        return value
    return f"{BASE}/incidents"


def _same_origin(request: Request) -> bool:
    """A POST from our own pages: Origin (or Referer) names this host, or neither is sent."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.url.netloc


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX:
            return {}
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[-1] for k, v in parsed.items()}


def console_routes(console: Console | None) -> list[BaseRoute]:
    """The routes ``bot.web`` mounts: ``/console/...`` and ``/`` leading to it."""
    if console is None:
        return []

    async def root(_: Request) -> Response:
        return RedirectResponse(f"{BASE}/incidents", status_code=303)

    return [Route("/", root, methods=["GET"]), Mount(BASE, app=console.asgi())]


def console_from_environment(
    database: Database,
    policy: Policy,
    *,
    directory: Directory,
    names: NameResolver | None = None,
) -> Console:
    """The console ``firebreak serve`` mounts, configured from ``FIREBREAK_CONSOLE_*``. A bad
    value raises ``ConfigError`` naming the variable (exit 2). Without any sign-in configured
    the console still answers, with a page that says what to set."""
    return Console(database, policy, directory, load_console_settings(), names=names)
