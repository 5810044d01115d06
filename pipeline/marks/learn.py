"""Learn a mark profile from several photos that carry the same mark.

1. Align: photos of one size are compared pixel for pixel; photos of different sizes are cropped
   to their common size at each anchor (corners, centre) and the anchor whose median gradient has
   the most edge energy wins — only there do the mark's edges line up.
2. Layout: if that edge map repeats with a period (autocorrelation peaks), the mark is tiled and
   every period cell of every photo becomes one more sample of the cell.
3. Estimate α and W jointly (``estimate.solve_blend``, its mark's edges set free once found:
   ``estimate.RELAX``), score each photo by how much of the mark's
   outline the inversion explains, drop photos that do not carry it and estimate again.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.cancel import checkpoint
from pipeline.errors import InvalidParameterError, NoSharedMarkError, NotEnoughPhotosError
from pipeline.marks.apply import judge, locate, refine
from pipeline.marks.estimate import (
    edge_map,
    edge_threshold,
    gradients,
    solve_blend,
    support_from_edges,
)
from pipeline.marks.profile import ANCHORS, MarkProfile, origin

MIN_PHOTOS = 3
MIN_PERIOD = 16
SHARED_RATIO = 2.0  # aligned shared-edge energy over what misaligned photos typically share by chance
NULL_TRIALS = 6  # chance draws the shared edges are compared with
COMMON_SHARE = 0.75  # photos of different sizes: the share of them a frame larger than all hold must fit in
LATTICE_SIGMA = 8.0  # how far above the autocorrelation's spread a tiling's peaks stand


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


def _agreeing(stack: np.ndarray) -> tuple[int, float]:
    """How many photos of the stack show the shared edges, and those edges' energy.

    A photo agrees when, on most of the median gradient's strong pixels, its own gradient points
    the same way. At a wrong anchor photos of one size still line up with each other, so energy
    alone can prefer it; only the right anchor lines up the photos of every size.
    """
    gx, gy = gradients(stack)
    mx, my = np.median(gx, axis=0), np.median(gy, axis=0)
    edges = np.sqrt((mx**2 + my**2).sum(axis=-1))
    region = support_from_edges(edges, edge_threshold(edges, len(stack)), grow=0)
    strong = region & (edges > edge_threshold(edges, len(stack)))
    if not strong.any():
        return 0, 0.0
    power = (mx[strong] ** 2 + my[strong] ** 2).sum(axis=-1)
    dots = (gx[:, strong] * mx[strong] + gy[:, strong] * my[strong]).sum(axis=-1)  # N x P
    agree = (dots > 0.5 * power).mean(axis=1)
    return int((agree > 0.5).sum()), float(edges[strong].sum())


def _frame_sizes(photos: list[np.ndarray]) -> list[tuple[int, int]]:
    """The frames to learn in, first to last: the one all photos hold (their smallest sides), then
    the largest one that ``COMMON_SHARE`` of them (and at least ``MIN_PHOTOS``) hold."""
    need = min(len(photos), max(MIN_PHOTOS, int(np.ceil(COMMON_SHARE * len(photos)))))
    shapes = np.array([p.shape[:2] for p in photos])
    sizes = [(int(shapes[:, 0].min()), int(shapes[:, 1].min()))]
    best = sizes[0]
    for h in np.unique(shapes[:, 0]):
        for w in np.unique(shapes[:, 1]):
            holds = int(((shapes[:, 0] >= h) & (shapes[:, 1] >= w)).sum())
            if holds >= need and int(h) * int(w) > best[0] * best[1]:
                best = (int(h), int(w))
    return sizes if best == sizes[0] else [*sizes, best]


def _cut_by_frame(stack: np.ndarray, margin: int = 2) -> bool:
    """Whether the mark's clear edges (at least half as strong as the strongest shared ones) run
    into the frame's border: the frame cuts the mark. Fainter shared edges do not count: with few
    photos, chance agreement of their textures leaves those all over the frame."""
    edges = edge_map(stack)
    clear = edges >= 0.5 * float(np.percentile(edges, 99.9))
    inner = np.zeros_like(clear)
    inner[margin:-margin, margin:-margin] = True
    return bool((clear & ~inner).any())


def _aligned(photos: list[np.ndarray]) -> tuple[str, np.ndarray, list[int]]:
    """The anchor that lines the mark up, the stack of photos cropped to it, and which photos
    that stack holds.

    Photos of different sizes are cropped to the frame they all hold, unless that frame cuts the
    mark (one small photo in a folder — a thumbnail, or one without the mark — would crop every
    other photo to its size): then to the larger frame most of them hold (``_frame_sizes``), and
    the photos too small for it are judged afterwards by locating the learned mark on them.
    """
    sizes = _frame_sizes(photos)
    for k, size in enumerate(sizes):
        used = [i for i, p in enumerate(photos) if p.shape[0] >= size[0] and p.shape[1] >= size[1]]
        if all(photos[i].shape[:2] == size for i in used):
            anchor, stack = "", np.stack([photos[i] for i in used])
        else:
            anchor, stack = _best_anchor([photos[i] for i in used], size)
        if k == len(sizes) - 1 or not _cut_by_frame(stack):
            break
    return anchor, stack, used


def _best_anchor(photos: list[np.ndarray], size: tuple[int, int]) -> tuple[str, np.ndarray]:
    """The anchor at which the photos cropped to ``size`` share the mark, and that stack.

    Only anchors whose shared edges stand clearly above chance (``_shared_vs_chance``) compete:
    at a wrong anchor the few pixels where the photos' gradients agree by chance make nearly all
    photos "agree" there (the median is strong exactly where most of them are), so counting
    agreeing photos alone can prefer a wrong anchor over the right one, where one photo whose
    background hides the mark disagrees. Among the clear ones, the anchor that lines up the most
    photos wins (photos of one size line up at every anchor, only the right one lines up all).
    """
    best: tuple[tuple[bool, int, float], str, np.ndarray] | None = None
    for anchor in ANCHORS:
        stack = np.stack([_crop(p, size, anchor) for p in photos])
        aligned, null = _shared_vs_chance(stack)
        count, energy = _agreeing(stack)
        clear = _clearly_shared(aligned, null)
        rank = (clear, count, energy) if clear else (False, 0, aligned / max(float(np.median(null)), 1e-6))
        if best is None or rank > best[0]:
            best = (rank, anchor, stack)
    assert best is not None
    return best[1], best[2]


def _autocorrelation(edges: np.ndarray) -> np.ndarray:
    """The edge map's 2-D autocorrelation over lags (dy, dx) >= 0, each lag normalised by its
    overlap (so far lags are not shrunk) and with the slow fall-off of the strokes' own width
    subtracted: what is left are the sharp peaks a repeating pattern makes."""
    h, w = edges.shape
    z = edges.astype(np.float64) - float(edges.mean())
    size = (2 * h, 2 * w)
    corr = np.fft.irfft2(np.abs(np.fft.rfft2(z, size)) ** 2, size)[:h, :w]
    overlap = np.outer(np.arange(h, 0, -1), np.arange(w, 0, -1)).astype(np.float64)
    corr = corr / overlap * (h * w)
    if corr[0, 0] <= 0:
        return np.zeros_like(corr, np.float32)
    corr = (corr / corr[0, 0]).astype(np.float32)
    return corr - cv2.GaussianBlur(corr, (0, 0), 6.0)


def _lattice(edges: np.ndarray) -> tuple[int, int] | None:
    """The mark's repeat (py, px) if the edge map is a 2-D tiling, else None.

    A tiling puts clear autocorrelation peaks at (py, 0), (0, px) and (py, px); a single line
    of text only repeats along x at its letter spacing, and chance agreement of the photos gives
    no peaks at all. Peaks count when they stand ``LATTICE_SIGMA`` times above the spread of the
    whole autocorrelation away from the origin, so the decision scales with each group's noise.
    """
    h, w = edges.shape
    corr = _autocorrelation(edges)
    hy, hx = (2 * h) // 3, (2 * w) // 3  # a period must repeat at least once and a half
    away = np.ones((hy, hx), bool)
    away[:MIN_PERIOD, :MIN_PERIOD] = False
    level = LATTICE_SIGMA * float(corr[:hy, :hx][away].std())

    def first_peak(line: np.ndarray) -> int | None:
        lags = [
            lag
            for lag in range(MIN_PERIOD, line.size - 1)
            if line[lag] >= level and line[lag] >= line[lag - 1] and line[lag] >= line[lag + 1]
        ]
        if not lags:
            return None
        top = max(float(line[lag]) for lag in lags)
        return next(lag for lag in lags if line[lag] >= 0.6 * top)  # the fundamental, not a harmonic

    py, px = first_peak(corr[:hy, 0]), first_peak(corr[0, :hx])
    if py is None or px is None:
        return None
    near = corr[max(py - 2, 0) : py + 3, max(px - 2, 0) : px + 3]
    return (py, px) if float(near.max()) >= level else None


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


def _same_place_anchor(frame: tuple[int, int], top: int, left: int, alpha: np.ndarray) -> str:
    """For photos of one size every anchor fits; name the one a new photo most likely shares.

    Judged by the box of its clearly visible part: faint stray edges the estimate picked up
    around it would move the whole box's centre.
    """
    ys, xs = np.nonzero(alpha >= 0.25 * float(alpha.max()))
    cy, cx = top + (ys.min() + ys.max() + 1) / 2, left + (xs.min() + xs.max() + 1) / 2
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
    anchor, stack, used = _aligned(photos)
    checkpoint()  # stage boundaries of a long job: a client that left stops it here
    frame = (int(stack.shape[1]), int(stack.shape[2]))
    edges = edge_map(stack)
    lattice = _lattice(edges) if layout != "fixed" else None
    tiled = lattice is not None
    checkpoint()
    if layout == "tiled" and not tiled:
        raise NoSharedMarkError("the photos show no repeating mark")
    if tiled:
        assert lattice is not None
        period = lattice
        samples, phase = _tile_stack(stack, period, edges)
        profile = _estimate_tiled(samples, period, phase, stack, smoothness)
        profile.anchor = "tl"
    else:
        profile = _estimate_fixed(stack, smoothness)
        top, left = profile.offset
        if not anchor:
            anchor = _same_place_anchor(frame, top, left, profile.alpha)
        oy, ox = origin(frame, profile.shape, anchor)
        profile.anchor = anchor
        profile.offset = (top - oy, left - ox)
    profile.source_size = frame
    profile.photos = len(photos)
    if len(used) < len(photos):
        _judge_left_out(profile, photos, used)
    return profile


def _judge_left_out(profile: MarkProfile, photos: list[np.ndarray], used: list[int]) -> None:
    """Re-index ``profile``'s scores and missing photos from the learning stack to all photos,
    locating the mark on the photos too small to be in the stack as removal will."""
    scores = [0.0] * len(photos)
    missing = [used[j] for j in profile.missing]
    for j, i in enumerate(used):
        scores[i] = profile.scores[j]
    for i in sorted(set(range(len(photos))) - set(used)):
        report = locate(photos[i], profile)
        scores[i] = report.score
        if not report.found:
            missing.append(i)
    profile.scores = scores
    profile.missing = sorted(missing)


def _judge_all(
    stack: np.ndarray, profile: MarkProfile, top: int, left: int
) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Each photo's score at the learned place (refined by a pixel, as removal will), whether it
    shows the mark's edges there (``apply.carries``: what learning weighs photos by) and whether
    removal will take it off (``apply.judge``: also safe to invert, which a rough estimate from
    few photos may not be yet — so that alone must not drop a photo from learning)."""
    scores, shows, found = [], [], []
    for photo in stack:
        score, y, x = refine(photo, profile, top, left, 1.0, radius=1)
        report = judge(photo, profile, score, y, x, 1.0)
        scores.append(score)
        shows.append(report.found or not report.safe)
        found.append(report.found)
    return scores, np.asarray(shows, bool), np.asarray(found, bool)


def _placed(alpha: np.ndarray, color: np.ndarray, offset: tuple[int, int]) -> MarkProfile:
    """A fixed profile at ``offset`` of the aligned frame, or NoSharedMarkError if it is empty."""
    if not float(alpha.max(initial=0.0)) > 0.0:
        raise NoSharedMarkError("the photos' shared edges do not fit a translucent mark")
    return MarkProfile(alpha, color, anchor="tl", offset=offset)


def _shared_energy(stack: np.ndarray) -> float:
    edges = edge_map(stack)
    return float(edges[support_from_edges(edges, edge_threshold(edges, len(stack)))].sum())


def _shared_vs_chance(stack: np.ndarray, trials: int = NULL_TRIALS) -> tuple[float, list[float]]:
    """The photos' shared edge energy as they are, and what chance gives them in ``trials`` draws.

    A draw shifts each photo by its own large offset (wrapping round): that breaks a shared mark
    but keeps what the photos' own content contributes by chance, so the comparison is in each
    group's own units, whatever its size N. The shifts are seeded: a group always gets one answer.
    """
    h, w = stack.shape[1:3]
    rng = np.random.default_rng(0)
    null = [
        _shared_energy(
            np.stack(
                [
                    np.roll(
                        p,
                        (int(rng.integers(h // 4, 3 * h // 4)), int(rng.integers(w // 4, 3 * w // 4))),
                        (0, 1),
                    )
                    for p in stack
                ]
            )
        )
        for _ in range(trials)
    ]
    return _shared_energy(stack), null


def _clearly_shared(aligned: float, null: list[float]) -> bool:
    """Above every chance draw and ``SHARED_RATIO`` times their median.

    Against the median, not the largest draw: with few photos the median of their gradients
    agrees by chance far more often, so the draws spread widely (x3 for N = 4) and a cut on the
    largest would refuse real marks of small groups; beating every draw keeps unrelated photos
    out (a chance stack is itself one more draw: it beats all of them rarely, and by 2x almost
    never).
    """
    return aligned > max(null) and aligned >= SHARED_RATIO * max(float(np.median(null)), 1e-6)


def _check_shared(stack: np.ndarray) -> None:
    """Refuse photos whose shared edges are no stronger than chance makes them: fitting α/W to
    chance edges would otherwise always "explain" something on the very photos it was fitted to."""
    aligned, null = _shared_vs_chance(stack)
    if not _clearly_shared(aligned, null):
        raise NoSharedMarkError(
            f"the photos share no mark: their common edges ({aligned:.0f}) are not clearly above what "
            f"unrelated photos share by chance ({float(np.median(null)):.0f} typically, up to {max(null):.0f})"
        )


def _estimate_fixed(stack: np.ndarray, smoothness: float | None) -> MarkProfile:
    _check_shared(stack)
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
        found = _placed(est.alpha, est.color, (int(y0), int(x0)))
        scores, keep, removable = _judge_all(stack, found, int(y0), int(x0))
        if keep.sum() < MIN_PHOTOS:
            raise NoSharedMarkError(
                f"no mark is shared by {MIN_PHOTOS} or more of the photos "
                f"({int(keep.sum())} of {len(stack)} carry the shared edges clearly)"
            )
        if np.array_equal(keep, weights > 0):
            break
        weights = keep.astype(np.float32)
    return MarkProfile(
        est.alpha,
        est.color,
        offset=(int(y0), int(x0)),
        quality=float(np.median(np.asarray(scores)[keep])),
        missing=[int(i) for i in np.nonzero(~removable)[0]],
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
    scores, keep, removable = _judge_all(stack, profile, *phase)
    profile.quality = float(np.median(np.asarray(scores)[keep])) if keep.any() else 0.0
    profile.missing = [int(i) for i in np.nonzero(~removable)[0]]
    profile.scores = [float(s) for s in scores]
    return profile
