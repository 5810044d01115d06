"""The watermark generator: place sprites on a clean photo, blend, then degrade like the web does.

Ground-truth contract (what a later "unblend" restoration inverts)::

    before degradations:  image == round(255 * ((1 - alpha) * clean/255 + alpha * color))

``alpha`` (float32 HxW in [0, 1]) is the effective opacity of all marks together, ``color``
(float32 HxWx3 in [0, 1]) the colour they contribute (0 where ``alpha == 0``). For multiply,
screen and overlay marks the colour is the blend mode's output at full opacity,
``color = B(under, mark)``, and alpha the layer's opacity, so the same equation is exact. Several
marks are accumulated with the "over" operator, which keeps it exact too. ``mask`` is where the
mark is: opacity above ``mask_alpha_threshold`` and either solid (``mask_solid_alpha``) or visibly
changing the photo (``mask_min_change``). Degradations afterwards: a consistent rescale of every layer (the composite
is recomputed from the rescaled layers, so the equation still holds), then blur, noise and JPEG
applied to ``image`` only, as when a watermarked picture is re-uploaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pipeline.errors import InvalidParameterError
from training.synth import render as R
from training.synth.background import random_background
from training.synth.config import SynthConfig
from training.synth.marks import MarkFactory
from training.synth.pool import AssetPool

_EPS = 1e-6


@dataclass
class SynthSample:
    """One training/evaluation example (all arrays share the image's height and width)."""

    image: np.ndarray
    """uint8 HxWx3, watermarked and degraded: the model input."""
    clean: np.ndarray
    """uint8 HxWx3, the photo without marks."""
    mask: np.ndarray
    """bool HxW, ``alpha > mask_alpha_threshold``."""
    alpha: np.ndarray
    """float32 HxW in [0, 1], effective opacity."""
    color: np.ndarray
    """float32 HxWx3 in [0, 1], the marks' colour layer (0 where alpha is 0)."""
    meta: dict[str, Any] = field(default_factory=dict)


# --- blend modes (b = underlying image, w = mark colour, both in [0, 1]) -------------------------------------
def blend(mode: str, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Blend-mode result at full opacity, ``B(b, w)``."""
    if mode == "normal":
        return np.broadcast_to(w, b.shape).astype(np.float32)
    if mode == "multiply":
        return b * w
    if mode == "screen":
        return 1.0 - (1.0 - b) * (1.0 - w)
    if mode == "overlay":
        return np.where(b < 0.5, 2.0 * b * w, 1.0 - 2.0 * (1.0 - b) * (1.0 - w))
    raise InvalidParameterError(f"unknown blend mode {mode!r}")


class Compositor:
    """Accumulates marks over a clean image keeping premultiplied (alpha, alpha·color) exact."""

    def __init__(self, clean: np.ndarray) -> None:
        self.clean = clean.astype(np.float32) / 255.0
        h, w = clean.shape[:2]
        self.alpha = np.zeros((h, w), np.float32)
        self.premul = np.zeros((h, w, 3), np.float32)

    def current(self) -> np.ndarray:
        """The composite so far (float32 in [0, 1])."""
        return (1.0 - self.alpha)[..., None] * self.clean + self.premul

    def visibility(self, layer: np.ndarray, opacity: float, mode: str) -> float:
        """Mean change (0–1, max over channels) the layer would make where it is solid (alpha > 0.5).

        Marks are made to be seen; one that barely changes its pixels would only teach the model
        to hallucinate, so the generator re-colours or drops those.
        """
        solid = layer[..., 3] > 0.5
        box = _box(solid)
        if box is None or opacity <= 0:
            return 0.0
        sel = solid[box]
        under = ((1.0 - self.alpha[box])[..., None] * self.clean[box] + self.premul[box])[sel]
        a = layer[box][..., 3][sel][:, None]
        mark = np.clip(layer[box][..., :3][sel] / a, 0.0, 1.0)
        delta = np.abs(blend(mode, under, mark) - under).max(axis=1) * (a[:, 0] * opacity)
        return float(delta.mean())

    def add(self, layer: np.ndarray, opacity: float, mode: str) -> None:
        """Blend a canvas-sized premultiplied RGBA ``layer`` at ``opacity`` with ``mode``."""
        box = _box(layer[..., 3] > 0) if opacity > 0 else None
        if box is None:
            return
        (y0, y1), (x0, x1) = (box[0].start, box[0].stop), (box[1].start, box[1].stop)  # touched box only
        a = layer[y0:y1, x0:x1, 3] * np.float32(opacity)
        if mode == "normal":
            contrib = layer[y0:y1, x0:x1, :3] * np.float32(opacity)
        else:
            under = (1.0 - self.alpha[y0:y1, x0:x1])[..., None] * self.clean[y0:y1, x0:x1] + self.premul[
                y0:y1, x0:x1
            ]
            mark = layer[y0:y1, x0:x1, :3] / np.maximum(layer[y0:y1, x0:x1, 3:4], _EPS)
            contrib = a[..., None] * blend(mode, under, np.clip(mark, 0.0, 1.0))
        inv = (1.0 - a)[..., None]
        self.premul[y0:y1, x0:x1] = inv * self.premul[y0:y1, x0:x1] + contrib
        self.alpha[y0:y1, x0:x1] = 1.0 - (1.0 - self.alpha[y0:y1, x0:x1]) * (1.0 - a)


def unpremultiply(alpha: np.ndarray, premul: np.ndarray) -> np.ndarray:
    """``premul / alpha`` where alpha > 0, else 0; clipped to [0, 1]."""
    out = np.zeros_like(premul)
    a = alpha[..., None]
    np.divide(premul, a, out=out, where=a > _EPS)
    return np.clip(out, 0.0, 1.0, out=out)


def _box(alpha: np.ndarray) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(alpha.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(alpha.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def composite(clean: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> np.ndarray:
    """The contract's equation, rounded to uint8 (computed only where some alpha is non-zero)."""
    out = clean.copy()
    box = _box(alpha)
    if box is None:
        return out
    a = alpha[box][..., None]
    val = (1.0 - a) * (clean[box].astype(np.float32) / np.float32(255.0)) + a * color[box]
    out[box] = np.clip(val * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
    return out


# --- placement ---------------------------------------------------------------------------------------------------
def _rotation(rng: np.random.Generator, cfg: SynthConfig) -> float:
    kind = R.choice(rng, cfg.rotation_weights)
    if kind == "none":
        return 0.0
    if kind == "diagonal":
        a = rng.uniform(*cfg.diagonal_deg)
        return a if rng.random() < 0.75 else -a  # cv2 angles are counter-clockwise: + is the "/" diagonal
    if kind == "small":
        return rng.uniform(-cfg.small_rotation_deg, cfg.small_rotation_deg)
    return rng.uniform(-180, 180)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def place(
    rng: np.random.Generator, sprite: np.ndarray, canvas: tuple[int, int], angle: float, position: str
) -> np.ndarray:
    """Rotate ``sprite`` and put it at a ``position`` (corner / centre / random / edge) on the canvas."""
    H, W = canvas
    h, w = sprite.shape[:2]
    rad = np.deg2rad(angle)
    bw = abs(w * np.cos(rad)) + abs(h * np.sin(rad))
    bh = abs(w * np.sin(rad)) + abs(h * np.cos(rad))
    if position == "corner":
        margin = rng.uniform(0.0, 0.06) * min(H, W)
        corner = int(rng.choice(4, p=[0.45, 0.2, 0.17, 0.18]))  # br, bl, tl, tr: bottom-right dominates
        cx = W - margin - bw / 2 if corner in (0, 3) else margin + bw / 2
        cy = H - margin - bh / 2 if corner in (0, 1) else margin + bh / 2
    elif position == "centre":
        cx = W / 2 + rng.normal(0, 0.04) * W
        cy = H / 2 + rng.normal(0, 0.06) * H
    elif position == "edge":
        side = int(rng.integers(4))
        out = rng.uniform(0.15, 0.6)  # fraction of the mark beyond the border
        cx = rng.uniform(0, W)
        cy = rng.uniform(0, H)
        if side == 0:
            cx = W + bw * (out - 0.5)
        elif side == 1:
            cx = -bw * (out - 0.5)
        elif side == 2:
            cy = H + bh * (out - 0.5)
        else:
            cy = -bh * (out - 0.5)
    else:
        cx = rng.uniform(min(bw / 2, W / 2), max(W - bw / 2, W / 2))
        cy = rng.uniform(min(bh / 2, H / 2), max(H - bh / 2, H / 2))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (cx - w / 2, cy - h / 2)
    return cv2.warpAffine(
        sprite, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _fit(sprite: np.ndarray, max_side: float) -> np.ndarray:
    """Shrink a sprite so that neither side exceeds ``max_side`` (area-averaged, premultiplied-safe)."""
    h, w = sprite.shape[:2]
    s = max_side / max(h, w)
    if s >= 1.0:
        return sprite
    return cv2.resize(sprite, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def tile(
    rng: np.random.Generator,
    sprite: np.ndarray,
    canvas: tuple[int, int],
    angle: float,
    gap: tuple[float, float],
    *,
    max_cell: float | None = None,
) -> np.ndarray:
    """Repeat ``sprite`` on a (possibly staggered) grid rotated by ``angle`` over the whole canvas.

    ``gap`` is the spacing range as a fraction of the sprite's size; ``max_cell`` caps the period
    (sprite + gap) in pixels so that a tiling really covers the photo.
    """
    H, W = canvas
    h, w = sprite.shape[:2]
    gx = round(w * rng.uniform(*gap))
    gy = round(max(h, 0.25 * w) * rng.uniform(*gap) * rng.uniform(0.6, 1.4))
    if max_cell is not None:
        gx = max(0, min(gx, round(max_cell - w)))
        gy = max(0, min(gy, round(max_cell - h)))
    cell = cv2.copyMakeBorder(sprite, 0, gy, 0, gx, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
    ch, cw = cell.shape[:2]
    if rng.random() < 0.5:  # staggered, brick-like rows: one period is two rows, the second shifted
        cell = np.concatenate([cell, np.roll(cell, cw // 2, axis=1)], axis=0)
    # BORDER_WRAP makes the cell periodic, so one warp draws the whole rotated lattice.
    m = cv2.getRotationMatrix2D((cw / 2, ch / 2), angle, 1.0)
    m[:, 2] += (W / 2 - cw / 2 + rng.uniform(0, cw), H / 2 - ch / 2 + rng.uniform(0, ch))
    return cv2.warpAffine(cell, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


# --- the generator ---------------------------------------------------------------------------------------------------
class WatermarkSynth:
    """Seeded synthetic watermark generator over an :class:`AssetPool`.

    Pure given its inputs: the same clean image and the same ``numpy.random.Generator`` state
    give identical outputs (caches only hold decoded assets).
    """

    def __init__(
        self, pool: AssetPool | None = None, config: SynthConfig | dict[str, Any] | None = None
    ) -> None:
        self.pool = pool if pool is not None else AssetPool.builtin()
        self.cfg = SynthConfig.from_any(config)
        self.marks = MarkFactory(self.pool, self.cfg)

    # public API -------------------------------------------------------------------------------------------------------
    def sample(
        self, rng: np.random.Generator, size: tuple[int, int] = (384, 384), *, degrade: bool = True
    ) -> SynthSample:
        """A full sample of ``size`` (h, w): background from the pool, marks, degradations."""
        h, w = int(size[0]), int(size[1])
        if h < 16 or w < 16:
            raise InvalidParameterError(f"sample size must be at least 16x16, got {h}x{w}")
        cfg = self.cfg
        f = 1.0
        if degrade and rng.random() < cfg.p_rescale:
            f = _log_uniform(rng, *cfg.rescale_factor)
        work = (max(16, round(h * f)), max(16, round(w * f)))
        clean, source = random_background(rng, self.pool, work, cfg)
        sample = self.generate(clean, rng, out_size=(h, w), degrade=degrade)
        sample.meta["background"] = source
        return sample

    def generate(
        self,
        clean: np.ndarray,
        rng: np.random.Generator,
        *,
        out_size: tuple[int, int] | None = None,
        degrade: bool = True,
    ) -> SynthSample:
        """Watermark ``clean`` (HxWx3 uint8). ``out_size`` (h, w) rescales every layer consistently
        after compositing; ``degrade=False`` skips blur/noise/JPEG so the contract holds exactly."""
        if (
            not isinstance(clean, np.ndarray)
            or clean.dtype != np.uint8
            or clean.ndim != 3
            or clean.shape[2] != 3
        ):
            raise InvalidParameterError("clean must be an HxWx3 uint8 array")
        if min(clean.shape[:2]) < 16:
            raise InvalidParameterError(f"clean image must be at least 16x16, got {clean.shape[:2]}")
        cfg = self.cfg
        H, W = clean.shape[:2]
        meta: dict[str, Any] = {"marks": []}
        if rng.random() < cfg.p_scene_text:
            clean = self._scene_text(rng, clean)
            meta["scene_text"] = True
        comp = Compositor(clean)
        if rng.random() >= cfg.p_no_mark:
            n = int(R.choice(rng, cfg.n_marks_weights))
            for k in range(n):
                tiled = k == 0 and rng.random() < cfg.p_tiled
                meta["marks"].append(self._add_mark(rng, comp, (H, W), tiled))
        alpha, premul = comp.alpha, comp.premul
        if out_size is not None and tuple(out_size) != (H, W):
            oh, ow = int(out_size[0]), int(out_size[1])
            interp = cv2.INTER_AREA if oh * ow < H * W else cv2.INTER_LINEAR
            clean = cv2.resize(clean, (ow, oh), interpolation=interp)
            alpha = np.clip(cv2.resize(alpha, (ow, oh), interpolation=interp), 0, 1)
            premul = np.clip(cv2.resize(premul, (ow, oh), interpolation=interp), 0, 1)
            premul = np.minimum(premul, alpha[..., None])
            meta["rescale"] = round(oh / H, 4)
        color = unpremultiply(alpha, premul)
        image = composite(clean, alpha, color)
        if degrade:
            image = self._degrade(rng, image, meta)
        # A pixel is "watermark" where the mark has opacity AND either visibly changes the photo or
        # is solidly part of the mark: a faint glow that moves a pixel by under ~3 grey levels is
        # undetectable (label noise), while a solid mark over a matching colour is still the mark.
        change = alpha * np.abs(color - clean.astype(np.float32) / 255.0).max(axis=-1)
        mask = (alpha > cfg.mask_alpha_threshold) & (
            (alpha >= cfg.mask_solid_alpha) | (change >= cfg.mask_min_change)
        )
        return SynthSample(image=image, clean=clean, mask=mask, alpha=alpha, color=color, meta=meta)

    # internals -----------------------------------------------------------------------------------------------------------
    def _opacity(self, rng: np.random.Generator) -> float:
        cfg = self.cfg
        if rng.random() < cfg.p_opaque:
            return 1.0
        lo, hi = cfg.opacity_range
        return float(lo + (hi - lo) * rng.beta(*cfg.opacity_beta))

    def _add_mark(
        self, rng: np.random.Generator, comp: Compositor, canvas: tuple[int, int], tiled: bool
    ) -> dict[str, Any]:
        cfg = self.cfg
        H, W = canvas
        kind = R.choice(rng, cfg.kind_weights)
        if tiled and kind in ("badge", "multiline", "datestamp"):
            kind = "text"  # tiled marks are short: a word, a logo, a © line
        imprint = kind == "datestamp"  # a camera's date: small, upright, nearly opaque, in a corner
        position = "tile" if tiled else ("corner" if imprint else R.choice(rng, cfg.position_weights))
        lo, hi = cfg.width_frac.get(position, (0.1, 0.6))
        target_w = _log_uniform(rng, lo, min(hi, 0.35) if imprint else hi) * W
        sprite, info = self.marks.make(rng, kind, target_w, H)
        angle = 0.0 if imprint else _rotation(rng, cfg)
        opacity = rng.uniform(0.8, 1.0) if imprint else self._opacity(rng)
        if tiled:
            opacity *= rng.uniform(*cfg.tile_opacity_scale)
            if rng.random() < 0.6 and abs(angle) < 20:
                angle = rng.uniform(*cfg.diagonal_deg) * (1 if rng.random() < 0.75 else -1)
            sprite = _fit(sprite, 0.42 * min(H, W))  # at least ~2 repeats across the short side
            layer = tile(rng, sprite, canvas, angle, cfg.tile_gap, max_cell=0.5 * min(H, W))
        else:
            layer = place(rng, sprite, canvas, angle, position)
        mode = R.choice(rng, cfg.blend_weights)
        info.update(position=position, angle=round(float(angle), 2), opacity=round(opacity, 3), blend=mode)
        if cfg.min_visibility > 0 and comp.visibility(layer, opacity, mode) < cfg.min_visibility:
            # White on a white sky, multiply with white...: try the inverted colour, else leave it out.
            inverted = layer.copy()
            inverted[..., :3] = layer[..., 3:4] - layer[..., :3]
            if comp.visibility(inverted, opacity, mode) < cfg.min_visibility:
                info["dropped"] = "invisible"
                return info
            layer = inverted
            info["inverted"] = True
        comp.add(layer, opacity, mode)
        return info

    def _scene_text(self, rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
        """Print opaque, perspective-warped, shaded text into the scene: text that is NOT a watermark."""
        H, W = clean.shape[:2]
        script = self.marks.pick_script(rng)
        text = self.marks.lines(rng, script, int(rng.integers(1, 3)))
        fill, _, _, _ = self.marks.text_masks(rng, text, script, W * rng.uniform(0.2, 0.6), H, stroke=False)
        h, w = fill.shape
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        jit = rng.uniform(-0.15, 0.15, (4, 2)) * (w, h)
        x0, y0 = rng.uniform(0, max(1, W - w)), rng.uniform(0, max(1, H - h))
        dst = (src + jit + (x0, y0)).astype(np.float32)
        m = cv2.getPerspectiveTransform(src, dst)
        cover = cv2.warpPerspective(fill, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
        cover = R.blur(cover, rng.uniform(0.3, 1.0))
        img = clean.astype(np.float32) / 255.0
        # Lit by the scene: the ink follows the local brightness rather than sitting on top of it.
        shade = cv2.GaussianBlur(img.mean(axis=2), (0, 0), 8)[..., None]
        ink = R.random_colour(rng, str(rng.choice(["white", "black", "colour", "grey"])))
        ink_lit = np.clip(ink * (0.5 + shade), 0, 1)
        if rng.random() < 0.5:  # a sign board behind the letters
            board = cv2.warpPerspective(np.ones_like(fill), m, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
            board_col = np.clip(R.contrast_colour(rng, ink) * (0.5 + shade), 0, 1)
            img = img * (1 - board[..., None]) + board[..., None] * board_col
        img = img * (1 - cover[..., None]) + cover[..., None] * ink_lit
        return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)

    def _degrade(self, rng: np.random.Generator, image: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        cfg = self.cfg
        if rng.random() < cfg.p_blur:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*cfg.blur_sigma))
            meta["blur"] = True
        if rng.random() < cfg.p_noise:
            sigma = rng.uniform(*cfg.noise_sigma)
            noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape).astype(np.float32)
            image = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
            meta["noise"] = round(float(sigma), 2)
        if rng.random() < cfg.p_jpeg:
            q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
            ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok:
                image = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
                meta["jpeg"] = q
        return np.ascontiguousarray(image)
