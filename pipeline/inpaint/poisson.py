"""Gradient-domain reintegration: keep a reading of the photo under a mark only in its gradients.

Inverting a translucent mark with an estimated opacity α̂ and colour Ŵ errs mostly by a smooth
offset: where the mark is one layer (α and W constant) a colour off by δ shifts the inversion by
``α̂·δ / (1 − α̂)`` everywhere alike, and an opacity off by ε scales the photo's contrast by a few
per cent but shifts its mean by ``ε·(W − I) / (1 − α)²``. The inversion's *differences* between
neighbouring pixels carry neither shift; the photo around the mask, which no mark reaches, fixes the
mean. So the photo is solved for in the least-squares sense (a Poisson equation, as in gradient-domain
image editing) with the inversion's differences as its guide, the photo outside the region fixed,
and no guide across the mark's own edges (where the reading's α or α·W jumps), whose inverted
differences hold the reading's errors in full.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.sparse import coo_matrix, diags
from scipy.sparse.linalg import splu

PERMC = "MMD_AT_PLUS_A"
SCREEN = 1e-6
"""Weight pulling each unknown towards the reading itself: keeps the system definite where a part of
the region has no fixed pixel beside it (a crop whose every pixel is masked), and is far too small to
matter anywhere else."""


def neighbour_pairs(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-neighbour pairs (flat indices p, q; q right of or below p) with at least one pixel of ``region``."""
    h, w = region.shape
    flat = np.arange(h * w).reshape(h, w)
    pairs = []
    for a, b, ra, rb in (
        (flat[:, :-1], flat[:, 1:], region[:, :-1], region[:, 1:]),
        (flat[:-1, :], flat[1:, :], region[:-1, :], region[1:, :]),
    ):
        m = ra | rb
        pairs.append((a[m], b[m]))
    return np.concatenate([x[0] for x in pairs]), np.concatenate([x[1] for x in pairs])


def reintegrate(
    estimate: np.ndarray,
    image: np.ndarray,
    region: np.ndarray,
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """``image`` (HxWxC float) with ``region`` (bool HxW) replaced by the least-squares photo whose
    neighbour differences are ``estimate``'s on the pairs ``keep(p, q)`` holds for (flat indices) and
    zero on the others, the pixels outside ``region`` fixed. Not clipped: a reading that leaves the
    gamut still does, for the caller's checks."""
    h, w = region.shape
    channels = image.shape[-1]
    unknown = np.full(h * w, -1, np.int64)
    count = int(region.sum())
    unknown[region.ravel()] = np.arange(count)
    p, q = neighbour_pairs(region)
    est = estimate.reshape(h * w, channels).astype(np.float64)
    fixed = image.reshape(h * w, channels).astype(np.float64)
    guide = np.where(keep(p, q)[:, None], est[q] - est[p], 0.0)
    ip, iq = unknown[p], unknown[q]
    # Normal equations of Σ (x_q − x_p − guide)²: a graph Laplacian over the unknowns, with the fixed
    # neighbours' values moved to the right-hand side.
    both = (ip >= 0) & (iq >= 0)
    degree = np.bincount(ip[ip >= 0], minlength=count) + np.bincount(iq[iq >= 0], minlength=count)
    rows = np.concatenate([ip[both], iq[both]])
    cols = np.concatenate([iq[both], ip[both]])
    laplacian = coo_matrix((-np.ones(rows.size), (rows, cols)), shape=(count, count)).tocsc()
    system = (laplacian + diags(degree + SCREEN)).tocsc()
    rhs = SCREEN * est[region.ravel()]
    for c in range(channels):
        b = np.zeros(count)
        # Pair (p, q) asks x_q − x_p = g: +g on q's row, −g on p's; a fixed end adds its value.
        target_q = guide[:, c] + np.where(ip >= 0, 0.0, fixed[p, c])
        target_p = -guide[:, c] + np.where(iq >= 0, 0.0, fixed[q, c])
        b += np.bincount(iq[iq >= 0], weights=target_q[iq >= 0], minlength=count)
        b += np.bincount(ip[ip >= 0], weights=target_p[ip >= 0], minlength=count)
        rhs[:, c] += b
    factor = splu(system, permc_spec=PERMC, diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    out = image.astype(np.float64).reshape(h * w, channels).copy()
    out[region.ravel()] = factor.solve(rhs)
    return out.reshape(image.shape).astype(image.dtype)
