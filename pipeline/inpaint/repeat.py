"""A mark repeated across one photo (a tiled stamp): learned from its own copies, then inverted.

A tiled stamp puts one mark, at one opacity and colour, on a lattice over the whole photo. A
single copy leaves α and W per pixel unknown (``pipeline.inpaint.fit`` assumes them constant over
a region and often cannot tell them apart from the photo), but every copy lies over different
photo, so together they pin both down per pixel, exactly as photos that share a mark do
(``pipeline.marks.estimate.solve_blend``): the copies are sampled into one stack, the mark is the
part of their gradients they share.

1. The lattice: two vectors from the peaks of the mask's autocorrelation (a tiling shifted by a
   lattice vector lands on itself), checked by the share of the mask that does.
2. The mark: one copy of each periodic mask component (a tile, its text lines), cut out with a
   window; the window at every lattice translate is sampled (sub-pixel) into the stack, each pixel
   weighted by whether that copy lies inside the photo.
3. The estimate is drawn back at every translate and, if most copies hold it and it is not
   near-opaque, each copy that is translucent and stays in gamut is inverted. The rest of the mask
   (other marks, near-opaque copies, copies the photo's border cuts) is left to the region fits.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from pipeline.inpaint.fit import FitOptions, out_of_gamut
from pipeline.marks.estimate import invert, mark_gain, solve_blend

MIN_PERIOD_PX = 12
"""Shortest lattice vector taken: closer repeats are the strokes of one mark, not copies of it."""
MIN_OVERLAP = 0.7
"""The share of the mask a lattice vector must map onto the mask (autocorrelation over its value at
0). Tiled marks on five synthetic sets reach 0.8–0.95; the text lines and logos of single marks
repeat their own strokes at up to 0.65."""
MAX_COPIES = 48
"""Copies sampled into the stack at most (the nearest and most complete first): past a few dozen
they add time, not accuracy."""
MIN_COPIES = 4
"""Copies each pixel of the mark needs in the stack (all but 5 % of them). With fewer, the estimate
takes in part of the photo under them and then explains it (at 3, with no share of the mark's pixels
exempt, a clean photo under a tiled mask with 4–5 copies a pixel came back at 37 dB). A platform's
tiling over a small photo (512 px, a period near 190 px) gives 4–5 copies a pixel: at 6 one such
mark was left to the region fits (strong platform set, 33.1 → 38.9 dB exact, 29.3 → 37.7 grown at
4; no other photo of the six sets changed). Clean photos under tiled word masks (40 photos, periods
130, 170 and 220 px) change as at 6: 16, 10 and 10 of them, lowest 42.4, 48.1 and 48.2 dB. At 3
nothing more was learned: the other such marks fail the holding check (``MIN_HOLDING``)."""
MAX_OPACITY = 0.6
"""A copy whose 0.9 quantile of estimated opacity reaches this is left to the region fits: the stack's
sparse-gradient prior under-reads near-opaque marks (a white text at 0.81 read 0.5–0.75 copy by copy),
and their inversion leaves them half there; the fits find them opaque and fill them."""
MIN_GAIN, MAX_GAIN = 0.5, 1.5
"""The share of the estimated mark's edge pattern a copy's photo holds for it to count as holding the
mark (``pipeline.marks.estimate.mark_gain``). At 0.5..3 five tiled photos of the six sets gain
0.05–2.4 dB (six photo × mask pairs) and one is made worse (fresh set, exact mask: 34.5 → 31.1 dB,
one copy at 1.56 tipping it over ``MIN_HOLDING``): twelve rows 38.142 → 38.148 dB, photos made
worse 18 → 19."""
MIN_HOLDING = 0.75
"""The share of the copies (by pixels) that must hold the estimated mark for any to be inverted. A
tiled mark is the same everywhere, so every copy holds a right estimate (0.83–0.92 of them on the
synthetic sets' tiled marks, the rest over other marks or clipped photo); an estimate that took in
the photo's own structure, or one that missed the mark's colours, holds in some and not others."""
SMOOTHNESS = 0.03
"""The estimate's prior on jumps of α and W (``solve_blend``'s, per √copies). Its default for photos
that share a mark (0.1) shrinks thin strokes: on a stack of 10 copies of a 3-px ring at α 0.35 it read
0.25 (29.5 dB under it); at 0.03, 0.34 (39.6 dB); lower adds noise (0.01: 0.37)."""
MAX_DETECT_SIDE = 1024
"""The mask is searched for a lattice at most this large (longest side): the autocorrelation is an
FFT of twice its size."""
MAX_WINDOW_PX = 120_000
"""The largest window (one copy of the mark) estimated: the solve's time and memory grow with its area
(a 60 000-px window: 2.6 s and 130 MB of arrays on this project's CPU). A larger mark is left to the
region fits."""


class Lattice(NamedTuple):
    """Two lattice vectors (dy, dx) in pixels, the shorter first."""

    v1: np.ndarray
    v2: np.ndarray


class Repeated(NamedTuple):
    """What ``remove_repeated`` recovered: the photo with the accepted copies inverted, the mask pixels
    it inverted (the rest of the mask is the caller's), and a note."""

    image: np.ndarray
    done: np.ndarray
    note: str


def _autocorrelation(mask: np.ndarray) -> np.ndarray:
    """The mask's autocorrelation over all lags, lag (0, 0) at the centre, each lag divided by its
    overlap (far lags are not shrunk by the frame's border)."""
    h, w = mask.shape
    size = (2 * h, 2 * w)
    corr = np.fft.fftshift(np.fft.irfft2(np.abs(np.fft.rfft2(mask, size)) ** 2, size))
    overlap = np.outer(h - np.abs(np.arange(-h, h)), w - np.abs(np.arange(-w, w)))  # pixels both lie on
    return corr / np.maximum(overlap, 1.0)


def _subpixel(corr: np.ndarray, y: int, x: int) -> tuple[float, float]:
    """A peak's position refined by a parabola through it and its neighbours along each axis."""

    def vertex(a: float, b: float, c: float) -> float:
        den = a - 2.0 * b + c
        return 0.0 if abs(den) < 1e-12 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))

    if not (0 < y < corr.shape[0] - 1 and 0 < x < corr.shape[1] - 1):
        return float(y), float(x)
    return y + vertex(*corr[y - 1 : y + 2, x]), x + vertex(*corr[y, x - 1 : x + 2])


def _reduced(v1: np.ndarray, v2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lagrange–Gauss reduction: the two shortest vectors of the same lattice."""
    for _ in range(32):
        if v1 @ v1 > v2 @ v2:
            v1, v2 = v2, v1
        if v1 @ v1 < 1e-6:
            break
        m = round(float(v1 @ v2) / float(v1 @ v1))
        if m == 0:
            break
        v2 = v2 - m * v1
    return v1, v2


def find_lattice(mask: np.ndarray) -> Lattice | None:
    """The lattice a tiled mark's mask repeats on, or None when it does not repeat.

    The peaks of the autocorrelation at ``MIN_OVERLAP`` of its centre give two candidate vectors
    (the shortest, then the shortest not along it); they are reduced, then refined by least squares
    over the peaks they predict out to four periods (a far peak pins a vector four times closer)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    # The mask's box grown by its own size each way (the photo clips it): a lone logo costs a few
    # times its size, and every lag searched still has most of the box to overlap.
    bh, bw = int(ys.max() - ys.min()) + 1, int(xs.max() - xs.min()) + 1
    y0, x0 = max(int(ys.min()) - bh, 0), max(int(xs.min()) - bw, 0)
    box = mask[y0 : int(ys.max()) + 1 + bh, x0 : int(xs.max()) + 1 + bw]
    scale = min(1.0, MAX_DETECT_SIDE / max(box.shape))
    small = box.astype(np.float32)
    if scale < 1.0:
        small = cv2.resize(small, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)  # peaks smooth enough for the parabola
    h, w = small.shape
    corr = _autocorrelation(small).astype(np.float32)  # as the peak test's dilation sees it
    peak0 = float(corr[h, w])
    if peak0 <= 1e-6:
        return None
    half = corr[h : h + h // 2, w - w // 2 : w + w // 2]  # lags dy >= 0 up to half the photo
    local = cv2.dilate(half, np.ones((5, 5), np.uint8))
    ys, xs = np.nonzero((half >= local) & (half >= MIN_OVERLAP * peak0))
    lags = [np.array([y, x - w // 2], np.float64) for y, x in zip(ys, xs, strict=True)]
    lags = [v for v in lags if (v[0] > 0 or v[1] > 0) and np.hypot(*v) >= MIN_PERIOD_PX * scale]
    if not lags:
        return None
    lags.sort(key=lambda v: float(v @ v))
    v1 = lags[0]
    v2 = next(
        (v for v in lags[1:] if abs(v1[0] * v[1] - v1[1] * v[0]) > 0.3 * np.hypot(*v1) * np.hypot(*v)), None
    )
    if v2 is None:
        return None
    v1, v2 = _reduced(v1, v2)
    rows, found = [], []
    for k in range(-4, 5):
        for j in range(-4, 5):
            lag = k * v1 + j * v2
            y, x = round(lag[0]) + h, round(lag[1]) + w
            if (k, j) == (0, 0) or not (2 <= y < 2 * h - 2 and 2 <= x < 2 * w - 2):
                continue
            win = corr[y - 2 : y + 3, x - 2 : x + 3]
            iy, ix = np.unravel_index(int(np.argmax(win)), win.shape)
            if win[iy, ix] < MIN_OVERLAP * peak0 or iy in (0, 4) or ix in (0, 4):
                continue  # no peak here, or it is not the top of its neighbourhood
            py, px = _subpixel(corr, y - 2 + int(iy), x - 2 + int(ix))
            rows.append((k, j))
            found.append((py - h, px - w))
    if len(rows) >= 3 and np.linalg.matrix_rank(np.asarray(rows, np.float64)) == 2:
        (r1, r2), *_ = np.linalg.lstsq(np.asarray(rows, np.float64), np.asarray(found), rcond=None)
        if max(np.hypot(*(r1 - v1)), np.hypot(*(r2 - v2))) < 2.0:  # a refinement, not another lattice
            v1, v2 = r1, r2
    v1, v2 = _reduced(v1 / scale, v2 / scale)
    if abs(v1[0] * v2[1] - v1[1] * v2[0]) <= 0.2 * np.hypot(*v1) * np.hypot(*v2):
        return None
    return Lattice(v1, v2)


def _translates(lattice: Lattice, reach: int) -> list[np.ndarray]:
    """Lattice translates ``k·v1 + j·v2`` for |k|, |j| <= ``reach``, nearest first."""
    out = [
        k * lattice.v1 + j * lattice.v2 for k in range(-reach, reach + 1) for j in range(-reach, reach + 1)
    ]
    return sorted(out, key=lambda t: float(t @ t))


def _shifted(image: np.ndarray, origin: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """``image`` sampled on a ``size`` window whose top-left corner is at ``origin`` (dy, dx, sub-pixel)."""
    m = np.float32([[1, 0, origin[1]], [0, 1, origin[0]]])
    return cv2.warpAffine(image, m, size[::-1], flags=interpolation | cv2.WARP_INVERSE_MAP)


def _one_copy(mask: np.ndarray, lattice: Lattice) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """One copy of the periodic part of ``mask``: for each class of components that repeat (their
    centres one lattice vector apart, about the same size), the member nearest a common anchor.
    Returns the copy (bool, photo coordinates) and its window (y0, x0, y1, x1), 3 px around it."""
    h, w = mask.shape
    basis = np.array([lattice.v1, lattice.v2]).T
    to_lattice = np.linalg.inv(basis)
    n, labels, stats, centres = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    centres = centres[:, ::-1]
    whole = [
        i
        for i in range(1, n)
        if stats[i, cv2.CC_STAT_AREA] >= 4
        and stats[i, 0] > 0
        and stats[i, 1] > 0
        and stats[i, 0] + stats[i, 2] < w
        and stats[i, 1] + stats[i, 3] < h
    ]
    classes: list[list[int]] = []
    for i in whole:
        for members in classes:
            r = members[0]
            frac = to_lattice @ (centres[i] - centres[r])
            off = basis @ (frac - np.round(frac))
            if np.hypot(*off) < 3.0 and 0.7 < stats[i, 4] / stats[r, 4] < 1.4:
                members.append(i)
                break
        else:
            classes.append([i])
    periodic = [members for members in classes if len(members) >= 2]
    if not periodic:
        return None
    largest = max(periodic, key=lambda m: int(stats[m[0], 4]) * len(m))
    middle = np.array([h / 2.0, w / 2.0])
    anchor = centres[min(largest, key=lambda i: float(np.hypot(*(centres[i] - middle))))]
    chosen = [min(m, key=lambda i: float(np.hypot(*(centres[i] - anchor)))) for m in periodic]
    y0 = min(int(stats[i, 1]) for i in chosen) - 3
    x0 = min(int(stats[i, 0]) for i in chosen) - 3
    y1 = max(int(stats[i, 1] + stats[i, 3]) for i in chosen) + 3
    x1 = max(int(stats[i, 0] + stats[i, 2]) for i in chosen) + 3
    return np.isin(labels, chosen), (y0, x0, y1, x1)


class _Estimate(NamedTuple):
    alpha: np.ndarray  # HxW: the mark's opacity drawn at every translate
    premultiplied: np.ndarray  # HxWx3: α·W
    covered: np.ndarray  # HxW bool: where a copy of the estimated mark lies


def estimate_repeated(image: np.ndarray, mask: np.ndarray, lattice: Lattice) -> _Estimate | None:
    """α and α·W of the repeated mark over the whole photo (see the module docstring), or None when
    the mask has no repeating components or too few copies lie in the photo."""
    h, w = mask.shape
    found = _one_copy(mask, lattice)
    if found is None:
        return None
    copy, (y0, x0, y1, x1) = found
    size = (y1 - y0, x1 - x0)
    if size[0] * size[1] > MAX_WINDOW_PX:
        return None
    origin = np.array([y0, x0], np.float64)
    region = _shifted(copy.astype(np.float32), origin, size, cv2.INTER_NEAREST) > 0.5
    region = cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # its rim
    region[[0, -1], :] = region[:, [0, -1]] = False
    reach = int(max(h, w) / np.hypot(*lattice.v1)) + 2
    photo = image.astype(np.float32) / 255.0
    inside = np.ones((h, w), np.float32)
    samples, weights = [], []
    for t in _translates(lattice, reach):
        at = origin + t
        valid = _shifted(inside, at, size, cv2.INTER_LINEAR) > 0.999
        if valid.mean() < 0.25:
            continue
        samples.append(np.clip(_shifted(photo, at, size, cv2.INTER_CUBIC), 0.0, 1.0))
        weights.append(valid.astype(np.float32))
        if len(samples) == MAX_COPIES:
            break
    if len(samples) < MIN_COPIES:
        return None
    weight = np.stack(weights)
    if float((weight.sum(0)[region] < MIN_COPIES).mean()) > 0.05:
        return None
    est = solve_blend(np.stack(samples), region, weights=weight, smoothness=SMOOTHNESS)
    alpha = np.zeros((h, w), np.float32)
    pre = np.zeros((h, w, 3), np.float32)
    covered = np.zeros((h, w), bool)
    shape = region.astype(np.float32)
    for t in _translates(lattice, reach + 2):
        at = origin + t
        top, left = int(np.floor(at[0])), int(np.floor(at[1]))
        ys = slice(max(top, 0), min(top + size[0] + 1, h))
        xs = slice(max(left, 0), min(left + size[1] + 1, w))
        if ys.start >= ys.stop or xs.start >= xs.stop:
            continue
        # The window moved by the translate's fraction of a pixel, then placed at its whole part.
        m = np.float32([[1, 0, at[1] - left], [0, 1, at[0] - top]])
        box = (size[1] + 1, size[0] + 1)
        crop = (slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left))
        here = (cv2.warpAffine(shape, m, box, flags=cv2.INTER_LINEAR) > 0.5)[crop]
        new = here & ~covered[ys, xs]
        if not new.any():
            continue
        alpha[ys, xs][new] = cv2.warpAffine(est.alpha, m, box, flags=cv2.INTER_CUBIC)[crop][new]
        pre[ys, xs][new] = cv2.warpAffine(est.premultiplied, m, box, flags=cv2.INTER_CUBIC)[crop][new]
        covered[ys, xs] |= here
    return _Estimate(np.clip(alpha, 0.0, 1.0), np.clip(pre, 0.0, 1.0), covered)


def remove_repeated(
    image: np.ndarray, mask: np.ndarray, *, alpha_ceiling: float = 0.75, options: FitOptions | None = None
) -> Repeated | None:
    """Invert the copies of a tiled mark in ``mask`` (module docstring); None when the mask does not
    repeat or no copy is inverted.

    ``alpha_ceiling`` and ``options`` are the caller's (``RestoreInpainter``): a mark whose estimate
    reaches the ceiling (0.99 quantile over the copies) is left to the caller whole, as a fit above
    it is filled (its translucent rim inverted alone would leave a halo around a core that is filled
    anyway); a copy whose inversion leaves the gamut (``options.gamut_tolerance``) in more than
    ``options.max_out_of_gamut`` of its pixels is left too. Otherwise the copies that are translucent
    (``MAX_OPACITY``) are inverted, if most of them (``MIN_HOLDING``)
    hold the estimated mark: the photo's gradients there carry ``MIN_GAIN``..``MAX_GAIN`` of the
    estimate's edge pattern (``pipeline.marks.estimate.mark_gain``). A copy is the component of the
    mask the drawn estimate covers; two copies that touch (a rough mask) are judged as one."""
    lattice = find_lattice(mask)
    if lattice is None:
        return None
    est = estimate_repeated(image, mask, lattice)
    if est is None:
        return None
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        (est.covered & mask).astype(np.uint8), connectivity=8
    )
    if n < 2 or float(np.quantile(est.alpha[labels > 0], 0.99)) >= alpha_ceiling:
        return None
    opt = options or FitOptions()
    photo = image.astype(np.float32) / 255.0
    inverted = invert(photo, est.alpha, est.premultiplied)
    outside = out_of_gamut(inverted, opt.gamut_tolerance)
    h, w = mask.shape
    copies = []  # (box, the copy's pixels in it): a tiling has hundreds, each looked at in its box
    for k in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[k, :4])
        box = (slice(max(y - 4, 0), min(y + bh + 4, h)), slice(max(x - 4, 0), min(x + bw + 4, w)))
        copy = labels[box] == k
        if (
            float(np.quantile(est.alpha[box][copy], 0.9)) < MAX_OPACITY
            and float(outside[box][copy].mean()) <= opt.max_out_of_gamut
        ):
            copies.append((box, copy))
    if not copies:
        return None
    holding = sum(int(c.sum()) for box, c in copies if MIN_GAIN <= _gain(photo, est, box, c) <= MAX_GAIN)
    if holding < MIN_HOLDING * sum(int(c.sum()) for _, c in copies):
        return None
    done = np.zeros_like(mask)
    for box, copy in copies:
        done[box] |= copy
    out = image.copy()
    out[done] = np.clip(inverted[done] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    period = f"({lattice.v1[0]:.1f}, {lattice.v1[1]:.1f}) × ({lattice.v2[0]:.1f}, {lattice.v2[1]:.1f})"
    inverted_share = float(done.sum()) / float((labels > 0).sum())
    return Repeated(
        out, done, f"repeated mark, lattice {period}: {inverted_share:.0%} of its copies inverted"
    )


def _gain(photo: np.ndarray, est: _Estimate, box: tuple[slice, slice], copy: np.ndarray) -> float:
    """``mark_gain`` of one copy (its pixels ``copy`` in ``box``, a few pixels around it): how much of
    the estimated mark the photo holds there (1: all)."""
    alpha = np.where(copy, est.alpha[box], 0.0).astype(np.float32)
    pre = np.where(copy[..., None], est.premultiplied[box], 0.0).astype(np.float32)
    return mark_gain(photo[box], alpha, pre)
