"""A tiled mark learned from its own copies in one photo (``pipeline.inpaint.repeat``)."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.inpaint.base import InpaintRequest
from pipeline.inpaint.repeat import find_lattice, remove_repeated
from pipeline.inpaint.restore import RestoreInpainter
from training.evaluate import psnr


def _photo(h: int = 256, w: int = 320, seed: int = 0) -> np.ndarray:
    """A photo-like background: smooth random shapes at several scales, no repeat of its own."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((24.0, 30.0), (6.0, 12.0), (1.5, 4.0)):
        noise = rng.normal(size=(h, w, 3)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), sigma)
        img += amp * noise / max(float(noise.std()), 1e-6)
    return np.clip(img + 120.0, 0, 255).astype(np.uint8)


def _sprite(part: str) -> np.ndarray:
    """One copy of the mark's ``part``: a ring or the bar under it, anti-aliased (opacity in [0, 1])."""
    big = np.zeros((160, 160), np.uint8)
    if part == "ring":
        cv2.circle(big, (80, 64), 44, 255, 14)
    else:
        cv2.rectangle(big, (24, 124), (136, 140), 255, -1)
    return cv2.resize(big, (40, 40), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _tiled(sprite: np.ndarray, shape: tuple[int, int], angle: float, gap: int = 22) -> np.ndarray:
    """``sprite`` repeated on a grid rotated by ``angle`` over the whole photo (as the synthetic
    generator draws a tiled mark: one warp of a periodic cell)."""
    cell = np.pad(sprite, ((0, gap), (0, gap)))
    ch, cw = cell.shape
    m = cv2.getRotationMatrix2D((cw / 2, ch / 2), angle, 1.0)
    m[:, 2] += (shape[1] / 2 - cw / 2 + 7.3, shape[0] / 2 - ch / 2 + 3.6)
    return cv2.warpAffine(cell, m, shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _marked(opacity: float, angle: float = 27.0, gap: int = 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo, the photo under a tiled two-colour mark (a white ring over an orange bar, one
    opacity: what no single-colour fit of a region explains), and the mark's exact mask. ``gap``:
    the space between copies (px); the period is the 40-px sprite plus it."""
    photo = _photo()
    ring = opacity * _tiled(_sprite("ring"), photo.shape[:2], angle, gap)[..., None]
    bar = opacity * _tiled(_sprite("bar"), photo.shape[:2], angle, gap)[..., None]
    alpha = np.clip(ring + bar, 0.0, 1.0)
    premultiplied = ring * np.array([0.95, 0.95, 0.95]) + bar * np.array([0.95, 0.45, 0.1])
    marked = np.round(((1 - alpha) * photo / 255.0 + premultiplied) * 255).astype(np.uint8)
    return photo, marked, alpha[..., 0] > 0.02 * opacity


def test_the_lattice_of_a_rotated_tiling_is_found_to_a_fraction_of_a_pixel() -> None:
    _, _, mask = _marked(0.35, angle=27.0)
    lattice = find_lattice(mask)
    assert lattice is not None
    period = 62.0  # sprite 40 px + gap 22 px, rotated by 27°
    rad = np.deg2rad(27.0)
    truth = [
        np.array([np.cos(rad), np.sin(rad)]) * period,
        np.array([-np.sin(rad), np.cos(rad)]) * period,
    ]  # (dy, dx)
    for v in (lattice.v1, lattice.v2):
        # each found vector is one of the true ones, up to sign
        assert min(min(np.hypot(*(v - t)), np.hypot(*(v + t))) for t in truth) < 0.3


def test_a_mask_that_does_not_repeat_has_no_lattice() -> None:
    mask = np.zeros((256, 320), bool)
    cv2.putText(mask.view(np.uint8), "(c) markless 2026", (20, 140), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 1, 3)
    assert mask.any()
    assert find_lattice(mask) is None


def test_a_tiled_translucent_mark_is_learned_from_its_copies_and_inverted() -> None:
    photo, marked, mask = _marked(0.35)
    repeated = remove_repeated(marked, mask)
    assert repeated is not None
    assert repeated.done.sum() > 0.8 * mask.sum()  # all copies but those the photo's border cuts
    assert not (repeated.image != marked)[~repeated.done].any()
    done = repeated.done
    assert psnr(repeated.image, photo, done) > psnr(marked, photo, done) + 15.0
    assert psnr(repeated.image, photo, done) > 37.0
    # Through the restoration as a whole (the copies the border cuts fitted as before): the region
    # fits alone read one colour per region and explain neither part of this mark.
    restored = RestoreInpainter().inpaint(InpaintRequest(image=marked, mask=mask))
    fitted = RestoreInpainter(repeats=False).inpaint(InpaintRequest(image=marked, mask=mask))
    assert psnr(restored, photo) > psnr(fitted, photo) + 5.0


def test_a_sparse_tiling_with_four_to_five_copies_over_each_pixel_is_learned_too() -> None:
    # A period of 120 px over a 256×320 photo: a small photo under a platform's tiling, whose copies
    # the stack needs at least ``MIN_COPIES`` of; six left this one to the region fits.
    photo, marked, mask = _marked(0.35, gap=80)
    repeated = remove_repeated(marked, mask)
    assert repeated is not None
    assert repeated.done.sum() > 0.8 * mask.sum()
    assert psnr(repeated.image, photo, repeated.done) > psnr(marked, photo, repeated.done) + 15.0
    clean = remove_repeated(photo, mask)  # the same mask over the clean photo
    assert clean is None or psnr(clean.image, photo) > 45.0


def test_near_opaque_copies_are_left_to_the_region_fits() -> None:
    photo, marked, mask = _marked(0.9)
    repeated = remove_repeated(marked, mask)
    assert repeated is None or not repeated.done.any()
    out = RestoreInpainter().inpaint(InpaintRequest(image=marked, mask=mask))
    assert psnr(out, photo) > psnr(marked, photo) + 5.0  # filled, as an opaque mark is


def test_a_tiled_mask_over_a_clean_photo_changes_it_by_no_more_than_noise() -> None:
    photo, _, mask = _marked(0.35)
    repeated = remove_repeated(photo, mask)
    if repeated is not None:
        assert psnr(repeated.image, photo) > 45.0
