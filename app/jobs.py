"""Admission-controlled job queue: blocking model work off the event loop, bounded.

Decode, model and encode run on a small pool of worker threads (``max_concurrent_jobs``, one
per device by default, so a pipeline never runs twice at once on the same weights). At most
``max_queue`` more jobs wait; beyond that a request is refused *before* it takes memory, with a
503 and a ``Retry-After`` estimated from recent job durations. An admitted job always ends in
its answer or a 504: a job still waiting when its budget runs out is cancelled, one already
running finishes on its worker (threads cannot be interrupted) and still holds its slot until
then, so admission always reflects the real load.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from app.errors import JobTimeoutError, NotReadyError, QueueFullError
from app.metrics import Metrics

T = TypeVar("T")

_EMA_WEIGHT = 0.2  # weight of the newest job in the running mean of job durations
MAX_RETRY_AFTER_S = 120


class JobQueue:
    """A ``ThreadPoolExecutor`` behind an admission counter."""

    def __init__(self, workers: int, max_queue: int, *, metrics: Metrics | None = None) -> None:
        if workers < 1 or max_queue < 0:
            raise ValueError(f"need workers >= 1 and max_queue >= 0, got {workers} and {max_queue}")
        self.workers = workers
        self.max_queue = max_queue
        self.capacity = workers + max_queue
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="markless-job")
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._mean_job_s: float | None = None
        self._closed = False

    @property
    def depth(self) -> int:
        """Jobs admitted and not finished (waiting + running)."""
        return self._admitted

    @property
    def closed(self) -> bool:
        """True once ``close`` was called: no job is admitted any more."""
        return self._closed

    @property
    def running(self) -> int:
        """Jobs on a worker right now."""
        return self._running

    def retry_after(self) -> int:
        """Seconds a refused client should wait: until about half of the backlog has drained.

        Waiting for the first free slot would have every refused client race for it; half the
        backlog spreads retries out while staying short. Clamped to [1, MAX_RETRY_AFTER_S].
        """
        mean = self._mean_job_s if self._mean_job_s is not None else 1.0
        backlog_s = mean * max(self._admitted, 1) / self.workers
        return int(min(MAX_RETRY_AFTER_S, max(1, math.ceil(backlog_s / 2))))

    async def run(self, fn: Callable[[], T], *, timeout: float) -> tuple[T, float]:
        """Run ``fn`` on a worker; returns (its result, seconds it waited for a worker).

        Raises ``QueueFullError`` when no slot is free and ``JobTimeoutError`` when the job
        has not finished within ``timeout`` seconds. Exceptions of ``fn`` propagate.
        """
        if timeout <= 0:
            self._count_rejection("timeout")
            raise JobTimeoutError("the request ran out of time before its work could start")
        with self._lock:
            if self._closed:
                raise NotReadyError("the service is shutting down")
            if self._admitted >= self.capacity:
                retry = self.retry_after()
                self._count_rejection("queue_full")
                raise QueueFullError(
                    f"the service is busy ({self._admitted} jobs in progress); retry in {retry} s",
                    retry_after=retry,
                )
            self._admitted += 1
            self._publish()
        context = contextvars.copy_context()  # request id etc. follow the job into the worker
        enqueued = time.perf_counter()

        def job() -> tuple[T, float]:
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
            self._release(None)
            raise NotReadyError("the service is shutting down") from None
        future.add_done_callback(self._release)  # also runs when a waiting job is cancelled
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            future.cancel()  # frees the slot now if the job is still waiting; no-op once it runs
            self._count_rejection("timeout")
            raise JobTimeoutError("the request did not finish within the service's time budget") from None

    def close(self, *, wait: bool = True) -> None:
        """Refuse new jobs; with ``wait``, let every admitted job finish (graceful shutdown)."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=False)

    def _finished(self, seconds: float) -> None:
        with self._lock:
            self._running -= 1
            mean = self._mean_job_s
            self._mean_job_s = seconds if mean is None else (1 - _EMA_WEIGHT) * mean + _EMA_WEIGHT * seconds
            self._publish()

    def _release(self, _future: Future[tuple[T, float]] | None) -> None:
        with self._lock:
            self._admitted -= 1
            self._publish()

    def _publish(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(self._admitted)
            self._metrics.jobs_running.set(self._running)

    def _count_rejection(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.rejected.labels(reason=reason).inc()
