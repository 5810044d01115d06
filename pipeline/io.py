"""Image decoding and encoding at the edges of the pipeline.

Everything that enters the pipeline goes through ``decode`` (or ``decode_mask``) and everything
that leaves it through ``encode`` (or ``encode_mask``), so the rest of the tree only ever sees
8-bit RGB arrays in display orientation. The decoder is the one place that touches untrusted
bytes: it accepts a fixed list of still-image formats, refuses oversized images from their header
before any pixel is decoded, and turns every failure of the underlying library into a typed
``MarklessError`` so the service answers 4xx instead of crashing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal

import numpy as np
from PIL import (
    BmpImagePlugin,  # noqa: F401  (registers the decoder we allow below)
    ExifTags,
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from pipeline.errors import (
    ImageTooLargeError,
    InvalidMaskError,
    InvalidParameterError,
    MarklessError,
    UnsupportedImageError,
    quote,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMAT_NAMES",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "SUPPORTED_SUFFIXES",
    "DecodedImage",
    "ImageInfo",
    "OutputFormat",
    "check_output_size",
    "decode",
    "decode_mask",
    "encode",
    "encode_mask",
    "file_suffix",
    "media_type",
    "normalize_format",
    "probe",
    "read_image_file",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS: Final = 40_000_000
"""Default pixel budget (``Settings.max_pixels``): a 40 MP photo decodes to 120 MB of RGB."""

INPUT_FORMATS: Final = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
"""Pillow format names we decode; anything else (GIF, SVG, HEIC, EPS, ...) is refused."""

OutputFormat = Literal["png", "jpeg", "webp"]
OUTPUT_FORMATS: Final = typing.get_args(OutputFormat)
"""Formats ``encode`` writes (the ``format`` field, ``--format`` and ``Settings.default_format``)."""

SUPPORTED_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
"""File suffixes (lower case) that folder walks pick up."""

PNG_COMPRESS_LEVEL: Final = 3
"""zlib level for PNG output. Measured on a 2048x1536 photo (2 shared CPU cores): level 3 takes
~0.33 s for 5.0 MB, level 6 ~1.1 s for 4.4 MB, level 1 ~0.24 s for 5.1 MB; a second of latency per
request is worth more than 12% of size."""

_FORMAT_ALIASES: Final = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}
FORMAT_NAMES: Final = tuple(_FORMAT_ALIASES)
"""Names ``normalize_format`` accepts (in any case): the output formats and the ``jpg`` alias."""
_MEDIA_TYPES: Final = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_SUFFIXES: Final = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
_PIL_SAVE_NAMES: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
# Largest side each output format can store (WebP's bitstream has 14-bit dimensions).
_MAX_SIDE: Final = {"png": 2**31 - 1, "jpeg": 65_535, "webp": 16_383}
# Formats whose extra frames are animation: a still output would silently drop them, so refuse.
# Extra frames of TIFF (pages/thumbnails) and MPO JPEGs (previews/depth maps) are ignored instead.
_ANIMATED_FORMATS: Final = frozenset({"PNG", "WEBP"})
_JPEG_MAX_MARKER_BYTES: Final = 65_533
_EXIF_HEADER: Final = b"Exif\x00\x00"
_ACCEPTED_TEXT: Final = "PNG, JPEG, WebP, BMP or TIFF"

_TRANSPOSE_FOR_ORIENTATION: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Source = bytes | bytearray | memoryview | str | Path


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """A decoded image in display orientation, plus what ``encode`` needs to write it back.

    ``rgb`` is HxWx3 uint8 (C-contiguous, writable); ``alpha`` is HxW uint8 or None and is kept
    aside because the models work on RGB only. ``exif`` carries the ``Exif\\0\\0`` header, has its
    orientation reset to 1 (the pixels are already rotated) and no embedded thumbnail (it would
    still show the watermark). ``icc_profile`` is only kept when it describes RGB data.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    format: str
    exif: bytes | None = None
    icc_profile: bytes | None = None

    @property
    def width(self) -> int:
        """Width in pixels after EXIF rotation."""
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels after EXIF rotation."""
        return int(self.rgb.shape[0])

    def encode_result(self, rgb: np.ndarray, fmt: str, *, quality: int = 95) -> bytes:
        """Encode a restored ``rgb`` of this image with its alpha, EXIF and ICC profile."""
        return encode(
            rgb, fmt, alpha=self.alpha, exif=self.exif, icc_profile=self.icc_profile, quality=quality
        )


@dataclass
class _Loaded:
    """Pillow's view of an input, reduced to 8-bit bands, before orientation is applied."""

    base: Image.Image  # mode "L" or "RGB"
    alpha: Image.Image | None  # mode "L"
    format: str
    orientation: int
    exif: bytes | None
    icc_profile: bytes | None


# ---------------------------------------------------------------------------------------------
# decoding


def decode(data: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode image bytes (or a file path) into 8-bit RGB in display orientation.

    Accepts PNG, JPEG, WebP, BMP and TIFF in any of their common modes (grey, palette, 16 bit,
    CMYK, with or without alpha). Raises ``UnsupportedImageError`` for anything else, including
    truncated or corrupt files and animations, and ``ImageTooLargeError`` when the header
    announces more than ``max_pixels`` pixels (checked before pixel data is decoded).
    """
    loaded = _load(data, max_pixels=max_pixels, error=UnsupportedImageError)
    base = loaded.base if loaded.base.mode == "RGB" else loaded.base.convert("RGB")
    base = _orient(base, loaded.orientation)
    alpha = _orient(loaded.alpha, loaded.orientation) if loaded.alpha is not None else None
    return DecodedImage(
        rgb=_to_array(base),
        alpha=_to_array(alpha) if alpha is not None else None,
        format=loaded.format,
        exif=loaded.exif,
        icc_profile=loaded.icc_profile,
    )


def read_image_file(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode an image file (the CLI's entry point); same errors as ``decode``."""
    return decode(Path(path), max_pixels=max_pixels)


def decode_mask(data: Source, size: tuple[int, int], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a user-supplied mask for an image of ``size`` = (width, height) into HxW bool.

    White (grey level >= 128) means "remove". Transparent pixels count as black, so a white
    brush stroke on a transparent layer works as well as a black-and-white image. EXIF
    orientation is applied, as for the photo itself. Raises ``InvalidMaskError`` when the data
    is not an image or its (rotated) size differs from ``size``.
    """
    width, height = _check_size_arg(size)
    loaded = _load(data, max_pixels=max_pixels, error=InvalidMaskError, expected=(width, height))
    grey = loaded.base if loaded.base.mode == "L" else loaded.base.convert("L")
    values = _to_array(_orient(grey, loaded.orientation))
    if values.shape != (height, width):
        raise InvalidMaskError(
            f"mask is {values.shape[1]}x{values.shape[0]} pixels but the image is {width}x{height}"
        )
    if loaded.alpha is None:
        return values >= 128
    alpha = _to_array(_orient(loaded.alpha, loaded.orientation))
    # Flatten onto black: value * alpha / 255 >= 128, in integers.
    return values.astype(np.uint32) * alpha >= 128 * 255


def _check_size_arg(size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError) as e:
        raise InvalidParameterError(f"size must be (width, height), got {size!r}") from e
    if width <= 0 or height <= 0:
        raise InvalidParameterError(f"size must be positive, got {width}x{height}")
    return width, height


def _load(
    data: Source,
    *,
    max_pixels: int,
    error: type[MarklessError],
    expected: tuple[int, int] | None = None,
) -> _Loaded:
    """Open, check and fully decode ``data``; every decoder failure becomes ``error``."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int | np.integer) or max_pixels <= 0:
        raise InvalidParameterError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    max_pixels = int(max_pixels)
    if isinstance(data, str | Path):
        path = Path(data)
        try:
            with path.open("rb") as fp:
                return _load_stream(fp, max_pixels, error, expected, name=str(path))
        except OSError as e:
            # Only reached for failures to open/read the file itself: decoder errors are
            # mapped inside _load_stream.
            raise error(f"cannot read {path}: {e.strerror or e}") from e
    if isinstance(data, bytes | bytearray | memoryview):
        return _load_stream(io.BytesIO(data), max_pixels, error, expected, name="")
    raise InvalidParameterError(f"expected bytes or a file path, got {type(data).__name__}")


@contextlib.contextmanager
def _pillow_errors(stage: str, *, too_large: str, no_memory: str, corrupt: MarklessError) -> Iterator[None]:
    """Turn whatever Pillow raises while reading an image into our typed errors.

    Malformed files surface as many exception types (SyntaxError, struct.error, ValueError,
    IndexError...): all of them mean bad input, reported as ``corrupt``. Our own errors pass.
    """
    try:
        yield
    except MarklessError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(too_large) from e
    except MemoryError as e:
        raise ImageTooLargeError(no_memory) from e
    except Exception as e:
        log.debug("%s error: %s", stage, _describe(e))
        raise corrupt from e


def _load_stream(
    fp: IO[bytes],
    max_pixels: int,
    error: type[MarklessError],
    expected: tuple[int, int] | None,
    name: str,
) -> _Loaded:
    what = f"{name}: " if name else ""
    im, fmt = _open(fp, max_pixels, error, expected, what)
    with _pillow_errors(
        "decoder",
        too_large=f"{what}image is too large to decode",
        no_memory=f"{what}not enough memory to decode the image",
        corrupt=error(f"{what}cannot decode the {fmt} image: it is truncated or corrupt"),
    ):
        if fmt in _ANIMATED_FORMATS and getattr(im, "is_animated", False):
            raise error(f"{what}animated {fmt} images are not supported: expected a still image")
        im.load()
        base, alpha = _reduce_to_8bit(im, fmt, error, what)
    orientation, exif = _read_exif(im)
    return _Loaded(base, alpha, fmt, orientation, exif, _rgb_icc_profile(im))


def _open(
    fp: IO[bytes],
    max_pixels: int,
    error: type[MarklessError],
    expected: tuple[int, int] | None,
    what: str,
) -> tuple[Image.Image, str]:
    """Read and check the header: format, size against the limits, stream long enough for it."""
    head = fp.read(1024)
    fp.seek(0)
    if not head:
        raise error(f"{what}empty input: expected a {_ACCEPTED_TEXT} image")

    # Pillow's own bomb guard (or its warning, when warnings are errors) fires in open() for
    # sizes far beyond any sane limit: it is reported like ours.
    with _pillow_errors(
        "header",
        too_large=f"{what}image is too large: over the limit of {max_pixels:,} pixels",
        no_memory=f"{what}not enough memory to open the image",
        corrupt=error(f"{what}corrupt image header: not a valid {_ACCEPTED_TEXT} image"),
    ):
        try:
            im = Image.open(fp, formats=INPUT_FORMATS)
        except UnidentifiedImageError as e:
            known = _sniff_unsupported(head)
            if known is not None:
                raise error(f"{what}{known} images are not supported: expected {_ACCEPTED_TEXT}") from e
            raise error(f"{what}not a {_ACCEPTED_TEXT} image (unrecognised or corrupt header)") from e

    width, height = im.size
    if width <= 0 or height <= 0:
        raise error(f"{what}image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{what}image is {width}x{height} = {width * height:,} pixels, "
            f"more than the limit of {max_pixels:,}"
        )
    if expected is not None and sorted((width, height)) != sorted(expected):
        # Cheap early refusal: no EXIF rotation can make these sizes match.
        raise error(f"{what}mask is {width}x{height} pixels but the image is {expected[0]}x{expected[1]}")
    fmt = str(im.format)
    if fmt == "MPO":
        fmt = "JPEG"  # a JPEG with extra previews (phones, 3D cameras); we use the main picture
    if fmt == "JPEG":
        fp.seek(0)
        data = fp.read()
        fp.seek(0)
        if _jpeg_too_short(data):
            # libjpeg pads missing scan data with grey instead of failing, so a few hundred bytes
            # claiming a huge size would cost a full decode (and a full pipeline run).
            raise error(f"{what}truncated JPEG: far too little image data for {width}x{height} pixels")
    return im, fmt


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says, before any pixel is decoded."""

    width: int
    height: int
    format: str

    @property
    def pixels(self) -> int:
        """Width x height."""
        return self.width * self.height


def probe(data: Source | IO[bytes], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Check an image's header (format, size limit, truncation) without decoding its pixels.

    Raises what ``decode`` would raise for the header; cheap enough to run before admitting work.
    """
    if isinstance(data, str | Path):
        with Path(data).open("rb") as fp:
            im, fmt = _open(fp, max_pixels, UnsupportedImageError, None, "")
    elif isinstance(data, bytes | bytearray | memoryview):
        im, fmt = _open(io.BytesIO(data), max_pixels, UnsupportedImageError, None, "")
    else:
        fp = data
        try:
            im, fmt = _open(fp, max_pixels, UnsupportedImageError, None, "")
        finally:
            fp.seek(0)
    return ImageInfo(im.size[0], im.size[1], fmt)


# JPEG markers: start of frame (Huffman, arithmetic), start of scan, end of image.
_SOF_HUFFMAN: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3})
_SOF_PROGRESSIVE: Final = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_SOF_ALL: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_too_short(data: bytes) -> bool:
    """True when the scans hold fewer bits than the frame's blocks need at the very least.

    Each 8x8 block takes at least one Huffman code in a progressive DC scan and two (DC and
    end-of-block) in a sequential scan, whatever the content. Arithmetic-coded files have no
    such floor and are left to the decoder.
    """
    sof, frame, scan_bytes = _jpeg_structure(data)
    if sof not in _SOF_HUFFMAN or frame is None:
        return False
    height, width, components = frame
    if not components:
        return False
    h_max = max(h for h, _ in components)
    v_max = max(v for _, v in components)
    blocks = sum(
        math.ceil(math.ceil(width * h / h_max) / 8) * math.ceil(math.ceil(height * v / v_max) / 8)
        for h, v in components
    )
    bits_per_block = 1 if sof in _SOF_PROGRESSIVE else 2
    return scan_bytes * 8 < blocks * bits_per_block


def _jpeg_structure(data: bytes) -> tuple[int | None, tuple[int, int, list[tuple[int, int]]] | None, int]:
    """(SOF marker, (height, width, [(h, v) sampling per component]), bytes of scan data)."""
    sof: int | None = None
    frame: tuple[int, int, list[tuple[int, int]]] | None = None
    scan_bytes = 0
    n = len(data)
    i = 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            break  # not at a marker: corrupt, the decoder will say so
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        segment = data[i + 4 : i + 2 + length]
        i += 2 + length
        if marker in _SOF_ALL and sof is None and len(segment) >= 6:
            sof = marker
            count = segment[5]
            sampling = [(b >> 4, b & 15) for b in segment[7 : 6 + 3 * count : 3]]
            if all(h and v for h, v in sampling):
                frame = (int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5], "big"), sampling)
        elif marker == 0xDA:
            end = _scan_end(data, i)
            scan_bytes += end - i
            i = end
    return sof, frame, scan_bytes


def _scan_end(data: bytes, start: int) -> int:
    """Offset of the first marker after entropy-coded data (stuffed 0xFF00 and RSTn belong to it)."""
    j = start
    n = len(data)
    while True:
        j = data.find(b"\xff", j)
        if j < 0 or j + 1 >= n:
            return n
        following = data[j + 1]
        if following == 0 or 0xD0 <= following <= 0xD7:
            j += 2
        elif following == 0xFF:
            j += 1
        else:
            return j


def _describe(e: BaseException) -> str:
    return str(e) or type(e).__name__


def _sniff_unsupported(head: bytes) -> str | None:
    """Name formats people commonly send that we refuse, for a clearer message than 'unknown'."""
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"):
            return "HEIC/HEIF"
    if b"<svg" in head.lower():
        return "SVG (vector)"
    return None


def _reduce_to_8bit(
    im: Image.Image, fmt: str, error: type[MarklessError], what: str
) -> tuple[Image.Image, Image.Image | None]:
    """Bring any accepted mode to 8-bit "L"/"RGB" plus an optional 8-bit alpha band."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        raw = np.asarray(im)
        base = Image.fromarray(_scale_to_uint8(raw))
        alpha = None
        transparent = im.info.get("transparency")
        if isinstance(transparent, int) and mode != "F":
            alpha = Image.fromarray(np.where(raw == transparent, 0, 255).astype(np.uint8))
        return base, alpha

    grey = mode in ("1", "L", "LA", "La")
    try:
        if im.has_transparency_data:
            with_alpha = im.convert("LA" if grey else "RGBA")
            base = with_alpha.convert("L" if grey else "RGB")
            alpha = with_alpha.getchannel("A")
        else:
            base = im if mode in ("L", "RGB") else im.convert("L" if grey else "RGB")
            alpha = None
    except ValueError as e:
        raise error(f"{what}{fmt} colour mode {mode} is not supported") from e
    return base, alpha


def _scale_to_uint8(raw: np.ndarray) -> np.ndarray:
    """Map high-bit-depth grey to 0..255 by scaling, never by clipping.

    16-bit data (the common case: PNG/TIFF "I;16") maps 0..65535 onto 0..255 with rounding.
    32-bit integer or float data has no fixed range, so values already in 0..65535 (ints) or
    0..1 (floats) are taken as such, and anything else is stretched from its min to its max.
    """
    if raw.dtype.kind in "ui":
        if raw.size and (raw.min() < 0 or raw.max() > 65_535):
            return _stretch(raw.astype(np.float64))
        wide = raw.astype(np.uint32)
        return ((wide * 255 + 32_767) // 65_535).astype(np.uint8)
    values = np.nan_to_num(raw.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        return _stretch(values)
    return np.rint(values * 255.0).astype(np.uint8)


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _read_exif(im: Image.Image) -> tuple[int, bytes | None]:
    """Return (orientation, EXIF bytes with orientation 1); bad EXIF never fails the image."""
    try:
        exif = im.getexif()
        orientation = exif.get(ExifTags.Base.Orientation, 1)
    except Exception as e:
        log.debug("ignoring unreadable EXIF: %s", e)
        return 1, None
    if not isinstance(orientation, int) or orientation not in range(1, 9):
        orientation = 1
    # TIFF "EXIF" is the file's own directory (strip offsets...), not metadata to carry over.
    if "exif" not in im.info and "Raw profile type exif" not in im.info:
        return orientation, None
    try:
        if ExifTags.Base.Orientation in exif:
            exif[ExifTags.Base.Orientation] = 1
        blob = exif.tobytes()  # main, Exif and GPS directories; the thumbnail (IFD1) is dropped
    except Exception as e:
        log.debug("dropping EXIF that cannot be re-serialised: %s", e)
        return orientation, None
    return orientation, blob if len(blob) > len(_EXIF_HEADER) + 8 else None


def _rgb_icc_profile(im: Image.Image) -> bytes | None:
    """Keep an ICC profile only if it describes RGB: our pixels are RGB whatever the source."""
    profile = im.info.get("icc_profile")
    if isinstance(profile, bytes) and len(profile) >= 128 and profile[16:20] == b"RGB ":
        return profile
    return None


def _orient(im: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return im if method is None else im.transpose(method)


def _to_array(im: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.array(im, dtype=np.uint8))


# ---------------------------------------------------------------------------------------------
# encoding


def normalize_format(fmt: str) -> str:
    """Canonical output format name ("png" | "jpeg" | "webp"); "jpg" and any case accepted."""
    key = fmt.strip().lower().lstrip(".") if isinstance(fmt, str) else None
    if key not in _FORMAT_ALIASES:
        raise InvalidParameterError(
            f"unknown output format {quote(fmt)}: expected one of {', '.join(OUTPUT_FORMATS)}"
        )
    return _FORMAT_ALIASES[key]


def media_type(fmt: str) -> str:
    """HTTP media type of an output format, e.g. "image/png"."""
    return _MEDIA_TYPES[normalize_format(fmt)]


def file_suffix(fmt: str) -> str:
    """File suffix for an output format, e.g. ".jpg" for "jpeg"."""
    return _SUFFIXES[normalize_format(fmt)]


def check_output_size(fmt: str, width: int, height: int) -> None:
    """Refuse a size the output format cannot store (WebP: 16383 px a side, JPEG: 65535).

    The side limit does not depend on EXIF rotation, so a header's size can be checked before
    any work is done.
    """
    name = normalize_format(fmt)
    if max(height, width) > _MAX_SIDE[name]:
        raise InvalidParameterError(
            f"{name.upper()} cannot store a {width}x{height} image "
            f"(largest side {_MAX_SIDE[name]} px): choose another format"
        )


def encode(
    rgb: np.ndarray,
    fmt: str = "png",
    *,
    alpha: np.ndarray | None = None,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    quality: int = 95,
) -> bytes:
    """Encode HxWx3 uint8 RGB as PNG, JPEG or WebP.

    ``alpha`` (HxW uint8) is written back for PNG and WebP and dropped for JPEG, which has no
    alpha. ``exif`` (with or without the ``Exif\\0\\0`` header) and ``icc_profile`` are embedded
    in all three formats. ``quality`` (1-100) applies to JPEG and WebP.
    """
    name = normalize_format(fmt)
    _check_rgb(rgb)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InvalidParameterError(f"quality must be an integer from 1 to 100, got {quality!r}")
    height, width = rgb.shape[:2]
    check_output_size(name, width, height)
    im = Image.fromarray(np.ascontiguousarray(rgb))
    if alpha is not None and name != "jpeg":
        _check_alpha(alpha, (height, width))
        im.putalpha(Image.fromarray(np.ascontiguousarray(alpha)))

    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = bytes(icc_profile)
    exif_blob = _exif_for(name, exif)
    if exif_blob:
        options["exif"] = exif_blob
    if name == "png":
        options["compress_level"] = PNG_COMPRESS_LEVEL
    else:
        options["quality"] = quality
    out = io.BytesIO()
    im.save(out, format=_PIL_SAVE_NAMES[name], **options)
    return out.getvalue()


def encode_mask(mask: np.ndarray) -> bytes:
    """Encode an HxW mask as an 8-bit grey PNG, 255 where the mask is set and 0 elsewhere.

    Accepts bool or integer arrays (non-zero = set); float probability maps must be thresholded
    first, since any silent cut-off here would hide a bug.
    """
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype.kind not in "bui":
        shape = getattr(mask, "shape", None)
        dtype = getattr(mask, "dtype", type(mask).__name__)
        raise InvalidParameterError(f"mask must be a 2-D bool or integer array, got {dtype} {shape}")
    if mask.size == 0:
        raise InvalidParameterError("mask is empty")
    grey = np.where(mask != 0, np.uint8(255), np.uint8(0))
    out = io.BytesIO()
    Image.fromarray(grey).save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()


def _check_rgb(rgb: np.ndarray) -> None:
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.dtype != np.uint8
        or rgb.ndim != 3
        or rgb.shape[2] != 3
        or rgb.shape[0] == 0
        or rgb.shape[1] == 0
    ):
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise InvalidParameterError(f"image must be a non-empty HxWx3 uint8 array, got {dtype} {shape}")


def _check_alpha(alpha: np.ndarray, shape: tuple[int, int]) -> None:
    if not isinstance(alpha, np.ndarray) or alpha.dtype != np.uint8 or alpha.shape != shape:
        got = getattr(alpha, "shape", None)
        dtype = getattr(alpha, "dtype", type(alpha).__name__)
        raise InvalidParameterError(f"alpha must be a {shape[0]}x{shape[1]} uint8 array, got {dtype} {got}")


def _exif_for(name: str, exif: bytes | None) -> bytes | None:
    """Put EXIF in the framing each writer expects; drop it where it cannot fit."""
    if not exif:
        return None
    raw = bytes(exif)
    if raw.startswith(_EXIF_HEADER):
        raw = raw[len(_EXIF_HEADER) :]
    if name == "jpeg":
        framed = _EXIF_HEADER + raw
        if len(framed) > _JPEG_MAX_MARKER_BYTES:
            log.warning("dropping %d bytes of EXIF: more than one JPEG marker can hold", len(framed))
            return None
        return framed
    if name == "png":
        return _EXIF_HEADER + raw  # Pillow strips the header for the eXIf chunk itself
    return raw  # WebP's EXIF chunk holds the bare TIFF structure
