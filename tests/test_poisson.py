"""Gradient-domain reintegration (``pipeline.inpaint.poisson``): exact where its guide is, and blind
to an offset of it."""

from __future__ import annotations

import numpy as np

from pipeline.inpaint.fit import unblend
from pipeline.inpaint.poisson import neighbour_pairs, reintegrate


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A smooth textured photo, a translucent pink rectangle on it (α 0.4) and a mask around it."""
    yy, xx = np.mgrid[:64, :80].astype(np.float32)
    photo = np.dstack(
        [0.5 + 0.2 * np.sin(xx / 5) * np.cos(yy / 7), 0.4 + 0.1 * np.sin(yy / 3), 0.3 + 0.002 * xx]
    ).astype(np.float32)
    alpha = np.zeros((64, 80), np.float32)
    alpha[16:48, 20:60] = 0.4
    marked = (1 - alpha[..., None]) * photo + alpha[..., None] * np.array([0.9, 0.2, 0.6], np.float32)
    mask = np.zeros((64, 80), bool)
    mask[14:50, 18:62] = True
    return photo, alpha, marked, mask


def test_pairs_are_the_four_neighbours_touching_the_region() -> None:
    region = np.zeros((3, 4), bool)
    region[1, 1] = True
    p, q = neighbour_pairs(region)
    assert sorted(zip(p.tolist(), q.tolist(), strict=True)) == [(1, 5), (4, 5), (5, 6), (5, 9)]


def test_the_photos_own_differences_give_the_photo_back() -> None:
    photo, _, marked, mask = _scene()
    out = reintegrate(photo, marked, mask, lambda p, q: np.ones(p.shape, bool))
    assert np.abs(out - photo).max() < 1e-4
    assert np.array_equal(out[~mask], marked[~mask])


def test_a_colour_read_off_by_a_constant_costs_only_the_marks_edge() -> None:
    photo, alpha, marked, mask = _scene()
    wrong = unblend(marked, alpha, np.array([1.0, 0.3, 0.7], np.float32))  # W off by 0.1
    plain = np.where(mask[..., None], wrong, marked)
    flat = alpha.ravel()
    out = reintegrate(wrong, marked, mask, lambda p, q: np.abs(flat[p] - flat[q]) <= 0.1)
    under = alpha > 0
    assert np.abs(plain - photo)[under].min() > 0.06  # the offset, everywhere under the mark
    # What is left: the photo's own step across the mark's outline, where no difference was kept.
    assert np.abs(out - photo)[under].max() < 0.035
    assert np.abs(out - photo)[mask].mean() < 0.3 * np.abs(plain - photo)[mask].mean()


def test_a_region_with_nothing_fixed_beside_it_still_solves() -> None:
    photo, _, _, _ = _scene()
    everywhere = np.ones(photo.shape[:2], bool)
    out = reintegrate(photo + 0.2, photo, everywhere, lambda p, q: np.ones(p.shape, bool))
    assert np.isfinite(out).all() and np.abs(out - (photo + 0.2)).max() < 1e-3
