"""Joint estimation of a mark's opacity α and colour W from photos that share it.

Every photo obeys ``J_k = (1 − α)·I_k + α·W``. Written as the inverse map
``I_k = u·J_k + v`` with ``u = 1/(1 − α)`` and ``v = −α·W·u``, the unknowns enter linearly, so the
one prior we need — the recovered photos are natural, i.e. they have no edge where the mark has
one — becomes a (reweighted) least-squares problem over all photos at once:

    Σ_k Σ_(p,q) ρ(I_k(q) − I_k(p)) + λ·Σ_(p,q) |Δu| + |Δv|

over 4-neighbour pairs, with u = 1, v = 0 fixed outside the mark's support (found from the median
of the photos' gradients, which only the mark has in common). Two choices keep it unbiased:

- The difference is split as ``ū·ΔJ + Δu·J̄ + Δv`` and ``ū`` is taken from the previous iteration.
  Minimising the plain difference over u would shrink u (flatten the photo's own texture under the
  mark) and attenuate α, exactly as a regression on a noisy regressor does; with ``ū`` fixed the
  regressor ``J̄`` is uncorrelated with the residual (the photo's own gradient).
- ρ is a Charbonnier (smooth L1) penalty: natural gradients are sparse, so most photos say
  "nothing changes here" exactly and the few textured ones are down-weighted.

Each iteration is one sparse solve whose size depends on the mark's area, not on the number of
photos: the photos only enter through per-edge weighted sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage
from scipy.sparse import bmat, coo_matrix, csr_matrix, diags
from scipy.sparse.linalg import splu

EPS_DATA = 0.01  # Charbonnier scale of a photo's gradient (in [0, 1] intensity units)
EPS_PRIOR = 0.01  # Charbonnier scale of a jump of u or v
PERMC = "MMD_AT_PLUS_A"
SMOOTHNESS = 0.1  # weight of the jump prior per √(photos): keeps α, W piecewise smooth
RELAX_JUMP = 0.05
"""A jump of u = 1/(1 − α) between neighbours this large (α about 0.05 from 0) is the mark's own edge
once the solve has converged; see ``RELAX``."""
RELAX_ITERATIONS = 4  # the relaxed solve's own budget, after the first converges
RELAX = 0.05
"""The jump prior's weight kept on the mark's own edges in the final iterations. An L1 prior shrinks
every jump it is paid on, as the lasso does its coefficients: a tiled mark at α 0.21 read 0.15 from 44
copies. Its edges, once found, are set free (the relaxed lasso), and the prior keeps smoothing the
rest: 0.19 then (that photo 36.9 → 45.4 dB; platform set +0.14 dB with exact masks). Profiles from
photos that share a mark: +0.7 to +2.5 dB on 9 of the bench's 10 groups (``pipeline.marks.bench``,
seed 11), −0.7 on one (a corner mark from 5 photos)."""


def gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences along x and y, zero on the last column/row (same shape as ``image``)."""
    gx = np.zeros_like(image)
    gy = np.zeros_like(image)
    gx[..., :, :-1, :] = image[..., :, 1:, :] - image[..., :, :-1, :]
    gy[..., :-1, :, :] = image[..., 1:, :, :] - image[..., :-1, :, :]
    return gx, gy


def edge_map(stack: np.ndarray) -> np.ndarray:
    """HxW magnitude of the per-pixel median of the photos' gradients (N×H×W×3 float in [0, 1]).

    Each photo's own edges fall in different places and vanish in the median; the mark's edges are
    in every photo and survive it.
    """
    gx, gy = gradients(stack)
    mx = np.median(gx, axis=0)
    my = np.median(gy, axis=0)
    return np.sqrt((mx**2 + my**2).sum(axis=-1)).astype(np.float32)


def edge_threshold(edges: np.ndarray, n_photos: int) -> float:
    """Level above which the median gradient is the mark's rather than chance agreement of photos."""
    typical = float(np.median(edges))
    spread = float(np.median(np.abs(edges - typical))) + 1e-6
    # The median of N photos' gradients wanders like 1/√N; below ~0.03 nothing real is that faint.
    floor = 0.03 * max(1.0, float(np.sqrt(10.0 / max(n_photos, 1))))
    return max(typical + 8.0 * spread, floor)


def support_from_edges(
    edges: np.ndarray, threshold: float, grow: int = 3, min_area: int = 12, single: bool = True
) -> np.ndarray:
    """Where the mark may be: its edges, grown a little, with enclosed areas filled (bool HxW).

    With ``single``, only the cluster of edges with the most energy is kept (plus clusters at
    least a third as strong): a mark is one object, while edges the photos share by chance are
    scattered specks.
    """
    strong = (edges > threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(strong, connectivity=8)
    # Chance agreement gives short, faint specks; a mark's outline is long or clearly strong.
    peak = ndimage.maximum(edges, labels, index=np.arange(n)) if n > 1 else np.zeros(1)
    keep = (stats[:, cv2.CC_STAT_AREA] >= 8) | (np.asarray(peak) >= 3.0 * threshold)
    keep[0] = False
    strong = keep[labels].astype(np.uint8)
    if single and strong.any():
        reach = max(8, int(0.04 * min(edges.shape)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        n, groups = cv2.connectedComponents(cv2.dilate(strong, kernel), connectivity=8)
        energy = np.bincount(groups.ravel(), weights=(edges * strong).ravel(), minlength=n)
        energy[0] = 0.0
        strong = strong * (energy >= energy.max() / 3.0)[groups].astype(np.uint8)
    if grow > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        strong = cv2.dilate(strong, kernel)
    filled = ndimage.binary_fill_holes(strong > 0)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(filled.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    region = keep[labels]
    region[[0, -1], :] = False  # the frame anchors the solution (u = 1, v = 0)
    region[:, [0, -1]] = False
    return region


@dataclass
class BlendEstimate:
    """α (HxW) and α·W (HxWx3) over the crop the solver saw, both in [0, 1]."""

    alpha: np.ndarray
    premultiplied: np.ndarray

    @property
    def color(self) -> np.ndarray:
        """W where the mark is visible; 0 where α is too small to say."""
        a = self.alpha[..., None]
        return np.where(a > 1e-3, np.clip(self.premultiplied / np.maximum(a, 1e-3), 0.0, 1.0), 0.0)


def _edges(region: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """4-neighbour pairs with at least one unknown pixel: flat indices p, q and their (y, x)."""
    h, w = region.shape
    flat = np.arange(h * w).reshape(h, w)
    pairs = []
    for a, b, ra, rb in (
        (flat[:, :-1], flat[:, 1:], region[:, :-1], region[:, 1:]),
        (flat[:-1, :], flat[1:, :], region[:-1, :], region[1:, :]),
    ):
        m = ra | rb
        pairs.append((a[m], b[m]))
    p = np.concatenate([x[0] for x in pairs])
    q = np.concatenate([x[1] for x in pairs])
    return p, q, np.divmod(p, w), np.divmod(q, w)  # type: ignore[return-value]


def solve_blend(
    stack: np.ndarray,
    region: np.ndarray,
    *,
    iterations: int = 15,
    tolerance: float = 2e-3,
    smoothness: float | None = None,
    weights: np.ndarray | None = None,
    relax: bool = True,
) -> BlendEstimate:
    """Estimate α and α·W inside ``region`` (bool HxW) from ``stack`` (N×H×W×3 float in [0, 1]).

    ``region`` must not touch the crop's border: the ring around it is where u = 1, v = 0 anchors
    the solution. ``weights`` (N) lets the caller discount photos (0 = ignore); (N×H×W) discounts them
    per pixel (the copies of a tiled mark the photo's border cuts: ``pipeline.inpaint.repeat``), an
    edge counting as far as both its pixels do. ``relax`` (default): once converged, solve again
    with the mark's own edges nearly free of the jump prior (``RELAX``), which otherwise under-reads α.
    """
    n, h, w, _ = stack.shape
    if region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any():
        raise ValueError("region touches the crop border")
    photo_w = np.ones(n, np.float32) if weights is None else np.asarray(weights, np.float32)
    copies = float(photo_w.reshape(n, -1).max(1).sum())  # per-pixel weights: the photos in use anywhere
    lam = (SMOOTHNESS if smoothness is None else smoothness) * float(np.sqrt(max(copies, 1.0)))
    unknown = np.full(h * w, -1, np.int64)
    flat_region = region.ravel()
    count = int(flat_region.sum())
    unknown[flat_region] = np.arange(count)
    p, q, _, _ = _edges(region)
    pix = stack.reshape(n, h * w, 3)
    jp, jq = pix[:, p], pix[:, q]
    jbar = 0.5 * (jp + jq)  # N×E×3
    dj = jq - jp
    del jp, jq
    ip, iq = unknown[p], unknown[q]
    n_edges = p.size
    rows = np.concatenate([np.arange(n_edges)[iq >= 0], np.arange(n_edges)[ip >= 0]])
    cols = np.concatenate([iq[iq >= 0], ip[ip >= 0]])
    vals = np.concatenate([np.ones(int((iq >= 0).sum())), -np.ones(int((ip >= 0).sum()))])
    diff = csr_matrix(coo_matrix((vals, (rows, cols)), shape=(n_edges, count)))
    x_a = np.zeros(count)
    x_v = np.zeros((count, 3))
    if photo_w.ndim == 3:
        flat_w = photo_w.reshape(n, h * w)
        pw = (flat_w[:, p] * flat_w[:, q])[:, :, None]
    else:
        pw = photo_w[:, None, None]

    def at(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(idx.shape + values.shape[1:], values.dtype)
        ok = idx >= 0
        out[ok] = values[idx[ok]]
        return out

    edges = None  # the mark's own edges, once the solve has converged (``RELAX``)
    for it in range(iterations + (RELAX_ITERATIONS if relax else 0)):
        # Start near least squares and sharpen towards L1: with L1 weights taken at u = 1 the
        # mark's own edges would look like outliers and never be fitted.
        eps = max(EPS_DATA, 0.16 * 0.5**it)
        a_p, a_q = at(x_a, ip), at(x_a, iq)
        v_p, v_q = at(x_v, ip), at(x_v, iq)
        ubar = 1.0 + 0.5 * (a_p + a_q)
        b = ubar[None, :, None] * dj  # N×E×3: the part fixed from the last iteration
        da = (a_q - a_p)[None, :, None]
        dv = (v_q - v_p)[None]
        r = b + da * jbar + dv
        wk = pw / np.sqrt(r * r + eps**2)
        s0 = wk.sum(axis=0)
        s1 = (wk * jbar).sum(axis=0)
        s2 = (wk * jbar * jbar).sum(axis=0)
        t0 = (wk * b).sum(axis=0)
        t1 = (wk * b * jbar).sum(axis=0)
        tv_a = lam / np.sqrt((a_q - a_p) ** 2 + EPS_PRIOR**2)
        tv_v = lam / np.sqrt((v_q - v_p) ** 2 + EPS_PRIOR**2)
        if edges is not None:  # relaxed: the mark's own edges found, their jumps paid at RELAX
            tv_a = np.where(edges, RELAX * tv_a, tv_a)
            tv_v = np.where(edges[:, None], RELAX * tv_v, tv_v)
        dt = diff.T
        blocks: list[list[csr_matrix | None]] = [[None] * 4 for _ in range(4)]
        blocks[0][0] = dt @ diags(s2.sum(axis=1) + tv_a) @ diff
        rhs = [-(dt @ t1.sum(axis=1))]
        for c in range(3):
            cross = dt @ diags(s1[:, c]) @ diff
            blocks[0][c + 1] = cross
            blocks[c + 1][0] = cross
            blocks[c + 1][c + 1] = dt @ diags(s0[:, c] + tv_v[:, c]) @ diff
            rhs.append(-(dt @ t0[:, c]))
        system = bmat(blocks, format="csc") + diags(np.full(4 * count, 1e-8))
        # Symmetric positive definite (per edge a 2x2 Gram block per channel plus the jump prior),
        # so the factorisation keeps the fill-reducing order and never pivots: with pivoting the
        # sharpening weights (ratios of 1e4 and more by the last iterations) made SuperLU reorder
        # for stability, and one solve of 30 000 unknowns went from 0.2 s to 24 s.
        factor = splu(system, permc_spec=PERMC, diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        x = factor.solve(np.concatenate(rhs))
        step = float(np.abs(x[:count] - x_a).max(initial=0.0))
        x_a = x[:count]
        x_v = x[count:].reshape(3, count).T
        converged = step < tolerance and eps == EPS_DATA
        if relax and edges is None and (converged or it == iterations - 1):
            edges = np.abs(at(x_a, iq) - at(x_a, ip)) > RELAX_JUMP
        elif converged:
            break
    u = 1.0 + np.maximum(x_a, 0.0)
    alpha = np.zeros(h * w, np.float32)
    pre = np.zeros((h * w, 3), np.float32)
    alpha[flat_region] = 1.0 - 1.0 / u
    pre[flat_region] = np.clip(-x_v / u[:, None], 0.0, 1.0)
    pre = np.minimum(pre, alpha[:, None])
    return BlendEstimate(alpha.reshape(h, w), pre.reshape(h, w, 3))


def invert(image: np.ndarray, alpha: np.ndarray, premultiplied: np.ndarray) -> np.ndarray:
    """The photo under the mark, ``(J − α·W)/(1 − α)``, unclipped float (same shape as ``image``)."""
    a = alpha[..., None]
    return (image - premultiplied) / np.maximum(1.0 - a, 1e-3)


def explained(image: np.ndarray, alpha: np.ndarray, premultiplied: np.ndarray, band: np.ndarray) -> float:
    """How much of the photo's edge energy on the mark's edges the mark explains (1 = all, < 0 = absent).

    Removing a mark that is there takes its edges away; "removing" one that is not there draws
    its negative, adding edges. ``band`` (bool) is where the mark has edges.
    """
    if not band.any():
        return 0.0
    restored = invert(image, alpha, premultiplied)
    before = _edge_energy(image, band)
    after = _edge_energy(restored, band)
    return float(1.0 - after / max(before, 1e-6))


def _edge_energy(image: np.ndarray, band: np.ndarray) -> float:
    gx, gy = gradients(image[None])
    mag = np.abs(gx[0]).sum(axis=-1) + np.abs(gy[0]).sum(axis=-1)
    return float(mag[band].sum())


def mark_gain(image: np.ndarray, alpha: np.ndarray, premultiplied: np.ndarray) -> float:
    """How much of the mark ``alpha``/``premultiplied`` the photo holds: 1 all of it, 0 none.

    The regression of the photo's gradients on what inverting would take away, projected on the
    mark's edge pattern ``∇α·(W − B)`` (B: the inverted photo, smoothed: the background the mark
    lies on). Projecting on that pattern, not on the taken-away part itself, keeps the photo's own
    texture out of it: the texture is uncorrelated with where the mark's edges are. A photo with a
    fainter copy of the mark, another mark, or none gives less than 1 — where inverting the full
    mark draws its negative and leaves the photo worse than it was.
    """
    restored = invert(image, alpha, premultiplied)
    background = cv2.GaussianBlur(np.clip(restored, 0.0, 1.0), (0, 0), 2.0)
    ax, ay = gradients(alpha[None, ..., None])
    contrast = premultiplied - alpha[..., None] * background  # α(W − B) where α is known
    colour = np.where(alpha[..., None] > 1e-3, contrast / np.maximum(alpha[..., None], 1e-3), 0.0)
    tx, ty = ax[0] * colour, ay[0] * colour
    jx, jy = gradients(image[None])
    dx, dy = gradients((image - restored)[None])
    num = float((jx[0] * tx + jy[0] * ty).sum())
    den = float((dx[0] * tx + dy[0] * ty).sum())
    return num / den if den > 1e-9 else 0.0
