"""The HTTP side: the Web API under ``/api/``, upload URLs under ``/upload/v1/`` and response
URLs under ``/response/``, on 127.0.0.1 at a free port. One critical section per call keeps a
state change and its place in ``calls`` in agreement."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from bot.sandbox.args import (
    Args,
    deep_copy,
    parse_multipart,
    recorded_args,
)
from bot.sandbox.faults import Answer, Faults, json_answer
from bot.sandbox.records import (
    APP_TOKEN_METHODS,
    JSON,
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    ApiCall,
    ApiError,
    Failure,
    FakeSlackError,
    ResponsePost,
)
from bot.sandbox.tls import Certificate


class HttpServer(Faults):
    _server: _Server | None = None
    _thread: threading.Thread | None = None
    tls: Certificate | None = None
    """Serve HTTPS with this certificate (set before ``start``); plain HTTP otherwise."""

    # ----------------------------------------------------------------------------------------
    # Lifecycle

    def start(self) -> Self:
        """Listen on 127.0.0.1 at a free port and serve requests on a background thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        if self.tls is not None:
            server.socket = self.tls.server_context().wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-slack", kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        with self._lock:
            self._release_hangs()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise FakeSlackError("the fake Slack is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL, usable as ``WebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    @property
    def connections_opened(self) -> int:
        """Connections clients have opened to the fake since it started."""
        return self._server.accepted if self._server is not None else 0

    def close_idle_connections(self) -> None:
        """Close every open connection, as Slack does with connections left idle."""
        if self._server is not None:
            self._server.close_connections()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of requests the fake itself failed on (should stay empty)."""
        with self._lock:
            return list(self._errors)

    # ----------------------------------------------------------------------------------------
    # HTTP

    def _handle(self, handler: _Handler) -> None:
        try:
            parts = urlsplit(handler.path)
            length = int(handler.headers.get("Content-Length") or 0)
            body = handler.rfile.read(length) if length > 0 else b""
            if parts.path.startswith("/api/"):
                answer = self._handle_api(parts.path[len("/api/") :], parts.query, handler, body)
            elif parts.path.startswith("/upload/v1/"):
                answer = Answer(
                    *self._handle_upload(parts.path[len("/upload/v1/") :], handler, body)
                )
            elif parts.path.startswith("/response/"):
                answer = Answer(
                    *self._handle_response_url(parts.path.rsplit("/", 1)[-1], handler, body)
                )
            else:
                answer = Answer(404, {"Content-Type": "text/plain"}, b"not found")
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
            answer = json_answer(500, {"ok": False, "error": "fatal_error"})
        if answer.drop is not None:
            self._drop(handler, answer)
            return
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)

    @staticmethod
    def _drop(handler: _Handler, answer: Answer) -> None:
        """Close the connection without an answer: a TCP reset at once, or after a hang."""
        if answer.drop == "hang" and answer.release is not None:
            answer.release.wait(answer.hold)
        handler.close_connection = True
        with contextlib.suppress(OSError):
            # Linger 0: close() sends a reset instead of an orderly end of stream.
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()

    def _parse_body(self, query: str, handler: _Handler, body: bytes) -> JSON:
        args: JSON = dict(parse_qsl(query, keep_blank_values=True))
        content_type = handler.headers.get("Content-Type", "")
        kind = content_type.split(";")[0].strip().lower()
        if not body:
            return args
        if kind == "application/json":
            try:
                data = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ApiError("invalid_json") from None
            if not isinstance(data, dict):
                raise ApiError("invalid_json")
            args.update(data)
        elif kind == "multipart/form-data":
            args.update(parse_multipart(content_type, body))
        else:
            try:
                text = body.decode("utf-8")
                args.update(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
            except (UnicodeDecodeError, ValueError):
                raise ApiError("invalid_form_data") from None
        return args

    def _handle_api(self, method: str, query: str, handler: _Handler, body: bytes) -> Answer:
        args: JSON = {}
        implementation: Callable[[Args], JSON] | None = None
        try:
            args = self._parse_body(query, handler, body)
            token = args.pop("token", None)
            authorization = handler.headers.get("Authorization", "")
            if authorization.lower().startswith("bearer "):
                token = authorization[len("bearer ") :].strip()
            implementation = self._methods.get(method)
            if implementation is None:
                raise ApiError("unknown_method", req_method=method)
            if not token:
                raise ApiError("not_authed")
            if token not in (self.token, self.app_token):
                raise ApiError("invalid_auth")
            if (token == self.app_token) != (method in APP_TOKEN_METHODS):
                raise ApiError("not_allowed_token_type")
        except ApiError as exc:
            implementation = None
            response: JSON = {"ok": False, "error": exc.code, **exc.extra}
        answer = json_answer(200, {})
        outcome: JSON | None = None
        failure: Failure | None = None
        # One critical section per call: the state change and its place in ``calls`` agree
        # even when replicas or threads call at once.
        with self._lock:
            if implementation is not None:
                failure = self._take_failure(method)
                if failure is None or failure.after_work:
                    try:
                        outcome = {"ok": True, **implementation(Args(args))}
                    except ApiError as exc:
                        outcome = {"ok": False, "error": exc.code, **exc.extra}
                    response = outcome
                if failure is not None:
                    answer, response = self._fault_answer(failure)
                else:
                    answer = json_answer(200, response)
            else:
                answer = json_answer(200, response)
            self._calls.append(
                ApiCall(
                    method,
                    recorded_args(args),
                    deep_copy(response),
                    answer.status,
                    self.now(),
                    failure.label if failure is not None else None,
                    deep_copy(outcome),
                )
            )
        return answer

    def _handle_upload(
        self, upload_token: str, handler: _Handler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        content_type = handler.headers.get("Content-Type", "")
        content = body
        if content_type.lower().startswith("multipart/form-data"):
            try:
                fields = parse_multipart(content_type, body)
            except ApiError:
                return 400, {"Content-Type": "text/plain"}, b"invalid multipart body"
            content = next((v for v in fields.values() if isinstance(v, bytes)), b"")
        with self._lock:
            found = next((f for f in self._files.values() if f.upload_token == upload_token), None)
            if found is None or found.completed:
                return 404, {"Content-Type": "text/plain"}, b"upload URL not found"
            found.content = content
        return 200, {"Content-Type": "text/plain"}, f"OK - {len(content)}".encode()

    def _handle_response_url(
        self, url_id: str, handler: _Handler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        with self._lock:
            target = self._response_urls.get(url_id)
            url = target.url if target else f"{self.base_url}/response/{url_id}"
            payload: JSON = {}
            error: str | None = None
            status = 200
            try:
                payload = self._response_payload(handler, body)
            except ApiError as exc:
                error, status = exc.code, 400
            if target is None:
                error, status = "no_such_url", 404
            elif error is None and self.now() - target.issued_at > RESPONSE_URL_TTL:
                error, status = "expired_url", 404
            elif error is None and target.uses >= RESPONSE_URL_USES:
                error, status = "used_url", 404
            if error is None and target is not None:
                target.uses += 1
                error = self._deliver(
                    payload, target.channel, target.user, target.original, "response_url"
                )
                if error is not None:
                    status = 400
            self._response_posts.append(ResponsePost(url, payload, self.now(), status, error))
        response = {"ok": error is None, **({"error": error} if error else {})}
        return status, headers, json.dumps(response).encode("utf-8")

    @staticmethod
    def _response_payload(handler: _Handler, body: bytes) -> JSON:
        kind = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
        try:
            text = body.decode("utf-8")
            if kind == "application/x-www-form-urlencoded":
                text = dict(parse_qsl(text)).get("payload", "")
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise ApiError("invalid_payload") from None
        if not isinstance(data, dict):
            raise ApiError("invalid_payload")
        return data


class _Server(ThreadingHTTPServer):
    """Connections stay open between calls (HTTP/1.1), so the server keeps them: stopping it
    closes them too, and a client then finds Slack gone, as it would."""

    daemon_threads = True
    fake: HttpServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_connections: set[Any] = set()
        self.connections_lock = threading.Lock()
        self.accepted = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
            self.accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections, self.open_connections = self.open_connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSlack/1.0"
    protocol_version = "HTTP/1.1"  # connections stay open between calls, as Slack's do
    disable_nagle_algorithm = True  # an answer's headers and body are two writes

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log: the fake records every call instead."""
