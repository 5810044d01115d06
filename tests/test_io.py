"""Tests of pipeline.io: every accepted input decodes to the right 8-bit RGB, bad input becomes a
typed error, and encode/decode round-trip pixels, alpha and metadata."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms

from pipeline.errors import (
    ImageTooLargeError,
    InvalidMaskError,
    InvalidParameterError,
    MarklessError,
    UnsupportedImageError,
)
from pipeline.io import (
    OUTPUT_FORMATS,
    SUPPORTED_SUFFIXES,
    DecodedImage,
    decode,
    decode_mask,
    encode,
    encode_mask,
    file_suffix,
    media_type,
    normalize_format,
    read_image_file,
)

W, H = 48, 32  # stored size of most test images: not square, so rotations are visible
RED, GREEN, BLUE, GREY = (220, 20, 30), (20, 200, 40), (30, 40, 210), (128, 128, 128)


def save(im: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, format=fmt, **options)
    return out.getvalue()


def blocks_rgb(width: int = W, height: int = H) -> np.ndarray:
    """Flat 16x16 colour blocks: survive JPEG almost exactly, yet every corner differs."""
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[...] = GREY
    rgb[:16, :16] = RED  # top-left
    rgb[:16, -16:] = GREEN  # top-right
    rgb[-16:, :16] = BLUE  # bottom-left
    return rgb


def gradient_u16(width: int = W, height: int = H) -> np.ndarray:
    """A 16-bit ramp covering the full range, so scaling (not clipping) is visible."""
    ramp = np.linspace(0, 65535, width * height).round().astype(np.uint16)
    return ramp.reshape(height, width)


def scale16(values: np.ndarray) -> np.ndarray:
    return np.rint(values.astype(np.float64) / 257.0).astype(np.uint8)


def alpha_ramp() -> np.ndarray:
    return np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))


# ---------------------------------------------------------------------------------------------
# accepted inputs: (bytes, expected rgb, expected alpha, format, tolerance in mean abs error)

Case = tuple[bytes, np.ndarray, np.ndarray | None, str, float]


def case_rgb_png() -> Case:
    rgb = blocks_rgb()
    return save(Image.fromarray(rgb), "PNG"), rgb, None, "PNG", 0


def case_rgba_png() -> Case:
    rgb, a = blocks_rgb(), alpha_ramp()
    return save(Image.fromarray(np.dstack([rgb, a])), "PNG"), rgb, a, "PNG", 0


def case_l_png() -> Case:
    grey = blocks_rgb()[..., 1]
    return save(Image.fromarray(grey), "PNG"), np.dstack([grey] * 3), None, "PNG", 0


def case_la_png() -> Case:
    grey, a = blocks_rgb()[..., 0], alpha_ramp()
    im = Image.merge("LA", [Image.fromarray(grey), Image.fromarray(a)])
    return save(im, "PNG"), np.dstack([grey] * 3), a, "PNG", 0


def palette_blocks() -> tuple[Image.Image, np.ndarray]:
    """``blocks_rgb`` as a 4-colour palette image, and that palette as RGB rows."""
    im = Image.fromarray(blocks_rgb()).quantize(colors=4, method=Image.Quantize.MEDIANCUT)
    return im, np.array(im.getpalette()[:12], np.uint8).reshape(4, 3)


def case_palette_transparency_png() -> Case:
    im, palette = palette_blocks()
    indices = np.asarray(im)
    red_index = int(np.argmin(np.abs(palette.astype(int) - RED).sum(axis=1)))
    data = save(im, "PNG", transparency=red_index)
    alpha = np.where(indices == red_index, 0, 255).astype(np.uint8)
    return data, palette[indices], alpha, "PNG", 0


def case_palette_png() -> Case:
    im, palette = palette_blocks()
    return save(im, "PNG"), palette[np.asarray(im)], None, "PNG", 0


def case_bilevel_png() -> Case:
    grey = np.where(blocks_rgb()[..., 0] > 200, 255, 0).astype(np.uint8)
    return save(Image.fromarray(grey).convert("1"), "PNG"), np.dstack([grey] * 3), None, "PNG", 0


def case_rgb_trns_png() -> Case:
    rgb = blocks_rgb()
    alpha = np.where((rgb == GREY).all(axis=2), 0, 255).astype(np.uint8)
    return save(Image.fromarray(rgb), "PNG", transparency=GREY), rgb, alpha, "PNG", 0


def case_i16_png() -> Case:
    values = gradient_u16()
    data = save(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    return data, np.dstack([scale16(values)] * 3), None, "PNG", 0


def case_i16_trns_png() -> Case:
    values = gradient_u16()
    values[0, :5] = 1234
    data = save(Image.fromarray(values), "PNG", transparency=1234)
    alpha = np.where(values == 1234, 0, 255).astype(np.uint8)
    return data, np.dstack([scale16(values)] * 3), alpha, "PNG", 0


def case_i16_tiff() -> Case:
    values = gradient_u16()
    return save(Image.fromarray(values), "TIFF"), np.dstack([scale16(values)] * 3), None, "TIFF", 0


def case_i32_tiff() -> Case:
    values = gradient_u16().astype(np.int32)  # Pillow mode "I" holding 16-bit data
    return save(Image.fromarray(values), "TIFF"), np.dstack([scale16(values)] * 3), None, "TIFF", 0


def case_float_tiff() -> Case:
    values = gradient_u16().astype(np.float32) / 65535.0
    expected = np.rint(values * 255.0).astype(np.uint8)
    return save(Image.fromarray(values), "TIFF"), np.dstack([expected] * 3), None, "TIFF", 0


def case_rgb16_png() -> Case:
    rgb16 = np.dstack([gradient_u16(), gradient_u16()[::-1], np.full((H, W), 40000, np.uint16)])
    ok, buf = cv2.imencode(".png", rgb16[..., ::-1])  # OpenCV writes BGR
    assert ok
    return buf.tobytes(), scale16(rgb16), None, "PNG", 0.6


def case_rgb16_tiff() -> Case:
    rgb16 = np.dstack([gradient_u16(), gradient_u16()[::-1], np.full((H, W), 40000, np.uint16)])
    ok, buf = cv2.imencode(".tiff", rgb16[..., ::-1])
    assert ok
    return buf.tobytes(), scale16(rgb16), None, "TIFF", 0.6


def case_cmyk_jpeg() -> Case:
    rgb = blocks_rgb()
    return save(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95), rgb, None, "JPEG", 3


def case_cmyk_tiff() -> Case:
    rgb = blocks_rgb()
    return save(Image.fromarray(rgb).convert("CMYK"), "TIFF"), rgb, None, "TIFF", 0


def case_rgb_jpeg() -> Case:
    rgb = blocks_rgb()
    return save(Image.fromarray(rgb), "JPEG", quality=95, subsampling=0), rgb, None, "JPEG", 3


def case_grey_jpeg() -> Case:
    grey = blocks_rgb()[..., 2]
    return save(Image.fromarray(grey), "JPEG", quality=95), np.dstack([grey] * 3), None, "JPEG", 3


def case_bmp() -> Case:
    rgb = blocks_rgb()
    return save(Image.fromarray(rgb), "BMP"), rgb, None, "BMP", 0


def case_palette_bmp() -> Case:
    im, palette = palette_blocks()
    return save(im, "BMP"), palette[np.asarray(im)], None, "BMP", 0


def case_webp_lossless() -> Case:
    rgb = blocks_rgb()
    return save(Image.fromarray(rgb), "WEBP", lossless=True), rgb, None, "WEBP", 0


def case_webp_lossless_rgba() -> Case:
    rgb, a = blocks_rgb(), alpha_ramp()
    data = save(Image.fromarray(np.dstack([rgb, a])), "WEBP", lossless=True, exact=True)
    return data, rgb, a, "WEBP", 0


def case_rgba_tiff() -> Case:
    rgb, a = blocks_rgb(), alpha_ramp()
    return save(Image.fromarray(np.dstack([rgb, a])), "TIFF", compression="tiff_lzw"), rgb, a, "TIFF", 0


def case_multipage_tiff() -> Case:
    rgb = blocks_rgb()
    second = Image.new("RGB", (10, 10), (1, 2, 3))
    data = save(Image.fromarray(rgb), "TIFF", save_all=True, append_images=[second])
    return data, rgb, None, "TIFF", 0


def case_mpo() -> Case:
    rgb = blocks_rgb()
    preview = Image.new("RGB", (16, 16), (9, 9, 9))
    data = save(
        Image.fromarray(rgb), "MPO", save_all=True, append_images=[preview], quality=95, subsampling=0
    )
    assert Image.open(io.BytesIO(data)).format == "MPO"
    return data, rgb, None, "JPEG", 3


CASES: dict[str, Callable[[], Case]] = {
    name.removeprefix("case_"): fn for name, fn in globals().items() if name.startswith("case_")
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_decode_accepted_inputs(name: str) -> None:
    data, rgb, alpha, fmt, tolerance = CASES[name]()
    out = decode(data)
    assert isinstance(out, DecodedImage)
    assert out.format == fmt
    assert (out.width, out.height) == (rgb.shape[1], rgb.shape[0])
    assert out.rgb.dtype == np.uint8 and out.rgb.shape == rgb.shape
    assert out.rgb.flags.c_contiguous and out.rgb.flags.writeable
    error = np.abs(out.rgb.astype(int) - rgb.astype(int))
    assert error.mean() <= tolerance, f"mean abs error {error.mean():.2f}"
    assert error.max() <= (1 if tolerance < 1 else 40)
    if alpha is None:
        assert out.alpha is None
    else:
        assert out.alpha is not None and out.alpha.dtype == np.uint8
        np.testing.assert_array_equal(out.alpha, alpha)


def test_decode_accepts_paths_and_buffers(tmp_path: Path) -> None:
    data, rgb, *_ = case_rgb_png()
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    for source in (path, str(path), bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(decode(source).rgb, rgb)
    np.testing.assert_array_equal(read_image_file(path).rgb, rgb)


def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImageError, match="cannot read"):
        read_image_file(tmp_path / "nope.jpg")
    with pytest.raises(UnsupportedImageError, match="cannot read"):
        decode(tmp_path)  # a directory


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(InvalidParameterError):
        decode(12345)  # type: ignore[arg-type]


def test_icc_profile_kept_only_for_rgb() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = decode(save(Image.fromarray(blocks_rgb()), "JPEG", icc_profile=srgb))
    assert out.icc_profile == srgb
    fake_grey = bytearray(srgb)
    fake_grey[16:20] = b"GRAY"
    out = decode(save(Image.fromarray(blocks_rgb()[..., 0]), "PNG", icc_profile=bytes(fake_grey)))
    assert out.icc_profile is None


# ---------------------------------------------------------------------------------------------
# EXIF orientation

# Where the stored top-left (red) and top-right (green) blocks end up after applying each value.
ORIENTATIONS = {
    1: ("tl", "tr"),
    2: ("tr", "tl"),
    3: ("br", "bl"),
    4: ("bl", "br"),
    5: ("tl", "bl"),
    6: ("tr", "br"),
    7: ("br", "tr"),
    8: ("bl", "tl"),
}


def corner(rgb: np.ndarray, where: str) -> np.ndarray:
    rows = slice(0, 4) if where[0] == "t" else slice(-4, None)
    cols = slice(0, 4) if where[1] == "l" else slice(-4, None)
    return rgb[rows, cols].reshape(-1, 3).mean(axis=0)


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "MarklessCam"
    return exif


def assert_oriented(out: DecodedImage, orientation: int) -> None:
    swapped = orientation >= 5
    assert (out.width, out.height) == ((H, W) if swapped else (W, H))
    red_at, green_at = ORIENTATIONS[orientation]
    np.testing.assert_allclose(corner(out.rgb, red_at), RED, atol=12)
    np.testing.assert_allclose(corner(out.rgb, green_at), GREEN, atol=12)


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_jpeg(orientation: int) -> None:
    data = save(Image.fromarray(blocks_rgb()), "JPEG", quality=95, exif=exif_with(orientation))
    out = decode(data)
    assert_oriented(out, orientation)
    assert out.exif is not None and out.exif.startswith(b"Exif\x00\x00")
    kept = Image.Exif()
    kept.load(out.exif)
    assert kept[ExifTags.Base.Orientation] == 1
    assert kept[ExifTags.Base.Make] == "MarklessCam"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_exif_orientation_other_containers(fmt: str) -> None:
    im = Image.fromarray(blocks_rgb())
    if fmt == "TIFF":
        data = save(im, fmt, tiffinfo={ExifTags.Base.Orientation: 6})
    else:
        data = save(im, fmt, exif=exif_with(6), **({"lossless": True} if fmt == "WEBP" else {}))
    out = decode(data)
    assert_oriented(out, 6)
    if fmt == "TIFF":
        assert out.exif is None  # a TIFF's own directory is not metadata to carry over
    else:
        assert out.exif is not None


@pytest.mark.parametrize("bad", [0, 9, 65535])
def test_out_of_range_orientation_is_ignored(bad: int) -> None:
    out = decode(save(Image.fromarray(blocks_rgb()), "PNG", exif=exif_with(bad)))
    assert_oriented(out, 1)


def test_alpha_follows_orientation() -> None:
    rgb, a = blocks_rgb(), alpha_ramp()
    data = save(Image.fromarray(np.dstack([rgb, a])), "PNG", exif=exif_with(8))
    out = decode(data)
    assert out.alpha is not None
    np.testing.assert_array_equal(out.alpha, np.rot90(a))  # orientation 8 = 90° counter-clockwise


# ---------------------------------------------------------------------------------------------
# refused inputs


def noise_rgb(size: int = 96) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


def two_frames() -> list[Image.Image]:
    return [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))]


def truncated(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


REFUSED: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "text": lambda: b"hello, this is not an image\n" * 10,
    "svg": lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "random": lambda: np.random.default_rng(1).bytes(4096),
    "truncated_png": lambda: truncated(save(Image.fromarray(noise_rgb()), "PNG"), 0.6),
    "truncated_jpeg": lambda: truncated(save(Image.fromarray(noise_rgb()), "JPEG"), 0.5),
    "png_header_only": lambda: truncated(save(Image.fromarray(noise_rgb()), "PNG"), 0.01),
    "jpeg_header_only": lambda: save(Image.fromarray(noise_rgb()), "JPEG")[:400],
    "gif": lambda: save(Image.new("P", (8, 8)), "GIF"),
    "animated_png": lambda: save(two_frames()[0], "PNG", save_all=True, append_images=two_frames()[1:]),
    "animated_webp": lambda: save(two_frames()[0], "WEBP", save_all=True, append_images=two_frames()[1:]),
    "pdf": lambda: b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n",
    "heic": lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
    "ico": lambda: save(Image.new("RGB", (16, 16)), "ICO"),
    "eps_like": lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
}
REFUSED_MESSAGES = {
    "empty": "empty",
    "svg": "SVG",
    "gif": "GIF",
    "animated_png": "animated",
    "animated_webp": "animated",
    "pdf": "PDF",
    "heic": "HEIC",
    "truncated_png": "truncated",
    "truncated_jpeg": "truncated",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_inputs(name: str) -> None:
    with pytest.raises(UnsupportedImageError, match=REFUSED_MESSAGES.get(name)) as info:
        decode(REFUSED[name]())
    assert info.value.code == "unsupported_image"
    assert info.value.message


# ---------------------------------------------------------------------------------------------
# size limits


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed-looking RGB PNG whose IHDR claims ``width`` x ``height``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * 64)  # one short row: far from enough data
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def test_header_bomb_refused_without_allocating() -> None:
    data = png_claiming(30_000, 30_000)
    assert len(data) < 200
    images_before = Image.core.get_stats()["new_count"]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ImageTooLargeError) as info:
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 4 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"
    assert Image.core.get_stats()["new_count"] == images_before  # Pillow made no image at all
    assert info.value.code == "image_too_large"


def test_our_limit_applies_below_pillows() -> None:
    # 64 M pixels: under Pillow's own guard, over our default of 50 M.
    images_before = Image.core.get_stats()["new_count"]
    with pytest.raises(ImageTooLargeError, match="8000x8000"):
        decode(png_claiming(8000, 8000))
    assert Image.core.get_stats()["new_count"] == images_before


@pytest.mark.parametrize("action", ["error", "ignore"])
def test_pillow_bomb_warning_path_is_typed(action: str) -> None:
    # 100 M pixels: Pillow warns (or raises, with warnings as errors) before our own check.
    with warnings.catch_warnings():
        warnings.simplefilter(action, Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLargeError):
            decode(png_claiming(10_000, 10_000))


def test_custom_max_pixels() -> None:
    data = save(Image.fromarray(blocks_rgb()), "PNG")
    with pytest.raises(ImageTooLargeError, match="1,536 pixels"):
        decode(data, max_pixels=W * H - 1)
    assert decode(data, max_pixels=W * H).width == W
    for bad in (0, -5, 1.5, True):
        with pytest.raises(InvalidParameterError):
            decode(data, max_pixels=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# robustness: mutated files never escape as anything but a typed error


def _seed_files() -> list[bytes]:
    rgb = blocks_rgb(24, 16)
    im = Image.fromarray(rgb)
    return [
        save(im, "PNG"),
        save(im, "JPEG", quality=80, exif=exif_with(6)),
        save(im, "WEBP", quality=80),
        save(im, "BMP"),
        save(im, "TIFF", compression="tiff_lzw"),
        save(Image.fromarray(np.dstack([rgb, rgb[..., 0]])), "PNG"),
    ]


SEEDS = _seed_files()


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the corrupt EXIF/TIFF tags we make
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(1, 10_000)),
)
def test_mutated_files_only_raise_typed_errors(
    seed: int, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SEEDS[seed])
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    try:
        out = decode(bytes(data), max_pixels=1_000_000)
    except MarklessError:
        return
    assert out.rgb.ndim == 3 and out.rgb.shape[2] == 3 and out.rgb.dtype == np.uint8
    assert out.width * out.height <= 1_000_000


# ---------------------------------------------------------------------------------------------
# encoding


@pytest.mark.parametrize(
    ("fmt", "pil_format", "tolerance"),
    [("png", "PNG", 0), ("PNG", "PNG", 0), ("jpeg", "JPEG", 3), ("jpg", "JPEG", 3), ("webp", "WEBP", 3)],
)
def test_encode_roundtrip(fmt: str, pil_format: str, tolerance: float) -> None:
    rgb = blocks_rgb()
    data = encode(rgb, fmt)
    assert Image.open(io.BytesIO(data)).format == pil_format
    out = decode(data)
    assert out.rgb.shape == rgb.shape
    assert np.abs(out.rgb.astype(int) - rgb.astype(int)).mean() <= tolerance


@pytest.mark.parametrize(("fmt", "kept"), [("png", True), ("webp", True), ("jpeg", False)])
def test_encode_alpha(fmt: str, kept: bool) -> None:
    rgb, a = blocks_rgb(), alpha_ramp()
    out = decode(encode(rgb, fmt, alpha=a, quality=100))
    if kept:
        assert out.alpha is not None
        assert np.abs(out.alpha.astype(int) - a).max() <= (0 if fmt == "png" else 2)
    else:
        assert out.alpha is None


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_encode_keeps_exif_and_icc(fmt: str) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = decode(save(Image.fromarray(blocks_rgb()), "JPEG", exif=exif_with(6), icc_profile=srgb))
    data = encode(source.rgb, fmt, exif=source.exif, icc_profile=source.icc_profile)
    again = decode(data)
    # Orientation was reset to 1 on decode, so the re-decoded image is not rotated a second time.
    assert (again.width, again.height) == (source.width, source.height) == (H, W)
    assert again.icc_profile == srgb
    assert again.exif is not None
    exif = Image.Exif()
    exif.load(again.exif)
    assert exif[ExifTags.Base.Make] == "MarklessCam"
    assert exif[ExifTags.Base.Orientation] == 1


def test_encode_accepts_exif_without_header() -> None:
    blob = exif_with(1).tobytes()
    assert blob.startswith(b"Exif\x00\x00")
    out = decode(encode(blocks_rgb(), "jpeg", exif=blob[6:]))
    assert out.exif is not None and b"MarklessCam" in out.exif


def test_encode_drops_oversized_jpeg_exif() -> None:
    exif = exif_with(1)
    exif[ExifTags.Base.ImageDescription] = "x" * 70_000
    out = decode(encode(blocks_rgb(), "jpeg", exif=exif.tobytes()))
    assert out.exif is None


def test_encode_quality_changes_jpeg_size() -> None:
    rgb = noise_rgb(64)
    assert len(encode(rgb, "jpeg", quality=20)) < len(encode(rgb, "jpeg", quality=95))


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode(blocks_rgb(), "gif"),
        lambda: encode(blocks_rgb(), "bmp"),
        lambda: encode(blocks_rgb(), "png", quality=0),
        lambda: encode(blocks_rgb(), "jpeg", quality=101),
        lambda: encode(blocks_rgb().astype(np.float32), "png"),
        lambda: encode(blocks_rgb()[..., :2], "png"),
        lambda: encode(np.zeros((0, 4, 3), np.uint8), "png"),
        lambda: encode(blocks_rgb(), "png", alpha=np.zeros((H, W + 1), np.uint8)),
        lambda: encode(blocks_rgb(), "png", alpha=np.zeros((H, W), bool)),
        lambda: encode(np.zeros((1, 16_384, 3), np.uint8), "webp"),
    ],
)
def test_encode_refuses_bad_arguments(call: Callable[[], bytes]) -> None:
    with pytest.raises(InvalidParameterError):
        call()


def test_encode_accepts_non_contiguous_views() -> None:
    rgb = blocks_rgb()
    view = rgb[:, ::-1]
    np.testing.assert_array_equal(decode(encode(view, "png")).rgb, view)


def test_format_helpers() -> None:
    assert OUTPUT_FORMATS == ("png", "jpeg", "webp")
    assert [media_type(f) for f in ("png", "JPG", "jpeg", "WebP")] == [
        "image/png",
        "image/jpeg",
        "image/jpeg",
        "image/webp",
    ]
    assert [file_suffix(f) for f in OUTPUT_FORMATS] == [".png", ".jpg", ".webp"]
    assert normalize_format(" .JPG ") == "jpeg"
    assert {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"} == set(SUPPORTED_SUFFIXES)
    with pytest.raises(InvalidParameterError, match="tiff"):
        media_type("tiff")
    with pytest.raises(InvalidParameterError):
        normalize_format(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# masks


def mask_pattern() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[4:12, 10:30] = True
    mask[20:, 40:] = True
    return mask


def test_encode_mask_roundtrip() -> None:
    mask = mask_pattern()
    data = encode_mask(mask)
    im = Image.open(io.BytesIO(data))
    assert (im.format, im.mode, im.size) == ("PNG", "L", (W, H))
    assert set(np.unique(np.asarray(im))) == {0, 255}
    np.testing.assert_array_equal(decode_mask(data, (W, H)), mask)
    np.testing.assert_array_equal(decode_mask(encode_mask(mask.astype(np.uint8)), (W, H)), mask)


@pytest.mark.parametrize(
    "bad", [np.zeros((H, W), np.float32), np.zeros((H, W, 3), bool), np.zeros((0, 5), bool), [[1]]]
)
def test_encode_mask_refuses_bad_arrays(bad: object) -> None:
    with pytest.raises(InvalidParameterError):
        encode_mask(bad)  # type: ignore[arg-type]


def test_decode_mask_threshold_and_modes() -> None:
    levels = np.tile(np.arange(W, dtype=np.uint8) * 5, (H, 1))  # 0..235 across the width
    expected = levels >= 128
    grey = Image.fromarray(levels)
    for data in (save(grey, "PNG"), save(grey.convert("RGB"), "BMP"), save(grey, "TIFF")):
        np.testing.assert_array_equal(decode_mask(data, (W, H)), expected)
    sixteen = Image.fromarray(levels.astype(np.uint16) * 257)
    np.testing.assert_array_equal(decode_mask(save(sixteen, "PNG"), (W, H)), expected)


def test_decode_mask_transparent_pixels_are_not_masked() -> None:
    mask = mask_pattern()
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere...
    rgba[..., 3] = np.where(mask, 255, 0)  # ...but only the strokes are opaque
    np.testing.assert_array_equal(decode_mask(save(Image.fromarray(rgba), "PNG"), (W, H)), mask)


def test_decode_mask_applies_orientation() -> None:
    mask = mask_pattern()
    stored = np.rot90(mask, k=-1)  # what a camera rotated 90° would store; orientation 8 undoes it
    data = save(Image.fromarray(np.where(stored, 255, 0).astype(np.uint8)), "PNG", exif=exif_with(8))
    np.testing.assert_array_equal(decode_mask(data, (W, H)), mask)


@pytest.mark.parametrize("size", [(W + 1, H), (H, W), (W, H * 2)])
def test_decode_mask_wrong_size(size: tuple[int, int]) -> None:
    data = encode_mask(mask_pattern())
    with pytest.raises(InvalidMaskError) as info:
        decode_mask(data, size)
    assert f"{W}x{H}" in info.value.message
    assert f"{size[0]}x{size[1]}" in info.value.message


@pytest.mark.parametrize("data", [b"", b"not a mask", REFUSED["truncated_png"]()])
def test_decode_mask_not_an_image(data: bytes) -> None:
    with pytest.raises(InvalidMaskError):
        decode_mask(data, (96, 96))


def test_decode_mask_bomb_is_refused_from_its_header() -> None:
    images_before = Image.core.get_stats()["new_count"]
    with pytest.raises(ImageTooLargeError):
        decode_mask(png_claiming(30_000, 30_000), (W, H))
    # Within the pixel limit, but no rotation makes it fit the image: refused before decoding.
    with pytest.raises(InvalidMaskError, match="8000x8000"):
        decode_mask(png_claiming(8000, 8000), (W, H), max_pixels=10**9)
    assert Image.core.get_stats()["new_count"] == images_before


def test_decode_mask_bad_size_argument() -> None:
    with pytest.raises(InvalidParameterError):
        decode_mask(encode_mask(mask_pattern()), (0, H))
