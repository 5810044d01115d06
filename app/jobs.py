"""Admission-controlled job queue: blocking model work off the event loop, bounded.

Decode, model and encode run on a small pool of worker threads (``max_concurrent_jobs``, one
per device by default, so a pipeline never runs twice at once on the same weights). Admission is
bounded twice: by count (at most ``max_queue`` jobs wait) and by estimated work (the sum of the
admitted jobs' costs stays under ``max_work``), so a few huge images cannot hold the service as
long as many small ones. Beyond either, a request is refused *before* it takes memory, with a 503
that names the limit and a ``Retry-After`` from the measured drain rate.

Every job carries a ``CancelToken``: the request's (cancelled when its client disconnects, see
``DisconnectMiddleware``) or its own. A job whose client left or whose budget ran out is dropped
while it waits (its slot is free at once) and stopped at the next stage boundary once it runs;
a running job holds its slot until it has stopped, so admission always reflects the real load.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from app.errors import ClientGoneError, JobTimeoutError, NotReadyError, QueueFullError, WorkBudgetFullError
from app.metrics import Metrics
from pipeline.cancel import CancelToken, current_token, use_token
from pipeline.errors import JobCancelledError

T = TypeVar("T")

MAX_RETRY_AFTER_S = 120
_DRAIN_WINDOW = 16  # completions the drain rate is measured over
CLIENT_GONE = "the client disconnected"


class JobQueue:
    """A ``ThreadPoolExecutor`` behind an admission counter and a work budget."""

    def __init__(
        self,
        workers: int,
        max_queue: int,
        *,
        max_work: float = math.inf,
        metrics: Metrics | None = None,
    ) -> None:
        if workers < 1 or max_queue < 0 or max_work <= 0:
            raise ValueError(
                f"need workers >= 1, max_queue >= 0 and max_work > 0, got {workers}, {max_queue}, {max_work}"
            )
        self.workers = workers
        self.max_queue = max_queue
        self.capacity = workers + max_queue
        self.max_work = max_work
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="markless-job")
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._work = 0.0
        self._closed = False
        # Busy time (seconds with at least one job admitted) at each of the last completions:
        # their spacing is the drain rate, unaffected by idle gaps between bursts.
        self._busy_total = 0.0
        self._busy_since: float | None = None
        self._completions: collections.deque[float] = collections.deque(maxlen=_DRAIN_WINDOW)
        self._last_job_s: float | None = None

    @property
    def depth(self) -> int:
        """Jobs admitted and not finished (waiting + running)."""
        return self._admitted

    @property
    def work(self) -> float:
        """Estimated work of the admitted jobs."""
        return self._work

    @property
    def closed(self) -> bool:
        """True once ``close`` was called: no job is admitted any more."""
        return self._closed

    @property
    def running(self) -> int:
        """Jobs on a worker right now."""
        return self._running

    def drain_rate(self) -> float | None:
        """Jobs finished per second of busy time, over the last few completions; None before that."""
        stamps = self._completions
        if len(stamps) >= 2 and stamps[-1] > stamps[0]:
            return (len(stamps) - 1) / (stamps[-1] - stamps[0])
        if self._last_job_s:  # one job measured: assume every worker runs at its pace
            return self.workers / self._last_job_s
        return None

    def retry_after(self) -> int:
        """Seconds a refused client should wait: until about half of the backlog has drained.

        Waiting for the first free slot would have every refused client race for it; half the
        backlog spreads retries out while staying short. The rate is measured, not assumed;
        clamped to [1, MAX_RETRY_AFTER_S].
        """
        rate = self.drain_rate()
        if rate is None:
            return 1
        return int(min(MAX_RETRY_AFTER_S, max(1, math.ceil(max(self._admitted, 1) / 2 / rate))))

    async def run(self, fn: Callable[[], T], *, timeout: float, cost: float = 0.0) -> tuple[T, float]:
        """Run ``fn`` on a worker; returns (its result, seconds it waited for a worker).

        ``cost`` is the job's estimated work (see ``app.admission``). Raises ``QueueFullError`` or
        ``WorkBudgetFullError`` when it cannot be admitted, ``JobTimeoutError`` when it has not
        finished within ``timeout`` seconds and ``ClientGoneError`` when the request's client
        disconnected first. Exceptions of ``fn`` propagate.
        """
        if timeout <= 0:
            self._count_rejection("timeout")
            raise JobTimeoutError("the request ran out of time before its work could start")
        token = current_token() or CancelToken()
        self._admit(cost)
        context = contextvars.copy_context()  # request id etc. follow the job into the worker
        context.run(use_token, token)
        enqueued = time.perf_counter()

        def job() -> tuple[T, float]:
            token.raise_if_cancelled()  # picked up just as its client left
            started = time.perf_counter()
            with self._lock:
                self._running += 1
                self._publish()
            try:
                return context.run(fn), started - enqueued
            finally:
                self._finished(time.perf_counter() - started)

        try:
            future: Future[tuple[T, float]] = self._executor.submit(job)
        except RuntimeError:  # the executor was shut down between the check and the submit
            self._release(cost)
            raise NotReadyError("the service is shutting down") from None
        future.add_done_callback(lambda _: self._release(cost))  # also when a waiting job is cancelled
        loop = asyncio.get_running_loop()
        gone = loop.create_future()
        token.on_cancel(lambda: loop.call_soon_threadsafe(_resolve, gone))
        result = asyncio.wrap_future(future)
        try:
            done, _ = await asyncio.wait({result, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if result in done:
                if isinstance(result.exception(), JobCancelledError) and token.reason == CLIENT_GONE:
                    self._count_cancelled("running")
                return result.result()
            running = not future.cancel()  # frees the slot now if the job is still waiting
            result.cancel()
            if gone in done and token.reason == CLIENT_GONE:
                self._count_cancelled("running" if running else "queued")
                raise ClientGoneError("the client disconnected before the result was ready")
            token.cancel("the request ran out of time")  # a running job stops at its next stage
            self._count_rejection("timeout")
            raise JobTimeoutError("the request did not finish within the service's time budget")
        finally:
            gone.cancel()

    def close(self, *, wait: bool = True) -> None:
        """Refuse new jobs; with ``wait``, let every admitted job finish (graceful shutdown)."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=False)

    def _admit(self, cost: float) -> None:
        with self._lock:
            if self._closed:
                raise NotReadyError("the service is shutting down")
            if self._admitted >= self.capacity:
                retry = self.retry_after()
                self._count_rejection("queue_full")
                raise QueueFullError(
                    f"the service is busy: all {self.capacity} job slots are taken; retry in {retry} s",
                    retry_after=retry,
                )
            if self._admitted and self._work + cost > self.max_work:
                retry = self.retry_after()
                self._count_rejection("work_budget")
                raise WorkBudgetFullError(
                    f"the service is busy: the queued work would exceed its budget of {self.max_work:,.0f} "
                    f"units (this request needs {cost:,.0f}); retry in {retry} s",
                    retry_after=retry,
                )
            if self._admitted == 0:
                self._busy_since = time.perf_counter()
            self._admitted += 1
            self._work += cost
            self._publish()

    def _finished(self, seconds: float) -> None:
        with self._lock:
            self._running -= 1
            self._last_job_s = seconds
            self._completions.append(self._busy_clock())
            self._publish()

    def _busy_clock(self) -> float:
        since = self._busy_since
        return self._busy_total + (time.perf_counter() - since if since is not None else 0.0)

    def _release(self, cost: float) -> None:
        with self._lock:
            self._admitted -= 1
            self._work = max(0.0, self._work - cost) if self._admitted else 0.0
            if self._admitted == 0 and self._busy_since is not None:
                self._busy_total += time.perf_counter() - self._busy_since
                self._busy_since = None
            self._publish()

    def _publish(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(self._admitted)
            self._metrics.jobs_running.set(self._running)

    def _count_cancelled(self, state: str) -> None:
        if self._metrics is not None:
            self._metrics.cancelled.labels(state=state).inc()

    def _count_rejection(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.rejected.labels(reason=reason).inc()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
