"""Synthetic mark groups with a known answer, for the tests and the benchmark.

A group is N clean photos, one RGBA mark (coloured text plus a shape, translucent) and the rule
that places it: the same place, a corner of photos of different sizes, or tiled. Blending uses
the same model the estimator inverts, then rounds to 8 bits as a real file would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


def make_mark(
    width: int = 300,
    height: int = 100,
    *,
    text: str = "(c) markless",
    color: tuple[int, int, int] = (255, 255, 255),
    accent: tuple[int, int, int] = (230, 40, 40),
    opacity: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """An RGBA uint8 mark: anti-aliased text in ``color`` and a ring in ``accent``."""
    rng = np.random.default_rng(seed)
    layer = np.zeros((height, width, 3), np.uint8)
    alpha = np.zeros((height, width), np.uint8)
    r = max(4, height // 3)
    centre = (r + 4, height // 2)
    cv2.circle(layer, centre, r, accent, max(2, r // 4), cv2.LINE_AA)
    cv2.circle(alpha, centre, r, 255, max(2, r // 4), cv2.LINE_AA)
    scale = (height / 100.0) * float(rng.uniform(0.9, 1.1))
    org = (2 * r + 12, height // 2 + int(14 * scale))
    thick = max(1, int(3 * scale))
    cv2.putText(layer, text, org, cv2.FONT_HERSHEY_SIMPLEX, 1.1 * scale, color, thick, cv2.LINE_AA)
    cv2.putText(alpha, text, org, cv2.FONT_HERSHEY_SIMPLEX, 1.1 * scale, 255, thick, cv2.LINE_AA)
    # Colour is only defined where the mark is; spread it a little so anti-aliased edges have one.
    inside = alpha > 0
    spread = cv2.dilate(layer, np.ones((3, 3), np.uint8))
    layer = np.where(inside[..., None], np.maximum(layer, spread), 0).astype(np.uint8)
    a = np.rint(alpha.astype(np.float32) * opacity).astype(np.uint8)
    return np.dstack([layer, a])


def blend(photo: np.ndarray, mark: np.ndarray, top: int, left: int) -> np.ndarray:
    """Composite an RGBA mark onto a uint8 photo at (top, left), clipped to the frame, 8-bit result."""
    out = photo.astype(np.float32) / 255.0
    h, w = mark.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, photo.shape[0]), min(left + w, photo.shape[1])
    if y1 <= y0 or x1 <= x0:
        return photo.copy()
    m = mark[y0 - top : y1 - top, x0 - left : x1 - left].astype(np.float32) / 255.0
    a = m[..., 3:]
    out[y0:y1, x0:x1] = (1.0 - a) * out[y0:y1, x0:x1] + a * m[..., :3]
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def tile(photo: np.ndarray, mark: np.ndarray, period: tuple[int, int], offset: tuple[int, int]) -> np.ndarray:
    """Repeat a mark over the whole photo every ``period`` (py, px) pixels, starting at ``offset``."""
    h, w = photo.shape[:2]
    py, px = period
    oy, ox = offset[0] % py - py, offset[1] % px - px
    layer = np.zeros((h, w, 4), np.float32)
    mh, mw = mark.shape[:2]
    for top in range(oy, h, py):
        for left in range(ox, w, px):
            y0, x0 = max(top, 0), max(left, 0)
            y1, x1 = min(top + mh, h), min(left + mw, w)
            if y1 > y0 and x1 > x0:
                layer[y0:y1, x0:x1] = mark[y0 - top : y1 - top, x0 - left : x1 - left]
    out = photo.astype(np.float32) / 255.0
    a = layer[..., 3:] / 255.0
    out = (1.0 - a) * out + a * layer[..., :3] / 255.0
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def corner_position(
    shape: Sequence[int], mark_shape: Sequence[int], anchor: str, margin: int
) -> tuple[int, int]:
    """Top-left of a mark placed ``margin`` px from an anchor ("tl", "tr", "bl", "br", "center")."""
    h, w = shape[:2]
    mh, mw = mark_shape[:2]
    top = {"t": margin, "b": h - mh - margin, "c": (h - mh) // 2}[anchor[0]]
    left = {"l": margin, "r": w - mw - margin, "c": (w - mw) // 2}[anchor[-1] if anchor != "center" else "c"]
    return top, left


@dataclass
class Group:
    """Clean photos, their marked copies and the mark itself (RGBA uint8)."""

    clean: list[np.ndarray]
    marked: list[np.ndarray]
    mark: np.ndarray


def procedural_photo(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like uint8 RGB image: smooth gradients, blurred blobs and fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0, 1, 3)[None, None] + 0.4 * np.stack(
        [np.sin(xx / rng.uniform(20, 90) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(20, 90))] * 3, -1
    ) * rng.uniform(-1, 1, 3)
    img = base.astype(np.float32)
    for _ in range(25):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(5, max(10, min(height, width) / 4))
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.float32)
        disc = cv2.GaussianBlur(disc, (0, 0), rng.uniform(0.5, 3))
        img += disc[..., None] * (rng.uniform(0, 1, 3) - img) * 0.8
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width, 3)).astype(np.float32), (0, 0), 1.0)
    img += 0.03 * noise
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)
