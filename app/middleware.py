"""Pure ASGI middlewares: request context (id, metrics, last-resort 500), security headers,
client-disconnect watching, API keys, body limit and body timeout.

Pure ASGI rather than ``BaseHTTPMiddleware`` because they act on the raw message stream: the body
limit counts ``http.request`` chunks as they arrive (a 100 MB upload is refused after 25 MB, not
after being read), the body timeout bounds how long they may take, the API-key check answers
before any body byte is read, and the disconnect watcher listens for ``http.disconnect`` once the
body is in.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    REQUEST_ID_SCOPE_KEY,
    BodyTimeoutError,
    BodyTooLargeError,
    UnauthorizedError,
    error_response,
    internal_error_response,
    response_for,
)
from app.jobs import CLIENT_GONE
from app.metrics import Metrics
from pipeline.cancel import CancelToken, reset_token, use_token

log = logging.getLogger(__name__)
access_log = logging.getLogger("markless.access")

REQUEST_ID_HEADER = "X-Request-ID"
START_SCOPE_KEY = "markless.start"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("markless_request_id", default="-")


class RequestIdLogFilter(logging.Filter):
    """Adds ``record.request_id`` so every log line of a request (worker threads too) carries it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _client_request_id(scope: Scope) -> str | None:
    value = Headers(scope=scope).get(REQUEST_ID_HEADER)
    return value if value is not None and _REQUEST_ID_RE.match(value) else None


class RequestContextMiddleware:
    """Outermost app middleware: request id, access log, metrics and the last-resort 500.

    The id comes from the client's ``X-Request-ID`` when it is a sane token, else a fresh
    UUID; it is echoed on every response. Exceptions nothing else handled are logged with
    their traceback and the id, and answered with a generic JSON 500. On lifespan startup
    failures caused by configuration (``state.startup_error``), the server gets that one
    line instead of a traceback.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Sequence[BaseRoute], state: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        request_id = _client_request_id(scope) or uuid.uuid4().hex
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        scope[START_SCOPE_KEY] = start
        token = request_id_var.set(request_id)
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER.lower() not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:
                raise  # nothing sensible can be sent any more; the server drops the connection
            await internal_error_response(request_id)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = self._route_label(scope)
            method = scope["method"]
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=route).observe(elapsed)
            access_log.info("%s %s %d %.1f ms", method, scope["path"], status, elapsed * 1000)
            request_id_var.reset(token)

    def _route_label(self, scope: Scope) -> str:
        """The route *template* (bounded label set); 'unmatched' for paths no route knows."""
        route = scope.get("route")
        if route is None:
            route = self._match(scope)
        path = getattr(route, "path", None)
        return path if isinstance(path, str) and path else "unmatched"

    def _match(self, scope: Scope) -> BaseRoute | None:
        """Requests refused before routing (body limit, API key) still get their route's label."""
        path = scope.get("path", "")
        for route in self.routes:
            regex = getattr(route, "path_regex", None)
            if regex is not None and regex.match(path):
                return route
        return None

    def _lifespan_send(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            error = getattr(self.state, "startup_error", None)
            if message["type"] == "lifespan.startup.failed" and error:
                message = {**message, "message": error}
            await send(message)

        return wrapped


class ApiKeyMiddleware:
    """Requires ``Authorization: Bearer <key>`` on protected paths, checked before the body is read.

    Keys are compared in constant time, against every configured key (no early exit), so
    response timing reveals nothing about how much of a guess was right. Preflight
    ``OPTIONS`` requests carry no credentials by design and pass through.
    """

    def __init__(self, app: ASGIApp, *, keys: Iterable[bytes], protected: tuple[str, ...] = ("/v1",)) -> None:
        self.app = app
        self.keys = [bytes(k) for k in keys]
        self.protected = protected

    def _is_protected(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.protected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.keys
            or scope["method"] == "OPTIONS"
            or not self._is_protected(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        if header is None:
            error = UnauthorizedError(
                "an API key is required: send 'Authorization: Bearer <key>'", invalid_token=False
            )
        else:
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and self.valid(token.strip().encode("utf-8", "surrogateescape")):
                await self.app(scope, receive, send)
                return
            error = UnauthorizedError("invalid API key", invalid_token=True)
        await response_for(error)(scope, receive, send)

    def valid(self, token: bytes) -> bool:
        """Constant-time membership test of ``token`` among the keys."""
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(token, key)
        return ok and bool(token)


class HttpMiddleware:
    """A pure-ASGI middleware that acts on HTTP requests only: lifespan and websocket scopes pass
    straight through, so each subclass writes just its ``handle``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (``scope["type"] == "http"``)."""
        raise NotImplementedError


class BodyLimitMiddleware(HttpMiddleware):
    """Refuses bodies over ``max_bytes`` (at once on ``Content-Length``, else while streaming)
    and bodies that take longer than ``timeout_s`` to arrive (a slow-loris upload).

    Chunks are counted as the app pulls them; the first one past the limit raises
    ``BodyTooLargeError`` inside whatever is reading (FastAPI's form parser turns it into a
    413 through the error handlers), so at most ``max_bytes`` plus one chunk is ever read.
    Waiting for a chunk past the deadline raises ``BodyTimeoutError`` (408, connection closed);
    the deadline counts from the request's arrival and ends with the last body chunk.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float | None = None) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return

        received = 0
        started = False
        complete = False
        deadline = (
            None
            if self.timeout_s is None
            else scope.get(START_SCOPE_KEY, time.perf_counter()) + self.timeout_s
        )

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete or deadline is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - time.perf_counter()))
                except TimeoutError:
                    raise BodyTimeoutError(self.timeout_s or 0.0) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
                complete = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._too_large(scope, receive, send)
        except BodyTimeoutError as exc:
            if started:
                raise
            response = error_response(408, "request_timeout", str(exc.detail), dict(exc.headers or {}))
            await response(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = BodyTooLargeError(self.max_bytes)
        response = error_response(413, "body_too_large", str(exc.detail), dict(exc.headers or {}))
        await response(scope, receive, send)


class DisconnectMiddleware(HttpMiddleware):
    """Cancels a request's jobs when its client disconnects.

    Once the body is in, the only message left for a request is ``http.disconnect``: a task
    waits for it and cancels the request's ``CancelToken`` (made current for the request, so the
    ``JobQueue`` and the pipeline's stage checks see it). Later ``receive`` calls of the app get
    that same message, so nothing is consumed twice.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = CancelToken()
        watcher: asyncio.Task[Message] | None = None

        async def watch() -> Message:
            """The next message; a disconnect cancels the request's token."""
            message = await receive()
            if message["type"] == "http.disconnect":
                token.cancel(CLIENT_GONE)
            return message

        async def watched_receive() -> Message:
            nonlocal watcher
            if watcher is not None:
                return await asyncio.shield(watcher)
            message = await watch()
            if message["type"] != "http.disconnect" and not message.get("more_body", False):
                watcher = asyncio.ensure_future(watch())
            return message

        previous = use_token(token)
        try:
            await self.app(scope, watched_receive, send)
        finally:
            if watcher is not None:
                watcher.cancel()
            reset_token(previous)


SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
)
"""Sent on every response: no MIME sniffing, no framing by other sites, no referrer leaks, and a
policy under which the page and /docs load only this server's own files."""


class SecurityHeadersMiddleware(HttpMiddleware):
    """Adds ``SECURITY_HEADERS`` to every HTTP response (a route's own value wins)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name.lower() not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
