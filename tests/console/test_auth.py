"""Signing in to the console: Sign in with Slack (OIDC), the trusted proxy, sessions, sign-out."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx2
from cryptography.hazmat.primitives.asymmetric import rsa
from freezegun import freeze_time
from starlette.responses import Response
from starlette.testclient import TestClient

from bot.clock import utcnow
from bot.config import Policy
from bot.console import Console
from bot.console.auth import Sessions
from bot.console.demo import DEMO_USERS, demo_app, demo_console, sample_directory
from bot.db import Database
from tests.console.conftest import (
    ADMIN,
    MEMBER,
    MakeConsole,
    client_for,
    declare,
    sign_in,
)
from tests.console.oidc_provider import OidcProvider

COOKIE = "__Host-firebreak_console"


def start_and_authorize(client: TestClient, next_path: str = "/console/incidents") -> str:
    """Start signing in and let the provider sign the person in; returns the callback path."""
    started = client.get("/console/auth/start", params={"next": next_path})
    assert started.status_code == 303
    at_provider = httpx2.get(started.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302
    return str(at_provider.headers["location"]).removeprefix("https://testserver")


def oidc_sign_in(client: TestClient, next_path: str = "/console/incidents") -> httpx2.Response:
    return client.get(start_and_authorize(client, next_path))


def set_cookies(response: httpx2.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_sign_in_with_slack_starts_a_session_with_safe_cookie_flags(
    client: TestClient, oidc: OidcProvider
) -> None:
    oidc.user, oidc.name = "U0ALICE", "Alice Example"
    done = oidc_sign_in(client, "/console/insights?period=month")
    assert done.status_code == 303
    assert done.headers["location"] == "/console/insights?period=month"
    session = next(c for c in set_cookies(done) if c.startswith(COOKIE + "="))
    flags = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/", "max-age=43200"} <= flags
    page = client.get("/console/incidents")
    assert page.status_code == 200
    assert "Alice Example" in page.text
    assert oidc.token_requests == 1


def test_a_wrong_state_is_refused_and_no_session_is_started(
    client: TestClient, oidc: OidcProvider
) -> None:
    callback = start_and_authorize(client)
    forged = re.sub(r"state=[^&]+", "state=attacker-chosen", callback)
    answer = client.get(forged)
    assert answer.status_code == 400
    assert "does not match the sign-in this browser started" in answer.text
    assert not any(c.startswith(COOKIE + "=") and "Max-Age=0" not in c for c in set_cookies(answer))
    assert oidc.token_requests == 0
    assert client.get("/console/incidents").status_code == 303


def test_a_callback_without_a_sign_in_in_progress_is_refused(
    console: Console, oidc: OidcProvider
) -> None:
    with client_for(console) as first, client_for(console) as second:
        callback = start_and_authorize(first)
        answer = second.get(callback)  # another browser: no pending sign-in cookie
    assert answer.status_code == 400
    assert "No sign-in is in progress in this browser" in answer.text
    assert oidc.token_requests == 0


def test_a_token_for_another_nonce_is_refused(client: TestClient, oidc: OidcProvider) -> None:
    oidc.tamper = {"nonce": "nonce-of-another-sign-in"}
    answer = oidc_sign_in(client)
    assert answer.status_code == 401
    assert "does not belong to this sign-in (nonce)" in answer.text
    assert client.get("/console/incidents").status_code == 303


def test_a_token_from_an_unknown_issuer_is_refused(client: TestClient, oidc: OidcProvider) -> None:
    oidc.tamper = {"iss": "https://evil.example"}
    answer = oidc_sign_in(client)
    assert answer.status_code == 401
    assert "unknown issuer" in answer.text


def test_an_expired_token_is_refused(client: TestClient, oidc: OidcProvider) -> None:
    now = int(time.time())
    oidc.tamper = {"exp": now - 3600, "iat": now - 7200}
    answer = oidc_sign_in(client)
    assert answer.status_code == 401
    assert "The sign-in token has expired" in answer.text


def test_a_token_for_another_app_is_refused(client: TestClient, oidc: OidcProvider) -> None:
    oidc.tamper = {"aud": "someone-elses-client-id"}
    answer = oidc_sign_in(client)
    assert answer.status_code == 401
    assert "issued for another application" in answer.text


def test_a_token_without_a_slack_user_id_is_refused(client: TestClient, oidc: OidcProvider) -> None:
    oidc.tamper = {"https://slack.com/user_id": None}
    answer = oidc_sign_in(client)
    assert answer.status_code == 401
    assert "carries no Slack user id" in answer.text


def test_another_workspace_is_refused_when_the_team_is_pinned(
    make_console: MakeConsole, oidc: OidcProvider
) -> None:
    with client_for(make_console(oidc_team_id="T0OTHER")) as client:
        answer = oidc_sign_in(client)
    assert answer.status_code == 403
    assert "another Slack workspace" in answer.text


def test_a_token_signed_with_another_key_is_refused(client: TestClient, oidc: OidcProvider) -> None:
    oidc.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = oidc_sign_in(client)
    assert answer.status_code == 401
    assert "The sign-in token is not valid (InvalidSignatureError)" in answer.text


def test_the_provider_refusing_the_code_is_reported(
    make_console: MakeConsole, oidc: OidcProvider
) -> None:
    with client_for(make_console(oidc_client_secret="wrong-secret")) as client:
        answer = oidc_sign_in(client)
    assert answer.status_code == 401
    assert "refused the code: invalid_client" in answer.text
    assert "wrong-secret" not in answer.text


def test_slack_saying_no_is_reported(client: TestClient) -> None:
    answer = client.get("/console/auth/callback", params={"error": "access_denied"})
    assert answer.status_code == 401
    assert "Slack did not sign you in: access_denied" in answer.text


def test_after_sign_in_the_browser_only_goes_to_console_pages(
    client: TestClient, oidc: OidcProvider
) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/console\\@evil", "/metrics"):
        client.cookies.clear()
        done = oidc_sign_in(client, target)
        assert done.status_code == 303
        assert done.headers["location"] == "/console/incidents"


# --------------------------------------------------------------------------------------------
# Session cookies


def test_anonymous_requests_are_sent_to_sign_in_but_health_and_metrics_are_open(
    client: TestClient, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, "Checkout down")
    for path in (
        "/console/incidents",
        f"/console/incidents/{number}",
        f"/console/incidents/{number}/export.json",
        f"/console/incidents/{number}/postmortem",
        "/console/insights",
        "/console/insights/severity.csv",
    ):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/auth/login?next=")
        assert "Checkout down" not in answer.text
    assert client.get("/").headers["location"] == "/console/incidents"
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_a_forged_session_cookie_is_refused_and_cleared(
    client: TestClient, db: Database, policy: Policy
) -> None:
    declare(db, policy, "Checkout down")
    client.cookies.set(COOKIE, "eyJ1IjoiVTBBRE1JTiJ9.ZmFrZQ.c2lnbmF0dXJl")
    answer = client.get("/console/incidents")
    assert answer.status_code == 401
    assert "Your session cookie is not valid; sign in again." in answer.text
    assert "Checkout down" not in answer.text
    assert any(c.startswith(COOKIE + '=""') for c in set_cookies(answer))


def test_a_cookie_signed_with_another_secret_is_refused(console: Console) -> None:
    other = Sessions("another-secret", max_age=timedelta(hours=1), secure=True)
    response = Response()
    other.start(response, ADMIN, "Ada", "oidc")
    value = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    with client_for(console) as client:
        client.cookies.set(COOKIE, value)
        answer = client.get("/console/incidents")
    assert answer.status_code == 401


def test_an_expired_session_cookie_is_refused(console: Console) -> None:
    with client_for(console) as client:
        with freeze_time(utcnow() - timedelta(hours=13)):
            sign_in(client, console, ADMIN)
        answer = client.get("/console/incidents")
        assert answer.status_code == 401
        assert "Your session has expired; sign in again." in answer.text
        with freeze_time(utcnow() - timedelta(hours=11)):
            sign_in(client, console, ADMIN)
        assert client.get("/console/incidents").status_code == 200


def test_a_demo_session_is_refused_outside_the_demo(console: Console) -> None:
    response = Response()
    console.sessions.start(response, ADMIN, "Ada", "demo")
    value = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    with client_for(console) as client:
        client.cookies.set(COOKIE, value)
        answer = client.get("/console/incidents")
    assert answer.status_code == 401
    assert "Demo sessions are not accepted here" in answer.text
    assert "/console/auth/demo" not in answer.text


def test_without_any_sign_in_configured_the_console_says_what_to_set(
    make_console: MakeConsole,
) -> None:
    console = make_console(oidc_client_id=None, oidc_client_secret=None)
    with client_for(console) as client:
        answer = client.get("/console/auth/login")
    assert answer.status_code == 503
    assert "FIREBREAK_CONSOLE_OIDC_CLIENT_ID" in answer.text
    assert "FIREBREAK_CONSOLE_TRUSTED_PROXIES" in answer.text


def test_sign_out_needs_the_form_token_and_our_origin(console: Console) -> None:
    with client_for(console) as client:
        sign_in(client, console, ADMIN)
        page = client.get("/console/incidents")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        refused = client.post("/console/auth/logout", data={"csrf": "guess"})
        assert refused.status_code == 403
        cross = client.post(
            "/console/auth/logout",
            data={"csrf": token.group(1)},
            headers={"origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        assert client.get("/console/incidents").status_code == 200
        done = client.post(
            "/console/auth/logout",
            data={"csrf": token.group(1)},
            headers={"origin": "https://testserver"},
        )
        assert done.status_code == 200
        assert "You are signed out." in done.text
        assert any(c.startswith(COOKIE + '=""') for c in set_cookies(done))
        client.cookies.clear()
        assert client.get("/console/incidents").status_code == 303


def test_plain_http_cookies_when_secure_is_turned_off(make_console: MakeConsole) -> None:
    console = make_console(cookie_secure=False)
    response = Response()
    console.sessions.start(response, ADMIN, "Ada", "oidc")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("firebreak_console=")
    assert "Secure" not in cookie
    assert "HttpOnly" in cookie


# --------------------------------------------------------------------------------------------
# Trusted proxy


def test_a_proxy_header_from_an_untrusted_address_is_refused(
    make_console: MakeConsole, db: Database, policy: Policy
) -> None:
    declare(db, policy, "Checkout down")
    console = make_console(trusted_proxies="10.0.0.0/24")
    with client_for(console, client=("192.0.2.7", 40000)) as client:
        answer = client.get("/console/incidents", headers={"X-Forwarded-User": ADMIN})
    assert answer.status_code == 403
    assert "only accepted from a trusted proxy" in answer.text
    assert "192.0.2.7" in answer.text
    assert "Checkout down" not in answer.text


def test_a_proxy_header_is_refused_when_no_proxy_is_configured(
    client: TestClient, db: Database, policy: Policy
) -> None:
    declare(db, policy, "Checkout down")
    answer = client.get("/console/incidents", headers={"X-Auth-Request-User": ADMIN})
    assert answer.status_code == 403
    assert "Checkout down" not in answer.text


def test_a_trusted_proxy_names_the_viewer(
    make_console: MakeConsole, db: Database, policy: Policy
) -> None:
    declare(db, policy, "Checkout down")
    console = make_console(trusted_proxies="10.0.0.0/24, 127.0.0.1")
    with client_for(console, client=("10.0.0.9", 40000)) as client:
        answer = client.get("/console/incidents", headers={"X-Auth-Request-User": ADMIN})
        assert answer.status_code == 200
        assert "Checkout down" in answer.text
        assert "Ada Admin" in answer.text
        assert "Sign out" not in answer.text  # the proxy owns the session
        email = client.get("/console/incidents", headers={"X-Forwarded-User": "ada@acme.example"})
        assert email.status_code == 403
        assert "does not hold a Slack user id" in email.text


def test_user_headers_that_name_different_people_are_refused(
    make_console: MakeConsole, db: Database, policy: Policy
) -> None:
    """A proxy that sets X-Auth-Request-User may pass the client's own X-Forwarded-User through:
    whichever header is read first, two names mean neither can be trusted."""
    declare(db, policy, "Checkout down")
    console = make_console(trusted_proxies="10.0.0.0/24")
    with client_for(console, client=("10.0.0.9", 40000)) as client:
        spoofed = client.get(
            "/console/incidents",
            headers={"X-Forwarded-User": ADMIN, "X-Auth-Request-User": MEMBER},
        )
        repeated = client.get(
            "/console/incidents",
            headers=[("X-Auth-Request-User", ADMIN), ("X-Auth-Request-User", MEMBER)],
        )
        agreeing = client.get(
            "/console/incidents",
            headers={"X-Forwarded-User": MEMBER, "X-Auth-Request-User": MEMBER},
        )
    for answer in (spoofed, repeated):
        assert answer.status_code == 403
        assert "The user headers disagree" in answer.text
        assert "Checkout down" not in answer.text
    assert agreeing.status_code == 200
    assert "Checkout down" in agreeing.text


def test_the_demo_sign_in_exists_only_in_the_demo(db: Database, policy: Policy) -> None:
    console = demo_console(db, policy, directory=sample_directory())
    with TestClient(demo_app(console, db), follow_redirects=False) as client:
        login = client.get("/console/auth/login", params={"next": "/console/insights"})
        assert [u.name for u in DEMO_USERS] == ["Dana Reyes", "Sam Okafor"]
        assert "Dana Reyes" in login.text and "Sign in with Slack" not in login.text
        token = re.search(r'name="token" value="([^"]+)"', login.text)
        assert token is not None
        stranger = client.post(
            "/console/auth/demo", data={"token": token.group(1), "user": "U0NOBODY"}
        )
        assert stranger.status_code == 400
        forged = client.post("/console/auth/demo", data={"token": "forged", "user": "U0SAM"})
        assert forged.status_code == 403
        done = client.post(
            "/console/auth/demo",
            data={"token": token.group(1), "user": "U0SAM", "next": "/console/insights"},
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/console/insights"
        assert "Sam Okafor" in client.get("/console/incidents").text
    plain = Console(db, policy, sample_directory(), console.settings)
    with client_for(plain) as client:
        refused = client.post("/console/auth/demo", data={"token": token.group(1), "user": "U0SAM"})
        assert refused.status_code == 404
