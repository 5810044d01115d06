"""Estimate a translucent mark's opacity and colour from the image itself, one region at a time.

A mark composites as ``J = (1 − α)·I + α·W``. Real marks are one colour or a few (W nearly
constant per region), and their opacity is a shape times a constant (α = α0·s, s ∈ {0, 1} inside
and out, anti-aliased in a thin edge). So per region we estimate:

1. a background ``B`` under the mask from its surroundings (fast marching fill);
2. the mark's pixels: where ``J`` departs from ``B`` (the rest of a rough mask carries no mark);
3. α0 and W jointly by linear least squares on ``J − B = α0·(W − B)``, weighted towards the
   mark's edges, where ``B`` (read from just outside) is the photo itself: that is the opacity and
   colour under which the recovered photo continues smoothly across the mark's boundary. When the
   background under the mark is one colour, α0 and W are not separable from ``J`` alone; a weak
   prior on W (the learned colour head, else the most saturated colour in the direction the mark
   moves the pixels) settles it, and then any pair on that line inverts to the same photo;
4. the mark's solid shape (α ≈ α0) and its anti-aliased edge, from the per-pixel projection.

Every fit reports how much of ``J − B`` it explains on the pixels it was fitted to, and whether
its inversion stays in gamut; callers fall back to inpainting where it does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MarkFit:
    """The fit of one region (crop coordinates). ``ok`` False: do not invert; ``reason`` says why."""

    ok: bool
    reason: str
    alpha0: float = 0.0
    color: np.ndarray | None = None  # (3,) float32 in [0, 1]
    solid: np.ndarray | None = None  # bool: the mark at full opacity α0
    edge: np.ndarray | None = None  # bool: the anti-aliased rim around ``solid`` (no reliable α)
    explained: float = 0.0  # weighted R² of the fit on its own pixels


@dataclass(frozen=True)
class FitOptions:
    """Thresholds of the fit; the defaults hold for 8-bit photos and are not tuned to any set."""

    min_change: float = 0.04  # |J − B| (RGB L2, 0..1) that counts as marked: ~6 levels per channel
    min_pixels: int = 12  # fewer candidate pixels: no mark to fit
    edge_px: int = 1  # rim width handed to the inpainter around the solid shape
    solid_ratio: float = 0.5  # α/α0 above which a pixel is part of the solid shape
    min_explained: float = 0.6  # weighted R² below which the fit is rejected
    max_out_of_gamut: float = 0.1  # share of inverted solid pixels outside [0, 1] that rejects the fit
    gamut_tolerance: float = 0.08
    prior_weight: float = 0.02  # strength of the W prior, relative to the data's weight
    background_radius: int = 5


def background(image: np.ndarray, hole: np.ndarray, radius: int) -> np.ndarray:
    """Float RGB (0..1) of ``image`` with ``hole`` filled from its surroundings (Telea)."""
    filled = cv2.inpaint(image, hole.astype(np.uint8), float(radius), cv2.INPAINT_TELEA)
    return filled.astype(np.float32) / 255.0


def _gamut_point(base: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Where the ray ``base + t·direction`` (t > 0) leaves the RGB cube."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_hi = np.where(direction > 1e-6, (1.0 - base) / direction, np.inf)
        t_lo = np.where(direction < -1e-6, -base / direction, np.inf)
    t = float(min(t_hi.min(), t_lo.min()))
    return np.clip(base + (t if np.isfinite(t) else 0.0) * direction, 0.0, 1.0)


def solve_blend(
    j: np.ndarray, b: np.ndarray, weight: np.ndarray, prior: np.ndarray, prior_weight: float
) -> tuple[float, np.ndarray, float]:
    """Least-squares α0 and W with ``J − B = α0·(W − B)`` over N pixels (Nx3 arrays).

    Linear in (α0, v = α0·W): each channel gives ``−B_c·α0 + v_c = J_c − B_c``. The prior adds
    ``v − α0·prior = 0`` rows, which only matter where the data leaves a direction free (a
    one-colour background). Returns (α0, W, weighted R²).
    """
    n = j.shape[0]
    rows = np.zeros((n, 3, 4), np.float64)
    rows[:, :, 0] = -b
    rows[:, 0, 1] = rows[:, 1, 2] = rows[:, 2, 3] = 1.0
    target = (j - b).astype(np.float64)
    w = weight.astype(np.float64)[:, None, None]
    ata = np.einsum("nci,ncj->ij", rows * w, rows)
    atb = np.einsum("nci,nc->i", rows * w, target)
    lam = prior_weight * float(w.sum())
    p_rows = np.zeros((3, 4))
    p_rows[:, 0] = -prior
    p_rows[:, 1:] = np.eye(3)
    ata += lam * p_rows.T @ p_rows
    x = np.linalg.solve(ata + 1e-9 * np.eye(4), atb)
    alpha0 = float(x[0])
    color = x[1:] / alpha0 if abs(alpha0) > 1e-6 else prior.astype(np.float64)
    pred = rows @ x
    ss_res = float((w[:, :, 0] * (target - pred) ** 2).sum())
    ss_tot = float((w[:, :, 0] * target**2).sum())
    return alpha0, np.clip(color, 0.0, 1.0).astype(np.float32), 1.0 - ss_res / max(ss_tot, 1e-12)


def projected_alpha(j: np.ndarray, b: np.ndarray, color: np.ndarray) -> np.ndarray:
    """Per-pixel α from ``J − B = α·(W − B)`` (projection on W − B), not clipped."""
    d = color - b
    return ((j - b) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-4)


def fit_marks(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    prior_color: np.ndarray | None = None,
    options: FitOptions | None = None,
    max_layers: int = 1,
) -> list[MarkFit]:
    """Fit up to ``max_layers`` constant-colour, constant-opacity marks inside ``mask`` of an RGB
    uint8 crop: one per colour (a logo and its text, two overlapping marks). Solid shapes are
    disjoint. An empty list: nothing in the mask departs from its surroundings."""
    opt = options or FitOptions()
    j = image.astype(np.float32) / 255.0
    b0 = background(image, mask, opt.background_radius)
    cand = mask & (np.linalg.norm(j - b0, axis=-1) > opt.min_change)
    if cand.sum() < opt.min_pixels:
        return []
    # A tighter hole gives a better background: the pixels that carry no mark are context too.
    ring = cv2.dilate(cand.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & mask
    b = background(image, ring, opt.background_radius)
    # Weight towards the mark's edge, where B is read from just outside: the boundary condition.
    depth = cv2.distanceTransform(ring.astype(np.uint8), cv2.DIST_L2, 3)
    weight_map = np.exp(-np.maximum(depth - 1.5, 0.0) / 3.0)
    change = np.linalg.norm(j - b, axis=-1)
    k = 2 * opt.edge_px + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    fits: list[MarkFit] = []
    left = cand & (change > opt.min_change)
    taken = np.zeros_like(mask)
    while len(fits) < max_layers and left.sum() >= max(opt.min_pixels, 0.1 * cand.sum()):
        fit = _fit_layer(j, b, left, ring & ~taken, weight_map, prior_color if not fits else None, opt)
        if not fit.ok or fit.solid is None:
            # The first layer failing sinks the region; a later one leaves its pixels to the inpainter.
            fits.append(fit if not fits else MarkFit(False, fit.reason, edge=left & mask))
            break
        fits.append(fit)
        residual = np.linalg.norm(j - b - fit.alpha0 * (fit.color - b), axis=-1)
        solid = fit.solid & (residual < 0.5 * change)  # this layer's colour explains these
        grown = cv2.dilate(solid.astype(np.uint8), disc) > 0
        edge = mask & grown & ~solid & ~taken
        fits[-1] = MarkFit(True, "", fit.alpha0, fit.color, solid, edge, fit.explained)
        taken |= grown
        left &= ~taken
    return fits


def _fit_layer(
    j: np.ndarray,
    b: np.ndarray,
    cand: np.ndarray,
    allowed: np.ndarray,
    weight_map: np.ndarray,
    prior_color: np.ndarray | None,
    opt: FitOptions,
) -> MarkFit:
    """One constant (α0, W) over the candidate pixels ``cand``; its solid shape within ``allowed``."""
    if prior_color is None:
        d = (j - b)[cand]
        mean_dir = (d * np.linalg.norm(d, axis=-1, keepdims=True)).sum(0)
        prior = _gamut_point(b[cand].mean(0), mean_dir / max(float(np.linalg.norm(mean_dir)), 1e-9))
    else:
        prior = np.clip(np.asarray(prior_color, np.float32), 0.0, 1.0)
    use = cand
    alpha0, color, explained = 0.0, prior, 0.0
    for _ in range(3):  # refit on the solid pixels: anti-aliased edges have α < α0
        alpha0, color, explained = solve_blend(j[use], b[use], weight_map[use], prior, opt.prior_weight)
        if not 0.01 < alpha0 <= 1.05:
            return MarkFit(False, f"opacity {alpha0:.2f} out of range")
        ratio = projected_alpha(j, b, color) / alpha0
        nxt = cand & (ratio > opt.solid_ratio) & (ratio < 1.0 / opt.solid_ratio)
        if nxt.sum() < opt.min_pixels or np.array_equal(nxt, use):
            break
        use = nxt
    solid = allowed & (projected_alpha(j, b, color) / alpha0 > opt.solid_ratio)
    if solid.sum() < opt.min_pixels:
        return MarkFit(False, "no solid mark")
    if explained < opt.min_explained:
        return MarkFit(False, f"fit explains {explained:.2f} of the mark")
    return MarkFit(True, "", min(alpha0, 1.0), color, solid, None, explained)


def invert(image: np.ndarray, alpha: float | np.ndarray, color: np.ndarray) -> np.ndarray:
    """``I = (J − α·W) / (1 − α)`` in float RGB (0..1), not clipped."""
    j = image.astype(np.float32) / 255.0
    a = np.asarray(alpha, np.float32)
    if a.ndim == 2:
        a = a[..., None]
    return (j - a * color) / np.maximum(1.0 - a, 1e-3)
