"""A local OpenID Connect provider for the console's tests, served over real HTTP.

It behaves like Slack's: a discovery document, an authorize endpoint that signs the person in at
once (``provider.user`` says who) and redirects back with a code, a token endpoint that checks
the client credentials, code and redirect URI and returns an RS256-signed ``id_token`` carrying
``https://slack.com/user_id``, and the JWKS with the public key. ``provider.tamper`` overrides
claims of the next tokens (a wrong issuer, an expired token, a wrong nonce or audience).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.testing.harness import SERVER_THREAD

CLIENT_ID = "1234567890.0987654321"
CLIENT_SECRET = "s3cr3t-client-secret-for-tests"
TEAM_ID = "T0ACME"


PROVIDER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
"""One signing key for every provider in the process: a 2048-bit key takes a while to make."""


@dataclass
class Grant:
    user: str
    name: str
    nonce: str
    redirect_uri: str


@dataclass
class OidcProvider:
    port: int = 0
    """Where it is served (``RunningServer.port``), set before any request."""
    user: str = "U0ALICE"
    name: str = "Alice Example"
    tamper: dict[str, Any] = field(default_factory=dict)
    """Claims to override (``None`` removes one) in the tokens issued next."""
    token_requests: int = 0
    key: rsa.RSAPrivateKey = field(default_factory=lambda: PROVIDER_KEY)
    kid: str = "test-key-1"
    signing_key: rsa.RSAPrivateKey | None = None
    """Sign the next tokens with this key instead (one the JWKS does not publish)."""
    grants: dict[str, Grant] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.signing_key or self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    def claims(self, grant: Grant) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.user,
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "nonce": grant.nonce,
            "name": grant.name,
            "https://slack.com/user_id": grant.user,
            "https://slack.com/team_id": TEAM_ID,
        }
        for name, value in self.tamper.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def app(self) -> Starlette:
        async def discovery(_: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/openid/connect/authorize",
                    "token_endpoint": f"{self.issuer}/api/openid.connect.token",
                    "jwks_uri": f"{self.issuer}/openid/connect/keys",
                    "response_types_supported": ["code"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def authorize(request: Request) -> Response:
            params = request.query_params
            if params.get("client_id") != CLIENT_ID or params.get("response_type") != "code":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(16)
            self.grants[code] = Grant(
                self.user, self.name, params.get("nonce", ""), params.get("redirect_uri", "")
            )
            query = urlencode({"code": code, "state": params.get("state", "")})
            return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

        async def token(request: Request) -> Response:
            self.token_requests += 1
            form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return JSONResponse({"ok": False, "error": "invalid_client"}, status_code=401)
            grant = self.grants.pop(form.get("code", ""), None)
            if grant is None or grant.redirect_uri != form.get("redirect_uri"):
                return JSONResponse({"ok": False, "error": "invalid_grant"}, status_code=400)
            return JSONResponse(
                {
                    "ok": True,
                    "access_token": "xoxp-not-used",
                    "token_type": "Bearer",
                    "id_token": self.sign(self.claims(grant)),
                }
            )

        async def keys(_: Request) -> Response:
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return JSONResponse(
                {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/openid/connect/authorize", authorize),
                Route("/api/openid.connect.token", token, methods=["POST"]),
                Route("/openid/connect/keys", keys),
            ]
        )


class RunningServer:
    """An ASGI app served by uvicorn on a thread, on 127.0.0.1, on a port the system picks
    when it binds (``port`` once started): a port picked beforehand can be taken meanwhile by
    another test worker."""

    def __init__(self, app: Any) -> None:
        self.port = 0
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, name=SERVER_THREAD, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
