"""Estimate a translucent mark's opacity and colour from the image itself, one region at a time.

A mark composites as ``J = (1 − α)·I + α·W``. Real marks are one colour or a few (W nearly
constant per region), and their opacity is a shape times a constant (α = α0·s, s ∈ {0, 1} inside
and out, anti-aliased in a thin edge). So per region we estimate:

1. a background ``B`` under the mask from its surroundings (fast marching fill);
2. the mark's pixels (the rest of a rough mask carries no mark): a few guesses — where ``J``
   departs from ``B``, or the mask shrunk by a few pixels — of which those whose outline steps
   clearly more than the photo's own texture are each fitted (3, 4) and the best fit is kept;
3. α0 and W from pixel pairs across the guess's outline (``boundary_pairs``): inside, the photo is
   ``(1 − α0)`` times as contrasted and shifted towards W, so the gain ``1/(1 − α0)`` is the ratio
   of the two sides' spreads and W follows from their means (``affine_fit``): the opacity and
   colour under which the recovered photo continues smoothly across the mark's boundary. A gain
   whose colour is no colour read low, and is raised to the least that makes it one
   (``gain_in_gamut``). On a flat outline, or one whose inner band reads as busy as its outer band or
   busier, the gain is not observable; only a near-opaque guess from the direction the pixels move
   is trusted (``_shift_opacity``, with a weak prior on W: the most saturated colour in that
   direction);
4. the mark's solid shape (α ≈ α0) and its anti-aliased edge, from the per-pixel projection
   near the outline and, deeper inside a wide shape (where texture swamps that test), from the
   outline the fit explained.

Every fit reports how much of its outline's step (above the photo's texture) it explains, and
whether its inversion stays in gamut; callers fall back to inpainting where it does not hold. A
fit that does not hold carries no opacity: an inversion with one guessed from the direction the
pixels move made more held-out photos worse than it mended (see ``_shift_opacity``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

NO_MARK = "no mark"


@dataclass(frozen=True)
class MarkFit:
    """The fit of one region (crop coordinates). ``ok`` False: the fit does not hold (``reason``
    says why; ``edge`` then holds the pixels to inpaint)."""

    ok: bool
    reason: str
    alpha0: float = 0.0
    color: np.ndarray | None = None  # (3,) float32 in [0, 1]
    solid: np.ndarray | None = None  # bool: the mark at full opacity α0
    edge: np.ndarray | None = None  # bool: the rim around ``solid`` a refit takes in (failed: what to fill)
    explained: float = 0.0  # share of the outline's step above texture that the fit explains
    removed: float = 0.0  # the step across the outline the inversion removes (RGB L1, 0..3)
    texture: float = 0.0  # the photo's own step around the region at the pairs' spacing (``_photo_step``)


@dataclass(frozen=True)
class FitOptions:
    """Thresholds of the fit; the defaults hold for 8-bit photos and are not tuned to any set."""

    min_change: float = 0.04  # |J − B| (RGB L2, 0..1) that counts as marked: ~6 levels per channel
    min_pixels: int = 12  # fewer candidate pixels: no mark to fit
    edge_px: int = 1  # width of ``MarkFit.edge`` (restore reads opacity per pixel on ``rim``)
    solid_ratio: float = 0.5  # α/α0 above which a pixel is part of the solid shape
    min_explained: float = 0.6  # weighted R² below which the fit is rejected
    max_out_of_gamut: float = 0.1  # share of inverted solid pixels outside [0, 1] that rejects the fit
    gamut_tolerance: float = 0.08
    colour_tolerance: float = 0.02  # how far a fitted colour may leave [0, 1] before the gain is raised
    prior_weight: float = 0.02  # strength of the W prior, relative to the data's weight
    background_radius: int = 5
    min_step_ratio: float = 1.5  # outline step, relative to the photo's, below which nothing is marked
    flat_min_alpha: float = 0.75  # on a flat outline only a (near-)opaque guess is trusted: it is inpainted
    max_fits: int = 6  # guesses fitted at most per region (the best 3, then more while none holds)
    max_shrink_px: int = 8  # how far a rough mask may extend past a wide mark (see ``_candidates``)
    min_alpha: float = 0.03  # opacity below which the outline shows no mark
    min_spread: float = (
        0.02  # std (0..1) of the mark's pixels along its outline below which the gain is not observable
    )


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


def boundary_pairs(
    inside: np.ndarray, usable: np.ndarray, gap: float = 2.0, depth: float = 4.0, reach: float = 8.0
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel pairs across the outline of ``inside``: each interior pixel (``gap``..``depth`` px in)
    with its nearest ``usable`` pixel at least ``gap`` px outside. Both sit clear of the
    anti-aliased rim, and they are a few pixels apart, so the photo under them is statistically the
    same: that is what ties the mark's opacity and colour to the photo around it.

    Returns flat indices (p, q) into the crop.
    """
    inner = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    outer = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 3)
    p_sel = (inner >= gap) & (inner < depth)
    q_ok = usable & ~inside & (outer >= gap)
    if not p_sel.any() or not q_ok.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    dist, labels = cv2.distanceTransformWithLabels(
        (~q_ok).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    zy, zx = np.nonzero(q_ok)
    flat_of_label = np.zeros(int(labels.max()) + 1, np.int64)
    flat_of_label[labels[zy, zx]] = zy * inside.shape[1] + zx
    p_sel &= dist <= reach
    py, px = np.nonzero(p_sel)
    return py * inside.shape[1] + px, flat_of_label[labels[py, px]]


def affine_fit(
    x: np.ndarray, y: np.ndarray, trim: float = 0.25, rounds: int = 3
) -> tuple[float, np.ndarray, float, np.ndarray]:
    """``y ≈ c·x + d`` per channel with one gain ``c`` (Nx3 arrays), by reduced major axis.

    Inside a mark ``I = c·J + d`` with ``c = 1/(1 − α0)`` and ``d = −α0·W/(1 − α0)``; ``x`` are
    mark pixels, ``y`` their neighbours just outside. Ordinary least squares would shrink ``c``
    by the correlation of the photo between the two (texture is not the same a few pixels away);
    the symmetric estimate (ratio of spreads) does not, because the photo's statistics are. The
    worst-fitting ``trim`` share of pairs (an edge of the photo crossing the outline) is dropped
    each round. Returns (c, d, spread of x in 0..1 units, mean of the kept x).
    """
    keep = np.ones(len(x), bool)
    c, d, spread, mx = 1.0, np.zeros(3), 0.0, x.mean(0)
    for _ in range(rounds):
        xs, ys = x[keep], y[keep]
        mx, my = xs.mean(0), ys.mean(0)
        sx = float(((xs - mx) ** 2).sum())
        sy = float(((ys - my) ** 2).sum())
        cov = float(((xs - mx) * (ys - my)).sum())
        spread = (sx / max(xs.size, 1)) ** 0.5
        if sx <= 0 or cov <= 0:
            return 1.0, my - mx, spread, mx
        c = (sy / sx) ** 0.5
        d = my - c * mx
        resid = np.abs(y - (c * x + d)).sum(1)
        keep = resid <= np.quantile(resid, 1.0 - trim)
        if keep.sum() < 8:
            break
    return c, d, spread, mx


def gain_in_gamut(c: float, d: np.ndarray, mx: np.ndarray, tolerance: float) -> tuple[float, np.ndarray]:
    """``(c, d)`` of ``affine_fit``, with the gain raised to the least that puts the mark's colour
    ``−d / (c − 1)`` in the gamut when it is more than ``tolerance`` out.

    The ratio of spreads assumes the photo is as busy just inside the outline as just outside; where
    it is busier inside (a tile over a boat's edge, over ripples), the gain reads low, and the colour
    it implies leaves the gamut: clipped, it inverts a blue tile read at α 0.16 with W [0.81, 0.93,
    1.0] (true: 0.38, [0.45, 0.66, 0.84]) and leaves it bluish. A mark's colour is a colour: the
    pairs (α0, W) that keep the outline's mean step lie on a ray from the mark pixels' mean ``mx``
    (W = mx + t·(mx − my), t = 1/(c − 1)), and the gamut point on it is the nearest that is one."""
    color = -d / (c - 1.0)
    if not ((color < -tolerance) | (color > 1.0 + tolerance)).any():
        return c, d
    my = d + c * mx
    away = mx - my
    reach = float(np.abs(away).max())
    t = float(np.abs(_gamut_point(mx, away) - mx).max()) / max(reach, 1e-9)
    if t <= 1e-6:
        return c, d
    c = 1.0 + 1.0 / t
    return c, my - c * mx


def fit_marks(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    options: FitOptions | None = None,
    fill: np.ndarray | None = None,
) -> list[MarkFit]:
    """Fit one constant-colour, constant-opacity mark inside ``mask`` of an RGB uint8 crop.

    An empty list: nothing in the mask departs from its surroundings; else one fit (a list, so a
    region of several layers can be returned the same way). ``fill``: ``background(image, mask)``
    when the caller has it already.
    """
    opt = options or FitOptions()
    j = image.astype(np.float32) / 255.0
    b = background(image, mask, opt.background_radius) if fill is None else fill
    flat_j = j.reshape(-1, 3)
    change = np.linalg.norm(j - b, axis=-1)
    texture = _photo_step(flat_j, mask)  # at the fit's pair spacing
    near = max(_photo_step(flat_j, mask, gap=1.0), 1e-6)  # at ``_outline_step``'s

    def ranked_by_step(shapes: list[np.ndarray]) -> list[np.ndarray]:
        scored = [(_outline_step(flat_j, t, mask) / near, t) for t in shapes]
        return [t for ratio, t in sorted(scored, key=lambda rt: -rt[0]) if ratio >= opt.min_step_ratio]

    ranked = ranked_by_step(_candidates(mask, change, opt))
    if not ranked:
        return []  # no candidate's outline steps more than the photo's own texture does
    kept: list[np.ndarray] = []
    for t in ranked:
        if len(kept) < 3 and all(_iou(t, k) < 0.9 for k in kept):
            kept.append(t)  # near-copies of a guess already kept would cost a fit and add nothing
    # The few best-stepping guesses are each fitted; of the fits that hold, the one that removes the
    # largest step across its outline wins (a guess that cuts through the mark fits a faint one).
    # When none holds, the next guesses are tried in turn, near-copies included: on a wide mark a
    # shape one pixel off (IoU 0.98) can be the one whose outline is the mark's.
    spare = [t for t in ranked if not any(t is k for k in kept)][: max(opt.max_fits - len(kept), 0)]
    tried = kept + spare

    def refine(cand: np.ndarray) -> MarkFit:
        """Fit ``cand``, then refit on the shape the fit finds (until it stops changing). ``b`` stays
        the fill over the whole mask: filling again over each refined shape cost most of the time
        and did not help (restoration set: 40.03 → 40.18 dB exact, 37.03 → 37.01 rough). A refit
        that fails fails the guess: keeping the fit before it (on the shape whose outline it
        explained) mended a shadow's tile but kept weak dark fits on grown masks: 24 of the six
        sets' 836 restorations came back worse than their input instead of 18 (−3 to −8 dB)."""
        fit = MarkFit(False, "no fit")
        for _ in range(3):
            fit = _fit_layer(j, b, flat_j, cand, mask, opt, texture)
            if not fit.ok or fit.solid is None:
                return fit
            nxt = fit.solid | fit.edge
            if np.array_equal(nxt, cand):
                break
            cand = nxt
        return fit

    fits: list[MarkFit] = []
    for i, cand in enumerate(tried):
        if i >= len(kept) and any(f.ok for f in fits):
            break  # a spare guess only while none has held
        fits.append(refine(cand))
    if not any(f.ok for f in fits):  # last, the mask components' solid cores, until one's fit holds
        for cand in ranked_by_step(_cores(mask, change, opt)):
            fit = refine(cand)
            tried.append(cand)
            if fit.ok and fit.explained < CORE_MIN_EXPLAINED:
                fits.append(MarkFit(False, f"core fit explains {fit.explained:.2f}"))
                break
            fits.append(fit)
            if fit.ok:
                break
    good = [f for f in fits if f.ok]
    if good:
        return [max(good, key=lambda f: f.removed)]
    failed = [(f, cand) for f, cand in zip(fits, tried, strict=False) if f.reason != NO_MARK]
    if not failed:
        return []
    # Not explained: the inpainter gets the pixels that depart from their surroundings and the
    # guess's shape (with a rim), not the rest of a rough mask.
    fit, cand = failed[0]
    departs = cand | (mask & (change > opt.min_change))
    rim = cv2.dilate(departs.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & mask
    return [MarkFit(False, fit.reason, edge=rim)]


def _fit_layer(
    j: np.ndarray,
    b: np.ndarray,
    flat_j: np.ndarray,
    cand: np.ndarray,
    mask: np.ndarray,
    opt: FitOptions,
    texture: float,
) -> MarkFit:
    """(α0, W) from the pairs across ``cand``'s outline; the solid shape and rim from them.

    ``texture``: the step between clean photo pixels as far apart as the pairs are. The fit is
    judged on the share of the step *above* it that it explains: no fit can predict the photo's
    own texture across the outline, and on a textured photo that texture would otherwise hide a
    correct fit."""
    p, q = boundary_pairs(cand, ~cand | ~mask)
    if len(p) < opt.min_pixels:
        p, q = boundary_pairs(cand, ~cand | ~mask, gap=1.0)
    if len(p) < opt.min_pixels:
        return MarkFit(False, "no outline to fit")
    x, y = flat_j[p].astype(np.float64), flat_j[q].astype(np.float64)
    before = float(np.abs(y - x).sum(1).mean())
    floor = min(texture, 0.9 * before)  # the part of the step no fit can explain

    def left(c: float, d: np.ndarray) -> float:
        """The step across the outline that ``y ≈ c·x + d`` leaves."""
        return float(np.abs(y - (c * x + d)).sum(1).mean())

    def share(after: float) -> float:
        """The share of the outline's step above ``floor`` explained when ``after`` is left."""
        return 1.0 - max(after - floor, 0.0) / max(before - floor, 1e-6)

    c, d, spread, mx = affine_fit(x, y)
    if spread < opt.min_spread or c <= 1.0:
        # A flat photo along the outline, or a gain of 1 or less: the inner band as busy as the outer
        # or busier, or the two uncorrelated (the mark's own edges inside it, a shadow darkening the
        # outer, the photo itself; on the platform set most such outlines are not flat, their spread
        # 0.08–0.14). The gain is not observable from the spreads, only J − B's direction is.
        alpha0 = _shift_opacity(j, b, cand, opt)
        if alpha0 < opt.flat_min_alpha:  # a translucent guess would be just that: inpaint instead
            why = "flat" if spread < opt.min_spread else f"gain {c:.2f} ≤ 1"
            return MarkFit(False, f"opacity not observable on the outline ({why}; guess {alpha0:.2f})")
        c = 1.0 / max(1.0 - alpha0, 1e-3)
        d = y.mean(0) - c * x.mean(0)
    elif 1.0 - 1.0 / c >= opt.min_alpha:  # an outline that shows no opacity is not given one
        # Taken where the outline still bears it out; else the colour is clipped, as it was: a
        # shadow's fit raised to explain 0.60 of its step failed, and the tile above it was left.
        raised, shifted = gain_in_gamut(c, d, mx, opt.colour_tolerance)
        if share(left(raised, shifted)) >= opt.min_explained:
            c, d = raised, shifted
    alpha0 = 1.0 - 1.0 / c
    if abs(alpha0) < opt.min_alpha and float(np.abs(d).max()) < opt.min_change:
        return MarkFit(False, NO_MARK)  # the outline carries no step: texture, not a mark
    if not opt.min_alpha < alpha0 <= 1.0:
        return MarkFit(False, f"opacity {alpha0:.2f} out of range")
    color = np.clip(-d / (c - 1.0), 0.0, 1.0).astype(np.float32)
    after = left(c, d)
    explained = share(after)
    solid = _carries_mark(j, b, c, d, color, alpha0, opt) & mask
    solid = cv2.morphologyEx(solid.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)).astype(bool)
    # Inside a wide shape, texture makes that per-pixel test a coin toss (B is only a smooth, often
    # biased guess deep in a wide hole): there the outline the fit explained decides, and the shape's
    # interior is the mark (inversion that leaves the gamut still goes to the inpainter).
    k = 2 * WIDE_PX + 1
    solid |= cv2.erode(cand.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    if solid.sum() < opt.min_pixels:
        return MarkFit(False, "no solid mark")
    if explained < opt.min_explained:
        return MarkFit(False, f"fit explains {explained:.2f} of the outline's step")
    edge = mask & ring(solid, opt.edge_px)
    return MarkFit(True, "", float(alpha0), color, solid, edge, float(explained), before - after, texture)


def _shift_opacity(j: np.ndarray, b: np.ndarray, cand: np.ndarray, opt: FitOptions) -> float:
    """α0 from the direction the mark moves its pixels off the fill ``b`` (``solve_blend`` with the
    gamut-point prior): all there is where the outline does not show the opacity.

    Trusted only when near-opaque (``flat_min_alpha``: the region is then inpainted). Inverting a
    failed fit's pixels with this guess, shrunk 0.6× (minimax for a guess off by up to 3×), was tried
    where the fill would not pay: +0.3 / +0.2 dB (exact / rough masks) on the set it was tuned on,
    but on two fresh held-out sets −0.04 / −0.05 and −0.28 / −0.13 dB with one more photo made worse
    in three of four rows, and 8 instead of 5 of 80 masked clean photos changed: guesses there were
    off by 3× and more, and inversion multiplies the photo's texture by 1/(1 − α')."""
    prior = _prior_color(j, b, cand)
    alpha0, _, _ = solve_blend(j[cand], b[cand], np.ones(int(cand.sum())), prior, opt.prior_weight)
    return float(np.clip(alpha0, 0.0, 1.0))


WIDE_PX = 3
"""Pixels this far inside a fitted candidate's outline are the mark's interior (``_fit_layer``)."""


def _carries_mark(
    j: np.ndarray, b: np.ndarray, c: float, d: np.ndarray, color: np.ndarray, alpha0: float, opt: FitOptions
) -> np.ndarray:
    """Pixels whose inversion sits closer to the photo around them than they do, and whose step from
    it points at the mark's colour with most of its opacity (the solid shape, not its rim)."""
    recovered = j * c + d.astype(np.float32)
    closer = np.linalg.norm(recovered - b, axis=-1) < np.linalg.norm(j - b, axis=-1)
    return closer & (projected_alpha(j, b, color) > opt.solid_ratio * alpha0)


def without_enclosed_photo(j: np.ndarray, fit: MarkFit, mask: np.ndarray, opt: FitOptions) -> MarkFit:
    """``fit`` with the clean photo its solid shape encloses (``_continues_recovered``) taken out of
    the shape it inverts; ``j`` float RGB, ``mask`` the region's. Not part of the fit itself: the shape
    it was fitted on stays the one whose outline it explains."""
    assert fit.solid is not None and fit.color is not None
    clean = _continues_recovered(j, fit.solid, fit.alpha0, fit.color, fit.texture)
    if not clean.any():
        return fit
    solid = fit.solid & ~clean
    return replace(fit, solid=solid, edge=mask & ring(solid, opt.edge_px))


LOCAL_PX = 4
"""How far around a pixel of a fit's solid shape its marked neighbours are read (``_continues_recovered``)."""
LOCAL_SHARE = 0.35
"""The share of those neighbours that must vote for clean photo before the pixel is taken out."""
LOCAL_ROUNDS = 12
"""How many times the vote is retaken, each with the pixels taken out so far (a band's side per round)."""
_LOCAL_OFFSETS = [
    (r * sy, r * sx) for r in range(2, LOCAL_PX + 1) for sy in (-1, 0, 1) for sx in (-1, 0, 1) if sy or sx
]


def _continues_recovered(
    j: np.ndarray, solid: np.ndarray, alpha0: float, color: np.ndarray, texture: float
) -> np.ndarray:
    """Pixels of ``solid`` that continue the photo recovered from the marked pixels around them
    rather than those pixels as they are: clean photo enclosed by a mark, such as the gap between a
    ring and a bar, or between letters, under a rough mask, where the per-pixel test reads against a
    fill from far away. Each marked neighbour 2 to ``LOCAL_PX`` px off votes for clean photo where
    the pixel is within twice the photo's texture step (``texture``) of the neighbour recovered, at
    most half as far from it as from the neighbour as it is, and apart from that by most of the
    mark's step there (a smooth layer, a shadow, changes gradually; a second colour of the mark is
    far from both). Iterated: a neighbour already taken out votes for clean where the pixel is within
    twice the texture step of it as it is and within half the mark's step at the pixel, so a gap
    goes whole from its sides inwards (bands up to 12 px across on the tests' photos; at 0.4 of the
    votes without the taken-out ones, 5 px). Where a grey mark's step is under about twice the
    photo's brightness texture, parts of the mark go too (``docs/restoration.md``, session 41)."""
    out = np.zeros_like(solid)
    if not solid.any():
        return out
    r = LOCAL_PX
    ys, xs = np.nonzero(solid)
    y0, y1 = max(int(ys.min()) - r, 0), min(int(ys.max()) + r + 1, solid.shape[0])
    x0, x1 = max(int(xs.min()) - r, 0), min(int(xs.max()) + r + 1, solid.shape[1])
    # Read only at the shape's pixels, in its box padded so that every offset stays inside.
    jp = np.pad(j[y0:y1, x0:x1].astype(np.float32), ((r, r), (r, r), (0, 0)), mode="edge").reshape(-1, 3)
    inv = unblend(jp, alpha0, color.astype(np.float32))
    step = np.abs(inv - jp).sum(-1)
    stride = x1 - x0 + 2 * r
    at = (ys - y0 + r) * stride + (xs - x0 + r)
    shifts = [dy * stride + dx for dy, dx in _LOCAL_OFFSETS]
    centre = jp[at]
    own = step[at]
    # One bit per offset: the vote of that neighbour while marked, and once taken out.
    votes = np.zeros(len(at), np.uint32)
    alike = np.zeros(len(at), np.uint32)
    for bit, shift in enumerate(shifts):
        raw = np.abs(centre - jp[at + shift]).sum(-1)
        rec = np.abs(centre - inv[at + shift]).sum(-1)
        vote = (rec < 0.5 * raw) & (raw > 0.5 * step[at + shift]) & (rec < 2.0 * texture)
        votes |= vote.astype(np.uint32) << np.uint32(bit)
        same = (raw < 2.0 * texture) & (raw < 0.5 * own)
        alike |= same.astype(np.uint32) << np.uint32(bit)
    marked = np.pad(solid[y0:y1, x0:x1], r).reshape(-1)
    taken = np.zeros_like(marked)
    # Every neighbour in the shape votes, marked or taken out: the count does not change by round.
    count = sum(marked[at + shift].astype(np.int32) for shift in shifts)
    dropped = np.zeros(len(at), bool)
    for _ in range(LOCAL_ROUNDS):
        clean = np.zeros(len(at), np.int32)
        for bit, shift in enumerate(shifts):
            near, gone = marked[at + shift], taken[at + shift]
            clean += near & ((votes >> np.uint32(bit)) & 1).astype(bool)
            clean += gone & ((alike >> np.uint32(bit)) & 1).astype(bool)
        new = marked[at] & (count >= 6) & (clean > LOCAL_SHARE * count)
        if not new.any():
            break
        dropped |= new
        marked[at[new]] = False
        taken[at[new]] = True
    out[ys[dropped], xs[dropped]] = True
    return out


def _candidates(mask: np.ndarray, change: np.ndarray, opt: FitOptions) -> list[np.ndarray]:
    """Guesses of the marked pixels inside ``mask``; the caller keeps the one whose outline steps most.

    Pixels that depart from the fill of their surroundings (at a few thresholds) find a mark of
    any shape inside a rough mask; but over a wide hole the fill misses texture, so on textured
    photo that set speckles. The mask shrunk by a few pixels finds a wide mark that a brush
    stroke or a dilation grew evenly (and, shrunk by nothing, a mask that is exact); its largest
    component, a mark beside others. When none of these holds, ``_cores`` are tried."""
    found = []
    for k in (1.0, 2.0, 3.0):
        trial = mask & (change > k * opt.min_change)
        if trial.sum() < opt.min_pixels:
            break
        found.append(trial)
    m = mask.astype(np.uint8)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for r in range(opt.max_shrink_px + 1):
        if r:
            m = cv2.erode(m, disk)
        if m.sum() < opt.min_pixels:
            break
        found.append(m.astype(bool))
    # A mask of several components (on an exact mask, a platform mark's tile beside its text lines):
    # the largest alone is a guess too, whose outline is the tile's own; the rest is fitted after it
    # (``RestoreInpainter.plan``). Platform set, exact masks: 36.24 → 36.41 dB (+7 and +8 dB on two
    # photos whose tile and text no single colour explained, −6 on one at 74 dB); rough masks, where
    # components merge, and the four other sets unchanged within 0.01 dB.
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n > 2:
        largest = int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1
        if stats[largest, cv2.CC_STAT_AREA] >= 4 * opt.min_pixels:
            found.append(labels == largest)
    return found


def _cores(mask: np.ndarray, change: np.ndarray, opt: FitOptions) -> list[np.ndarray]:
    """Per mask component, its pixels that depart by at least ``CORE_SHARE`` of its strong departure:
    guesses fitted only when none of ``_candidates``' holds (built only then: a tiled mark has
    hundreds of components)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    cores = []
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < 4 * opt.min_pixels:
            continue
        component = labels == k
        strong = float(np.quantile(change[component], 0.9))
        if strong < 2 * opt.min_change:
            continue
        core = component & (change > CORE_SHARE * strong)
        core = cv2.morphologyEx(core.astype(np.uint8), cv2.MORPH_OPEN, disk).astype(bool)
        if core.sum() >= 4 * opt.min_pixels:
            cores.append(core)
    return cores


CORE_SHARE = 0.4
"""The share of a mask component's strong departure from its fill (its 0.9 quantile) above which its
pixels are a guess of the mark's solid core (``_cores``). A platform mark's soft shadow takes an
exact mask well past the tile and text it keeps readable, and a rough mask's clean rim lies around
any mark: neither the mask shrunk by a few pixels nor a threshold on the whole region's departure
then finds the solid part's outline, where the photo steps. These guesses are fitted only when none
of the others holds: ranked among them, a core with a larger step won over the right fit (platform
set, exact masks, −16 dB on one photo). Five sets, exact and rough masks, mean +0.05 dB, photos made
worse unchanged (9); at 0.3 or 0.5 +0.02 / +0.03. Their fits must explain more of the outline's step
(``CORE_MIN_EXPLAINED``)."""
CORE_MIN_EXPLAINED = 0.8
"""The share of its outline's step a core guess's fit must explain to hold (the others: ``min_explained``,
0.6): the core is cut out by the departure itself, so a fit on it explains its outline more easily. On
the segmenter's own masks, core fits at 0.71–0.84 inverted a grey photo patch and a glyph block with
the wrong colour (third and fresh sets, 2 more photos made worse); at 0.8 none, and the five sets'
exact and rough masks lose 0.01 dB."""


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def _outline_step(flat_j: np.ndarray, inside: np.ndarray, mask: np.ndarray) -> float:
    """Mean colour step across the outline of ``inside`` (0 when it has none)."""
    p, q = boundary_pairs(inside, ~inside | ~mask, gap=1.0)
    return float(np.abs(flat_j[p] - flat_j[q]).sum(1).mean()) if len(p) else 0.0


def _photo_step(flat_j: np.ndarray, mask: np.ndarray, gap: float = 2.0) -> float:
    """The same step, pairs as far apart (``gap``), between unmasked photo pixels just around the
    mask: texture's share."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    p, q = boundary_pairs(grown, ~grown, gap=gap)
    return float(np.abs(flat_j[p] - flat_j[q]).sum(1).mean()) if len(p) else 0.0


def _prior_color(j: np.ndarray, b: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """The most saturated colour in the direction the mark moves its pixels (the gamut point).

    Not the segmenter's colour head: as this prior it made every restoration it changed worse
    (restoration set, 10 of 10 images; exact / rough masks 40.84 / 37.49 dB with it, 40.94 / 37.63
    without), and without it a caller's mask needs no model at all."""
    delta = (j - b)[cand]
    mean_dir = (delta * np.linalg.norm(delta, axis=-1, keepdims=True)).sum(0)
    return _gamut_point(b[cand].mean(0), mean_dir / max(float(np.linalg.norm(mean_dir)), 1e-9))


OPACITY_SPREAD = 0.3
"""How much a fitted mark's opacity varies around its α0 at the solid shape's edge, as a share of it
(anti-aliasing; on the restoration sets' fitted regions the true opacity's spread over the solid
shape was 0.2–0.35 × α0, nearly all of it within 2 px of the shape's edge)."""
RIM_PX = 2
"""How far on either side of the solid shape's edge a mark's opacity is read per pixel
(``opacity_map``): inside, the anti-aliased edge of the shape; outside, the rim it fades out in."""


def rim(fit: MarkFit) -> np.ndarray:
    """The pixels around a fit's solid shape, out to ``RIM_PX``, where the mark fades out."""
    assert fit.solid is not None
    return ring(fit.solid, RIM_PX)


def ring(shape: np.ndarray, px: int) -> np.ndarray:
    """The pixels within ``px`` (an elliptic neighbourhood) around ``shape``, not in it."""
    k = 2 * px + 1
    grown = cv2.dilate(shape.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    return grown & ~shape


def opacity_map(
    j: np.ndarray, b: np.ndarray, fit: MarkFit, noise: np.ndarray | None, color: np.ndarray | None = None
) -> np.ndarray:
    """Per-pixel opacity of a fitted mark over its solid shape and its ``rim``; ``color``: the mark's
    colour per pixel (HxWx3) where it has several (``pipeline.inpaint.colours``), else the fit's.

    Inverting with the fit's constant α0 overshoots where the mark fades out, and on a thin stroke
    most pixels do; the rim outside the shape still holds faint mark. There (``RIM_PX`` either side
    of the shape's edge) each pixel's opacity is read from its own step off the background
    (``projected_alpha``) as far as that can be trusted: as well as the background ``b`` under it,
    very good near the outline, a guess deeper. So the reading and a prior (α0 on the shape, half
    of it on the first pixel outside, none further out: a clean pixel there stays as it is unless
    its own reading says otherwise; spread ``OPACITY_SPREAD``) are combined by their variances, the
    reading's from ``noise``, the expected squared error of ``b`` per pixel along the mark's colour.
    Deeper in the shape the constant holds: per pixel there, the reading's error outweighed what it
    mended on every photo looked at. ``noise`` None: the prior.
    """
    assert fit.color is not None and fit.solid is not None
    color = fit.color if color is None else color
    alpha0 = fit.alpha0
    outside = cv2.distanceTransform((~fit.solid).astype(np.uint8), cv2.DIST_L2, 3)
    mean = np.where(fit.solid, alpha0, np.where(outside <= 1.5, 0.5 * alpha0, 0.0)).astype(np.float32)
    if noise is None:
        return mean
    # Read per pixel within RIM_PX of the shape's edge inside it, and everywhere outside it (the
    # caller applies the map on the shape and its ``rim``).
    inside = cv2.distanceTransform(np.pad(fit.solid, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    towards = ((color - b) ** 2).sum(-1)
    read = inside <= RIM_PX
    prior = np.where(read, (OPACITY_SPREAD * alpha0) ** 2, 0.0)
    measured = (1.0 - alpha0) ** 2 * noise / np.maximum(towards, 1e-3)
    k = prior / np.maximum(prior + measured, 1e-12)
    return np.clip(mean + k * (projected_alpha(j, b, color) - mean), 0.0, 0.95).astype(np.float32)


def out_of_gamut(recovered: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels of a float RGB inversion that leave [0, 1] by more than ``tolerance`` in a channel."""
    return ((recovered < -tolerance) | (recovered > 1.0 + tolerance)).any(-1)


def invert(image: np.ndarray, alpha: float | np.ndarray, color: np.ndarray) -> np.ndarray:
    """``I = (J − α·W) / (1 − α)`` of a uint8 image in float RGB (0..1), not clipped."""
    return unblend(image.astype(np.float32) / 255.0, alpha, color)


def unblend(j: np.ndarray, alpha: float | np.ndarray, color: np.ndarray) -> np.ndarray:
    """``I = (J − α·W) / (1 − α)`` of float RGB ``j`` (0..1, any leading shape), not clipped;
    ``alpha`` a constant or per pixel, ``color`` (3,) or per pixel."""
    a = np.asarray(alpha, np.float32)
    if a.ndim == 2:
        a = a[..., None]
    return (j - a * color) / np.maximum(1.0 - a, 1e-3)
