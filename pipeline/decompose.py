"""The decomposer at work: a last reading of the mark where restoration's fits left the photo as it came.

``pipeline.inpaint.restore`` fits one opacity and a few colours per region from the region's outline;
where that model fails (a badge with a soft shadow, a tile over busy texture) and a fill would do
more harm than the mark, the mask's pixels come back as they came. The decomposer network
(``models.decomposer``) reads α and W per pixel instead. It is a learned guess, so it is used only
where the photo itself confirms it: per group of such pixels, the photo's gradients must hold the
estimated mark's edge pattern at ``MIN_GAIN``..``MAX_GAIN`` of its strength (``mark_gain``, as the
copies of a tiled mark are checked), which rejects an estimate too strong (inverting it would draw
the mark's negative), too weak, or of a mark that is not there (a clean photo under a drawn mask);
and its inversion must come closer to the fill of the mask from its surroundings than the photo as
it came (``CLOSER``), which rejects one of the wrong colour. A group that passes is moved most of the
way to its inversion, not all of it (``TRUST``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from models.decomposer import MarkDecomposer
from pipeline.cancel import checkpoint
from pipeline.device import resolve_device
from pipeline.inpaint.fit import FitOptions, background, out_of_gamut, unblend
from pipeline.marks.estimate import mark_gain

_STRIDE = 32
MIN_GAIN, MAX_GAIN = 0.5, 1.5
"""The share of the estimated mark's edge pattern the photo must hold for the estimate to be inverted
(1 when it is right; the bounds of ``pipeline.inpaint.repeat``): inverting an estimate held at ``g``
leaves ``1 − 1/g`` of the mark. The gain is itself an estimate from one group's edges: at 0.75..1.5
(at most a third of the mark left, in theory) the platform set lost 0.08 dB, its best group (+3.7 dB)
read 0.7, and the groups that made photos worse read inside both ranges. Above 1.5 the photo
holds more of the pattern than the estimate (read weak, or of the photo's own edges): with no
upper bound the six sets' twelve rows gain 0.08 dB but 6 more photos are made worse (18 → 24; at a
trust of 0.3 for those groups still 20); the 21 losing groups' gains 1.5–3.0, inside the 109
winning ones' (1.5–19)."""
STRONG_READING = 0.6
"""The network's opacity at or above which a pixel is read as a strong mark (``read_opaque``). It
reads opacity low, but rarely high: on the platform, strong platform and third sets (exact and grown
masks, 6.5 M mask pixels) it read 0.6 or more on 60–82 % of the pixels whose true opacity is 0.6 or
more, on 0.7–1.7 % of those between 0.3 and 0.6 and on at most 1 % of those under 0.05 (none on
two of the sets). Its reading of translucent marks is not precise enough to invert them without the
checks below; this one needs none but the fill decision's. Six sets' twelve rows (exact and grown
masks, restoration without ``invert_left``): 37.52 dB without it, 37.58 at 0.75 (the fits' ceiling),
37.65 at 0.6 (the platform set's grown masks +0.54, +29 dB of it on one photo), 14 photos made worse
than their input each time; at 0.5 two more photos of four sets were made worse."""
MIN_GROUP_PX = 20
"""Smaller groups are left: a few pixels' edge pattern is too short for the gain to mean anything
(on the platform set, groups of 5–20 px read gains from −98 to +38)."""
CONTEXT_PX = 16
"""Photo around a group the network sees (it reads the mark's edges against it)."""
CLUSTER_PX = 32
"""Groups closer than this are read in one pass over their common box."""
GROUP_MARGIN = 10
"""Photo around a group its own checks see: ``mark_gain`` blurs the recovered photo (σ 2, 8 px) and
takes gradients (1 px) only next to the group's pixels, so this margin reads all it needs."""
HEADS_VETO = 4.0
"""With the segmenter's decomposition heads at hand, a group is inverted only if the decomposer's
inversion moves its pixels at most this many times as far as the heads' own inversion would (they
read opacity a median 2.8 times low: ``pipeline.inpaint.restore.HEADS_VETO``): a second opinion
against a strong mark read where the segmenter sees a faint one or none."""
CLOSER = 0.9
"""A group is inverted only if its inversion departs from the fill of the mask from its surroundings
(``fit.background``, what the network is shown) by at most this share of the photo's own departure
(mean squared, RGB). Against that fill, the photo as it came departs by the mark's error and the
fill's, the inversion by its own error and the fill's (independent), so a right inversion comes
closer; one with the wrong colour (a grey read over a red-and-white tiled logo) moves the pixels as
far as the mark but not closer, and passes the gain test, which reads edges alone."""
TRUST = 0.7
"""How far a group that passes the checks is moved from the photo as it came towards the decomposer's
inversion. The two are readings of the photo whose errors differ (the mark's, the estimate's), and a
blend of two such readings errs less than the worse of them (``pipeline.inpaint.restore.FillDecision``):
a right inversion keeps (1 − 0.7)² = 9 % of the mark's squared error, a wrong one costs about half its
own. Five synthetic sets (exact and rough masks, with the heads; 720 restorations), photos made more
than 0.5 dB worse than they came: 8 without the decomposer; 21 moving all the way with the other
checks; 12 at 0.7; 14 with ``CLOSER`` alone; 8 with both (mean 38.17 → 38.40 dB; all the way, 38.40)."""


def shown_fill(image: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """The fill of ``hint`` from its surroundings (float RGB, 0..1) that the network is shown, in
    training (``training.data.decomposition_inputs``) as at work: the fits' own ``background``."""
    return background(image, hint, FitOptions().background_radius)


class Decomposer:
    """Inference wrapper: an RGB uint8 crop and its mask in, per-pixel α and W out."""

    def __init__(self, model: MarkDecomposer, *, device: str = "auto", max_pixels: int = 2_000_000) -> None:
        self.device = torch.device(resolve_device(device))
        self.model = model.eval().to(self.device)
        self.max_pixels = max_pixels

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: object) -> Decomposer:
        return cls(MarkDecomposer.from_pretrained(directory), **kwargs)  # type: ignore[arg-type]

    def predict(self, image: np.ndarray, hint: np.ndarray, fill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """α (HxW float32, 0 outside ``hint``) and W (HxWx3 float32) of a crop; ``fill`` is
        ``shown_fill(image, hint)``. The caller keeps crops within ``max_pixels`` (memory: the network
        holds full-resolution feature maps)."""
        h, w = hint.shape
        x = network_inputs(self.device, image.astype(np.float32) / 255.0, fill, hint.astype(np.float32))
        with torch.inference_mode():
            out = self.model(*x)
        alpha = torch.sigmoid(out["alpha"][0, 0, :h, :w]).cpu().numpy() * hint
        color = torch.sigmoid(out["color"][0, :, :h, :w]).permute(1, 2, 0).cpu().numpy()
        return alpha.astype(np.float32), np.ascontiguousarray(color, dtype=np.float32)


def invert_left(
    decomposer: Decomposer,
    image: np.ndarray,
    out: np.ndarray,
    mask: np.ndarray,
    left: np.ndarray,
    *,
    alpha_ceiling: float,
    gamut_tolerance: float,
    min_change: float,
    heads: tuple[np.ndarray, np.ndarray] | None = None,
) -> int:
    """Invert, in ``out`` (written in place), the groups of ``left`` (mask pixels that came back as
    they came) whose photo holds the decomposer's estimate (module docstring); below
    ``alpha_ceiling`` and in gamut only. A group whose inversion would move its pixels by less than
    ``min_change`` on average (RGB L2, 0..1: what the fits count as marked) is left: no mark to
    speak of, and a gain read from so faint a pattern is noise (on clean photos under drawn masks
    such readings passed the gain test and moved pixels by a level or two). ``heads``: the segmenter's
    opacity and colour maps (full frame), a second opinion (``HEADS_VETO``). Returns how many groups
    were inverted."""
    marked = left.astype(np.uint8)
    _, groups, boxes, _ = cv2.connectedComponentsWithStats(cv2.dilate(marked, np.ones((5, 5), np.uint8)))
    inverted = 0
    for box, cluster, fill, alpha, color in _readings(decomposer, image, mask, left):
        y0, x0 = box[0].start, box[1].start
        for g in np.unique(groups[box][cluster & left[box]]):
            # Each group is judged on its own box (``GROUP_MARGIN`` around it), not the cluster's: a
            # tiled mask makes one cluster of hundreds of groups.
            gx, gy, gw, gh = (int(v) for v in boxes[g, :4])
            at = (
                slice(max(gy - GROUP_MARGIN, y0), min(gy + gh + GROUP_MARGIN, box[0].stop)),
                slice(max(gx - GROUP_MARGIN, x0), min(gx + gw + GROUP_MARGIN, box[1].stop)),
            )
            own = (slice(at[0].start - y0, at[0].stop - y0), slice(at[1].start - x0, at[1].stop - x0))
            pixels = left[at] & (groups[at] == g)
            if pixels.sum() < MIN_GROUP_PX:
                continue
            j = image[at].astype(np.float32) / 255.0
            a = np.where(pixels, alpha[own], 0.0).astype(np.float32)
            recovered = unblend(j, a, color[own])
            change = float(np.linalg.norm(recovered[pixels] - j[pixels], axis=-1).mean())
            if change < min_change:
                continue
            if heads is not None and change > HEADS_VETO * float(
                heads_move(j, heads, at, pixels)[pixels].mean()
            ):
                continue
            if not MIN_GAIN <= mark_gain(j, a, a[..., None] * color[own]) <= MAX_GAIN:
                continue
            ok = pixels & (a < alpha_ceiling) & ~out_of_gamut(recovered, gamut_tolerance)
            if not ok.any() or departure(recovered, fill[own], ok) > CLOSER * departure(j, fill[own], ok):
                continue
            moved = j[ok] + TRUST * (recovered[ok] - j[ok])
            out[at][ok] = np.clip(moved * 255.0 + 0.5, 0, 255).astype(np.uint8)
            inverted += 1
    return inverted


def read_opaque(decomposer: Decomposer, image: np.ndarray, mask: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The pixels of ``where`` (mask pixels) the network reads at ``STRONG_READING`` or above: a strong
    mark, whose pixels hold little of the photo (``pipeline.inpaint.restore.worth_filling`` judges a
    fill of them at the break-even, as a fit's opaque mark)."""
    opaque = np.zeros(mask.shape, bool)
    for box, cluster, _, alpha, _ in _readings(decomposer, image, mask, where):
        opaque[box] |= cluster & where[box] & (alpha >= STRONG_READING)
    return opaque


def _readings(
    decomposer: Decomposer, image: np.ndarray, mask: np.ndarray, where: np.ndarray
) -> Iterator[tuple[tuple[slice, slice], np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The network's reading around each cluster of ``where`` (``cluster_boxes``): the box, the
    cluster's pixels in it, the fill it was shown, α and W."""
    for box, cluster in cluster_boxes(where, decomposer.max_pixels):
        fill = shown_fill(image[box], mask[box])
        alpha, color = decomposer.predict(image[box], mask[box], fill)
        yield box, cluster, fill, alpha, color


def network_inputs(device: torch.device, *arrays: np.ndarray) -> list[torch.Tensor]:
    """HxWxC (or HxW) float arrays in [0, 1] → 1xCxH'xW' tensors on ``device``, padded (replicated)
    to multiples of 32 as the encoders need; the caller crops the output back to HxW."""
    h, w = arrays[0].shape[:2]
    pad = (0, (-w) % _STRIDE, 0, (-h) % _STRIDE)
    tensors = []
    for a in arrays:
        t = torch.from_numpy(np.ascontiguousarray(a if a.ndim == 3 else a[..., None], dtype=np.float32))
        tensors.append(F.pad(t.to(device).permute(2, 0, 1)[None], pad, mode="replicate"))
    return tensors


def cluster_boxes(where: np.ndarray, max_pixels: int) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """The box a network reads around each cluster of ``where`` (pixels closer than ``CLUSTER_PX``
    are read in one pass over their box, with ``CONTEXT_PX`` of photo around it) and the cluster's
    pixels in it. A box larger than ``max_pixels`` is skipped (memory: full-resolution feature maps).
    The request's time budget is checked before each."""
    h, w = where.shape
    near = np.ones((CLUSTER_PX, CLUSTER_PX), np.uint8)
    n_clusters, clusters, stats, _ = cv2.connectedComponentsWithStats(
        cv2.dilate(where.astype(np.uint8), near)
    )
    for c in range(1, n_clusters):
        checkpoint()
        x, y, bw, bh = (int(v) for v in stats[c, :4])
        y0, x0 = max(y - CONTEXT_PX, 0), max(x - CONTEXT_PX, 0)
        box = (slice(y0, min(y + bh + CONTEXT_PX, h)), slice(x0, min(x + bw + CONTEXT_PX, w)))
        if (box[0].stop - box[0].start) * (box[1].stop - box[1].start) > max_pixels:
            continue
        yield box, clusters[box] == c


def heads_move(
    j: np.ndarray, heads: tuple[np.ndarray, np.ndarray], at: tuple[slice, slice], pixels: np.ndarray
) -> np.ndarray:
    """Per pixel of the crop ``j`` (float RGB, 0..1; ``at``: its place in the frame), how far (RGB
    distance) inverting the segmenter's heads' reading (full-frame opacity and colour) would move it
    on ``pixels``, 0 elsewhere: the second opinion the learned readings are held to."""
    second = unblend(j, np.where(pixels, np.clip(heads[0][at], 0.0, 0.95), 0.0), heads[1][at])
    return np.linalg.norm(second - j, axis=-1)


def departure(pixels: np.ndarray, fill: np.ndarray, where: np.ndarray) -> float:
    """Mean squared RGB distance (0..1 units) of ``pixels`` from ``fill`` where ``where`` holds: how
    far a reading of the photo under a mask lies from what its surroundings suggest."""
    return float(((pixels[where] - fill[where]) ** 2).sum(-1).mean())
