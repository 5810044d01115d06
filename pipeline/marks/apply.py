"""Apply a mark profile to one photo: find the mark, invert the blend, inpaint what cannot be.

Finding it: the profile's own placement first (anchor + offset, or the tile phase), refined by a
few pixels; then a search by matching the mark's edges against the photo's (over scales for a
mark a user gave as an image). Every candidate is judged by how much of the photo's edge energy on
the mark's outline the inversion removes; a photo where no candidate explains the mark is left
untouched and reported. Inversion and the hand-over to the inpainter are ``UnblendInpainter``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.cancel import checkpoint
from pipeline.errors import InvalidParameterError
from pipeline.inpaint.base import Inpainter, InpaintRequest, build_inpainter
from pipeline.inpaint.unblend import UnblendInpainter
from pipeline.marks.estimate import explained, gradients, invert, mark_gain
from pipeline.marks.profile import MarkProfile, origin
from pipeline.options import RemoveOptions

# A photo carries the mark when inverting it where it was found explains the photo's edges
# clearly better than inverting it at wrong places: those "null" placements draw the mark's
# negative and add about as much edge energy as the mark has against this photo's texture, so
# how much better the found place must be is measured in that photo's own units. Fixed cuts on
# the raw score cannot work: on textured photos a real mark explains only 10-40 % of the edges.
NULL_SHIFTS = tuple(
    (round(10 * np.sin(np.radians(a))), round(10 * np.cos(np.radians(a)))) for a in range(15, 360, 30)
)
RELATIVE_GAIN = 0.5  # required gain over the null's median, in units of the null's own magnitude
ALPHA_CEILING = 0.9  # above this the photo is too faint under the mark to recover: inpaint
# Never worse than the input: inverting the full mark where the photo holds a fainter copy, another
# mark or none draws the mark's negative. Inverting a copy of gain g leaves a residual (1 − g) of it
# where there was g, so below g = 0.5 the photo would come back worse; the margin covers the
# estimate's spread (1.00-1.05 on photos that carry the mark).
MIN_GAIN = 0.6
GAMUT_TOLERANCE = 0.08  # how far an inverted value may leave [0, 1] (8-bit rounding over 1 − α)
MAX_OUT_OF_GAMUT = 0.25  # share of the mark's visible pixels whose inversion may leave the gamut


@dataclass
class MarkReport:
    """Where the mark was found on a photo (or why not)."""

    found: bool
    score: float
    null: float = 0.0  # median score at wrong placements: what "not there" looks like on this photo
    top: int = 0
    left: int = 0
    scale: float = 1.0
    gain: float = 0.0  # how much of the profile's mark the photo holds there (1 = all of it)
    out_of_gamut: float = 0.0  # share of the mark's visible pixels its inversion cannot explain
    safe: bool = True  # False: the mark shows, but inverting it would harm (gain, gamut)
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        """Plain values for an API or CLI report."""
        return {
            "found": self.found,
            "score": round(self.score, 4),
            "null": round(self.null, 4),
            "top": self.top,
            "left": self.left,
            "scale": round(self.scale, 4),
            "gain": round(self.gain, 4),
            "out_of_gamut": round(self.out_of_gamut, 4),
            "reason": self.reason,
        }


def _scaled(profile: MarkProfile, scale: float) -> tuple[np.ndarray, np.ndarray]:
    if scale == 1.0:
        return profile.alpha, profile.premultiplied
    h, w = profile.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    alpha = cv2.resize(profile.alpha, size, interpolation=interp)
    pre = cv2.resize(profile.premultiplied, size, interpolation=interp)
    return np.clip(alpha, 0.0, 1.0), np.clip(pre, 0.0, 1.0)


def render(
    profile: MarkProfile, frame: tuple[int, int], top: int, left: int, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Full-frame α and α·W for the mark placed at (top, left) — or, tiled, with that phase."""
    h, w = frame
    alpha = np.zeros((h, w), np.float32)
    pre = np.zeros((h, w, 3), np.float32)
    a, p = _scaled(profile, scale)
    mh, mw = a.shape
    if profile.layout == "tiled":
        reps = (h // mh + 2, w // mw + 2)
        ty, tx = top % mh, left % mw
        big_a = np.tile(a, reps)
        big_p = np.tile(p, (*reps, 1))
        oy, ox = (mh - ty) % mh, (mw - tx) % mw
        return big_a[oy : oy + h, ox : ox + w].copy(), big_p[oy : oy + h, ox : ox + w].copy()
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + mh, h), min(left + mw, w)
    if y1 > y0 and x1 > x0:
        alpha[y0:y1, x0:x1] = a[y0 - top : y1 - top, x0 - left : x1 - left]
        pre[y0:y1, x0:x1] = p[y0 - top : y1 - top, x0 - left : x1 - left]
    return alpha, pre


def outline(alpha: np.ndarray, grow: int = 1) -> np.ndarray:
    """Pixels on the mark's edges (where α changes), grown by ``grow``: where its presence shows."""
    gx, gy = gradients(alpha[None, ..., None])
    edge = (np.abs(gx[0, ..., 0]) + np.abs(gy[0, ..., 0])) > 0.02
    edge = edge.astype(np.uint8)
    if grow > 0:
        edge = cv2.dilate(edge, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return edge > 0


def _score(image: np.ndarray, profile: MarkProfile, top: int, left: int, scale: float) -> float:
    alpha, pre = render(profile, image.shape[:2], top, left, scale)
    if profile.layout == "tiled":
        return explained(image, alpha, pre, outline(alpha))
    a, p, photo = _crop_to_mark(alpha, pre, image, margin=2)
    if a.size == 0:
        return -1.0
    return explained(photo, a, p, outline(a))


def refine(
    image: np.ndarray, profile: MarkProfile, top: int, left: int, scale: float, radius: int
) -> tuple[float, int, int]:
    """The best score within ``radius`` px of (top, left), and where."""
    best = (_score(image, profile, top, left, scale), top, left)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy or dx:
                s = _score(image, profile, top + dy, left + dx, scale)
                if s > best[0]:
                    best = (s, top + dy, left + dx)
    return best


def _edge_energy_map(values: np.ndarray) -> np.ndarray:
    gx, gy = gradients(values[None] if values.ndim == 3 else values[None, ..., None])
    return (np.abs(gx[0]) + np.abs(gy[0])).sum(axis=-1).astype(np.float32)


def _scales(profile: MarkProfile, frame: tuple[int, int]) -> list[float]:
    """1 for a learned mark (same scale as it was learned); ~6 % steps over what fits for a given one."""
    if profile.anchor != "any":
        return [1.0]
    h, w = profile.shape
    largest = min(frame[0] / h, frame[1] / w, 4.0)
    smallest = max(12.0 / min(h, w), 0.05)
    if largest < smallest:
        return []
    count = max(2, int(np.ceil(np.log(largest / smallest) / np.log(1.06))) + 1)
    scales = np.geomspace(smallest, largest, count).tolist()
    return [*scales, 1.0] if smallest <= 1.0 <= largest else scales


def _search(image: np.ndarray, profile: MarkProfile, keep: int = 3) -> list[tuple[float, int, int, float]]:
    """Candidates (match, top, left, scale) from matching the mark's edges with the photo's."""
    feature = _edge_energy_map(image)
    found: list[tuple[float, int, int, float]] = []
    scales = _scales(profile, image.shape[:2])
    for scale in scales:
        alpha, _ = _scaled(profile, scale)
        template = _edge_energy_map(alpha)
        if profile.layout == "tiled":
            th, tw = alpha.shape
            window = feature[: min(feature.shape[0], 2 * th), : min(feature.shape[1], 2 * tw)]
        else:
            window = feature
        if template.shape[0] > window.shape[0] or template.shape[1] > window.shape[1]:
            continue
        if float(template.std()) == 0.0:
            continue
        res = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        for _ in range(keep):
            _, value, _, (x, y) = cv2.minMaxLoc(res)
            found.append((float(value), int(y), int(x), float(scale)))
            cy, cx = max(y - 4, 0), max(x - 4, 0)
            res[cy : y + 5, cx : x + 5] = -1.0
    found.sort(reverse=True)
    return found[: 2 * keep]


def null_scores(image: np.ndarray, profile: MarkProfile, top: int, left: int, scale: float) -> list[float]:
    """Scores of the mark placed at ``NULL_SHIFTS`` around (top, left): what absence looks like."""
    return [_score(image, profile, top + dy, left + dx, scale) for dy, dx in NULL_SHIFTS]


def carries(score: float, null: list[float]) -> bool:
    """Whether ``score`` at the found place stands out of the ``null`` scores (see NULL_SHIFTS)."""
    if not null:
        return False
    typical = float(np.median(null))
    return score > max(null) and score - typical >= RELATIVE_GAIN * max(abs(typical), 0.05)


def judge(
    image: np.ndarray, profile: MarkProfile, score: float, top: int, left: int, scale: float
) -> MarkReport:
    """Whether the mark placed at (top, left, scale) is on the photo and inverting it is safe.

    Found needs three things: the place explains the photo's edges clearly better than wrong
    places do (``carries``); the photo holds (nearly) all of the profile's mark there
    (``MIN_GAIN``: not a fainter copy, another mark or none, where inverting would draw the mark's
    negative); and the inversion stays in the colour range on most of the mark
    (``MAX_OUT_OF_GAMUT``: where it does not, the profile's α and W do not describe this photo).
    """
    null = null_scores(image, profile, top, left, scale)
    report = MarkReport(carries(score, null), score, float(np.median(null)), top, left, scale)
    if not report.found:
        return report
    alpha, pre, photo = _crop_to_mark(*render(profile, image.shape[:2], top, left, scale), image)
    if alpha.size == 0:
        return report
    report.gain = mark_gain(photo, alpha, pre)
    visible = (alpha > 0.02) & (alpha < ALPHA_CEILING)
    if visible.any():
        restored = invert(photo, alpha, pre)
        off = ((restored < -GAMUT_TOLERANCE) | (restored > 1.0 + GAMUT_TOLERANCE)).any(axis=-1)
        report.out_of_gamut = float(off[visible].mean())
    if report.gain < MIN_GAIN:
        report.found = report.safe = False
        report.reason = (
            f"the photo holds only {max(report.gain, 0.0):.0%} of the learned mark there (a fainter "
            "copy, another mark, or none): inverting it would make the photo worse, left untouched"
        )
    elif report.out_of_gamut > MAX_OUT_OF_GAMUT:
        report.found = report.safe = False
        report.reason = (
            f"the learned mark does not explain this photo's colours ({report.out_of_gamut:.0%} of "
            "the mark's pixels would leave the colour range): left untouched"
        )
    return report


def _crop_to_mark(
    alpha: np.ndarray, pre: np.ndarray, image: np.ndarray, margin: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """α, α·W and the photo cut to the mark's box (plus ``margin`` px for its edges): full-frame
    gradients of a small mark on a large photo would cost more than the whole removal."""
    ys, xs = np.nonzero(alpha > 0)
    if ys.size == 0:
        return alpha[:0, :0], pre[:0, :0], image[:0, :0]
    y0, y1 = max(ys.min() - margin, 0), ys.max() + margin + 1
    x0, x1 = max(xs.min() - margin, 0), xs.max() + margin + 1
    return alpha[y0:y1, x0:x1], pre[y0:y1, x0:x1], image[y0:y1, x0:x1]


def locate(image: np.ndarray, profile: MarkProfile) -> MarkReport:
    """Find the mark on a float RGB photo in [0, 1]: its placement and whether it is really there."""
    best = MarkReport(False, -1.0, reason="the mark was not found on this photo")
    if profile.anchor != "any":
        if profile.layout == "tiled":
            top, left = profile.offset
        else:
            oy, ox = origin(image.shape[:2], profile.shape, profile.anchor)
            top, left = oy + profile.offset[0], ox + profile.offset[1]
        score, top, left = refine(image, profile, top, left, 1.0, radius=3)
        best = judge(image, profile, score, top, left, 1.0)
        if best.found:
            return best
    candidate: tuple[float, int, int, float] | None = None
    for _, top, left, scale in _search(image, profile):
        # A given mark's scale is only known to the search's 6 % step: refine it by 1 % steps.
        fine = [scale] if profile.anchor != "any" else [scale * (1.0 + 0.01 * k) for k in range(-3, 4)]
        for s in fine:
            h, w = profile.shape
            dy, dx = round((h * scale - h * s) / 2), round((w * scale - w * s) / 2)
            score, y, x = refine(image, profile, top + dy, left + dx, s, radius=1)
            if candidate is None or score > candidate[0]:
                candidate = (score, y, x, s)
    if candidate is not None and candidate[0] > best.score:
        searched = judge(image, profile, *candidate)
        if searched.found or not best.found:
            best = searched
    if not best.found and not best.reason:
        best.reason = (
            f"the mark was not found on this photo (the best place explains {best.score:+.2f} of its "
            f"outline's edges, wrong places {best.null:+.2f})"
        )
    return best


def remove_with_profile(
    image: np.ndarray,
    profile: MarkProfile,
    inpainter: Inpainter | str = "opencv",
    *,
    alpha_ceiling: float = ALPHA_CEILING,
    options: RemoveOptions | None = None,
) -> tuple[np.ndarray, np.ndarray, MarkReport]:
    """Remove ``profile``'s mark from an RGB uint8 photo: (restored, mask, report).

    The photo comes back unchanged (and an empty mask) when the mark is not found; otherwise only
    pixels under the mark change. The near-opaque core (α above ``alpha_ceiling``), pixels whose
    inversion leaves the colour range and — for a mark matched at another scale, where α is only
    known to within a pixel — its outline go to ``inpainter``.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidParameterError("image must be an HxWx3 uint8 RGB array")
    if not 0.0 < alpha_ceiling <= 1.0:
        raise InvalidParameterError(f"alpha_ceiling must be in (0, 1], got {alpha_ceiling}")
    fallback = build_inpainter(inpainter) if isinstance(inpainter, str) else inpainter
    photo = image.astype(np.float32) / 255.0
    report = locate(photo, profile)
    checkpoint()  # locating is the search; inverting and inpainting follow
    if not report.found:
        return image.copy(), np.zeros(image.shape[:2], bool), report
    alpha, pre = render(profile, image.shape[:2], report.top, report.left, report.scale)
    mask = alpha > 0.5 / 255.0
    if report.scale != 1.0:
        halo = outline(alpha) & mask
        alpha = np.where(halo, 1.0, alpha).astype(np.float32)  # handed over as opaque: see docstring
    color = np.where(mask[..., None], pre / np.maximum(alpha[..., None], 1e-6), 0.0).astype(np.float32)
    stage = UnblendInpainter(fallback, alpha_ceiling=alpha_ceiling, handover=0.05, feather_px=1)
    filled = stage.inpaint(
        InpaintRequest(
            image=image,
            mask=mask,
            prob=np.zeros(mask.shape, np.float32),  # faint edges are the mark's, not a missed α
            alpha=alpha,
            color=np.clip(color, 0.0, 1.0),
            options=options,
        )
    )
    restored = np.where(mask[..., None], filled, image).astype(np.uint8)
    return restored, mask, report
