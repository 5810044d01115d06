"""End-to-end tests of the web page: Debian's chromium driven by Playwright against the real app.

The app runs in a background uvicorn thread on loopback with a tiny random segmenter and the
OpenCV inpainter, so every request does the real work (decode, segment, inpaint, encode) in
milliseconds. Skipped cleanly where chromium or Playwright is not installed.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
uvicorn = pytest.importorskip("uvicorn")

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from pipeline.factory import build_remover  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 20_000
sync_api.expect.set_options(timeout=TIMEOUT_MS)  # the first request warms torch up on a busy machine
# Chromium reports every non-2xx response as a console error; the bad-file test expects those.
RESOURCE_ERROR = "Failed to load resource"


# ---------------------------------------------------------------------------------------------
# fixtures: the app on a loopback port, one browser for the module


class _Recorder:
    """ASGI wrapper keeping the raw bodies of POST /v1/remove, exactly as they reached the server.

    (Chromium does not hand Playwright the bodies of multipart uploads with files.)
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[tuple[str, bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/remove":
            await self.app(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        chunks: list[bytes] = []

        async def recording_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self.bodies.append((content_type, b"".join(chunks)))
            return message

        await self.app(scope, recording_receive, send)


@pytest.fixture(scope="module")
def recorder(tiny_segmenter_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> _Recorder:
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv", device="cpu")
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return _Recorder(create_app(settings, remover=remover))


@pytest.fixture(scope="module")
def base_url(recorder: _Recorder) -> Iterator[str]:
    with LiveServer(recorder) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # a chromium this Playwright cannot drive
            pytest.skip(f"cannot launch chromium: {exc}")
        yield b
        b.close()


class _Console:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def unexpected(self, *, allow_http_errors: bool = False) -> list[str]:
        return [e for e in self.errors if not (allow_http_errors and e.startswith(RESOURCE_ERROR))]


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[tuple[Any, _Console]]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    console = _Console(p)
    p.goto(base_url + "/")
    # The page configures itself from /v1/info: the inpainter list shows the loaded ones.
    sync_api.expect(p.locator("#inpainter option[value=opencv]")).to_have_count(1)
    yield p, console
    context.close()


# ---------------------------------------------------------------------------------------------
# helpers


def _png(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def _upload(page: Any, name: str, data: bytes, mime: str) -> None:
    page.get_by_test_id("upload").set_input_files({"name": name, "mimeType": mime, "buffer": data})


def _wait_result(page: Any) -> None:
    """Until a fresh result is shown and the page is idle again."""
    sync_api.expect(page.get_by_test_id("download")).to_be_visible()
    sync_api.expect(page.get_by_test_id("result")).to_be_visible()
    sync_api.expect(page.locator("#remove-again")).to_be_enabled()


@contextlib.contextmanager
def _page_on_own_server(browser: Any, app: Any) -> Iterator[tuple[Any, _Console]]:
    """A fresh page on a LiveServer of ``app`` (an app configured differently from the module's)."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        with LiveServer(app) as url:
            p = context.new_page()
            console = _Console(p)
            p.goto(url + "/")
            yield p, console
    finally:
        context.close()


def _fetch_bytes(page: Any, url: str) -> bytes:
    """Fetch a (blob:) URL inside the page, as a user's download would."""
    values = page.evaluate(
        "async (u) => Array.from(new Uint8Array(await (await fetch(u)).arrayBuffer()))", url
    )
    return bytes(values)


def _multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """Field name → raw bytes of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[str(name)] = part.get_payload(decode=True) or b""
    return parts


def _canvas_box(page: Any) -> dict[str, float]:
    box = page.get_by_test_id("mask").bounding_box()
    assert box is not None
    return box


# ---------------------------------------------------------------------------------------------
# tests


def test_upload_shows_result_and_download_is_a_png_of_the_same_size(
    page: tuple[Any, _Console], photo: np.ndarray
) -> None:
    p, console = page
    _upload(p, "holiday photo.png", _png(photo), "image/png")
    _wait_result(p)

    link = p.get_by_test_id("download")
    assert link.get_attribute("download") == "holiday photo-clean.png"
    data = _fetch_bytes(p, link.get_attribute("href"))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (320, 240)

    # The mask canvas works at the image's pixel size, whatever its display size.
    size = p.get_by_test_id("mask").evaluate("c => [c.width, c.height]")
    assert size == [320, 240]
    assert _canvas_box(p)["width"] > 320  # shown larger than the image: mapping matters
    # Timings come from Server-Timing, plus the measured round trip.
    timings = p.locator("#timings").inner_text()
    assert "inpaint" in timings and "round trip" in timings
    # The mask overlay can be hidden and shown again.
    p.locator("#show-mask").uncheck()
    assert p.get_by_test_id("mask").evaluate("c => getComputedStyle(c).opacity") == "0"
    p.locator("#show-mask").check()
    assert float(p.get_by_test_id("mask").evaluate("c => getComputedStyle(c).opacity")) > 0.2
    assert console.unexpected() == []


def test_brush_eraser_and_undo_change_the_mask_that_is_sent(
    page: tuple[Any, _Console], photo: np.ndarray, recorder: _Recorder
) -> None:
    p, console = page
    _upload(p, "photo.png", _png(photo), "image/png")
    _wait_result(p)

    p.locator("#clear").click()  # start from scratch, whatever the random segmenter found
    p.get_by_test_id("brush").click()
    assert p.get_by_test_id("brush").get_attribute("aria-pressed") == "true"
    box = _canvas_box(p)
    scale = 320 / box["width"]

    def at(ix: float, iy: float) -> tuple[float, float]:
        """Image pixel → page coordinates."""
        return box["x"] + ix / scale, box["y"] + iy / scale

    # A horizontal stroke along image row 60 from x=40 to x=280.
    p.mouse.move(*at(40, 60))
    p.mouse.down()
    for x in range(40, 281, 20):
        p.mouse.move(*at(x, 60))
    p.mouse.up()
    # A second stroke along row 180, then undone with the keyboard.
    p.mouse.move(*at(40, 180))
    p.mouse.down()
    p.mouse.move(*at(280, 180), steps=6)
    p.mouse.up()
    p.keyboard.press("Control+z")
    # Erase the middle of the first stroke.
    p.get_by_test_id("eraser").click()
    assert p.get_by_test_id("brush").get_attribute("aria-pressed") == "false"
    p.mouse.move(*at(150, 30))
    p.mouse.down()
    p.mouse.move(*at(150, 90), steps=4)
    p.mouse.up()

    recorder.bodies.clear()
    with p.expect_response(lambda r: r.url.endswith("/v1/remove")) as response:
        p.locator("#remove-again").click()
    assert response.value.ok
    assert len(recorder.bodies) == 1
    parts = _multipart(recorder.bodies[0][1], recorder.bodies[0][0])
    assert parts["dilate"] == b"0"  # the mask is used exactly as drawn
    with Image.open(io.BytesIO(parts["mask"])) as im:
        mask = np.asarray(im.convert("L"))
    assert mask.shape == (240, 320)
    assert set(np.unique(mask)) <= {0, 255}
    assert (mask[60, 50:120] == 255).all() and (mask[60, 190:270] == 255).all()  # painted
    half = 24 * scale / 2  # the default 24 px (on screen) brush, in image pixels
    assert (mask[60, round(150 - half + 1) : round(150 + half - 1)] == 0).all()  # erased
    assert (mask[180, 40:280] == 0).all()  # undone
    assert mask[0:30].max() == 0 and mask[100:].max() == 0  # untouched
    _wait_result(p)
    assert p.locator("#result-meta").inner_text().startswith("opencv")
    assert console.unexpected() == []


def test_bad_file_shows_the_server_error_and_the_page_stays_usable(
    page: tuple[Any, _Console], photo: np.ndarray
) -> None:
    p, console = page
    _upload(p, "notes.txt", b"this is not an image\n" * 20, "text/plain")
    error = p.get_by_test_id("error")
    sync_api.expect(error).to_be_visible()
    assert "image" in error.inner_text().lower()  # the server's JSON message, not a generic one
    assert p.get_by_test_id("download").is_hidden()

    _upload(p, "photo.png", _png(photo), "image/png")
    _wait_result(p)
    assert error.is_hidden()
    assert console.unexpected(allow_http_errors=True) == []


def test_exif_rotated_jpeg_gets_a_mask_and_result_of_the_rotated_size(
    page: tuple[Any, _Console], photo: np.ndarray
) -> None:
    p, console = page
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 320x240, shown rotated 90° clockwise: 240x320
    out = io.BytesIO()
    Image.fromarray(photo).save(out, format="JPEG", quality=90, exif=exif)
    _upload(p, "portrait.jpg", out.getvalue(), "image/jpeg")
    _wait_result(p)
    assert p.get_by_test_id("mask").evaluate("c => [c.width, c.height]") == [240, 320]
    box = _canvas_box(p)
    assert box["height"] > box["width"]
    data = _fetch_bytes(p, p.get_by_test_id("download").get_attribute("href"))
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (240, 320)
    assert p.get_by_test_id("download").get_attribute("download") == "portrait-clean.png"
    assert console.unexpected() == []


def test_comparison_slider_is_keyboard_operable(page: tuple[Any, _Console], photo: np.ndarray) -> None:
    p, _ = page
    _upload(p, "photo.png", _png(photo), "image/png")
    _wait_result(p)
    slider = p.locator("#compare-range")
    slider.focus()
    for _ in range(5):
        p.keyboard.press("ArrowLeft")
    assert slider.input_value() == "45"
    clip = p.locator("#compare").evaluate("e => getComputedStyle(e).getPropertyValue('--pos').trim()")
    assert clip == "45%"
    assert "45% original" in (slider.get_attribute("aria-valuetext") or "")


_ALPHA_AT = "([x, y]) => document.getElementById('mask').getContext('2d').getImageData(x, y, 1, 1).data[3]"


def _touch_drag(cdp: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A one-finger drag through the DevTools protocol (Playwright only has taps)."""
    steps = 8  # several moves, like a real finger, rather than one jump the browser may read as a fling
    path = [
        (start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps)
        for i in range(1, steps + 1)
    ]
    events = [("touchStart", start), *(("touchMove", point) for point in path), ("touchEnd", end)]
    for kind, (x, y) in events:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def _wait_scroll_settled(p: Any) -> None:
    """Until scrollY stops changing (momentum scrolling would move the canvas under a drag)."""
    last = None
    for _ in range(50):
        y = p.evaluate("scrollY")
        if y == last:
            return
        last = y
        p.wait_for_timeout(150)


def test_phone_layout_fits_and_a_finger_paints_the_mask(
    browser: Any, base_url: str, photo: np.ndarray
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        p = context.new_page()
        console = _Console(p)
        p.goto(base_url + "/")
        _upload(p, "photo.png", _png(photo), "image/png")
        _wait_result(p)
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]
        p.locator("#clear").click()
        p.get_by_test_id("mask").scroll_into_view_if_needed()
        box = _canvas_box(p)
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        scale = 320 / box["width"]
        cdp = context.new_cdp_session(p)
        # No tool picked: a vertical finger drag scrolls the page and paints nothing.
        x = box["x"] + 160 / scale
        scrolled = p.evaluate("scrollY")
        _touch_drag(cdp, (x, box["y"] + 200 / scale), (x, box["y"] + 40 / scale))
        p.wait_for_function("y => scrollY > y", arg=scrolled)
        assert p.evaluate(_ALPHA_AT, [160, 120]) == 0
        p.get_by_test_id("brush").click()
        _wait_scroll_settled(p)  # a flick keeps scrolling after the finger lifts
        box = _canvas_box(p)  # the drag may have scrolled the page
        y = box["y"] + 120 / scale
        _touch_drag(cdp, (box["x"] + 60 / scale, y), (box["x"] + 260 / scale, y))
        assert p.evaluate(_ALPHA_AT, [160, 120]) == 255
        assert p.evaluate(_ALPHA_AT, [160, 20]) == 0
        assert console.unexpected() == []
    finally:
        context.close()


_DISPATCH_FILE = """
async ([kind, name, bytes]) => {
  const dt = new DataTransfer();
  dt.items.add(new File([new Uint8Array(bytes)], name, { type: "image/png" }));
  const event =
    kind === "drop"
      ? new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true })
      : new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true });
  document.getElementById(kind === "drop" ? "dropzone" : "main").dispatchEvent(event);
  return event.defaultPrevented;
}
"""


@pytest.mark.parametrize("kind", ["drop", "paste"])
def test_drop_and_paste_start_a_run(page: tuple[Any, _Console], photo: np.ndarray, kind: str) -> None:
    p, console = page
    stem = {"drop": "dropped", "paste": "pasted"}[kind]
    handled = p.evaluate(_DISPATCH_FILE, [kind, f"{stem}.png", list(_png(photo[:120, :200]))])
    assert handled is True  # the page took the file (and kept the browser from opening it)
    _wait_result(p)
    assert p.get_by_test_id("download").get_attribute("download") == f"{stem}-clean.png"
    assert p.get_by_test_id("mask").evaluate("c => [c.width, c.height]") == [200, 120]
    assert console.unexpected() == []


def test_api_key_is_asked_for_and_then_sent(
    browser: Any, tiny_segmenter_dir: Path, photo: np.ndarray
) -> None:
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv", device="cpu")
    app = create_app(Settings(api_keys=["s3cret-key"]), remover=remover)
    with _page_on_own_server(browser, app) as (p, console):
        sync_api.expect(p.locator("#advanced")).to_have_attribute("open", "")  # /v1/info said 401
        _upload(p, "photo.png", _png(photo), "image/png")
        sync_api.expect(p.get_by_test_id("error")).to_contain_text("API key")
        p.locator("#api-key").fill("s3cret-key")
        p.locator("#api-key").press("Enter")
        _upload(p, "photo.png", _png(photo), "image/png")
        _wait_result(p)
        assert p.get_by_test_id("error").is_hidden()
        assert console.unexpected(allow_http_errors=True) == []


def test_a_photo_without_a_mark_is_left_alone_and_the_page_says_so(
    browser: Any, no_mark_segmenter_dir: Path, photo: np.ndarray, tmp_path: Path
) -> None:
    remover = build_remover(segmenter=no_mark_segmenter_dir, inpainter="opencv", device="cpu")
    app = create_app(Settings(data_dir=tmp_path), remover=remover)
    with _page_on_own_server(browser, app) as (p, console):
        _upload(p, "photo.png", _png(photo), "image/png")
        _wait_result(p)
        sync_api.expect(p.locator("#status-text")).to_contain_text("No watermark found")
        sync_api.expect(p.locator("#status-text")).to_contain_text("Paint over it to remove it by hand")
        href = p.get_by_test_id("download").get_attribute("href")
        result = np.asarray(Image.open(io.BytesIO(_fetch_bytes(p, href))).convert("RGB"))
        np.testing.assert_array_equal(result, photo)  # untouched, byte for byte
        assert console.unexpected() == []


def test_tiff_the_browser_cannot_show_gets_a_preview_from_the_server(
    page: tuple[Any, _Console], photo: np.ndarray, recorder: _Recorder
) -> None:
    p, console = page
    out = io.BytesIO()
    Image.fromarray(photo).save(out, format="TIFF")
    recorder.bodies.clear()
    _upload(p, "scan.tiff", out.getvalue(), "image/tiff")
    _wait_result(p)
    # Two removals: the preview (an all-black mask, PNG out) and the real one.
    assert len(recorder.bodies) == 2
    preview = _multipart(recorder.bodies[0][1], recorder.bodies[0][0])
    with Image.open(io.BytesIO(preview["mask"])) as im:
        assert im.size == (320, 240) and im.convert("L").getextrema() == (0, 0)
    assert preview["format"] == b"png"
    # The editor shows the server's PNG rendering of the original, at the image's size.
    natural = p.locator("#original").evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert natural == [320, 240]
    assert p.get_by_test_id("mask").evaluate("c => [c.width, c.height]") == [320, 240]
    assert p.get_by_test_id("download").get_attribute("download") == "scan-clean.png"
    assert console.unexpected() == []


def test_api_docs_render_offline_under_the_content_security_policy(browser: Any, base_url: str) -> None:
    """/docs loads Swagger UI from this server only and runs under the CSP every response carries."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    console = _Console(p)
    hosts: set[str] = set()
    p.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    p.goto(base_url + "/docs")
    sync_api.expect(p.locator(".swagger-ui .info .title")).to_contain_text("markless")
    sync_api.expect(p.locator(".opblock-summary-path", has_text="/v1/remove")).to_have_count(1)
    assert hosts == {base_url.split("/")[2]}
    assert console.unexpected() == []
    context.close()


# ---------------------------------------------------------------------------------------------
# same mark on several photos


def test_learn_a_shared_mark_and_remove_it_from_all(page: tuple[Any, _Console]) -> None:
    from pipeline.marks import synth

    p, console = page
    mark = synth.make_mark(150, 50, opacity=0.5, accent=(40, 90, 230))
    clean = [synth.procedural_photo(150, 220, seed=i) for i in range(4)]
    top, left = synth.corner_position(clean[0].shape, mark.shape, "center", 0)
    marked = [synth.blend(c, mark, top, left) for c in clean]
    p.get_by_test_id("mark-upload").set_input_files(
        [{"name": f"p{i}.png", "mimeType": "image/png", "buffer": _png(m)} for i, m in enumerate(marked)]
    )
    p.get_by_test_id("learn").click()
    sync_api.expect(p.get_by_test_id("mark-image")).to_be_visible()
    assert p.evaluate("document.getElementById('mark-image').naturalWidth") > 0
    sync_api.expect(p.locator("#mark-meta")).to_contain_text("anchored center")
    p.get_by_test_id("remove-all").click()
    links = p.get_by_test_id("mark-download")
    sync_api.expect(links).to_have_count(4)
    sync_api.expect(p.get_by_test_id("download-all")).to_be_visible()
    for i, (c, m) in enumerate(zip(clean, marked, strict=True)):
        link = links.nth(i)
        assert link.get_attribute("download") == f"p{i}-clean.png"
        restored = np.asarray(
            Image.open(io.BytesIO(_fetch_bytes(p, str(link.get_attribute("href"))))).convert("RGB")
        )
        error_out = float(np.abs(restored.astype(float) - c).mean())
        error_in = float(np.abs(m.astype(float) - c).mean())
        assert error_out < 0.5 * error_in
    with p.expect_download() as download:
        links.first.click()
    assert download.value.suggested_filename == "p0-clean.png"
    # "Download all": one ZIP built in the page, holding exactly the files the links give.
    with p.expect_download() as download:
        p.get_by_test_id("download-all").click()
    assert download.value.suggested_filename == "markless-clean.zip"
    with zipfile.ZipFile(download.value.path()) as archive:
        assert archive.testzip() is None  # every member's CRC-32 checks out
        assert archive.namelist() == [f"p{i}-clean.png" for i in range(4)]
        for i in range(4):
            assert archive.read(f"p{i}-clean.png") == _fetch_bytes(p, str(links.nth(i).get_attribute("href")))
    assert console.unexpected() == []


def test_zip_of_results_is_a_valid_archive_with_unique_utf8_names(page: tuple[Any, _Console]) -> None:
    """The page's ZIP writer on its own: same-named photos do not overwrite each other, names
    keep their non-ASCII letters, and Python's zipfile reads back every byte."""
    p, console = page
    values = p.evaluate(
        """async () => {
            const { storedZip } = await import("./static/zip.js");
            const files = [
                { name: "été.png", data: new Uint8Array([1, 2, 3]) },
                { name: "été.png", data: new Uint8Array([]) },
                { name: "b", data: new Uint8Array(70000).map((_, i) => i % 251) },
            ];
            return Array.from(new Uint8Array(await storedZip(files).arrayBuffer()));
        }"""
    )
    with zipfile.ZipFile(io.BytesIO(bytes(values))) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["été.png", "été-2.png", "b"]
        assert archive.read("été.png") == bytes([1, 2, 3])
        assert archive.read("été-2.png") == b""
        assert archive.read("b") == bytes(i % 251 for i in range(70000))
    assert console.unexpected() == []
