"""Drawing one watermark "sprite": coverage masks for text and shapes, then colour and effects.

A sprite is a premultiplied float32 RGBA array (hxwx4, ``rgb * a`` and ``a`` in [0, 1]). Working
premultiplied makes effect layering ("over"), resampling and later compositing exact and free of
dark fringes. Everything is drawn at the sprite's final pixel size, so stroke widths, shadow
offsets and glyph hinting look like a real mark of that size.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.synth.config import SynthConfig

SUPERSAMPLE = 3
"""Shapes are drawn at 3× and area-downsampled: Pillow draws polygons without anti-aliasing."""


# --- coverage masks ---------------------------------------------------------------------------------------
def text_mask(
    font: ImageFont.FreeTypeFont,
    text: str,
    *,
    pad: int = 0,
    align: str = "center",
    spacing: int = 4,
    stroke: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rendered (multi-line) text → (fill coverage, fill+stroke coverage), float32 hxw, same frame.

    The outer mask is what PIL's ``stroke_width`` draws: glyphs thickened by ``stroke`` px, used for
    outlines and hollow text.
    """
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    box = probe.multiline_textbbox((0, 0), text, font=font, spacing=spacing, align=align, stroke_width=stroke)
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    w = max(1, int(np.ceil(box[2])) - x0) + 2 * pad
    h = max(1, int(np.ceil(box[3])) - y0) + 2 * pad
    origin = (pad - x0, pad - y0)
    fill = Image.new("L", (w, h), 0)
    ImageDraw.Draw(fill).multiline_text(origin, text, font=font, fill=255, spacing=spacing, align=align)
    fill_a = np.asarray(fill, dtype=np.float32) / 255.0
    if stroke <= 0:
        return fill_a, fill_a
    outer = Image.new("L", (w, h), 0)
    ImageDraw.Draw(outer).multiline_text(
        origin, text, font=font, fill=255, spacing=spacing, align=align, stroke_width=stroke, stroke_fill=255
    )
    return fill_a, np.maximum(np.asarray(outer, dtype=np.float32) / 255.0, fill_a)


def shape_mask(kind: str, w: int, h: int, *, line: float = 0.0, radius: float = 0.25) -> np.ndarray:
    """Anti-aliased ``rect``/``rounded``/``ellipse`` (filled, or a ring of ``line`` px when > 0), float32 hxw."""
    s = SUPERSAMPLE
    img = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(img)
    box = (0, 0, w * s - 1, h * s - 1)
    width = max(1, round(line * s)) if line > 0 else 0
    if kind == "ellipse":
        if width:
            draw.ellipse(box, outline=255, width=width)
        else:
            draw.ellipse(box, fill=255)
    else:
        r = round(radius * min(w, h) * s) if kind == "rounded" else 0
        if width:
            draw.rounded_rectangle(box, radius=r, outline=255, width=width)
        else:
            draw.rounded_rectangle(box, radius=r, fill=255)
    small = cv2.resize(np.asarray(img), (w, h), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


# Segments of a seven-segment digit as boxes in a unit cell (x0, y0, x1, y1), w = 0.55, h = 1.
_SEG = {
    "a": (0.08, 0.0, 0.47, 0.1),
    "b": (0.45, 0.05, 0.55, 0.48),
    "c": (0.45, 0.52, 0.55, 0.95),
    "d": (0.08, 0.9, 0.47, 1.0),
    "e": (0.0, 0.52, 0.1, 0.95),
    "f": (0.0, 0.05, 0.1, 0.48),
    "g": (0.08, 0.45, 0.47, 0.55),
}
_DIGITS = {
    "0": "abcdef", "1": "bc", "2": "abged", "3": "abgcd", "4": "fgbc",
    "5": "afgcd", "6": "afgedc", "7": "abc", "8": "abcdefg", "9": "abcdfg", "-": "g",
}  # fmt: skip


def seven_segment(text: str, height: int, *, slant: float = 0.1) -> np.ndarray:
    """``text`` (digits, ``'``, ``.``, ``:``, ``/``, ``-``, spaces) as LCD digits ``height`` px tall, float32.

    The look of film cameras' and camcorders' date imprint; glyphs are drawn, not taken from a font,
    because no packaged font has it.
    """
    s = SUPERSAMPLE
    hh = max(8, int(height)) * s
    cell, narrow, gap = 0.55 * hh, 0.22 * hh, 0.14 * hh
    widths = [narrow if ch in "'.:/ " else cell for ch in text]
    width = int(sum(widths) + gap * (len(text) + 1) + slant * hh) + 2
    img = Image.new("L", (width, hh + 2), 0)
    draw = ImageDraw.Draw(img)
    x = gap + slant * hh

    def box(x0: float, y0: float, x1: float, y1: float) -> None:
        # A slanted bar: x shifts left as y goes down (italic like real LCD digits).
        pts = [(x0 - slant * y0, y0), (x1 - slant * y0, y0), (x1 - slant * y1, y1), (x0 - slant * y1, y1)]
        draw.polygon(pts, fill=255)

    for ch, w in zip(text, widths, strict=True):
        if ch in _DIGITS:
            for seg in _DIGITS[ch]:
                a, b, c, d = _SEG[seg]
                box(x + a * hh, b * hh, x + c * hh, d * hh)
        elif ch == "'":
            box(x + 0.06 * hh, 0.0, x + 0.15 * hh, 0.3 * hh)
        elif ch == ".":
            box(x + 0.05 * hh, 0.88 * hh, x + 0.16 * hh, hh)
        elif ch == ":":
            box(x + 0.05 * hh, 0.25 * hh, x + 0.16 * hh, 0.36 * hh)
            box(x + 0.05 * hh, 0.64 * hh, x + 0.16 * hh, 0.75 * hh)
        elif ch == "/":
            draw.polygon([(x + 0.14 * hh, 0), (x + 0.22 * hh, 0), (x + 0.08 * hh, hh), (x, hh)], fill=255)
        x += w + gap
    small = cv2.resize(
        np.asarray(img), (max(1, width // s), max(1, (hh + 2) // s)), interpolation=cv2.INTER_AREA
    )
    return small.astype(np.float32) / 255.0


def pad_mask(mask: np.ndarray, pad: int) -> np.ndarray:
    """Zero border of ``pad`` px, room for strokes, shadows and glows."""
    return cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)


def shift(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Sub-pixel translation with zeros shifted in."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(mask, m, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_LINEAR, borderValue=0)


def dilate(mask: np.ndarray, px: float) -> np.ndarray:
    """Grow a soft mask by ``px`` (elliptic max filter)."""
    r = round(px)
    if r <= 0:
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask, k)


def blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (no-op for tiny sigma)."""
    if sigma < 0.25:
        return mask
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_CONSTANT)


# --- colour -------------------------------------------------------------------------------------------------
def random_colour(rng: np.random.Generator, style: str) -> np.ndarray:
    """An RGB float triple typical of watermarks in ``style`` (white / black / grey / colour)."""
    if style == "white":
        v = rng.uniform(0.88, 1.0)
        tint = rng.normal(0, 0.015, 3)
        return np.clip(v + tint, 0, 1).astype(np.float32)
    if style == "black":
        return np.full(3, rng.uniform(0.0, 0.14), np.float32)
    if style == "grey":
        return np.full(3, rng.uniform(0.3, 0.78), np.float32)
    h, s, v = rng.random(), rng.uniform(0.35, 1.0), rng.uniform(0.45, 1.0)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32)


def contrast_colour(rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
    """A colour that reads against ``colour`` (dark for light fills and vice versa), for outlines and badges."""
    lum = float(colour @ np.array([0.299, 0.587, 0.114], np.float32))
    if rng.random() < 0.15:
        return random_colour(rng, "colour")
    return random_colour(rng, "black" if lum > 0.5 else "white")


def colour_field(rng: np.random.Generator, style: str, h: int, w: int) -> np.ndarray:
    """Fill colour as hxwx3: flat for most styles, a two-stop linear gradient for ``gradient``."""
    if style != "gradient":
        return np.broadcast_to(random_colour(rng, style), (h, w, 3))
    c0, c1 = random_colour(rng, "colour"), random_colour(rng, str(rng.choice(["colour", "white", "black"])))
    theta = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * np.cos(theta) + yy * np.sin(theta)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0 + t[..., None] * (c1 - c0)


# --- premultiplied layers ------------------------------------------------------------------------------------
def layer(mask: np.ndarray, colour: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """Coverage × opacity with a flat (3,) or per-pixel (hxwx3) colour → premultiplied RGBA."""
    a = np.clip(mask * opacity, 0.0, 1.0).astype(np.float32)
    out = np.empty((*a.shape, 4), np.float32)
    out[..., :3] = a[..., None] * colour
    out[..., 3] = a
    return out


def over(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Porter-Duff "over" for premultiplied RGBA."""
    return top + bottom * (1.0 - top[..., 3:4])


def style_mark(
    rng: np.random.Generator,
    cfg: SynthConfig,
    fill: np.ndarray,
    *,
    colour: np.ndarray | None = None,
    outer: np.ndarray | None = None,
    size_px: float = 32.0,
) -> np.ndarray:
    """Colour a coverage mask and add the effects real marks use (outline, hollow, shadow, glow, emboss).

    ``fill`` must already have room around it (see :func:`pad_mask`). ``colour`` is a (3,) or hxwx3
    colour (random watermark colour when ``None``); ``outer`` is a pre-thickened mask (text stroke)
    used for outlines. ``size_px`` (≈ text height) scales effect sizes.
    """
    h, w = fill.shape
    if colour is None:
        style = _choice(rng, cfg.colour_weights)
        colour = colour_field(rng, style, h, w)
    flat = np.asarray(colour if colour.ndim == 1 else colour.reshape(-1, 3).mean(0), np.float32)
    unit = max(1.0, size_px / 28.0)

    if rng.random() < cfg.p_emboss:
        return _emboss(rng, fill, unit)

    stroke_px = rng.uniform(*cfg.stroke_px) * unit
    if outer is None or outer is fill:
        outer = np.maximum(dilate(fill, stroke_px), fill) if stroke_px >= 0.5 else fill

    hollow = rng.random() < cfg.p_hollow
    if hollow:
        ring = np.clip(outer - fill, 0.0, 1.0)
        if ring.max() < 0.5:  # stroke too thin to be seen: outline by dilation instead
            ring = np.clip(dilate(fill, max(1.0, unit)) - fill, 0.0, 1.0)
        sprite = layer(ring, colour)
    else:
        sprite = layer(fill, colour)
        if rng.random() < cfg.p_stroke:
            sprite = over(sprite, layer(outer, contrast_colour(rng, flat)))

    if rng.random() < cfg.p_shadow:
        dist = rng.uniform(*cfg.shadow_offset_px) * unit
        angle = rng.uniform(0.15, 1.4) if rng.random() < 0.8 else rng.uniform(0, 2 * np.pi)
        soft = blur(
            shift(
                np.maximum(fill, outer if not hollow else fill), dist * np.cos(angle), dist * np.sin(angle)
            ),
            rng.uniform(*cfg.shadow_blur_px) * unit,
        )
        shade = random_colour(rng, "black") if rng.random() < 0.85 else contrast_colour(rng, flat)
        sprite = over(sprite, layer(soft, shade, rng.uniform(0.35, 0.9)))
    if rng.random() < cfg.p_glow:
        halo = blur(dilate(fill, rng.uniform(1.0, 3.0) * unit), rng.uniform(2.0, 6.0) * unit)
        halo = np.clip(halo * rng.uniform(1.0, 2.0), 0, 1)
        sprite = over(sprite, layer(halo, contrast_colour(rng, flat), rng.uniform(0.4, 0.9)))
    return sprite


def _emboss(rng: np.random.Generator, fill: np.ndarray, unit: float) -> np.ndarray:
    """Relief look: light rim on one side, dark rim on the other, a faint (or empty) interior."""
    d = rng.uniform(0.8, 2.2) * unit
    angle = rng.uniform(0.5, 1.1) if rng.random() < 0.8 else rng.uniform(0, 2 * np.pi)
    dx, dy = d * np.cos(angle), d * np.sin(angle)
    soft = blur(fill, 0.4 * unit)
    lit = np.clip(soft - shift(soft, dx, dy), 0.0, 1.0)  # rim facing the light
    dark = np.clip(soft - shift(soft, -dx, -dy), 0.0, 1.0)  # rim facing away
    if rng.random() < 0.3:
        lit, dark = dark, lit  # engraved instead of raised
    interior = layer(fill, random_colour(rng, "white"), rng.uniform(0.0, 0.4))
    rims = over(layer(lit, random_colour(rng, "white"), rng.uniform(0.6, 1.0)), interior)
    return over(layer(dark, random_colour(rng, "black"), rng.uniform(0.5, 1.0)), rims)


def faux_italic(sprite: np.ndarray, slant: float) -> np.ndarray:
    """Shear a sprite horizontally (synthetic italic for faces without one)."""
    h, w = sprite.shape[:2]
    extra = int(np.ceil(abs(slant) * h))
    m = np.float32([[1, -slant, extra if slant > 0 else 0], [0, 1, 0]])
    return cv2.warpAffine(sprite, m, (w + extra, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


choice = _choice
"""Weighted categorical pick over a ``{name: weight}`` mapping (shared by the generator modules)."""
