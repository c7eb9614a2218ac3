"""Who is looking: signed session cookies, Sign in with Slack (OpenID Connect), a trusted proxy.

* **Sessions** are signed cookies (itsdangerous, HMAC-SHA1 over the payload and a timestamp):
  no table, nothing to clean up. A forged cookie fails the signature, an old one the age check;
  both are refused and cleared. Cookies are HttpOnly, SameSite=Lax and Secure (configurable off
  for plain http on localhost); with Secure on, the name carries the ``__Host-`` prefix so no
  subdomain can plant one. Signing out clears the cookie (a copied cookie stays valid until it
  expires: keep ``session_hours`` short where that matters).
* **OpenID Connect** (authorization code flow): ``state`` and ``nonce`` are random, kept in a
  short-lived signed cookie and checked on the way back; the ``id_token`` must be RS256-signed by
  a key from the provider's JWKS, issued by the configured issuer, for our client id, and not
  expired. The user is the ``https://slack.com/user_id`` claim (configurable).
* **Trusted proxy**: an oauth2-proxy style header names the Slack user, believed only when the
  connection comes from a configured proxy address; from anywhere else the request is refused.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from bot.console.settings import ConsoleSettings

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,63}$")
PENDING_MAX_AGE = 600
"""Seconds a person has to finish signing in at the provider."""
DISCOVERY_TTL = 3600.0
HTTP_TIMEOUT = 10.0
CLOCK_LEEWAY = 30


class AuthError(Exception):
    """Signing in failed; the message is safe to show (it never holds a token or a secret)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Viewer:
    """The person looking at the console."""

    user_id: str
    name: str
    via: str
    """``oidc``, ``proxy`` or ``demo``."""
    csrf: str
    """The token forms must send back (sign-out)."""


# --------------------------------------------------------------------------------------------
# Signed cookies


class Sessions:
    def __init__(self, secret: str, *, max_age: timedelta, secure: bool) -> None:
        self.max_age = int(max_age.total_seconds())
        self.secure = secure
        prefix = "__Host-" if secure else ""
        self.cookie = f"{prefix}firebreak_console"
        self.pending_cookie = f"{prefix}firebreak_signin"
        self._session = URLSafeTimedSerializer(secret, salt="firebreak.console.session")
        self._pending = URLSafeTimedSerializer(secret, salt="firebreak.console.signin")
        self._forms = URLSafeTimedSerializer(secret, salt="firebreak.console.form")

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def _clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")

    def start(self, response: Response, user_id: str, name: str, via: str) -> None:
        payload = {"u": user_id, "n": name[:200], "v": via, "c": secrets.token_urlsafe(24)}
        self._set(response, self.cookie, self._session.dumps(payload), self.max_age)

    def end(self, response: Response) -> None:
        self._clear(response, self.cookie)

    def read(self, request: Request) -> Viewer | None:
        """The signed-in viewer; ``None`` without a cookie; ``AuthError`` for a forged or
        expired one (the caller clears it)."""
        raw = request.cookies.get(self.cookie)
        if not raw:
            return None
        try:
            data = self._session.loads(raw, max_age=self.max_age)
        except SignatureExpired:
            raise AuthError("Your session has expired; sign in again.", status=401) from None
        except BadSignature:
            raise AuthError(
                "Your session cookie is not valid; sign in again.", status=401
            ) from None
        if not isinstance(data, dict) or not USER_ID.match(str(data.get("u", ""))):
            raise AuthError("Your session cookie is not valid; sign in again.", status=401)
        return Viewer(
            user_id=str(data["u"]),
            name=str(data.get("n") or data["u"]),
            via=str(data.get("v", "")),
            csrf=str(data.get("c", "")),
        )

    def start_pending(self, response: Response, data: Mapping[str, str]) -> None:
        self._set(response, self.pending_cookie, self._pending.dumps(dict(data)), PENDING_MAX_AGE)

    def end_pending(self, response: Response) -> None:
        self._clear(response, self.pending_cookie)

    def take_pending(self, request: Request, response: Response) -> dict[str, str]:
        """The sign-in in progress (state, nonce, where to go next), cleared once read."""
        self.end_pending(response)
        raw = request.cookies.get(self.pending_cookie)
        if not raw:
            raise AuthError(
                "No sign-in is in progress in this browser (cookies blocked, or it took over "
                "10 minutes). Start again."
            )
        try:
            data = self._pending.loads(raw, max_age=PENDING_MAX_AGE)
        except SignatureExpired:
            raise AuthError("The sign-in took over 10 minutes; start again.") from None
        except BadSignature:
            raise AuthError("The sign-in cookie is not valid; start again.") from None
        if not isinstance(data, dict):
            raise AuthError("The sign-in cookie is not valid; start again.")
        return {str(k): str(v) for k, v in data.items()}

    def form_token(self, purpose: str) -> str:
        """A signed token for a form shown before anyone is signed in (the demo sign-in)."""
        return str(self._forms.dumps(purpose))

    def check_form_token(self, token: str, purpose: str) -> bool:
        try:
            return bool(self._forms.loads(token, max_age=PENDING_MAX_AGE) == purpose)
        except BadSignature:
            return False


def same_token(given: str, expected: str) -> bool:
    return bool(expected) and secrets.compare_digest(given.encode(), expected.encode())


# --------------------------------------------------------------------------------------------
# OpenID Connect


class OidcClient:
    """The relying party: discovery, the authorization redirect, the code exchange and the
    id_token checks. Discovery and keys are cached for an hour; an unknown key id refreshes the
    keys once (the provider rotated them)."""

    def __init__(self, settings: ConsoleSettings, http: httpx.Client | None = None) -> None:
        assert settings.oidc_client_id and settings.oidc_client_secret
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self._secret = settings.oidc_client_secret
        self.scopes = settings.oidc_scopes
        self.user_claim = settings.oidc_user_claim
        self.team_id = settings.oidc_team_id
        self.http = http
        self._lock = threading.Lock()
        self._discovery: tuple[float, dict[str, Any]] | None = None
        self._keys: dict[str, jwt.PyJWK] = {}

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        """The injected client, or a short-lived one (sign-ins are rare: nothing to pool)."""
        if self.http is not None:
            yield self.http
            return
        with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
            yield client

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with self._client() as http:
                response = http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthError(
                f"The sign-in provider's {what} could not be read ({type(exc).__name__}); "
                "try again in a minute.",
                status=502,
            ) from None
        if not isinstance(data, dict):
            raise AuthError(f"The sign-in provider's {what} is not a JSON object.", status=502)
        return data

    def discovery(self) -> dict[str, Any]:
        with self._lock:
            if self._discovery and time.monotonic() - self._discovery[0] < DISCOVERY_TTL:
                return self._discovery[1]
        data = self._get_json(f"{self.issuer}/.well-known/openid-configuration", "discovery")
        if str(data.get("issuer", "")).rstrip("/") != self.issuer:
            raise AuthError(
                "The sign-in provider names a different issuer than "
                "FIREBREAK_CONSOLE_OIDC_ISSUER; refusing it.",
                status=502,
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not str(data.get(key, "")).startswith(("https://", "http://")):
                raise AuthError(f"The sign-in provider's discovery lacks {key}.", status=502)
        with self._lock:
            self._discovery = (time.monotonic(), data)
        return data

    def authorize_url(self, redirect_uri: str, state: str, nonce: str) -> str:
        endpoint = str(self.discovery()["authorization_endpoint"])
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "scope": self.scopes,
                "redirect_uri": redirect_uri,
                "state": state,
                "nonce": nonce,
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def exchange(self, code: str, redirect_uri: str) -> str:
        """Trade the code for the id_token (client_secret_post, as Slack documents)."""
        endpoint = str(self.discovery()["token_endpoint"])
        try:
            with self._client() as http:
                response = http.post(
                    endpoint,
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": redirect_uri,
                        "client_id": self.client_id,
                        "client_secret": self._secret.get_secret_value(),
                    },
                    headers={"Accept": "application/json"},
                )
                data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthError(
                f"The sign-in provider did not answer the code exchange ({type(exc).__name__}).",
                status=502,
            ) from None
        if not isinstance(data, dict) or data.get("ok") is False or "id_token" not in data:
            error = str(data.get("error", "no id_token")) if isinstance(data, dict) else "?"
            raise AuthError(
                f"The sign-in provider refused the code: {error[:100]}. Start again.",
                status=401,
            )
        return str(data["id_token"])

    def _key(self, kid: str | None) -> jwt.PyJWK:
        for attempt in range(2):
            with self._lock:
                keys = dict(self._keys)
            if attempt == 0 and keys:
                found = keys.get(kid or "") or (next(iter(keys.values())) if kid is None else None)
                if found is not None:
                    return found
            jwks = self._get_json(str(self.discovery()["jwks_uri"]), "signing keys")
            try:
                keyset = jwt.PyJWKSet.from_dict(jwks)
            except jwt.PyJWTError:
                raise AuthError(
                    "The sign-in provider's signing keys are unusable.", status=502
                ) from None
            fresh = {str(k.key_id or ""): k for k in keyset.keys}
            with self._lock:
                self._keys = fresh
            found = fresh.get(kid or "") or (next(iter(fresh.values())) if kid is None else None)
            if found is not None:
                return found
        raise AuthError("The sign-in token is signed with a key the provider does not publish.")

    def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The token's claims, once signature, issuer, audience, expiry and nonce check out."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise AuthError("The sign-in token is not a JWT.", status=401) from None
        if header.get("alg") != "RS256":
            raise AuthError("The sign-in token is not signed with RS256.", status=401)
        key = self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                id_token,
                key=key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=CLOCK_LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("The sign-in token has expired; sign in again.", status=401) from None
        except jwt.InvalidIssuerError:
            raise AuthError(
                "The sign-in token comes from an unknown issuer; refused.", status=401
            ) from None
        except jwt.InvalidAudienceError:
            raise AuthError(
                "The sign-in token was issued for another application; refused.", status=401
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthError(
                f"The sign-in token is not valid ({type(exc).__name__}); refused.", status=401
            ) from None
        if not same_token(str(claims.get("nonce", "")), nonce):
            raise AuthError(
                "The sign-in token does not belong to this sign-in (nonce); start again.",
                status=401,
            )
        if self.team_id and claims.get("https://slack.com/team_id") != self.team_id:
            raise AuthError("You signed in with another Slack workspace; refused.", status=403)
        user = str(claims.get(self.user_claim, ""))
        if not USER_ID.match(user):
            raise AuthError(
                f"The sign-in token carries no Slack user id in {self.user_claim!r}.", status=401
            )
        return dict(claims)


# --------------------------------------------------------------------------------------------
# Trusted proxy


def proxy_user(request: Request, settings: ConsoleSettings) -> str | None:
    """The Slack user named by a trusted proxy's header; ``None`` when no such header was sent.

    A header from an address that is not a configured proxy is refused, never ignored: it means
    a request went around the proxy."""
    sent = [(h, v.strip()) for h in settings.proxy_user_headers for v in request.headers.getlist(h)]
    sent = [(h, v) for h, v in sent if v]
    if not sent:
        return None
    header, value = sent[0]
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    trusted = address is not None and any(address in net for net in settings.trusted_proxies)
    if not trusted:
        raise AuthError(
            f"The {header} header is only accepted from a trusted proxy, and this request came "
            f"from {host or 'an unknown address'}. Sign in through the proxy, or set "
            "FIREBREAK_CONSOLE_TRUSTED_PROXIES.",
            status=403,
        )
    if len({v for _, v in sent}) > 1:
        # A proxy that sets one header may pass another through from the client unchanged.
        raise AuthError(
            f"The user headers disagree ({', '.join(sorted({h for h, _ in sent}))} name "
            "different users), so none of them is trusted. Configure the proxy to remove the "
            "user headers a client sends, or set FIREBREAK_CONSOLE_PROXY_USER_HEADERS to the "
            "one header the proxy sets.",
            status=403,
        )
    if not USER_ID.match(value):
        raise AuthError(
            f"The {header} header does not hold a Slack user id (U...). Configure the proxy to "
            "pass it (oauth2-proxy: --user-id-claim=https://slack.com/user_id).",
            status=403,
        )
    return value
