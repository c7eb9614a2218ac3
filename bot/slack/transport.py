"""The Web API client's connections: kept open and reused, as a browser or ``curl`` would.

``slack_sdk``'s ``WebClient`` opens a new connection for every call (urllib): a DNS lookup, a
TCP connect and, on Slack's HTTPS, a TLS handshake each time, about half of the CPU a call costs
Firebreak (bench/tls.py). ``KeepAliveWebClient`` sends the very request the SDK built through a
pool of persistent HTTP/1.1 connections (urllib3, one pool per client, shared by every thread) and
hands the SDK back what urllib would have: the answer, or an ``HTTPError`` for a 4xx or 5xx. So
the SDK's parsing and errors, and the gateway's reading of them, stay exactly as they are. The
answers sent to a request's ``response_url`` (``KeepAliveWebClient.webhook``: the SDK's
``WebhookClient``) go through the same pool the same way.

A failure keeps its meaning for retries (``bot.slack.gateway``): a connection that could not be
opened (refused, no DNS answer, no TLS handshake) sent nothing; one that broke after the request
was written may have reached Slack, and the retry checks before repeating.
"""

from __future__ import annotations

import ssl
import weakref
from email.message import Message
from http.client import HTTPMessage
from io import BytesIO
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

import urllib3
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient, WebhookResponse
from urllib3.exceptions import (
    ConnectTimeoutError,
    EmptyPoolError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import (
    HTTPError as Urllib3Error,
)

KEPT_OPEN = 16
"""Connections kept open per Slack host. Slack closes idle ones on its side; a connection found
closed is replaced before the request is sent (urllib3 checks before reusing one). More threads
calling at once open more connections, closed after use."""


class KeepAliveWebClient(WebClient):
    """A ``WebClient`` whose calls reuse open connections (``ssl``: the TLS context they use)."""

    def __init__(self, *, ssl: ssl.SSLContext, timeout: int, **kwargs: Any) -> None:
        super().__init__(ssl=ssl, timeout=timeout, **kwargs)
        # urllib3 turns Nagle off (TCP_NODELAY): a request's headers and body are two writes,
        # and the body must not wait for the acknowledgement of the headers. No retries and no
        # redirects: every retry is the effect runner's, which knows whether one is safe.
        self._http = urllib3.PoolManager(
            maxsize=KEPT_OPEN,
            ssl_context=ssl,
            timeout=urllib3.Timeout(total=float(timeout)),
            retries=False,
        )
        # Open connections are closed with the client, even one nobody closed.
        self._close = weakref.finalize(self, self._http.clear)

    def close(self) -> None:
        """Close the open connections; the client cannot be used afterwards."""
        self._close()

    def webhook(self, url: str) -> WebhookClient:
        """The SDK's client for a ``response_url``, sending over this client's connections.
        Without retry handlers, as this client: every retry is the effect runner's."""
        if self.proxy is not None:
            return WebhookClient(
                url, timeout=self.timeout, ssl=self.ssl, proxy=self.proxy, retry_handlers=[]
            )
        return _KeepAliveWebhookClient(url, self._http, timeout=self.timeout, ssl=self.ssl)

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy is not None or not url.lower().startswith(("http://", "https://")):
            return super()._perform_urllib_http_request_internal(url, req)
        answer, headers = _send(self._http, url, req)
        if headers.get_content_type() == "application/gzip":
            return {"status": answer.status, "headers": headers, "body": answer.data}
        charset = headers.get_content_charset() or "utf-8"
        return {"status": answer.status, "headers": headers, "body": answer.data.decode(charset)}


class _KeepAliveWebhookClient(WebhookClient):
    """A ``WebhookClient`` whose requests go through a ``KeepAliveWebClient``'s pool."""

    def __init__(self, url: str, http: urllib3.PoolManager, *, timeout: int, ssl: Any) -> None:
        super().__init__(url, timeout=timeout, ssl=ssl, retry_handlers=[])
        self._http = http

    def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
        if self.proxy is not None or not url.lower().startswith(("http://", "https://")):
            return super()._perform_http_request_internal(url, req)  # type: ignore[no-any-return]
        answer, headers = _send(self._http, url, req)
        charset = headers.get_content_charset() or "utf-8"
        return WebhookResponse(
            url=url,
            status_code=answer.status,
            body=answer.data.decode(charset),
            headers=headers,  # type: ignore[arg-type]  # what urllib gives the SDK
        )


def _send(
    http: urllib3.PoolManager, url: str, req: Request
) -> tuple[urllib3.BaseHTTPResponse, Message]:
    """Send the request the SDK built over ``http``'s open connections; fail as urllib would
    (``URLError``, or ``HTTPError`` for a 4xx or 5xx), so the SDK turns that into its errors."""
    data = req.data if isinstance(req.data, bytes) else None
    try:
        answer = http.request(req.get_method(), url, body=data, headers=dict(req.header_items()))
    except (NewConnectionError, ConnectTimeoutError, SSLError, EmptyPoolError) as exc:
        # Nothing was sent (no connection, no DNS answer, no TLS handshake): as urllib says of
        # a refused connection. (A name not resolved is a NewConnectionError.)
        raise URLError(ConnectionRefusedError(str(exc))) from None
    except ReadTimeoutError as exc:
        raise URLError(TimeoutError(str(exc))) from None
    except Urllib3Error as exc:  # broken after sending: reset, closed, garbled
        raise URLError(ConnectionResetError(str(exc))) from None
    headers = _message(answer.headers)
    if answer.status >= 400:
        raise HTTPError(url, answer.status, answer.reason or "", headers, BytesIO(answer.data))
    return answer, headers


def _message(headers: urllib3.HTTPHeaderDict) -> Message:
    """The answer's headers as urllib gives them to the SDK."""
    message = HTTPMessage()
    for name, value in headers.iteritems():
        message[name] = value
    return message
