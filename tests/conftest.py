"""Shared fixtures: tiny, random-weight components so every tier runs on CPU without downloads."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from models import build_segmenter


@pytest.fixture(scope="session")
def tiny_segmenter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny segmenter with all heads, saved in the shipped layout (config.json + model.safetensors)."""
    torch.manual_seed(0)
    model = build_segmenter("tiny", heads=("mask", "alpha", "color"))
    return model.save_pretrained(tmp_path_factory.mktemp("segmenter"))


@pytest.fixture(scope="session")
def no_mark_segmenter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny segmenter whose pixels all say "mark" while its presence head says "no mark at all":
    what the no-mark decision must overrule (the shape of a false alarm on a clean photo)."""
    model = build_segmenter("tiny", heads=("mask", "alpha", "color"), presence=True)
    with torch.no_grad():
        model.net.segmentation_head[0].bias.fill_(20.0)
        model.net.classification_head[3].weight.zero_()
        model.net.classification_head[3].bias.fill_(-5.0)
    return model.save_pretrained(tmp_path_factory.mktemp("no-mark-segmenter"))


@pytest.fixture
def photo() -> np.ndarray:
    """A deterministic 'photo' with structure (gradients + discs), 240x320 RGB uint8."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    img = np.stack([xx * 255 / 320, yy * 255 / 240, (xx + yy) * 255 / 560], axis=-1)
    for _ in range(12):
        cy, cx, r = rng.integers(0, 240), rng.integers(0, 320), rng.integers(8, 40)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_inpaint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SD inpainting pipeline saved in the diffusers layout, loaded like a real one."""
    from tests.dummy_diffusion import make_tiny_inpaint_pipeline

    return make_tiny_inpaint_pipeline(tmp_path_factory.mktemp("tiny-inpaint"))


@contextmanager
def app_clients(remover: Any, **base: Any) -> Iterator[Callable[..., TestClient]]:
    """``make(remover_=None, **overrides)`` builds an app (lifespan running) from ``base`` settings
    and overrides, over ``remover`` unless another is given; every client is closed on exit."""
    from app.main import create_app
    from app.settings import Settings

    clients: list[TestClient] = []

    def make(remover_: Any = None, **overrides: Any) -> TestClient:
        settings = Settings(**{**base, **overrides})
        client = TestClient(create_app(settings, remover_ or remover), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.__exit__(None, None, None)


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    """Poll ``condition`` until it holds; fail the test if it does not within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def streamed_upload(boundary: str, chunks: int, chunk_size: int) -> Iterator[bytes]:
    """A multipart body with one file field ``image`` of zero bytes, yielded piece by piece so the
    client sends it chunked (no Content-Length): only counting can catch an oversize one."""
    yield f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'.encode()
    for _ in range(chunks):
        yield b"\0" * chunk_size
    yield f"\r\n--{boundary}--\r\n".encode()
