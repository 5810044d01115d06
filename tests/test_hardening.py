"""Hostile and careless clients (issue 15): each case reproduces what an outside probe found.

Abandoned uploads, slow-loris connections and malformed HTTP run against a real uvicorn server
(``markless serve``'s configuration) on loopback; the rest use the in-process client. The stages
are real; the test-only ``GateInpainter`` holds a job on its worker on purpose.
"""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from app.admission import INPAINT_PASSES, MP, estimate_work
from app.cli import MaskSource
from app.cli import main as cli_main
from app.jobs import CLIENT_GONE, JobQueue
from app.main import create_app
from app.server import uvicorn_config
from app.settings import Settings
from pipeline import io as pio
from pipeline.cancel import CancelToken, checkpoint, reset_token, use_token
from pipeline.errors import InvalidMaskError, JobCancelledError, UnsupportedImageError
from pipeline.factory import build_remover
from pipeline.inpaint.base import available_inpainters
from pipeline.remover import Remover
from tests.conftest import app_clients, wait_for
from tests.test_api import GateInpainter, assert_error, big_mask, encode_image, gated_remover, png_claiming


@pytest.fixture(scope="module")
def remover(tiny_segmenter_dir: Path) -> Remover:
    return build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")


@pytest.fixture
def small(photo: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(photo[::3, ::3])


@pytest.fixture
def make_client(tiny_segmenter_dir: Path, remover: Remover) -> Iterator[Callable[..., TestClient]]:
    with app_clients(remover, segmenter=tiny_segmenter_dir, inpainter="opencv") as make:
        yield make


class LiveServer:
    """The app under ``markless serve``'s uvicorn configuration, on a free loopback port."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.server = uvicorn.Server(uvicorn_config(app, settings, host="127.0.0.1", port=0))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock


@pytest.fixture
def live(tiny_segmenter_dir: Path, remover: Remover) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(remover_: Remover | None = None, **overrides: Any) -> LiveServer:
        settings = Settings(segmenter=tiny_segmenter_dir, inpainter="opencv", **overrides)
        server = LiveServer(create_app(settings, remover_ or remover), settings).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "markless-test-boundary"
    parts = []
    for name, (filename, data) in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def raw_post(path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_response(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------
# 1. abandoned requests


def test_abandoned_uploads_free_their_slots_and_the_next_request_is_served(
    live: Callable[..., LiveServer], remover: Remover, small: np.ndarray
) -> None:
    gate = GateInpainter()
    server = live(gated_remover(remover, gate), max_concurrent_jobs=1, max_queue=8)
    jobs = server.app.state.jobs
    body, ctype = multipart({"image": ("a.png", encode_image(small)), "mask": ("m.png", big_mask(small))})
    request = raw_post("/v1/remove", body, ctype)
    try:
        socks = []
        for i in range(9):  # one running (held by the gate) and eight waiting: the queue is full
            sock = server.connect()
            sock.sendall(request)
            socks.append(sock)
            wait_for(lambda n=i + 1: jobs.depth == n)
        assert gate.entered.is_set()
        for sock in socks:
            sock.close()
        wait_for(lambda: jobs.depth == 1)  # the waiting ones are dropped at once
        # The next request is admitted (not 503) while the abandoned one still holds the worker.
        sock = server.connect()
        sock.sendall(request)
        wait_for(lambda: jobs.depth == 2)
        gate.release.set()
        answer = read_response(sock)
        sock.close()
    finally:
        gate.release.set()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert gate.calls == 2  # the abandoned running job stopped after its stage; none of the 8 ran
    wait_for(lambda: jobs.depth == 0)
    metrics = server.app.state.metrics.render()[0].decode()
    assert 'markless_jobs_cancelled_total{state="queued"} 8.0' in metrics
    assert 'markless_jobs_cancelled_total{state="running"} 1.0' in metrics


def test_a_cancelled_token_drops_a_waiting_job_and_stops_a_running_one_between_stages() -> None:
    async def scenario() -> None:
        queue = JobQueue(workers=1, max_queue=2)
        release = threading.Event()
        stages: list[str] = []

        def two_stages() -> str:
            stages.append("first")
            release.wait(10)
            checkpoint()
            stages.append("second")
            return "done"

        running_token, waiting_token = CancelToken(), CancelToken()
        previous = use_token(running_token)
        running = asyncio.ensure_future(queue.run(two_stages, timeout=30))
        reset_token(previous)
        while not stages:
            await asyncio.sleep(0.005)
        previous = use_token(waiting_token)
        waiting = asyncio.ensure_future(queue.run(lambda: stages.append("never") or "x", timeout=30))
        reset_token(previous)
        while queue.depth < 2:
            await asyncio.sleep(0.005)
        waiting_token.cancel(CLIENT_GONE)
        running_token.cancel(CLIENT_GONE)
        for task in (waiting, running):
            with pytest.raises(Exception) as gone:
                await task
            assert getattr(gone.value, "status_code", None) == 499
        assert queue.depth == 1  # the waiting job's slot is free at once
        release.set()
        while queue.depth:
            await asyncio.sleep(0.005)
        assert stages == ["first"]  # stopped at the boundary; the waiting job never ran
        queue.close()

    asyncio.run(scenario())


def test_checkpoint_raises_only_for_a_cancelled_current_token() -> None:
    checkpoint()  # no token (CLI, benchmark): never stops
    token = CancelToken()
    previous = use_token(token)
    try:
        checkpoint()
        token.cancel("test")
        with pytest.raises(JobCancelledError):
            checkpoint()
    finally:
        reset_token(previous)


# ---------------------------------------------------------------------------------------------
# 2. admission by cost


def tiny_jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG header for ``width`` x ``height`` with a few hundred bytes of scan data."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 130, 140)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    return data[:778] + b"\xff\xd9"


def test_a_tiny_jpeg_claiming_36_megapixels_is_refused_at_once(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    data = tiny_jpeg_claiming(6000, 6000)
    assert len(data) == 780
    start = time.perf_counter()
    response = client.post("/v1/remove", files={"image": ("a.jpg", data)})
    elapsed = time.perf_counter() - start
    body = assert_error(response, 415, "unsupported_image")
    assert "truncated" in body["error"]["message"]
    assert elapsed < 1.0
    assert client.app.state.jobs.depth == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("progressive", [False, True])
def test_complete_flat_jpegs_still_decode(progressive: bool) -> None:
    """The truncation floor holds for the most compressible real JPEGs."""
    buf = io.BytesIO()
    Image.new("RGB", (1600, 1200), (200, 200, 200)).save(buf, "JPEG", quality=50, progressive=progressive)
    assert pio.decode(buf.getvalue()).rgb.shape == (1200, 1600, 3)
    with pytest.raises(UnsupportedImageError):
        pio.decode(buf.getvalue()[: len(buf.getvalue()) // 20] + b"\xff\xd9")


def test_work_over_the_per_request_budget_is_413(
    make_client: Callable[..., TestClient], small: np.ndarray
) -> None:
    client = make_client(max_request_work=0.01)
    body = assert_error(
        client.post("/v1/remove", files={"image": ("a.png", encode_image(small))}), 413, "too_much_work"
    )
    assert "per-request" in body["error"]["message"]


def test_every_registered_inpainter_has_a_measured_cost() -> None:
    """A new restoration must say what it costs, not be priced silently as the worst one."""
    assert set(INPAINT_PASSES) == set(available_inpainters())
    one_mp = {"segment_pixels": 0, "max_coverage": 1.0}
    assert estimate_work(MP, inpainter="restore", **one_mp) > estimate_work(MP, inpainter="opencv", **one_mp)


def test_work_over_the_total_budget_is_503_naming_it(
    make_client: Callable[..., TestClient], remover: Remover, small: np.ndarray
) -> None:
    gate = GateInpainter()
    client = make_client(gated_remover(remover, gate), max_work=0.2, max_queue=8)
    files = {"image": ("a.png", encode_image(small)), "mask": ("m.png", big_mask(small))}
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(client.post("/v1/remove", files=files)))
    thread.start()
    try:
        assert gate.entered.wait(10)
        refused = client.post("/v1/remove", files=files)  # a slot is free, the work budget is not
        body = assert_error(refused, 503, "work_budget_full")
        assert "budget" in body["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        gate.release.set()
        thread.join(30)
    assert result[0].status_code == 200


# ---------------------------------------------------------------------------------------------
# 3. header and body timeouts, malformed HTTP


def test_slow_loris_connections_are_closed_and_slow_bodies_get_408(live: Callable[..., LiveServer]) -> None:
    server = live(header_timeout_s=0.5, body_timeout_s=1.0)
    silent = server.connect()
    trickle = server.connect()
    trickle.sendall(b"POST /v1/remove HTTP/1.1\r\nHost: test\r\n")
    slow_body = server.connect()
    slow_body.sendall(
        b"POST /v1/remove HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=x\r\n"
    )
    slow_body.sendall(b"Content-Length: 100000\r\n\r\n--x\r\n")
    start = time.monotonic()
    assert read_response(silent) == b""
    assert read_response(trickle) == b""
    answer = read_response(slow_body)
    assert time.monotonic() - start < 8
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer
    for sock in (silent, trickle, slow_body):
        sock.close()


def test_a_malformed_content_length_gets_the_json_error_shape(live: Callable[..., LiveServer]) -> None:
    server = live()
    sock = server.connect()
    sock.sendall(b"POST /v1/remove HTTP/1.1\r\nHost: test\r\nContent-Length: 12abc\r\n\r\n")
    answer = read_response(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"application/json" in answer
    assert answer.endswith(b'{"error": {"code": "bad_request", "message": "malformed HTTP request"}}')


# ---------------------------------------------------------------------------------------------
# 4. the CLI never overwrites silently; 5. masks are looked up by exact name


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        cli_main(args)
    return int(exc.value.code or 0)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_two_inputs_with_one_output_name_are_refused_unless_overwrite(
    tmp_path: Path, small: np.ndarray, tiny_segmenter_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(small).save(src / "a.jpg")
    Image.fromarray(small).save(src / "a.png")
    args = [
        "remove",
        str(src),
        "-o",
        str(out),
        "--segmenter",
        str(tiny_segmenter_dir),
        "--inpainter",
        "opencv",
    ]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert "a.jpg and " in err and "a.png would both be written to" in err and "--overwrite" in err
    assert not out.exists()  # nothing written, not even the folder
    assert run_cli(["segment", str(src), "-o", str(out), "--segmenter", str(tiny_segmenter_dir)]) == 2
    assert not out.exists()
    assert run_cli([*args, "--overwrite"]) == 0
    assert [p.name for p in out.iterdir()] == ["a.png"]


def test_writing_onto_the_inputs_is_refused_unless_overwrite(
    tmp_path: Path, small: np.ndarray, tiny_segmenter_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(small).save(src / "a.png")
    Image.fromarray(small).save(src / "b.jpg")
    before = snapshot(src)
    seg = ["--segmenter", str(tiny_segmenter_dir)]
    # -o is the input folder: a.png would be replaced, b.png would land among the originals
    assert run_cli(["remove", str(src), "-o", str(src), *seg, "--inpainter", "opencv"]) == 2
    assert "is an output folder and holds inputs" in capsys.readouterr().err
    # one input file, the output named after another one (segment writes <stem>.png)
    assert run_cli(["segment", str(src / "a.png"), "-o", str(src), *seg]) == 2
    assert "would be written over, and it is an input" in capsys.readouterr().err
    # --masks-out into the --mask folder would replace the masks being read
    masks, out = tmp_path / "masks", tmp_path / "out"
    masks.mkdir()
    Image.fromarray(np.zeros(small.shape[:2], np.uint8)).save(masks / "a.png")
    args = [
        "remove",
        str(src / "a.png"),
        "-o",
        str(out),
        "--mask",
        str(masks),
        "--masks-out",
        str(masks),
        *seg,
    ]
    assert run_cli(args) == 2
    assert snapshot(src) == before and not out.exists()
    assert run_cli(["remove", str(src), "-o", str(src), *seg, "--inpainter", "opencv", "--overwrite"]) == 0
    assert sorted(snapshot(src)) == ["a.png", "b.jpg", "b.png"]


def test_mask_folders_match_exact_names_not_glob_patterns(
    tmp_path: Path, small: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    src.mkdir()
    masks.mkdir()
    Image.fromarray(small).save(src / "[x].png")
    h, w = small.shape[:2]
    wrong = np.zeros((h, w), np.uint8)
    wrong[: h // 3, : w // 3] = 255
    Image.fromarray(wrong).save(masks / "x.png")  # what the glob "[x].*" matched
    args = [
        "remove",
        str(src),
        "-o",
        str(out),
        "--mask",
        str(masks),
        "--dilate",
        "0",
        "--inpainter",
        "opencv",
    ]
    assert run_cli(args) == 1
    assert "no mask named '[x]'" in capsys.readouterr().err
    right = np.zeros((h, w), np.uint8)
    right[h // 2 :, w // 2 :] = 255
    Image.fromarray(right).save(masks / "[x].png")
    assert run_cli(args) == 0
    changed = np.any(np.asarray(Image.open(out / "[x].png")) != small, axis=2)
    assert changed.any() and not changed[right == 0].any()
    Image.fromarray(right).save(masks / "[x].webp")
    assert MaskSource(str(masks)).files() and run_cli([*args, "--overwrite"]) == 1
    assert "more than one mask for [x].png" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# 6. whole-image masks


def test_a_whole_image_mask_is_a_clear_400(make_client: Callable[..., TestClient], small: np.ndarray) -> None:
    client = make_client()
    whole = encode_image(np.full(small.shape[:2], 255, np.uint8))
    body = assert_error(
        client.post("/v1/remove", files={"image": ("a.png", encode_image(small)), "mask": ("m.png", whole)}),
        400,
        "invalid_mask",
    )
    assert "covers 100%" in body["error"]["message"]


def test_the_pipeline_refuses_masks_over_its_coverage_limit(remover: Remover, small: np.ndarray) -> None:
    mask = np.ones(small.shape[:2], bool)
    mask[0, 0] = False  # near-whole
    with pytest.raises(InvalidMaskError):
        remover.remove(small, mask)
    mask[: mask.shape[0] // 2] = False
    assert remover.remove(small, mask).mask.mean() > 0.4  # under the limit: restored


# ---------------------------------------------------------------------------------------------
# 7. error messages


def test_errors_use_our_words_and_never_echo_long_input(
    make_client: Callable[..., TestClient], small: np.ndarray
) -> None:
    client = make_client()
    png = encode_image(small)
    long = client.post("/v1/remove", files={"image": ("a.png", png)}, data={"inpainter": "x" * 65_000})
    assert_error(long, 400, "invalid_parameter")
    assert len(long.content) < 2048
    as_text = client.post("/v1/remove", data={"image": "not a file"})
    body = assert_error(as_text, 422, "validation_error")
    assert "UploadFile" not in body["error"]["message"] and "class" not in body["error"]["message"]
    bomb = client.post("/v1/remove", files={"image": ("a.png", png_claiming(200_000, 200_000))})
    assert "DOS" not in assert_error(bomb, 413)["error"]["message"]
    cut = client.post("/v1/remove", files={"image": ("a.png", png[: len(png) // 2])})
    assert "not processed" not in assert_error(cut, 415)["error"]["message"]
    for response in (long, as_text, bomb, cut):
        assert len(response.json()["error"]["message"]) <= 300


# ---------------------------------------------------------------------------------------------
# 8. security headers, offline docs, protected operational endpoints


def test_every_response_carries_the_security_headers(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for path in ("/", "/healthz", "/v1/info", "/docs", "/openapi.json", "/no-such-page", "/static/app.js"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path


def test_docs_are_served_from_the_package_and_reference_no_other_host(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    page = client.get("/docs")
    assert page.status_code == 200
    assert "//" not in page.text.replace("<!doctype html>", "")  # only paths on this server
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/static/docs.js"):
        assert asset in page.text
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404


def test_metrics_and_docs_can_be_put_behind_the_api_key(make_client: Callable[..., TestClient]) -> None:
    open_client = make_client(api_keys=["k"])
    assert open_client.get("/metrics").status_code == 200
    assert open_client.get("/docs").status_code == 200
    client = make_client(api_keys=["k"], protect_metrics=True, protect_docs=True)
    for path in ("/metrics", "/docs", "/openapi.json"):
        assert_error(client.get(path), 401, "unauthorized")
        assert client.get(path, headers={"Authorization": "Bearer k"}).status_code == 200
    assert client.get("/healthz").status_code == 200


# ---------------------------------------------------------------------------------------------
# 9. Retry-After and output sizes


def test_drain_rate_is_measured_over_busy_time_not_idle_gaps() -> None:
    async def scenario() -> None:
        queue = JobQueue(workers=1, max_queue=4)
        assert queue.retry_after() == 1  # nothing measured yet
        for _ in range(4):
            await queue.run(lambda: time.sleep(0.05), timeout=30)
            await asyncio.sleep(0.3)  # idle: must not slow the measured rate
        rate = queue.drain_rate()
        assert rate is not None and rate > 8  # ~20 jobs/s while busy, ~3/s if idle time counted
        queue.close()

    asyncio.run(scenario())


def test_an_output_format_too_small_for_the_image_is_refused_before_any_work(
    make_client: Callable[..., TestClient], remover: Remover
) -> None:
    gate = GateInpainter()
    client = make_client(gated_remover(remover, gate))
    wide = png_claiming(20_000, 100)
    body = assert_error(
        client.post("/v1/remove", files={"image": ("a.png", wide)}, data={"format": "webp"}),
        400,
        "invalid_parameter",
    )
    assert "WEBP" in body["error"]["message"]
    assert gate.calls == 0 and client.app.state.jobs.depth == 0  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# 10. the OpenAPI document says what the server accepts; schemathesis finds no failure

REPO = Path(__file__).resolve().parents[1]


def test_openapi_document_matches_what_the_server_accepts(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    doc = client.get("/openapi.json").json()
    bodies = doc["components"]["schemas"]
    for route, body_name in [
        ("/v1/remove", "Body_remove_v1_remove_post"),
        ("/v1/segment", "Body_segment_v1_segment_post"),
    ]:
        props = bodies[body_name]["properties"]
        assert "null" not in str(props).lower() and "anyOf" not in str(props)
        assert props["image"]["minLength"] == 1 and props["image"]["format"] == "binary"
        assert props["threshold"]["exclusiveMinimum"] == 0 and props["threshold"]["exclusiveMaximum"] == 1
        assert props["dilate"] == {**props["dilate"], "type": "integer", "minimum": 0, "maximum": 256}
        responses = doc["paths"][route]["post"]["responses"]
        assert {"400", "401", "413", "415", "422", "500", "503", "504"} <= set(responses)
    remove = bodies["Body_remove_v1_remove_post"]["properties"]
    assert remove["mask"]["minLength"] == 1
    assert remove["format"]["enum"] == ["png", "jpeg", "jpg", "webp"]
    assert remove["inpainter"]["enum"] == client.get("/v1/info").json()["inpainters"]["loaded"]
    assert set(doc["paths"]["/healthz"]) == {"get"}  # HEAD is implied by GET (RFC 9110)
    for path in ("/healthz", "/readyz"):
        assert client.options(path).headers["allow"] == "GET"  # the documented method, not HEAD
    # a repeated option is refused, not silently resolved to its last value
    files = {"image": ("a.png", encode_image(np.zeros((8, 8, 3), np.uint8)))}
    response = client.post("/v1/segment", files=files, data={"threshold": ["0.3", "0.7"]})
    assert "threshold repeated" in assert_error(response, 400, "invalid_parameter")["error"]["message"]
    # an option sent empty is refused too (FastAPI alone would read it as left out)
    for name in ("presence_threshold", "dilate", "inpainter", "format"):
        route = "/v1/remove" if name in ("inpainter", "format") else "/v1/segment"
        response = client.post(route, files=files, data={name: ""})
        assert name in assert_error(response, 400, "invalid_parameter")["error"]["message"]


@pytest.mark.parametrize(
    "examples", [pytest.param(25, id="quick"), pytest.param(100, marks=pytest.mark.slow, id="full")]
)
def test_schemathesis_finds_no_failure(live: Callable[..., LiveServer], examples: int) -> None:
    server = live()
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [str(schemathesis), "--config-file", str(REPO / "schemathesis.toml"), "run",
               f"http://127.0.0.1:{server.port}/openapi.json", "--checks", "all",
               "--max-examples", str(examples), "--no-color"]  # fmt: skip
    # from the repository root, as a user runs it: the config's hooks path is relative to it
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=60 + 6 * examples, cwd=REPO, check=False
    )
    report = run.stdout
    assert "API Operations:" in report, (report + run.stderr)[-2000:]
    failures = [case[:1500] for case in report.split("Test Case ID:")[1:]]
    assert not failures, "\n".join(failures)
    assert run.returncode == 0, report[-2000:]
