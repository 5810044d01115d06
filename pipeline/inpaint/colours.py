"""A colour per pixel for a mark of one opacity and several colours.

Platform marks and logos are mostly drawn at one opacity in a few colours: a logo in its own
colours, a white glyph on a coloured tile, text with an outline or a halo. A region's fit
(``pipeline.inpaint.fit``) reads the opacity α0 and one colour from the mark's outline, which is
the mark's outer colour; inverting the inner colours with it leaves the gamut, and the whole region
went to the fill. With α0 right, each pixel implies its own mark colour, ``(J − (1 − α0)·B) / α0``,
up to the photo's texture there (``B`` is only the surroundings' fill). The mark's colours are the
few clusters of that reading, mostly apart in chroma where photo texture is mostly brightness; they
are taken as the fewest clusters (2 to ``MAX_COLOURS``) whose inversion stays in gamut, and each
pixel's cluster is chosen so that the recovered photo is smooth across the cluster borders
(iterated conditional modes). A photo object under the mark that a cluster took for a mark colour
gives itself away on the outline: the photo continues across it under the outer colour, a mark
colour does not (``_mark_labels``). Along the borders between the mark's colours (its anti-aliased
edge, a mix of both), each pixel is inverted with the mix that continues the photo (``mix_borders``).
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.inpaint.fit import background, boundary_pairs, out_of_gamut, unblend

MAX_COLOURS = 4
"""Mark colours tried at most: platform badges draw two or three (tile, glyph, text)."""
MIN_SHARE, MIN_COLOUR_PX = 0.03, 50
"""A cluster holding less of the shape, or fewer pixels, is the photo's detail, not a colour of the mark
(22 dark pixels of a leaf under a light blob, read as a dark colour: −1.1 dB against a fill)."""
MIN_SEPARATION = 0.15
"""Clusters closer than this (feature distance, 0..1 units) are one colour split by texture."""
LUMA_WEIGHT = 0.3
"""Weight of brightness against chroma in the clustering features: photo texture under a mark is
mostly brightness, so a mark's colours are told apart mostly by chroma."""
MEDIAN_PX = 5
"""Median filter on the colour reading before clustering: the photo's fine texture averages out."""
MIN_COLOUR_GAP = 0.2
"""Mark colours closer than this (RGB, 0..1 units) are one colour read through the photo's variation."""
KMEANS_POINTS = 100_000
"""Points the clusters' centres are found on at most (a fixed sample): a million took 12 s a k."""
ICM_ROUNDS = 8
"""Rounds of label refinement (each a checkerboard sweep of both parities)."""
BOX_PAD = 8
"""Pixels around the shape's box kept: its 2-px rim and the outline pairs' 4-px reach."""
MAX_PIXELS = 1_000_000
"""Shapes larger than this are left to the fill: the label refinement holds a recovered image per
colour (4 × 12 bytes a pixel), and a mark over a whole 12-MP photo would take gigabytes."""
GAMUT_WEIGHT = 10.0
"""Cost of a recovered value out of [0, 1] (squared, per channel) in the label refinement."""


def colour_field(
    j: np.ndarray, b: np.ndarray, alpha0: float, solid: np.ndarray, tolerance: float, max_out: float
) -> np.ndarray | None:
    """The mark's colour per pixel (HxWx3 float32, the whole crop: the rim around ``solid`` takes its
    nearest solid pixel's colour), or None when no few colours explain ``solid``.

    ``j``: the crop (float RGB 0..1); ``b``: the fill of its surroundings under the mask; ``alpha0``
    the fit's opacity; the inversion may leave [0, 1] by ``tolerance`` on at most ``max_out`` of
    ``solid``'s pixels."""
    if alpha0 < 0.05 or not 50 <= solid.sum() <= MAX_PIXELS:
        return None
    # Worked on the shape's box (with room for its rim and the outline pairs), not the whole crop.
    ys, xs = np.nonzero(solid)
    y0, x0 = max(int(ys.min()) - BOX_PAD, 0), max(int(xs.min()) - BOX_PAD, 0)
    if (y0 + x0) % 2:  # the refinement's checkerboard stays the crop's
        y0, x0 = (y0, x0 - 1) if x0 else (y0 - 1, x0)
    box = (slice(y0, int(ys.max()) + BOX_PAD + 1), slice(x0, int(xs.max()) + BOX_PAD + 1))
    field = _field(j[box], b[box], alpha0, solid[box], tolerance, max_out)
    if field is None:
        return None
    full = np.empty_like(j)
    full[:] = np.median(field[solid[box]], 0)  # never read: the caller inverts the shape and its rim
    full[box] = field
    return full


def _field(
    j: np.ndarray, b: np.ndarray, alpha0: float, solid: np.ndarray, tolerance: float, max_out: float
) -> np.ndarray | None:
    """``colour_field`` on the shape's box."""
    own = (j - (1.0 - alpha0) * b) / alpha0  # the mark's colour per pixel, up to the photo's texture
    quantised = np.clip((own + 0.5) / 2.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)  # −0.5..1.5
    smooth = cv2.medianBlur(quantised, MEDIAN_PX).astype(np.float32) / 255.0 * 2.0 - 0.5
    luma = smooth.mean(-1, keepdims=True)
    features = np.concatenate([smooth - luma, LUMA_WEIGHT * luma], -1)
    # A k whose reading leaves one colour (its clusters shades of one, or the photo's) is no answer,
    # but more clusters may still part a small colour from the rest (a glyph that is 10 % of its
    # tile): the next k is tried. A k whose clusters are too small or too close ends the search: more
    # clusters are smaller and closer (trying them cost 0.75 s more on the bench's 1024² mark).
    for k in range(2, MAX_COLOURS + 1):
        clusters = _clusters(own, features, solid, k)
        if clusters is None:
            return None
        labels, colours = clusters
        labels = _refine(j, alpha0, solid, labels, colours, features)
        marked = _mark_labels(j, alpha0, solid, labels, colours)
        if marked is None:
            continue
        field = colours[_spread(marked, solid)]
        outside = out_of_gamut(unblend(j, alpha0, field), tolerance) & solid
        if outside.sum() <= max_out * solid.sum():
            return field
    return None


def _clusters(
    own: np.ndarray, features: np.ndarray, solid: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``k`` clusters of ``solid``'s features: labels (−1 off ``solid``) and each cluster's colour
    (the median of its pixels' reading); None when a cluster is too small or two are too close."""
    points = features[solid]
    assign, centres = kmeans(points, k)
    count = np.bincount(assign, minlength=k)
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(k, 1)]
    if count.min() < max(MIN_SHARE * len(assign), MIN_COLOUR_PX) or gaps.min() < MIN_SEPARATION:
        return None
    labels = np.full(solid.shape, -1, np.int32)
    labels[solid] = assign
    # Each pixel takes its window's majority: texture speckle is not a colour of the mark.
    votes = np.stack([cv2.blur((labels == i).astype(np.float32), (5, 5)) for i in range(k)])
    labels = np.where(solid, votes.argmax(0), -1).astype(np.int32)
    if len(np.unique(labels[solid])) < k:  # a cluster that was only speckle
        return None
    colours = np.stack([np.median(own[labels == i], 0) for i in range(k)])
    return labels, np.clip(colours, 0.0, 1.0).astype(np.float32)


def kmeans(points: np.ndarray, k: int, attempts: int = 3, rounds: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeds from a fixed generator (the same image gives the same
    answer whatever ran before it); the most compact of ``attempts``. Returns labels, centres."""
    rng = np.random.default_rng(0)
    everyone = points
    if len(points) > KMEANS_POINTS:  # centres from a sample; every point then takes its nearest
        points = points[np.sort(rng.choice(len(points), KMEANS_POINTS, replace=False))]
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(attempts):
        centres = points[rng.integers(len(points))][None]
        while len(centres) < k:
            # float64: ``choice`` checks that the weights sum to 1, which float32 sums over a
            # million pixels miss
            d2 = ((points[:, None] - centres[None]) ** 2).sum(-1).min(1).astype(np.float64)
            total = float(d2.sum())
            pick = rng.choice(len(points), p=d2 / total) if total > 0 else rng.integers(len(points))
            centres = np.vstack([centres, points[pick]])
        for _ in range(rounds):
            labels = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
            moved = np.stack(
                [points[labels == i].mean(0) if (labels == i).any() else centres[i] for i in range(k)]
            )
            if np.abs(moved - centres).max() < 1e-4:
                break
            centres = moved
        labels = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        spread = float(((points - centres[labels]) ** 2).sum())
        if best is None or spread < best[0]:
            best = (spread, labels, centres)
    assert best is not None
    centres = best[2]
    labels = best[1] if everyone is points else ((everyone[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    return labels, centres.astype(np.float32)


def _refine(
    j: np.ndarray,
    alpha0: float,
    solid: np.ndarray,
    labels: np.ndarray,
    colours: np.ndarray,
    features: np.ndarray,
) -> np.ndarray:
    """Labels that keep each pixel near its cluster and in gamut, and the recovered photo smooth
    between neighbours (iterated conditional modes, checkerboard sweeps): a cluster border runs
    where the mark's colour changes, not through the photo's texture. Worked on ``solid``'s pixels
    and their solid neighbours only (a text mark fills a fifth of its box)."""
    k = len(colours)
    ys, xs = np.nonzero(solid)
    index = np.full(solid.shape, -1, np.int64)
    index[ys, xs] = np.arange(len(ys))
    inverted = np.stack([unblend(j[ys, xs], alpha0, c) for c in colours])  # k, N, 3
    off = (np.clip(-inverted, 0, None) ** 2 + np.clip(inverted - 1.0, 0, None) ** 2).sum(-1)
    points = features[ys, xs]
    current = labels[ys, xs]
    centres = np.stack([points[current == i].mean(0) for i in range(k)])
    unary = np.stack([((points - centres[i]) ** 2).sum(-1) for i in range(k)]) + GAMUT_WEIGHT * off
    h, w = solid.shape
    neighbours = []  # per direction: the pixels that have a solid neighbour there, and its index
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        there = np.full(len(ys), -1, np.int64)
        there[inside] = index[ny[inside], nx[inside]]
        has = there >= 0
        neighbours.append((has, there[has]))
    parity = ((ys + xs) % 2).astype(bool)
    for _ in range(ICM_ROUNDS):
        for turn in (False, True):
            cost = unary.copy()
            for has, there in neighbours:
                # the neighbour's recovered value under its own label
                theirs = inverted[current[there], there]
                cost[:, has] += ((inverted[:, has] - theirs[None]) ** 2).sum(-1)
            current = np.where(parity == turn, cost.argmin(0), current)
    out = np.full(solid.shape, -1, np.int32)
    out[ys, xs] = current
    return out


def _mark_labels(
    j: np.ndarray, alpha0: float, solid: np.ndarray, labels: np.ndarray, colours: np.ndarray
) -> np.ndarray | None:
    """``labels`` with the clusters that are the photo's merged into the outline's colour, or None
    when what is left is not a mark of several colours.

    A cluster's piece (a connected component) that reaches the mark's outline where the outline
    colour's inversion continues the photo outside better than its own colour does, or that touches
    the outline at too few pixels to tell, is a photo object under the mark (a red stripe under pink
    text), not a colour of the mark: the photo continues across the outline, a mark's inner colour
    does not. Each piece is judged on its own: a white glyph inside a green tile is one piece of a
    cluster whose other pieces are the tile's letters beside it; judged as one, the letters merged
    the glyph into the tile's green too (platform set: 33.1 → 39.7 dB on such a tile, read apart).
    Pieces inside the shape are kept. Colours closer than ``MIN_COLOUR_GAP`` are then one colour read
    through the photo's variation, which the reading multiplies by (1 − α0)/α0, and are merged
    (``_merge_close``); None when one colour is left (shades of one pink over a white photo with a
    red stripe: −10.6 dB against a fill)."""
    p, q = boundary_pairs(solid, ~solid, gap=1.0, depth=3.0, reach=4.0)
    if len(p) < 10:  # no outline to tell the mark's colours from the photo's
        return None
    flat = j.reshape(-1, 3)
    on_outline = labels.ravel()[p]
    k = len(colours)
    steps = np.stack([np.abs(unblend(flat[p], alpha0, c) - flat[q]).sum(1) for c in colours])
    base = int(np.argmax(np.bincount(on_outline, minlength=k)))  # the colour most of the outline is
    out = labels.copy()
    for i in range(k):
        if i == base:
            continue
        _, pieces = cv2.connectedComponents((labels == i).astype(np.uint8), connectivity=8)
        on_piece = pieces.ravel()[p]
        for piece in np.unique(on_piece[on_outline == i]):
            there = (on_outline == i) & (on_piece == piece)
            if there.sum() < 5 or np.median(steps[base, there]) < np.median(steps[i, there]):
                out[pieces == piece] = base
    out = _merge_close(out, colours, solid)
    return out if len(np.unique(out[solid])) >= 2 else None


def _merge_close(labels: np.ndarray, colours: np.ndarray, solid: np.ndarray) -> np.ndarray:
    """``labels`` with each colour closer than ``MIN_COLOUR_GAP`` to a more common one merged into it.
    Rejecting the reading instead lost a tile's white glyph with it: the tile, read in two shades of
    its blue beside the glyph's white, went whole to the fill (a platform photo, 29.9 → 32.0 dB)."""
    count = np.bincount(labels[solid], minlength=len(colours))
    out = labels.copy()
    kept: list[int] = []
    for i in np.argsort(-count, kind="stable"):
        if count[i] == 0:
            continue
        near = next((c for c in kept if np.linalg.norm(colours[i] - colours[c]) < MIN_COLOUR_GAP), None)
        if near is None:
            kept.append(int(i))
        else:
            out[labels == i] = near
    return out


def smoother(one: np.ndarray, several: np.ndarray, field: np.ndarray, solid: np.ndarray) -> bool:
    """Whether ``several``, the photo recovered with ``field`` (a colour per pixel), steps clearly less
    (``SMOOTHER``) across the field's colour borders inside ``solid`` than ``one``, recovered with one
    colour.

    Where the mark changes colour (a glyph's edge), one colour's inversion leaves a step the field
    does not; where the field split the photo's own texture into colours, the photo is smooth
    across the split under one colour and the field puts a step there (a white bar over a
    sinusoidal texture read in two colours). The step is read between pixels 2–4 px either side of
    a border (``boundary_pairs``), clear of the mark's anti-aliased edge between its colours, whose
    mixed colour neither inverts (``mix_borders`` mends it): read between neighbours, that edge
    refused a white disc on a green tile that the field recovers (nearly 2× the step of one colour
    at the border, an eighth of it 2 px away). Without such pairs nothing shows the field is better."""
    flat_one, flat_several = one.reshape(-1, 3), several.reshape(-1, 3)
    step_one = step_several = 0.0
    pairs = 0
    for colour in np.unique(field[solid], axis=0):
        region = solid & (field == colour).all(-1)
        p, q = boundary_pairs(region, solid & ~region, gap=2.0, depth=4.0, reach=6.0)
        pairs += len(p)
        step_one += float(np.abs(flat_one[p] - flat_one[q]).sum())
        step_several += float(np.abs(flat_several[p] - flat_several[q]).sum())
    return pairs >= MIN_BORDER_PAIRS and step_several <= SMOOTHER * step_one


MIN_BORDER_PAIRS = 10
"""Pairs across a field's colour borders that ``smoother`` needs to judge it."""
SMOOTHER = 0.75
"""The share of one colour's step across the field's borders the field may leave. The pairs are 4–8 px
apart, so both readings keep the photo's own texture between them; a field that reads a colour the
mark has removes a step on top of it (platform and restoration sets, exact and rough masks: the
fields that mended a photo left 0.12–0.70 of one colour's step), a field that splits texture does
not (the fields at 0.77–0.93 made three of five photos worse, −0.3 to −3.5 dB)."""


def mix_borders(
    j: np.ndarray, alpha: np.ndarray, field: np.ndarray, solid: np.ndarray, recovered: np.ndarray
) -> np.ndarray:
    """``recovered`` (float RGB) with the pixels along the field's colour borders inverted with a mix
    of the two colours that meet there.

    A mark's anti-aliased edge between two of its colours is neither, and inverting it with either
    leaves a ring (a magenta ring round a white disc inverted on a green tile). Along the border,
    1 px either side, each pixel takes the mix ``m·own + (1 − m)·other`` (its own colour and the
    nearest other one) whose inversion lies nearest a fill of the border from the photo recovered
    on both sides: the recovered value is linear in ``m``, so this is a projection."""
    keys, inverse = np.unique(field[solid], axis=0, return_inverse=True)
    if len(keys) < 2:
        return recovered
    labels = np.full(solid.shape, -1, np.int32)
    labels[solid] = inverse.ravel()
    square = np.ones((3, 3), np.uint8)
    distance = np.empty((len(keys), *solid.shape), np.float32)
    border = np.zeros(solid.shape, bool)
    for i in range(len(keys)):
        region = (labels == i).astype(np.uint8)
        distance[i] = cv2.distanceTransform(1 - region, cv2.DIST_L2, 3)
        distance[i][region > 0] = np.inf  # a pixel's other colour is never its own
        border |= cv2.dilate(region, square).astype(bool) & solid & (labels != i)
    border = cv2.dilate(border.astype(np.uint8), square).astype(bool) & solid
    ys, xs = np.nonzero(border)
    if not len(ys):
        return recovered
    own, other = keys[labels[ys, xs]], keys[distance[:, ys, xs].argmin(0)]
    a = np.clip(alpha[ys, xs], 0.0, 0.95)[:, None]
    pixels = np.clip(recovered * 255.0 + 0.5, 0, 255).astype(np.uint8)
    fill = background(pixels, border, 2)[ys, xs]
    start = (j[ys, xs] - a * other) / (1.0 - a)  # m = 0: inverted with the other colour
    step = a * (own - other) / (1.0 - a)  # the inversion is start − m·step
    m = np.clip(((start - fill) * step).sum(1) / np.maximum((step * step).sum(1), 1e-6), 0.0, 1.0)
    out = recovered.copy()
    out[ys, xs] = start - m[:, None] * step
    return out


def _spread(labels: np.ndarray, solid: np.ndarray) -> np.ndarray:
    """Labels over the whole crop: each pixel off ``solid`` takes its nearest solid pixel's."""
    _, nearest = cv2.distanceTransformWithLabels(
        (~solid).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(solid)
    of = np.zeros(int(nearest.max()) + 1, np.int32)
    of[nearest[ys, xs]] = labels[ys, xs]
    return np.where(solid, labels, of[nearest])
