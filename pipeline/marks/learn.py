"""Learn a mark profile from several photos that carry the same mark.

1. Align: photos of one size are compared pixel for pixel; photos of different sizes are cropped
   to their common size at each anchor (corners, centre) and the anchor whose median gradient has
   the most edge energy wins — only there do the mark's edges line up.
2. Layout: if that edge map repeats with a period (autocorrelation peaks), the mark is tiled and
   every period cell of every photo becomes one more sample of the cell.
3. Estimate α and W jointly (``estimate.solve_blend``), score each photo by how much of the mark's
   outline the inversion explains, drop photos that do not carry it and estimate again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.errors import InvalidParameterError, NoSharedMarkError, NotEnoughPhotosError
from pipeline.marks.apply import outline, render
from pipeline.marks.estimate import (
    edge_map,
    edge_threshold,
    explained,
    solve_blend,
    support_from_edges,
)
from pipeline.marks.profile import ANCHORS, MarkProfile, origin

MIN_PHOTOS = 3
MIN_PERIOD = 16
PRESENT = 0.3  # a photo whose mark outline is explained less than this does not carry the mark


def _check(images: Sequence[np.ndarray], min_photos: int) -> list[np.ndarray]:
    if len(images) < min_photos:
        raise NotEnoughPhotosError(
            f"learning a mark needs at least {min_photos} photos that carry it, got {len(images)}"
        )
    out = []
    for i, img in enumerate(images):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise InvalidParameterError(f"photo {i} must be an HxWx3 uint8 RGB array")
        if min(img.shape[:2]) < 2 * MIN_PERIOD:
            raise InvalidParameterError(f"photo {i} is too small ({img.shape[1]}x{img.shape[0]})")
        out.append(img.astype(np.float32) / 255.0)
    return out


def _crop(photo: np.ndarray, size: tuple[int, int], anchor: str) -> np.ndarray:
    top, left = origin(photo.shape[:2], size, anchor)
    return photo[top : top + size[0], left : left + size[1]]


def _aligned(photos: list[np.ndarray]) -> tuple[str, np.ndarray]:
    """The anchor that lines the mark up, and the stack of photos cropped to it."""
    size = (min(p.shape[0] for p in photos), min(p.shape[1] for p in photos))
    if all(p.shape[:2] == size for p in photos):
        return "", np.stack(photos)
    best: tuple[float, str, np.ndarray] | None = None
    for anchor in ANCHORS:
        stack = np.stack([_crop(p, size, anchor) for p in photos])
        edges = edge_map(stack)
        region = support_from_edges(edges, edge_threshold(edges, len(photos)))
        energy = float(edges[region].sum())
        if best is None or energy > best[0]:
            best = (energy, anchor, stack)
    assert best is not None
    return best[1], best[2]


def _period(edges: np.ndarray, axis: int) -> int | None:
    """The mark's repeat along ``axis`` from the edge map's autocorrelation, if it has one."""
    profile = edges.sum(axis=1 - axis).astype(np.float64)
    profile -= profile.mean()
    n = profile.size
    spectrum = np.fft.rfft(profile, 2 * n)
    corr = np.fft.irfft(spectrum * np.conj(spectrum))[: n // 2 + 1]
    if corr[0] <= 0:
        return None
    corr /= corr[0]
    lags = np.arange(corr.size)
    peaks = [
        lag
        for lag in lags[MIN_PERIOD:-1]
        if corr[lag] >= corr[lag - 1] and corr[lag] >= corr[lag + 1] and corr[lag] > 0.3
    ]
    if not peaks:
        return None
    top = max(corr[p] for p in peaks)
    return int(next(p for p in peaks if corr[p] >= 0.8 * top))


def _repeats(edges: np.ndarray, period: tuple[int, int]) -> bool:
    """Whether the edge map matches itself shifted by one period along both axes.

    The 1-D projections also peak at the letter spacing of a single line of text; a real tiling
    repeats the whole 2-D pattern.
    """
    py, px = period
    pairs = ((edges[:-py], edges[py:]), (edges[:, :-px], edges[:, px:]))
    return all(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) >= 0.5 for a, b in pairs)


def _tile_stack(
    stack: np.ndarray, period: tuple[int, int], edges: np.ndarray
) -> tuple[np.ndarray, tuple[int, int]]:
    """Every whole period cell of every photo, cut where the cell's edges are weakest."""
    py, px = period
    h, w = edges.shape
    folded = np.zeros(period, np.float64)
    for y in range(0, h - py + 1, py):
        for x in range(0, w - px + 1, px):
            folded += edges[y : y + py, x : x + px]
    ry = int(np.argmin(folded.sum(axis=1)))
    rx = int(np.argmin(folded.sum(axis=0)))
    cells = [
        stack[:, y : y + py, x : x + px] for y in range(ry, h - py + 1, py) for x in range(rx, w - px + 1, px)
    ]
    return np.concatenate(cells), (ry, rx)


def _same_place_anchor(frame: tuple[int, int], top: int, left: int, size: tuple[int, int]) -> str:
    """For photos of one size every anchor fits; name the one a new photo most likely shares."""
    cy, cx = top + size[0] / 2, left + size[1] / 2
    if abs(cy - frame[0] / 2) < 0.05 * frame[0] and abs(cx - frame[1] / 2) < 0.05 * frame[1]:
        return "center"
    return ("t" if cy < frame[0] / 2 else "b") + ("l" if cx < frame[1] / 2 else "r")


def learn_profile(
    images: Sequence[np.ndarray],
    *,
    layout: str = "auto",
    min_photos: int = MIN_PHOTOS,
    smoothness: float | None = None,
) -> MarkProfile:
    """Estimate the mark that ``images`` (RGB uint8, N >= 3) share; see the module docstring.

    ``layout``: "auto", "fixed" or "tiled". The profile's ``missing`` lists photos that turned
    out not to carry the mark and ``scores`` how well it explains each photo.
    """
    if layout not in ("auto", "fixed", "tiled"):
        raise InvalidParameterError(f"layout must be auto, fixed or tiled, got {layout!r}")
    photos = _check(images, min_photos)
    anchor, stack = _aligned(photos)
    frame = (int(stack.shape[1]), int(stack.shape[2]))
    edges = edge_map(stack)
    periods = (_period(edges, 0), _period(edges, 1)) if layout != "fixed" else (None, None)
    tiled = periods[0] is not None and periods[1] is not None and _repeats(edges, periods)  # type: ignore[arg-type]
    if layout == "tiled" and not tiled:
        raise NoSharedMarkError("the photos show no repeating mark")
    if tiled:
        period = (int(periods[0]), int(periods[1]))  # type: ignore[arg-type]
        samples, phase = _tile_stack(stack, period, edges)
        profile = _estimate_tiled(samples, period, phase, stack, smoothness)
        profile.anchor = "tl"
    else:
        profile = _estimate_fixed(stack, smoothness)
        top, left = profile.offset
        if not anchor:
            anchor = _same_place_anchor(frame, top, left, profile.shape)
        oy, ox = origin(frame, profile.shape, anchor)
        profile.anchor = anchor
        profile.offset = (top - oy, left - ox)
    profile.source_size = frame
    profile.photos = len(photos)
    return profile


def _score_all(stack: np.ndarray, alpha: np.ndarray, pre: np.ndarray) -> list[float]:
    band = outline(alpha)
    return [explained(photo, alpha, pre, band) for photo in stack]


def _estimate_fixed(stack: np.ndarray, smoothness: float | None) -> MarkProfile:
    weights = np.ones(len(stack), np.float32)
    for _ in range(2):
        use = stack[weights > 0]
        if len(use) < MIN_PHOTOS:
            raise NotEnoughPhotosError(
                f"only {len(use)} of {len(stack)} photos carry a shared mark; need {MIN_PHOTOS}"
            )
        edges = edge_map(use)
        region = support_from_edges(edges, edge_threshold(edges, len(use)))
        if not region.any():
            raise NoSharedMarkError("the photos have no mark in common (no shared edges)")
        ys, xs = np.nonzero(region)
        y0, y1 = ys.min() - 1, ys.max() + 2
        x0, x1 = xs.min() - 1, xs.max() + 2
        est = solve_blend(
            stack[:, y0:y1, x0:x1], region[y0:y1, x0:x1], weights=weights, smoothness=smoothness
        )
        scores = _score_all(stack[:, y0:y1, x0:x1], est.alpha, est.premultiplied)
        keep = np.asarray(scores) >= PRESENT
        if keep.sum() < MIN_PHOTOS:
            raise NoSharedMarkError(
                f"no mark is shared by {MIN_PHOTOS} or more of the photos (best explained: {max(scores):.0%})"
            )
        if np.array_equal(keep, weights > 0):
            break
        weights = keep.astype(np.float32)
    return MarkProfile(
        est.alpha,
        est.color,
        offset=(int(y0), int(x0)),
        quality=float(np.median(np.asarray(scores)[keep])),
        missing=[int(i) for i in np.nonzero(~keep)[0]],
        scores=[float(s) for s in scores],
    )


def _estimate_tiled(
    samples: np.ndarray,
    period: tuple[int, int],
    phase: tuple[int, int],
    stack: np.ndarray,
    smoothness: float | None,
) -> MarkProfile:
    edges = edge_map(samples)
    region = support_from_edges(edges, edge_threshold(edges, len(samples)), single=False)
    if not region.any():
        raise NoSharedMarkError("the repeating pattern has no clear mark edges")
    est = solve_blend(samples, region, smoothness=smoothness)
    profile = MarkProfile(est.alpha, est.color, layout="tiled", offset=phase, period=period)
    frame = stack.shape[1:3]
    alpha, pre = render(profile, frame, *phase)
    scores = _score_all(stack, alpha, pre)
    keep = np.asarray(scores) >= PRESENT
    profile.quality = float(np.median(np.asarray(scores)[keep])) if keep.any() else 0.0
    profile.missing = [int(i) for i in np.nonzero(~keep)[0]]
    profile.scores = [float(s) for s in scores]
    return profile
