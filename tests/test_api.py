"""Tests of the REST service with tiny real components (random tiny segmenter + OpenCV inpainting).

Every route, every error status of the contract, the body limit (declared and streamed), the job
queue's 503/504 behaviour, API keys, CORS and metrics. Slow or failing stages are test-only
inpainters plugged into a real ``Remover``; nothing in the product is mocked.
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import ExifTags, Image, ImageCms

from app.errors import BodyTooLargeError
from app.main import create_app, serve
from app.middleware import ApiKeyMiddleware, BodyLimitMiddleware
from app.routes import STATIC_DIR
from app.settings import Settings
from pipeline.errors import ModelNotAvailableError
from pipeline.factory import build_remover
from pipeline.inpaint.base import InpaintRequest
from pipeline.remover import Remover
from tests.conftest import app_clients, streamed_upload, wait_for

# ---------------------------------------------------------------------------------------------
# helpers


def encode_image(array: np.ndarray, fmt: str = "PNG", **options: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **options)
    return buf.getvalue()


def decode_image(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def png_claiming(width: int, height: int) -> bytes:
    """A small, well-formed-looking PNG whose IHDR announces ``width`` x ``height``."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The contract's error shape, no traceback, and the request id header."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    assert response.headers.get("x-request-id")
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


class GateInpainter:
    """Test-only stage: blocks until released (to fill the queue / hit timeouts), counts calls."""

    name = "gate"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def inpaint(self, request: InpaintRequest) -> np.ndarray:
        self.calls += 1
        self.entered.set()
        self.release.wait(timeout=30)
        return np.zeros_like(request.image)


class BrokenInpainter:
    """Test-only stage with a bug: raises a non-Markless exception carrying a secret."""

    name = "broken"

    def inpaint(self, request: InpaintRequest) -> np.ndarray:
        raise RuntimeError("secret internal detail /etc/passwd")


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def remover(tiny_segmenter_dir: Path) -> Remover:
    return build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")


@pytest.fixture
def photo(photo: np.ndarray) -> np.ndarray:
    """The shared test photo at a third of its size (80x107): every request runs the real
    pipeline, and the API's behaviour does not depend on resolution."""
    return np.ascontiguousarray(photo[::3, ::3])


@pytest.fixture
def png(photo: np.ndarray) -> bytes:
    return encode_image(photo)


@pytest.fixture
def make_client(tiny_segmenter_dir: Path, remover: Remover) -> Iterator[Callable[..., TestClient]]:
    """Build an app (with lifespan running) from setting overrides and an optional remover."""
    with app_clients(remover, segmenter=tiny_segmenter_dir, inpainter="opencv") as make:
        yield make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def gated_remover(remover: Remover, stage: Any) -> Remover:
    """The real segmenter and refiner with a test stage as the default inpainter."""
    return Remover(
        remover.segmenter,
        remover.refiner,
        {stage.name: stage, "opencv": remover.inpainters["opencv"]},
        stage.name,
    )


def big_mask(photo: np.ndarray) -> bytes:
    """A mask over most of the photo (a border stays, under the coverage limit)."""
    mask = np.zeros(photo.shape[:2], np.uint8)
    h, w = mask.shape
    mask[h // 8 : h - h // 8, w // 8 : w - w // 8] = 255
    return encode_image(mask)


# ---------------------------------------------------------------------------------------------
# probes and info


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert client.head("/healthz").status_code == 200  # load balancers often probe with HEAD
    assert client.head("/readyz").status_code == 200


def test_readyz_is_503_before_the_models_are_loaded(tiny_segmenter_dir: Path, png: bytes) -> None:
    app = create_app(Settings(segmenter=tiny_segmenter_dir))
    client = TestClient(app)  # no context manager: the lifespan (model loading) has not run
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert_error(ready, 503, "not_ready")
    assert int(ready.headers["retry-after"]) >= 1
    assert_error(client.post("/v1/remove", files={"image": ("a.png", png)}), 503, "not_ready")


def test_lifespan_loads_the_models_from_settings(tiny_segmenter_dir: Path) -> None:
    app = create_app(Settings(segmenter=tiny_segmenter_dir, inpainter="opencv"))
    assert TestClient(app).get("/readyz").status_code == 503
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        info = client.get("/v1/info").json()
        assert info["model_load_seconds"] > 0
        metrics = client.get("/metrics").text
        load = re.search(r"^markless_model_load_seconds (\S+)$", metrics, re.M)
        assert load is not None and float(load.group(1)) > 0
    assert app.state.remover is None  # shut down: not ready any more


def test_missing_weights_fail_startup_with_one_line(tmp_path: Path) -> None:
    settings = Settings(segmenter=tmp_path / "missing")
    with (
        pytest.raises(ModelNotAvailableError, match="no segmenter weights"),
        TestClient(create_app(settings)),
    ):
        pass
    # serve() refuses before uvicorn starts; the CLI prints the error's one-line message.
    with pytest.raises(ModelNotAvailableError):
        serve("127.0.0.1", 0, settings)


def test_lifespan_failure_reaches_the_server_as_one_line(tmp_path: Path) -> None:
    """What uvicorn logs on startup failure is the one-line reason, not a traceback."""
    app = create_app(Settings(segmenter=tmp_path / "missing"))
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        messages = iter([{"type": "lifespan.startup"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        with pytest.raises(ModelNotAvailableError):
            await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    asyncio.run(run())
    failed = [m for m in sent if m["type"] == "lifespan.startup.failed"]
    assert len(failed) == 1
    assert failed[0]["message"].startswith("markless cannot start: no segmenter weights")
    assert "\n" not in failed[0]["message"] and "Traceback" not in failed[0]["message"]


def test_an_app_can_be_started_again_after_shutdown(
    remover: Remover, tiny_segmenter_dir: Path, png: bytes
) -> None:
    app = create_app(Settings(segmenter=tiny_segmenter_dir), remover)
    for _ in range(2):
        with TestClient(app) as client:
            assert client.get("/readyz").status_code == 200
            assert client.post("/v1/segment", files={"image": ("a.png", png)}).status_code == 200
        assert client.get("/readyz").status_code == 503


def test_info_describes_models_limits_and_defaults(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=123_456, max_pixels=1_000_000, max_queue=3, default_format="webp")
    info = client.get("/v1/info").json()
    assert info["segmenter"] == {"loaded": True, "heads": ["mask", "alpha", "color"], "max_side": 1024}
    assert "opencv" in info["inpainters"]["loaded"]
    assert info["inpainters"]["default"] == "opencv"
    assert info["limits"]["max_body_bytes"] == 123_456
    assert info["limits"]["max_pixels"] == 1_000_000
    assert info["limits"]["max_queue"] == 3
    assert info["defaults"]["threshold"] == 0.4
    assert info["defaults"]["dilate"] == 4
    assert info["defaults"]["format"] == "webp"
    assert info["output_formats"] == ["png", "jpeg", "webp"]
    assert "png" in info["input_formats"]
    assert info["device"] == "cpu"
    assert info["auth_required"] is False
    assert info["version"]


def test_openapi_documents_fields_and_image_media_types(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/remove"]["post"]
    assert set(post["responses"]["200"]["content"]) == {"image/png", "image/jpeg", "image/webp"}
    for status in ("400", "413", "415", "422", "503", "504"):
        assert status in post["responses"]
    body_ref = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = spec["components"]["schemas"][body_ref]["properties"]
    assert {"image", "mask", "inpainter", "threshold", "dilate", "seed", "steps", "format"} <= set(fields)
    assert all(field.get("description") for field in fields.values())
    segment = spec["paths"]["/v1/segment"]["post"]["responses"]["200"]["content"]
    assert set(segment) == {"image/png"}
    assert client.get("/docs").status_code == 200


def test_index_serves_the_web_page_and_static_files(client: TestClient) -> None:
    page = client.get("/", follow_redirects=False)
    if (STATIC_DIR / "index.html").is_file():
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert client.get("/static/index.html").status_code == 200
    else:
        assert page.status_code in (307, 200)
    assert_error(client.get("/static/does-not-exist.js"), 404, "not_found")


# ---------------------------------------------------------------------------------------------
# /v1/remove and /v1/segment: the happy paths


def test_remove_returns_a_png_of_the_same_size_with_headers(
    client: TestClient, photo: np.ndarray, png: bytes
) -> None:
    response = client.post("/v1/remove", files={"image": ("holiday photo.png", png, "image/png")})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    out = decode_image(response.content)
    assert out.format == "PNG"
    assert out.size == (photo.shape[1], photo.shape[0])
    assert 0.0 <= float(response.headers["x-mask-coverage"]) <= 1.0
    assert response.headers["x-inpainter"] == "opencv"
    assert int(response.headers["x-seed"]) >= 0  # the remover draws one; it reproduces the result
    timing = response.headers["server-timing"]
    stages = dict(re.findall(r"(\w+);dur=([\d.]+)", timing))
    assert {"queue", "decode", "segment", "refine", "encode"} <= set(stages)
    assert all(float(v) >= 0 for v in stages.values())
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert 'filename="holiday_photo.png"' in response.headers["content-disposition"]


def test_request_id_is_echoed_when_sane(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123.X"}).headers["x-request-id"] == "abc-123.X"
    )
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert replaced != "bad id\twith spaces" and re.fullmatch(r"[0-9a-f]{32}", replaced)
    assert client.get("/healthz", headers={"X-Request-ID": "x" * 500}).headers["x-request-id"] != "x" * 500


@pytest.mark.parametrize(("orientation", "rotated"), [(1, False), (6, True), (8, True), (3, False)])
def test_output_size_is_the_exif_rotated_input_size(
    client: TestClient, photo: np.ndarray, orientation: int, rotated: bool
) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encode_image(photo, "JPEG", exif=exif.tobytes(), quality=90)
    height, width = photo.shape[:2]
    expected = (height, width) if rotated else (width, height)
    for path in ("/v1/remove", "/v1/segment"):
        response = client.post(path, files={"image": ("a.jpg", data, "image/jpeg")})
        assert response.status_code == 200, response.text
        assert decode_image(response.content).size == expected


@pytest.mark.parametrize(
    ("fmt", "media", "pil_format"),
    [("jpeg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP"), ("JPG", "image/jpeg", "JPEG")],
)
def test_output_format_field(client: TestClient, png: bytes, fmt: str, media: str, pil_format: str) -> None:
    response = client.post("/v1/remove", files={"image": ("a.png", png)}, data={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    assert decode_image(response.content).format == pil_format
    assert response.headers["content-disposition"].endswith(('.jpg"', '.webp"'))


def test_default_format_comes_from_settings(make_client: Callable[..., TestClient], png: bytes) -> None:
    client = make_client(default_format="webp")
    assert client.post("/v1/remove", files={"image": ("a.png", png)}).headers["content-type"] == "image/webp"


def test_alpha_is_kept_for_png_and_webp_and_dropped_for_jpeg(client: TestClient, photo: np.ndarray) -> None:
    alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    rgba = np.dstack([photo, alpha])
    data = encode_image(rgba)
    for fmt in ("png", "webp"):
        out = decode_image(
            client.post("/v1/remove", files={"image": ("a.png", data)}, data={"format": fmt}).content
        )
        assert out.mode == "RGBA"
        got = np.asarray(out)[..., 3].astype(int)
        assert np.abs(got - alpha).max() <= (0 if fmt == "png" else 8)
    jpeg = decode_image(
        client.post("/v1/remove", files={"image": ("a.png", data)}, data={"format": "jpeg"}).content
    )
    assert jpeg.mode == "RGB"


def test_exif_and_icc_profile_are_kept(client: TestClient, photo: np.ndarray) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "MarklessCam"
    exif[ExifTags.Base.Orientation] = 6
    data = encode_image(photo, "JPEG", exif=exif.tobytes(), icc_profile=icc)
    for fmt in ("jpeg", "png", "webp"):
        response = client.post("/v1/remove", files={"image": ("a.jpg", data)}, data={"format": fmt})
        out = decode_image(response.content)
        assert out.info.get("icc_profile") == icc, fmt
        out_exif = out.getexif()
        assert out_exif.get(ExifTags.Base.Make) == "MarklessCam", fmt
        assert out_exif.get(ExifTags.Base.Orientation, 1) == 1, fmt  # pixels are already upright


def test_pixels_outside_a_user_mask_are_unchanged(client: TestClient, photo: np.ndarray, png: bytes) -> None:
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[30:50, 40:80] = 255
    response = client.post(
        "/v1/remove",
        files={"image": ("a.png", png), "mask": ("m.png", encode_image(mask))},
        data={"dilate": "0"},
    )
    assert response.status_code == 200, response.text
    out = np.asarray(decode_image(response.content).convert("RGB"))
    outside = mask == 0
    assert np.array_equal(out[outside], photo[outside])
    assert not np.array_equal(out[~outside], photo[~outside])  # the hole was actually filled
    assert float(response.headers["x-mask-coverage"]) == pytest.approx((mask > 0).mean(), abs=1e-6)


def test_a_blank_mask_part_from_a_browser_form_means_no_mask(client: TestClient, png: bytes) -> None:
    response = client.post(
        "/v1/remove", files={"image": ("a.png", png), "mask": ("", b"", "application/octet-stream")}
    )
    assert response.status_code == 200, response.text


def test_seed_header_and_inpainter_choice(client: TestClient, png: bytes) -> None:
    response = client.post(
        "/v1/remove", files={"image": ("a.png", png)}, data={"seed": "1234", "inpainter": "opencv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-seed"] == "1234"
    assert response.headers["x-inpainter"] == "opencv"


def test_segment_returns_a_binary_png_mask_of_the_same_size(
    client: TestClient, photo: np.ndarray, png: bytes
) -> None:
    response = client.post(
        "/v1/segment", files={"image": ("a.png", png)}, data={"threshold": "0.4", "dilate": "2"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    mask = decode_image(response.content)
    assert mask.mode == "L"
    assert mask.size == (photo.shape[1], photo.shape[0])
    values = np.asarray(mask)
    assert set(np.unique(values)) <= {0, 255}
    assert float(response.headers["x-mask-coverage"]) == pytest.approx((values == 255).mean(), abs=1e-6)
    assert "segment;dur=" in response.headers["server-timing"]


# ---------------------------------------------------------------------------------------------
# errors


TRUNCATED_PNG_LEN = 200


@pytest.mark.parametrize(
    ("name", "make", "status", "code"),
    [
        ("empty", lambda p: b"", 415, "unsupported_image"),
        ("text", lambda p: b"hello, this is not an image\n" * 4, 415, "unsupported_image"),
        ("truncated png", lambda p: encode_image(p)[:TRUNCATED_PNG_LEN], 415, "unsupported_image"),
        ("truncated jpeg", lambda p: encode_image(p, "JPEG")[:600], 415, "unsupported_image"),
        (
            "svg",
            lambda p: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            415,
            "unsupported_image",
        ),
        ("gif", lambda p: encode_image(p, "GIF"), 415, "unsupported_image"),
        ("30000x30000 header", lambda p: png_claiming(30000, 30000), 413, "image_too_large"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/remove", "/v1/segment"])
def test_bad_images(
    client: TestClient,
    photo: np.ndarray,
    path: str,
    name: str,
    make: Callable[[np.ndarray], bytes],
    status: int,
    code: str,
) -> None:
    assert_error(client.post(path, files={"image": ("x", make(photo))}), status, code)


def test_pixel_limit_comes_from_settings(make_client: Callable[..., TestClient], png: bytes) -> None:
    client = make_client(max_pixels=5_000)  # the photo is 107x80 = 8,560 px
    body = assert_error(client.post("/v1/remove", files={"image": ("a.png", png)}), 413, "image_too_large")
    assert "5,000" in body["error"]["message"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({"threshold": "abc"}, 422, "validation_error"),
        ({"dilate": "1.5"}, 422, "validation_error"),
        ({"seed": "many"}, 422, "validation_error"),
        ({"threshold": "5"}, 400, "invalid_parameter"),
        ({"threshold": "0"}, 400, "invalid_parameter"),
        ({"threshold": "nan"}, 400, "invalid_parameter"),
        ({"dilate": "-1"}, 400, "invalid_parameter"),
        ({"dilate": "100000"}, 400, "invalid_parameter"),
        ({"seed": "-3"}, 400, "invalid_parameter"),
        ({"seed": str(2**70)}, 400, "invalid_parameter"),
        ({"steps": "0"}, 400, "invalid_parameter"),
        ({"strength": "2"}, 400, "invalid_parameter"),
        ({"inpainter": "photoshop"}, 400, "invalid_parameter"),
        ({"inpainter": "diffusion"}, 400, "invalid_parameter"),  # registered, but not configured here
        ({"format": "gif"}, 400, "invalid_parameter"),
        ({"format": "../../etc/passwd"}, 400, "invalid_parameter"),
    ],
)
def test_bad_parameters(client: TestClient, png: bytes, data: dict[str, str], status: int, code: str) -> None:
    assert_error(client.post("/v1/remove", files={"image": ("a.png", png)}, data=data), status, code)


def test_validation_errors_name_the_field(client: TestClient, png: bytes) -> None:
    body = assert_error(client.post("/v1/remove", files={"file": ("a.png", png)}), 422, "validation_error")
    assert "image" in body["error"]["message"]
    body = assert_error(client.post("/v1/segment", data={"image": "not a file"}), 422, "validation_error")
    assert "image" in body["error"]["message"]
    assert_error(client.post("/v1/remove"), 422, "validation_error")


def test_mask_of_the_wrong_size_or_kind(client: TestClient, photo: np.ndarray, png: bytes) -> None:
    small = encode_image(np.zeros((10, 10), np.uint8))
    body = assert_error(
        client.post("/v1/remove", files={"image": ("a.png", png), "mask": ("m.png", small)}),
        400,
        "invalid_mask",
    )
    assert "10x10" in body["error"]["message"]
    assert_error(
        client.post("/v1/remove", files={"image": ("a.png", png), "mask": ("m.png", b"not an image")}),
        400,
        "invalid_mask",
    )


def test_not_found_and_method_not_allowed_share_the_shape(client: TestClient) -> None:
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    response = client.get("/v1/remove")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


def test_unexpected_errors_are_a_generic_500(
    make_client: Callable[..., TestClient], remover: Remover, photo: np.ndarray, png: bytes
) -> None:
    client = make_client(gated_remover(remover, BrokenInpainter()))
    response = client.post(
        "/v1/remove",
        files={"image": ("a.png", png), "mask": ("m.png", big_mask(photo))},
        headers={"X-Request-ID": "req-42"},
    )
    body = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "passwd" not in response.text
    assert "req-42" in body["error"]["message"]
    assert response.headers["x-request-id"] == "req-42"


# ---------------------------------------------------------------------------------------------
# body limit


def test_body_over_the_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=4096)
    response = client.post("/v1/remove", files={"image": ("a.png", b"\0" * 10_000)})
    assert_error(response, 413, "body_too_large")
    assert response.headers["connection"] == "close"


def test_streamed_body_over_the_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=4096)
    response = client.post(
        "/v1/remove",
        content=streamed_upload("XyZ", 50, 1000),
        headers={"content-type": "multipart/form-data; boundary=XyZ"},
    )
    assert "content-length" not in response.request.headers  # chunked: only counting can catch it
    assert_error(response, 413, "body_too_large")


def test_body_limit_stops_reading_at_the_limit() -> None:
    """At most the limit plus one chunk is pulled from the client, whatever it keeps sending."""
    pulled = 0

    async def endless_receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def reader(scope: Any, receive: Any, send: Any) -> None:
        while True:  # an app that reads everything it is given
            await receive()

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/remove", "headers": []}
    asyncio.run(BodyLimitMiddleware(reader, max_bytes=10_000)(scope, endless_receive, send))
    assert pulled == 11
    assert sent[0]["status"] == 413

    async def declared_receive() -> dict[str, Any]:
        raise AssertionError("a declared oversize body must be refused without reading it")

    sent.clear()
    scope["headers"] = [(b"content-length", b"10000000")]
    asyncio.run(BodyLimitMiddleware(reader, max_bytes=10_000)(scope, declared_receive, send))
    assert sent[0]["status"] == 413


def test_body_too_large_is_an_http_exception_for_fastapis_body_parser() -> None:
    from starlette.exceptions import HTTPException

    assert isinstance(BodyTooLargeError(10), HTTPException)


# ---------------------------------------------------------------------------------------------
# queue, concurrency and timeouts


GatedSetup = tuple[TestClient, GateInpainter, Any, dict[str, Any]]


@pytest.fixture
def gated_client(
    make_client: Callable[..., TestClient], remover: Remover, photo: np.ndarray, png: bytes
) -> Callable[..., GatedSetup]:
    """Factory of a client (given settings) whose default inpainter blocks until released, with its
    gate, its job queue and a full-mask request."""

    def make(**settings: Any) -> GatedSetup:
        gate = GateInpainter()
        client = make_client(gated_remover(remover, gate), **settings)
        files = {"image": ("a.png", png), "mask": ("m.png", big_mask(photo))}
        return client, gate, client.app.state.jobs, files  # type: ignore[attr-defined]

    return make


@contextmanager
def blocked_request(
    pool: ThreadPoolExecutor, client: TestClient, gate: GateInpainter, files: dict[str, Any]
) -> Iterator[Future[Any]]:
    """A request submitted on ``pool`` and held inside the gated inpainter until the block ends."""
    try:
        job = pool.submit(client.post, "/v1/remove", files=files)
        assert gate.entered.wait(10)
        yield job
    finally:
        gate.release.set()


def test_queue_full_is_503_with_retry_after(gated_client: Callable[..., GatedSetup]) -> None:
    client, gate, jobs, files = gated_client(max_concurrent_jobs=1, max_queue=1)
    with ThreadPoolExecutor(2) as pool:
        with blocked_request(pool, client, gate, files) as first:
            second = pool.submit(client.post, "/v1/remove", files=files)
            wait_for(lambda: jobs.depth >= 2, 10)
            assert jobs.depth == 2
            refused = client.post("/v1/remove", files=files)
            assert_error(refused, 503, "queue_full")
            assert int(refused.headers["retry-after"]) >= 1
            metrics = client.get("/metrics").text
            assert "markless_queue_depth 2.0" in metrics
            assert 'markless_jobs_rejected_total{reason="queue_full"} 1.0' in metrics
        # Nothing admitted is lost: both queued requests get their answer.
        assert first.result(timeout=30).status_code == 200
        assert second.result(timeout=30).status_code == 200
    assert jobs.depth == 0
    assert gate.calls == 2


def test_timeout_is_504_and_frees_the_slot_when_the_job_ends(gated_client: Callable[..., GatedSetup]) -> None:
    client, gate, jobs, files = gated_client(request_timeout_s=0.5, max_queue=2)
    with ThreadPoolExecutor(1) as pool, blocked_request(pool, client, gate, files) as running:
        # Queued behind the blocked job: times out while waiting and is never run.
        waiting = client.post("/v1/remove", files=files)
        assert_error(waiting, 504, "timeout")
        assert_error(running.result(timeout=10), 504, "timeout")
        assert jobs.depth == 1  # the running job still holds its worker
    wait_for(lambda: not jobs.depth, 10)
    assert jobs.depth == 0
    assert gate.calls == 1
    assert 'markless_jobs_rejected_total{reason="timeout"} 2.0' in client.get("/metrics").text


def test_model_work_runs_off_the_event_loop(gated_client: Callable[..., GatedSetup]) -> None:
    """While a job blocks its worker, probes still answer at once."""
    client, gate, _, files = gated_client()
    with ThreadPoolExecutor(1) as pool:
        with blocked_request(pool, client, gate, files) as busy:
            start = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            assert client.get("/metrics").status_code == 200
            assert time.perf_counter() - start < 5
        assert busy.result(timeout=30).status_code == 200


# ---------------------------------------------------------------------------------------------
# API keys and CORS


OPEN_PATHS = ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/"]


def test_api_keys(make_client: Callable[..., TestClient], png: bytes) -> None:
    client = make_client(api_keys=["key-one", "key-two"])
    missing = client.get("/v1/info")
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/v1/info", headers={"Authorization": "Bearer key-three"})
    assert_error(wrong, 401, "unauthorized")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert_error(client.get("/v1/info", headers={"Authorization": "Basic a2V5LW9uZQ=="}), 401)
    assert_error(client.get("/v1/info", headers={"Authorization": "Bearer "}), 401)
    assert_error(client.post("/v1/remove", files={"image": ("a.png", png)}), 401)
    ok = client.get("/v1/info", headers={"Authorization": "Bearer key-two"})
    assert ok.status_code == 200
    assert ok.json()["auth_required"] is True
    removed = client.post(
        "/v1/remove", files={"image": ("a.png", png)}, headers={"Authorization": "bearer key-one"}
    )
    assert removed.status_code == 200
    for path in OPEN_PATHS:
        assert client.get(path, follow_redirects=False).status_code in (200, 307), path
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/remove"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_api_keys_come_from_a_comma_separated_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKLESS_API_KEYS", " alpha, beta ,,")
    monkeypatch.setenv("MARKLESS_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("MARKLESS_MAX_QUEUE", "3")
    settings = Settings()
    assert settings.key_bytes() == [b"alpha", b"beta"]
    assert "alpha" not in repr(settings)  # secrets stay out of logs
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.max_queue == 3


def test_wildcard_origin_with_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="credentials"):
        Settings(cors_origins=["*"], cors_allow_credentials=True)


def test_api_key_comparison_checks_every_key() -> None:
    middleware = ApiKeyMiddleware(lambda *a: None, keys=[b"abc", b"def"])  # type: ignore[arg-type, return-value]
    assert middleware.valid(b"def")
    assert not middleware.valid(b"de")
    assert not middleware.valid(b"")


def test_cors_preflight_and_exposed_headers(make_client: Callable[..., TestClient], png: bytes) -> None:
    origin = "https://photos.example"
    client = make_client(cors_origins=[origin], api_keys=["k"])
    preflight = client.options(
        "/v1/remove",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200  # not 401: preflights carry no credentials
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers

    evil = client.options(
        "/v1/remove", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert evil.headers.get("access-control-allow-origin") != "https://evil.example"

    response = client.post(
        "/v1/remove", files={"image": ("a.png", png)}, headers={"Origin": origin, "Authorization": "Bearer k"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {
        "x-request-id",
        "x-mask-coverage",
        "server-timing",
        "x-seed",
        "x-inpainter",
        "retry-after",
    } <= exposed


# ---------------------------------------------------------------------------------------------
# metrics


def test_metrics_after_requests(client: TestClient, png: bytes) -> None:
    assert client.post("/v1/remove", files={"image": ("a.png", png)}).status_code == 200
    assert client.post("/v1/remove", files={"image": ("a.png", b"nope")}).status_code == 415
    client.get("/no/such/path/12345")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for needle in (
        'markless_http_requests_total{method="POST",route="/v1/remove",status="200"} 1.0',
        'markless_http_requests_total{method="POST",route="/v1/remove",status="415"} 1.0',
        'markless_http_requests_total{method="GET",route="unmatched",status="404"} 1.0',
        'markless_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/remove"}',
        'markless_stage_duration_seconds_count{stage="segment"} 1.0',
        'markless_stage_duration_seconds_count{stage="decode"} 1.0',
        'markless_stage_duration_seconds_count{stage="encode"} 1.0',
        'markless_stage_duration_seconds_count{stage="queue"} 1.0',
        "markless_queue_depth 0.0",
        "markless_model_load_seconds",
        "markless_mask_coverage_ratio_count 1.0",
        'markless_build_info{default_inpainter="opencv",device="cpu"',
        "process_resident_memory_bytes",
    ):
        assert needle in text, needle
    assert "/no/such/path" not in text  # unknown paths do not create label values


# ---------------------------------------------------------------------------------------------
# module-level app for `uvicorn app.main:app`


def test_module_level_app_is_created_lazily_once() -> None:
    import app.main as main

    first = main.app
    assert isinstance(first, FastAPI)
    assert main.app is first
    assert first.state.remover is None  # nothing is loaded until its lifespan runs


# ---------------------------------------------------------------------------------------------
# the job queue on its own


def test_job_queue_admission_errors_and_shutdown() -> None:
    from app.errors import NotReadyError, QueueFullError
    from app.jobs import JobQueue

    async def scenario() -> None:
        queue = JobQueue(workers=1, max_queue=1)
        release = threading.Event()
        blocked = [asyncio.ensure_future(queue.run(lambda: release.wait(10), timeout=30)) for _ in range(2)]
        while queue.depth < 2:
            await asyncio.sleep(0.005)
        with pytest.raises(QueueFullError) as refused:
            await queue.run(lambda: None, timeout=30)
        assert refused.value.headers["Retry-After"].isdigit()
        release.set()
        results = await asyncio.gather(*blocked)
        assert [ok for ok, _ in results] == [True, True]
        assert results[1][1] > 0  # the second job waited for the worker
        with pytest.raises(ZeroDivisionError):  # the job's own errors reach the caller
            await queue.run(lambda: 1 // 0, timeout=30)
        assert queue.depth == 0 and queue.running == 0
        queue.close()
        with pytest.raises(NotReadyError):
            await queue.run(lambda: None, timeout=30)

    asyncio.run(scenario())


def test_a_photo_without_a_mark_comes_back_untouched_and_says_so(
    make_client: Callable[..., TestClient], no_mark_segmenter_dir: Path, photo: np.ndarray, png: bytes
) -> None:
    client = make_client(build_remover(segmenter=no_mark_segmenter_dir, inpainter="opencv"))
    response = client.post("/v1/remove", files={"image": ("p.png", png, "image/png")})
    assert response.status_code == 200
    assert response.headers["X-Watermark-Found"] == "false"
    assert float(response.headers["X-Watermark-Presence"]) < 0.01
    assert float(response.headers["X-Mask-Coverage"]) == 0.0
    np.testing.assert_array_equal(np.asarray(decode_image(response.content)), photo)
    seg = client.post("/v1/segment", files={"image": ("p.png", png, "image/png")})
    assert seg.headers["X-Watermark-Found"] == "false"
    assert not np.asarray(decode_image(seg.content)).any()
    # A per-request presence threshold of 0 turns the decision off: the same model masks everything.
    forced = client.post(
        "/v1/remove", files={"image": ("p.png", png, "image/png")}, data={"presence_threshold": "0"}
    )
    assert forced.headers["X-Watermark-Found"] == "true"
    assert float(forced.headers["X-Mask-Coverage"]) > 0.5
