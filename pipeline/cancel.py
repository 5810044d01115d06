"""Cooperative cancellation of a running job, checked between pipeline stages.

A thread cannot be interrupted, so a job whose answer nobody will read any more (the client hung
up, the request ran out of time) is stopped where it is cheap to stop: at the next stage boundary.
The service creates one ``CancelToken`` per request and makes it current for the job's context;
``Remover`` calls ``checkpoint()`` before each stage. Code that runs without a token (the CLI, the
benchmark) never stops early.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable

from pipeline.errors import JobCancelledError

__all__ = ["CancelToken", "checkpoint", "current_token", "reset_token", "use_token"]


class CancelToken:
    """Set once, from any thread; observers are called once, at the moment it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        """True once ``cancel`` was called."""
        return self._event.is_set()

    def cancel(self, reason: str) -> None:
        """Ask the job to stop at its next stage boundary; later calls are no-ops."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the token is cancelled (at once if it already is)."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def raise_if_cancelled(self) -> None:
        """Raise ``JobCancelledError`` if the token was cancelled."""
        if self._event.is_set():
            raise JobCancelledError(f"the job was cancelled: {self.reason}")


_current: contextvars.ContextVar[CancelToken | None] = contextvars.ContextVar("markless_cancel", default=None)


def current_token() -> CancelToken | None:
    """The token of the request this code runs for, if any."""
    return _current.get()


def use_token(token: CancelToken | None) -> contextvars.Token[CancelToken | None]:
    """Make ``token`` current for this context (and every context copied from it)."""
    return _current.set(token)


def reset_token(previous: contextvars.Token[CancelToken | None]) -> None:
    """Undo the ``use_token`` call that returned ``previous``."""
    _current.reset(previous)


def checkpoint() -> None:
    """Stage boundary: raise ``JobCancelledError`` when the current job was cancelled."""
    token = _current.get()
    if token is not None:
        token.raise_if_cancelled()
