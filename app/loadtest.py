"""A small load generator for the service: N requests from C concurrent clients, then a summary.

It checks what matters under load for this service: that every answer is either a result or
a documented refusal (503 with ``Retry-After``), how fast results come back (p50/p95), and the
throughput. Threads with one ``httpx.Client`` each keep it dependency-free and honest about
connection reuse.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def run_load(
    url: str,
    *,
    requests: int = 60,
    concurrency: int = 6,
    image: bytes,
    path: str = "/v1/remove",
    fields: dict[str, str] | None = None,
    api_key: str | None = None,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Send ``requests`` multipart posts of ``image`` to ``url + path`` from ``concurrency`` threads.

    Returns counts per status (``"error"`` for transport failures), elapsed seconds, throughput
    (completed 200s per second), p50/p95/max latency in ms of the 200s and of all answers,
    and whether every 503 carried a ``Retry-After`` header.
    """
    if requests < 1 or concurrency < 1:
        raise ValueError(f"requests and concurrency must be >= 1, got {requests} and {concurrency}")
    target = url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    lock = threading.Lock()
    statuses: Counter[str] = Counter()
    ok_latencies: list[float] = []
    all_latencies: list[float] = []
    retry_after_missing = 0
    errors: list[str] = []
    remaining = iter(range(requests))

    def worker() -> None:
        nonlocal retry_after_missing
        with httpx.Client(timeout=timeout_s, headers=headers) as client:
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return
                start = time.perf_counter()
                try:
                    response = client.post(target, files={"image": ("load.png", image)}, data=fields or {})
                except httpx.HTTPError as exc:
                    with lock:
                        statuses["error"] += 1
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - start
                with lock:
                    statuses[str(response.status_code)] += 1
                    all_latencies.append(elapsed)
                    if response.status_code == 200:
                        ok_latencies.append(elapsed)
                    elif response.status_code == 503 and "retry-after" not in response.headers:
                        retry_after_missing += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="markless-load") as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    elapsed = time.perf_counter() - started

    ok_sorted, all_sorted = sorted(ok_latencies), sorted(all_latencies)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "url": target,
        "requests": requests,
        "concurrency": concurrency,
        "status_counts": dict(sorted(statuses.items())),
        "elapsed_s": round(elapsed, 3),
        "throughput_rps": round(statuses["200"] / elapsed, 3) if elapsed > 0 else 0.0,
        "latency_ms": {
            "p50": ms(_percentile(ok_sorted, 50)),
            "p95": ms(_percentile(ok_sorted, 95)),
            "max": ms(ok_sorted[-1] if ok_sorted else None),
        },
        "latency_all_ms": {
            "p50": ms(_percentile(all_sorted, 50)),
            "p95": ms(_percentile(all_sorted, 95)),
        },
        "all_503_had_retry_after": retry_after_missing == 0,
        "errors": errors[:10],
    }
