"""The Ray Serve application end to end: a local Ray cluster on CPU, tiny models, real HTTP.

Slow tier (Ray start-up and two deployments take tens of seconds on 2 cores); skipped when
the optional ``ray`` extra is not installed.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray.serve", reason="the optional 'ray' extra is not installed")

import ray
from ray import serve

from app.ray_serve import APP_NAME, RemoteRemover, ServeArgs, build_app, run_local
from pipeline.errors import InvalidMaskError, InvalidParameterError
from pipeline.options import RemoveOptions

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(tiny_segmenter_dir: Path) -> Iterator[str]:
    """The app on a local Ray cluster (CPU, num_gpus=0); yields its base URL."""
    port = _free_port()
    ray.init(num_cpus=4, include_dashboard=False, object_store_memory=256 * 1024 * 1024)
    try:
        args = ServeArgs(
            num_gpus=0,
            ingress_num_cpus=0.5,
            settings={"segmenter": str(tiny_segmenter_dir), "inpainter": "opencv", "request_timeout_s": 60},
        )
        run_local("127.0.0.1", port, args)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the Serve app never became ready"
            time.sleep(0.5)
        yield base
    finally:
        serve.shutdown()
        ray.shutdown()


def test_remove_and_segment_over_http(served: str, photo: np.ndarray) -> None:
    height, width = photo.shape[:2]
    with httpx.Client(base_url=served, timeout=60) as client:
        info = client.get("/v1/info").json()
        assert info["device"] == "cpu"
        assert "opencv" in info["inpainters"]["loaded"]
        assert info["limits"]["max_concurrent_jobs"] == ServeArgs().ingress_jobs

        resp = client.post("/v1/remove", files={"image": ("photo.png", _png(photo), "image/png")})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "image/png"
        assert "inpaint" in resp.headers["server-timing"] or float(resp.headers["x-mask-coverage"]) == 0.0
        assert Image.open(io.BytesIO(resp.content)).size == (width, height)

        # A user mask: the GPU-side remover inpaints exactly there.
        mask = np.zeros((height, width), np.uint8)
        mask[100:140, 120:200] = 255
        resp = client.post(
            "/v1/remove",
            files={
                "image": ("photo.png", _png(photo), "image/png"),
                "mask": ("m.png", _png(mask), "image/png"),
            },
            data={"inpainter": "opencv", "dilate": "0"},
        )
        assert resp.status_code == 200, resp.text
        out = np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGB"))
        assert out.shape == photo.shape
        assert np.array_equal(out[mask == 0], photo[mask == 0])  # nothing outside the mask moved
        assert resp.headers["x-inpainter"] == "opencv"

        resp = client.post("/v1/segment", files={"image": ("photo.png", _png(photo), "image/png")})
        assert resp.status_code == 200, resp.text
        seg = Image.open(io.BytesIO(resp.content))
        assert seg.mode == "L" and seg.size == (width, height)
        assert "segment" in resp.headers["server-timing"]

        resp = client.post("/v1/remove", files={"image": ("bad.png", b"not an image", "image/png")})
        assert resp.status_code == 415
        assert resp.json()["error"]["code"] == "unsupported_image"

        metrics = client.get("/metrics").text
        assert 'markless_http_requests_total{method="POST",route="/v1/remove",status="200"}' in metrics


def test_remote_errors_keep_their_type(served: str, photo: np.ndarray) -> None:
    """A pipeline error raised on the model replica reaches the app as the same typed error."""
    handle = serve.get_deployment_handle("RemoverDeployment", app_name=APP_NAME)
    description, seconds = handle.describe.remote().result(timeout_s=30)
    remote = RemoteRemover(handle, description, timeout_s=30, load_seconds=seconds)
    segmenter = remote.info().segmenter
    assert segmenter is not None and segmenter.device == "cpu"
    with pytest.raises(InvalidMaskError):
        remote.remove(photo, np.zeros((10, 10), np.uint8))
    with pytest.raises(InvalidParameterError):
        remote.remove(photo, options=RemoveOptions(inpainter="no-such-stage"))
    timings: dict[str, float] = {}
    mask, aux = remote.segment(photo, timings=timings)
    assert mask.shape == photo.shape[:2] and mask.dtype == bool and aux is None
    assert {"segment", "refine"} <= set(timings)


def test_build_app_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown settings"):
        build_app({"settings": {"segmentr": "/x"}})
    with pytest.raises(ValueError, match="min_replicas"):
        build_app({"min_replicas": 3, "max_replicas": 2})
    with pytest.raises(ValueError):
        build_app({"num_gpus": -1})
