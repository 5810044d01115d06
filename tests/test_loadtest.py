"""Load tests (slow tier): the real server (uvicorn on loopback) with tiny models under concurrent
clients. Every answer must be a result or a documented 503 with ``Retry-After``, nothing may
error at the transport level, and memory must not grow with the number of requests."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from app.loadtest import _percentile, run_load
from app.main import create_app
from app.settings import Settings
from pipeline.factory import build_remover
from tests.conftest import streamed_upload
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow

MAX_RSS_GROWTH_MB = 300


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def image() -> bytes:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    pixels = np.stack([xx / 1.3, yy, (xx + yy) / 2.2], axis=-1) + rng.normal(0, 6, (240, 320, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def serve_app(tiny_segmenter_dir: Path) -> Iterator[Any]:
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")

    def start(**overrides: Any) -> LiveServer:
        settings = Settings(segmenter=tiny_segmenter_dir, inpainter="opencv", **overrides)
        return LiveServer(create_app(settings, remover))

    yield start


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RSS is read from /proc")
def test_load_within_capacity_all_succeed_and_memory_is_flat(serve_app: Any, image: bytes) -> None:
    with serve_app(max_queue=8) as url:
        run_load(url, requests=6, concurrency=3, image=image)  # warm-up: first-shape costs, allocator pools
        before = rss_mb()
        report = run_load(url, requests=60, concurrency=6, image=image)
        after = rss_mb()
        metrics = httpx.get(f"{url}/metrics").text
    assert report["status_counts"] == {"200": 60}, report
    assert report["errors"] == []
    assert report["throughput_rps"] > 0
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p95"] <= report["latency_ms"]["max"]
    assert after - before < MAX_RSS_GROWTH_MB, (before, after)
    assert 'markless_http_requests_total{method="POST",route="/v1/remove",status="200"} 66.0' in metrics
    assert "markless_queue_depth 0.0" in metrics


def test_overload_is_refused_with_retry_after(serve_app: Any, image: bytes) -> None:
    with serve_app(max_queue=1) as url:
        report = run_load(url, requests=40, concurrency=8, image=image)
        assert httpx.get(f"{url}/readyz").status_code == 200
    counts = report["status_counts"]
    assert set(counts) <= {"200", "503"}, report
    assert counts.get("200", 0) >= 2
    assert counts.get("503", 0) >= 1  # 8 clients, 1 worker + 1 waiting place
    assert report["all_503_had_retry_after"] is True
    assert report["errors"] == []


def test_oversized_upload_is_refused_early_by_the_real_server(serve_app: Any) -> None:
    with serve_app(max_body_bytes=1_000_000) as url:
        start = time.perf_counter()
        response = httpx.post(
            f"{url}/v1/remove", files={"image": ("big.png", b"\0" * 30_000_000)}, timeout=60
        )
        declared = time.perf_counter() - start
        streamed = httpx.post(
            f"{url}/v1/remove",
            content=streamed_upload("b", 300, 100_000),
            headers={"content-type": "multipart/form-data; boundary=b"},
            timeout=60,
        )
        assert httpx.get(f"{url}/healthz").status_code == 200  # the server is fine afterwards
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "body_too_large"
    assert declared < 10


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 50) == 50.0
    assert _percentile(values, 95) == 95.0
    assert _percentile([3.0], 95) == 3.0
    assert _percentile([], 50) is None
