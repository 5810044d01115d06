"""The generator's raw material: clean backgrounds, logo sources and fonts per script.

An :class:`AssetPool` is built either from the asset cache written by ``markless assets``
(``AssetPool.from_manifest(cache, split="train"|"val")``, read through ``training.assets.manifest``) or from explicit in-memory assets
(``AssetPool.builtin()`` for tests and cache-less runs). Decoded photos, rasterised logos and
loaded fonts are cached per process, because decoding a PNG or rasterising an SVG costs more than
generating a whole sample.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import ImageFont, features

from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from training.assets.manifest import AssetManifest, check_split
from training.synth.config import SCRIPTS

LOGO_SIZE = 384
"""Longest side logos are rasterised at; marks wider than this are upscaled (rare, and soft edges are real)."""
MAX_BACKGROUND_SIDE = 1280
_HAS_RAQM = features.check("raqm")

BUILTIN_SVGS: tuple[str, ...] = (
    # camera
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M4 7h3l2-3h6l2 3h3a2 2 0 0 1 2 2v9'
    "a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2zm8 3a4 4 0 1 0 0 8 4 4 0 0 0 0-8zm0 2a2 2 0 1 1 0 4 2 2 0 0 1"
    ' 0-4z" fill-rule="evenodd"/></svg>',
    # five-point star in a ring
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><circle cx="50" cy="50" r="45" fill="none" '
    'stroke="#000" stroke-width="7"/><path d="M50 18l9.4 19 21 3-15.2 14.8 3.6 20.9L50 65.8 31.2 75.7l3.6-20.9'
    'L19.6 40l21-3z"/></svg>',
    # stylised leaf/mountain mark in two colours
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 80"><path d="M0 80L40 20l20 30 15-20 45 50z" '
    'fill="#2a7"/><circle cx="92" cy="18" r="12" fill="#e83"/></svg>',
    # shield with a check
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><path d="M32 2l26 10v18c0 16-11 27-26 32C17 57 '
    '6 46 6 30V12z" fill="#135"/><path d="M18 32l9 9 19-19" stroke="#fff" stroke-width="6" fill="none"/></svg>',
    # aperture-like hexagon
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><polygon points="50,3 91,27 91,73 50,97 9,73 '
    '9,27" fill="#000"/><polygon points="50,25 72,38 72,62 50,75 28,62 28,38" fill="#fff"/></svg>',
)
"""Small original SVG marks so the generator works (and is testable) without the asset cache."""


@dataclass(frozen=True)
class FontFace:
    """One font face: a file (``None`` = Pillow's built-in font) and the face index inside a .ttc."""

    path: str | None
    index: int = 0
    family: str = "builtin"
    bold: bool = False
    italic: bool = False


@dataclass
class Logo:
    """A rasterised logo, kept as uint8 RGBA (4 bytes/px: hundreds fit in a worker's cache)."""

    rgba: np.ndarray
    mono: bool
    """True for single-colour sources (icons): their colour carries no information, so they get recoloured."""

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.rgba.shape[0]), int(self.rgba.shape[1])

    def resized(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(coverage float32 hxw, straight colour float32 hxwx3) at ``w``×``h``, both in [0, 1]."""
        interp = cv2.INTER_AREA if w < self.rgba.shape[1] else cv2.INTER_LINEAR
        small = cv2.resize(self.rgba, (max(1, w), max(1, h)), interpolation=interp)
        f = small.astype(np.float32) * np.float32(1 / 255.0)
        return f[..., 3], f[..., :3]


def rasterize_svg(svg: str | bytes | Path, size: int = LOGO_SIZE) -> np.ndarray:
    """SVG (markup or file) → RGBA uint8 with its longest side ``size`` px, trimmed to the drawn pixels.

    Raises ``InvalidParameterError`` for SVGs cairosvg cannot draw or that draw nothing.
    """
    if isinstance(svg, Path):
        data = svg.read_bytes()
    elif isinstance(svg, str):
        data = svg.encode("utf-8")
    else:
        data = svg
    rgba = trim_rgba(_svg_to_rgba(data, width=size))
    if rgba.shape[0] > size:  # tall drawing: fit the height instead
        rgba = trim_rgba(_svg_to_rgba(data, height=size))
    longest = max(rgba.shape[:2])
    if longest < 0.8 * size:  # wide empty margins in the viewBox: draw the content bigger
        scale = min(4.0, size / longest)
        full = _svg_to_rgba(
            data,
            width=round(size * scale) if rgba.shape[1] >= rgba.shape[0] else None,
            height=None if rgba.shape[1] >= rgba.shape[0] else round(size * scale),
        )
        rgba = trim_rgba(full)
        if max(rgba.shape[:2]) > size:
            k = size / max(rgba.shape[:2])
            dsize = (max(1, round(rgba.shape[1] * k)), max(1, round(rgba.shape[0] * k)))
            rgba = cv2.resize(rgba, dsize, interpolation=cv2.INTER_AREA)
    return rgba


def _svg_to_rgba(data: bytes, *, width: int | None = None, height: int | None = None) -> np.ndarray:
    import cairosvg  # local: import costs ~100 ms and only logo rasterisation needs it

    try:
        png = cairosvg.svg2png(bytestring=data, output_width=width, output_height=height)
    except Exception as exc:  # cairosvg raises many types (XML, CSS, value errors) on bad files
        raise InvalidParameterError(f"cannot rasterise SVG: {type(exc).__name__}: {exc}") from exc
    rgba = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if rgba is not None and rgba.ndim == 3 and rgba.shape[2] == 3:  # cairo drops alpha for opaque drawings
        rgba = np.dstack([rgba, np.full(rgba.shape[:2], 255, np.uint8)])
    if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise InvalidParameterError("SVG rasterised to an unexpected pixel format")
    return cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA)


def trim_rgba(rgba: np.ndarray, min_alpha: int = 8) -> np.ndarray:
    """Crop an RGBA image to the box of pixels with alpha ≥ ``min_alpha`` (raises if nothing is drawn)."""
    ys, xs = np.nonzero(rgba[..., 3] >= min_alpha)
    if len(ys) == 0:
        raise InvalidParameterError("logo has no visible pixels")
    return np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def logo_from_rgba(rgba: np.ndarray) -> Logo:
    """Wrap an RGBA uint8 logo, telling single-colour sources apart (on a subsample: it only needs a hint)."""
    step = max(1, max(rgba.shape[:2]) // 96)
    sub = rgba[::step, ::step]
    solid = sub[..., 3] > 128
    mono = True
    if solid.sum() >= 4:
        mono = bool(sub[..., :3][solid].astype(np.float32).std(axis=0).max() < 8.0)
    return Logo(rgba=np.ascontiguousarray(rgba), mono=mono)


class AssetPool:
    """Backgrounds, logos and fonts for one split, with per-process caches.

    ``backgrounds``: photo arrays (HxWx3 uint8) or image paths; may be empty (procedural only).
    ``logos``: RGBA arrays, SVG markup strings, or paths to .svg/.png files; may be empty.
    ``fonts``: script → faces. Scripts with no faces are simply never drawn.
    """

    def __init__(
        self,
        backgrounds: Sequence[np.ndarray | str | Path] = (),
        logos: Sequence[np.ndarray | str | Path] = (),
        fonts: Mapping[str, Sequence[FontFace]] | None = None,
        *,
        background_kinds: Sequence[str] | None = None,
        max_background_side: int = MAX_BACKGROUND_SIDE,
        logo_cache_size: int = 256,
    ) -> None:
        self.backgrounds = list(backgrounds)
        self.background_kinds = (
            list(background_kinds) if background_kinds else ["photo"] * len(self.backgrounds)
        )
        if len(self.background_kinds) != len(self.backgrounds):
            raise InvalidParameterError("background_kinds must match backgrounds")
        self.logos = list(logos)
        fonts = fonts if fonts is not None else {"latin": [FontFace(None)]}
        unknown = set(fonts) - set(SCRIPTS)
        if unknown:
            raise InvalidParameterError(f"unknown script(s) {sorted(unknown)}; known: {SCRIPTS}")
        self.fonts: dict[str, list[FontFace]] = {s: list(f) for s, f in fonts.items() if f}
        if "latin" not in self.fonts:
            # ©, URLs and stock words are Latin everywhere; the built-in font keeps them drawable.
            self.fonts["latin"] = [FontFace(None)]
        self.max_background_side = max_background_side
        self.logo_cache_size = logo_cache_size
        self._bg_cache: dict[int, np.ndarray] = {}
        self._logo_cache: OrderedDict[int, Logo | None] = OrderedDict()
        self._font_cache: OrderedDict[tuple[str | None, int, int], ImageFont.FreeTypeFont] = OrderedDict()

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def builtin(cls, backgrounds: Sequence[np.ndarray | str | Path] = ()) -> AssetPool:
        """Procedural backgrounds, the bundled SVG marks and Pillow's built-in font: no files needed."""
        return cls(backgrounds=backgrounds, logos=list(BUILTIN_SVGS), fonts={"latin": [FontFace(None)]})

    @classmethod
    def from_manifest(
        cls, cache_dir: str | Path, split: str = "train", photo_dirs: Sequence[str | Path] = ()
    ) -> AssetPool:
        """The assets of ``split`` ("train" or "val") recorded in ``cache_dir/manifest.json``, plus
        the ``split`` share of the photo folders recorded there and of ``photo_dirs`` (see
        :func:`training.assets.manifest.photos_in_dirs`)."""
        check_split(split)
        manifest = AssetManifest.load(cache_dir)
        photos = [e for e in manifest.photos if e.split == split]
        logos = [manifest.resolve(e.path) for e in manifest.logos if e.split == split]
        fonts: dict[str, list[FontFace]] = {}
        for entry in manifest.fonts:
            if entry.split != split:
                continue
            face = FontFace(
                str(manifest.resolve(entry.path)), entry.index, entry.family, entry.bold, entry.italic
            )
            for script in entry.scripts:
                if script in SCRIPTS:
                    fonts.setdefault(script, []).append(face)
        extra = manifest.folder_photos(split, photo_dirs)
        return cls(
            backgrounds=[manifest.resolve(e.path) for e in photos] + extra,
            background_kinds=[e.kind for e in photos] + ["photo"] * len(extra),
            logos=logos,
            fonts=fonts,
        )

    # --- pickling: workers rebuild caches lazily (fonts cannot be pickled) ------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_font_cache"] = OrderedDict()
        state["_logo_cache"] = OrderedDict()
        state["_bg_cache"] = {}
        return state

    # --- access ------------------------------------------------------------------------------------------------
    @property
    def scripts(self) -> list[str]:
        """Scripts that have at least one font, in canonical order."""
        return [s for s in SCRIPTS if s in self.fonts]

    def background(self, i: int) -> np.ndarray:
        """Photo ``i`` as RGB uint8, longest side at most ``max_background_side`` (decoded once per process)."""
        cached = self._bg_cache.get(i)
        if cached is not None:
            return cached
        src = self.backgrounds[i]
        if isinstance(src, np.ndarray):
            img = src
        else:
            bgr = cv2.imread(str(src), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ModelNotAvailableError(f"cannot read background image {src}")
            img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = np.ascontiguousarray(img[..., :3])
        if img.dtype != np.uint8:
            raise InvalidParameterError("background arrays must be uint8")
        scale = self.max_background_side / max(img.shape[:2])
        if scale < 1.0:
            size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        self._bg_cache[i] = img
        return img

    def logo(self, i: int) -> Logo | None:
        """Logo ``i`` rasterised (``None`` if its file is unreadable: one bad SVG must not stop training)."""
        if i in self._logo_cache:
            self._logo_cache.move_to_end(i)
            return self._logo_cache[i]
        src = self.logos[i]
        logo: Logo | None
        try:
            if isinstance(src, np.ndarray):
                rgba = trim_rgba(src)
            elif isinstance(src, str) and src.lstrip().startswith("<"):
                rgba = rasterize_svg(src)
            elif str(src).lower().endswith(".svg"):
                rgba = rasterize_svg(Path(src))
            else:
                raw = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
                if raw is None:
                    raise InvalidParameterError(f"cannot read logo {src}")
                if raw.ndim == 2:
                    rgba = np.dstack([np.zeros_like(raw)] * 3 + [raw])
                elif raw.shape[2] == 4:
                    rgba = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
                else:
                    rgba = np.dstack(
                        [cv2.cvtColor(raw, cv2.COLOR_BGR2RGB), np.full(raw.shape[:2], 255, np.uint8)]
                    )
                rgba = trim_rgba(rgba)
            logo = logo_from_rgba(rgba)
        except InvalidParameterError:
            logo = None
        self._logo_cache[i] = logo
        if len(self._logo_cache) > self.logo_cache_size:
            self._logo_cache.popitem(last=False)
        return logo

    def font(self, face: FontFace, size: int) -> ImageFont.FreeTypeFont:
        """``face`` at ``size`` px, shaped with raqm when Pillow has it (Arabic joining, Devanagari conjuncts)."""
        size = max(4, int(size))
        key = (face.path, face.index, size)
        font = self._font_cache.get(key)
        if font is not None:
            self._font_cache.move_to_end(key)
            return font
        if face.path is None:
            loaded = ImageFont.load_default(size)
            if not isinstance(loaded, ImageFont.FreeTypeFont):
                raise ModelNotAvailableError("Pillow was built without FreeType; no usable built-in font")
            font = loaded
        else:
            layout = ImageFont.Layout.RAQM if _HAS_RAQM else ImageFont.Layout.BASIC
            try:
                font = ImageFont.truetype(face.path, size, index=face.index, layout_engine=layout)
            except OSError as exc:
                raise ModelNotAvailableError(f"cannot load font {face.path}#{face.index}: {exc}") from exc
        self._font_cache[key] = font
        if len(self._font_cache) > 384:
            self._font_cache.popitem(last=False)
        return font
