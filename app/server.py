"""uvicorn, configured for clients that are slow or hostile on purpose.

uvicorn bounds idle keep-alive connections but not how long a client may take to send its request
line and headers: a slow-loris client trickling header bytes keeps a connection (and its memory)
forever. ``GuardedH11Protocol`` closes a connection whose headers are not complete within
``header_timeout_s`` of its first byte (or of the connection, if nothing comes), and answers
malformed HTTP with the service's JSON error shape instead of uvicorn's plain text. The body's
deadline is the app's (``BodyLimitMiddleware``), where a JSON 408 can still be sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.errors import error_body
from app.settings import Settings

_BAD_REQUEST = json.dumps(error_body("bad_request", "malformed HTTP request")).encode()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a JSON 400."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._header_timer is None:
            self._arm_header_timer()  # the first bytes of a keep-alive connection's next request
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()  # headers complete: the app's body deadline takes over

    def on_response_complete(self) -> None:
        self._disarm_header_timer()  # uvicorn's keep-alive timer bounds the idle wait
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(
                self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request"))
            )
            self.transport.write(self.conn.send(h11.Data(data=_BAD_REQUEST)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass  # the connection is in no state to answer: just close it
        self.transport.close()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info(
                "closing a connection whose request headers took over %.1f s", self.header_timeout_s
            )
            self.transport.close()


def uvicorn_config(app: Any, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    """The server configuration ``markless serve`` runs (and the tests start)."""
    protocol = type(
        "MarklessH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": settings.header_timeout_s}
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_config=None,  # configured by the caller
        access_log=False,  # RequestContextMiddleware logs each request with its id
        timeout_graceful_shutdown=int(settings.request_timeout_s) + 5,
        timeout_keep_alive=5,
        server_header=False,
    )
