"""Fit-based restoration: exact on a known blend, rough masks cost nothing, opaque marks and failed
fits go to the inpainter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.cancel import CancelToken, reset_token, use_token
from pipeline.errors import JobCancelledError
from pipeline.inpaint.base import InpaintRequest, build_inpainter, uses_decomposition
from pipeline.inpaint.colours import _mark_labels, colour_field, kmeans, mix_borders, smoother
from pipeline.inpaint.fit import (
    FitOptions,
    _candidates,
    _continues_recovered,
    _cores,
    _photo_step,
    background,
    fit_marks,
    gain_in_gamut,
    unblend,
)
from pipeline.inpaint.restore import RestoreInpainter, fill_error, worth_filling
from tests.test_unblend import RecordingFill
from training.evaluate import psnr


def _textured(h: int = 160, w: int = 200) -> np.ndarray:
    """A photo-like background: smooth gradients plus mid-frequency texture (no flat regions)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [
            90 + 60 * np.sin(xx / 13) + 0.3 * yy,
            110 + 50 * np.cos(yy / 11) + 0.2 * xx,
            100 + 40 * np.sin((xx + yy) / 17),
        ],
        -1,
    )
    return np.clip(img, 0, 255).astype(np.uint8)


def _mark_shape(h: int = 160, w: int = 200) -> np.ndarray:
    """A logo-like opacity shape: a ring and a bar, anti-aliased (values in [0, 1])."""
    layer = np.zeros((h * 4, w * 4), np.uint8)
    cv2.circle(layer, (w * 2, h * 2), 160, 255, 40)
    cv2.rectangle(layer, (w * 2 - 300, h * 2 + 200), (w * 2 + 300, h * 2 + 250), 255, -1)
    return cv2.resize(layer, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


ISSUE_12_GAIN_FIT = pytest.mark.xfail(
    strict=True,
    reason="open (issue 12): the outline-pair fit misreads this mark by a few levels (exact mask: α0 0.34 "
    "for 0.35 but green 0.86 for 0.80; rough mask: α0 0.33 for 0.30, the mark left at 4.7 levels): the "
    "photo's mean and spread differ across this outline; needs a second-order (extrapolated) fit",
)
"""Both fit tests below fail for the same open reason; one mark so they flip together when fixed. The
rough mask's clean gap between the ring and the bar, which the fit's shape took in, is tested on its
own below (``test_clean_photo_enclosed_by_a_mark_under_a_rough_mask_is_left_as_it_came``)."""


def _blend(photo: np.ndarray, a: np.ndarray, color: object) -> np.ndarray:
    """``J = (1 − α)·I + α·W`` as uint8: ``a`` HxWx1 opacity, ``color`` an RGB in 0..1 (or HxWx3 of them)."""
    return np.round(((1 - a) * photo / 255.0 + a * np.asarray(color)) * 255).astype(np.uint8)


def _marked(opacity: float, color: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The textured photo, the mark's alpha shape, and the photo with the mark blended in at ``opacity``."""
    photo, shape = _textured(), _mark_shape()
    return photo, shape, _blend(photo, (opacity * shape)[..., None].astype(np.float64), color)


@ISSUE_12_GAIN_FIT
def test_fit_recovers_opacity_and_colour_and_inverts_exactly() -> None:
    photo, shape, marked = _marked(0.35, (1.0, 0.8, 0.2))
    mask = shape > 0
    fits = fit_marks(marked, mask)
    assert fits and fits[0].ok
    assert abs(fits[0].alpha0 - 0.35) < 0.05  # the edge-weighted fit reads B just outside the mark
    np.testing.assert_allclose(fits[0].color, (1.0, 0.8, 0.2), atol=0.06)
    out = RestoreInpainter("opencv").inpaint(InpaintRequest(marked, mask))
    solid = shape > 0.99
    err = np.abs(out[solid].astype(int) - photo[solid].astype(int))
    assert np.percentile(err, 95) <= 4
    before = np.abs(marked[solid].astype(int) - photo[solid].astype(int)).mean()
    assert err.mean() < before / 8


def _restored_under_a_rough_mask() -> tuple[np.ndarray, ...]:
    """The ring and bar at α 0.3 restored under their mask grown by 6 px: the photo, the mark's shape,
    the input, the rough mask, the output, and the rough mask's pixels over 2 px from the mark."""
    photo, shape, marked = _marked(0.3, (1.0, 1.0, 1.0))
    truth = shape > 0
    rough = cv2.dilate(truth.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))) > 0
    out = RestoreInpainter("opencv").inpaint(InpaintRequest(marked, rough))
    away = rough & ~(cv2.dilate(truth.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    return photo, shape, marked, rough, out, away


@ISSUE_12_GAIN_FIT
def test_rough_mask_leaves_unmarked_pixels_alone() -> None:
    photo, shape, marked, rough, out, away = _restored_under_a_rough_mask()
    assert away.sum() > 1000
    diff = np.abs(out[away].astype(int) - marked[away].astype(int))
    assert (diff == 0).mean() > 0.95 and diff.max() <= 8
    np.testing.assert_array_equal(out[~rough], marked[~rough])
    # and the mark itself is gone
    solid = shape > 0.99
    assert np.abs(out[solid].astype(int) - photo[solid].astype(int)).mean() < 3


def test_clean_photo_enclosed_by_a_mark_under_a_rough_mask_is_left_as_it_came() -> None:
    # The grown mask covers the gap between the ring and the bar; the fill from far away that the
    # per-pixel test reads against made 141 of those clean pixels look marked, and they were inverted.
    photo, shape, marked, rough, out, away = _restored_under_a_rough_mask()
    np.testing.assert_array_equal(out[away], marked[away])
    np.testing.assert_array_equal(out[~rough], marked[~rough])
    solid = shape > 0.99
    before = np.abs(marked[solid].astype(int) - photo[solid]).mean()
    assert np.abs(out[solid].astype(int) - photo[solid]).mean() < before / 4


@pytest.mark.parametrize("band", [3, 6, 12])
def test_enclosed_photo_is_told_from_a_wide_mark_over_grainy_photo(band: int) -> None:
    # Inside a wide translucent plate over busy photo every pixel is marked and none is taken out;
    # a band of clean photo between two marked bars is, whole, though wider than the ``LOCAL_PX``
    # each pixel reads (taken from its sides inwards).
    photo = _grainy()
    alpha0, white = 0.35, np.array([1.0, 1.0, 1.0])
    plate = np.zeros(photo.shape[:2], bool)
    plate[40:160, 40:220] = True
    marked = _blend(photo, (alpha0 * plate)[..., None].astype(np.float64), white)
    j = marked.astype(np.float32) / 255.0
    texture = _photo_step(j.reshape(-1, 3), plate)
    assert _continues_recovered(j, plate, alpha0, white, texture).sum() < 0.001 * plate.sum()
    bars = plate.copy()
    bars[100 - band // 2 : 100 - band // 2 + band] = False  # clean photo between the bars, claimed with them
    marked = _blend(photo, (alpha0 * bars)[..., None].astype(np.float64), white)
    taken = _continues_recovered(marked.astype(np.float32) / 255.0, plate, alpha0, white, texture)
    gap = plate & ~bars
    assert taken[gap].mean() > 0.95 and taken[bars].mean() < 0.001


@pytest.mark.parametrize("opacity,color", [(0.35, (1.0, 1.0, 1.0)), (0.4, (0.1, 0.1, 0.1))])
def test_the_soft_edge_of_a_translucent_mark_is_recovered(opacity: float, color: tuple[float, ...]) -> None:
    # A mark whose edge fades out over a couple of pixels: inverted with the fit's constant opacity
    # the edge overshoots (error 0.56 / 0.73 of the input's); read per pixel it is ~0.3.
    photo, shape = _textured(), cv2.GaussianBlur(_mark_shape(), (0, 0), 1.0)
    a = (opacity * shape)[..., None]
    marked = _blend(photo, a, color)
    out = RestoreInpainter("opencv").inpaint(InpaintRequest(marked, shape > 0.02))
    edge = (shape > 0.1) & (shape < 0.9)
    err = np.abs(out[edge].astype(int) - photo[edge].astype(int)).mean()
    before = np.abs(marked[edge].astype(int) - photo[edge].astype(int)).mean()
    assert err < 0.45 * before


def test_a_second_mark_in_the_same_region_is_restored_on_its_own() -> None:
    # A white translucent mark over texture and, 8 px from it (one region), a small blue plate at
    # another opacity over smooth photo. The region's fit holds on the white mark and grazes 4 % of
    # the plate, which used to be left as it came (or inverted with the white mark's opacity).
    photo = _textured(200, 260)
    yy, xx = np.mgrid[0:200, 0:80].astype(np.float64)
    photo[:, 180:] = np.stack([120 + 0.3 * yy, 100 + 0.2 * xx, 90 + 0.1 * yy], -1).astype(np.uint8)
    first = np.zeros((200, 260), np.float32)
    first[:160, :200] = _mark_shape()
    second = np.zeros((200, 260), np.uint8)
    cv2.rectangle(second, (184, 90), (214, 110), 1, -1)
    a = (0.3 * first + 0.5 * second)[..., None]
    color = np.where(second[..., None] > 0, np.array([0.1, 0.2, 0.9]), np.array([1.0, 1.0, 1.0]))
    marked = _blend(photo, a, color)
    mask = (first > 0) | (second > 0)
    restorer = RestoreInpainter("opencv")
    notes = restorer.plan(InpaintRequest(marked, mask)).notes
    assert len(notes) == 2 and "mark 2" in notes[1]  # one region, two marks
    out = restorer.inpaint(InpaintRequest(marked, mask))
    plate = second > 0
    err = np.abs(out[plate].astype(int) - photo[plate].astype(int)).mean()
    assert err < 0.2 * np.abs(marked[plate].astype(int) - photo[plate].astype(int)).mean()


def test_when_a_regions_fit_fails_its_components_are_fitted_one_by_one() -> None:
    # A white badge over flat photo (its opacity not observable on its outline: no fit of the region
    # holds, the badge being its largest component) and, 8 px from it (one region), a white bar at
    # another opacity over texture. The bar is inverted on its own; the badge goes to the fill
    # decision as it did.
    photo = _textured(200, 260)
    photo[:, :120] = (120, 110, 100)
    badge = np.zeros((200, 260), np.uint8)
    cv2.rectangle(badge, (30, 50), (111, 150), 1, -1)
    bar = np.zeros_like(badge)
    cv2.rectangle(bar, (120, 80), (230, 110), 1, -1)
    a = (0.6 * badge + 0.35 * bar)[..., None].astype(np.float64)
    marked = _blend(photo, a, (1.0, 1.0, 1.0))
    mask = (badge > 0) | (bar > 0)
    restorer = RestoreInpainter(RecordingFill())
    plan = restorer.plan(InpaintRequest(marked, mask))
    notes = plan.notes
    assert "one by one" in notes[0] and any(n.split(": ")[1].startswith("α0") for n in notes[1:])
    assert plan.hole[badge > 0].all()  # not inverted with the bar's opacity
    out = restorer.inpaint(InpaintRequest(marked, mask))
    inner = cv2.erode(bar, np.ones((5, 5), np.uint8)) > 0
    before = np.abs(marked[inner].astype(int) - photo[inner]).mean()
    assert np.abs(out[inner].astype(int) - photo[inner]).mean() < before / 4
    np.testing.assert_array_equal(out[~mask], marked[~mask])


@pytest.mark.parametrize(
    "opacity, color, peeled", [(1.0, (0.7, 0.9, 0.3), True), (0.6, (1.0, 1.0, 1.0), False)]
)
def test_a_mark_over_its_soft_dark_shadow_is_fitted_after_the_shadow(
    opacity: float, color: tuple[float, float, float], peeled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tile with the soft dark shadow that keeps platform marks readable: the region's outline is
    # the shadow's, so the first fit is the shadow; the opaque tile above it is fitted over the photo
    # recovered under it (not fitted again, it stays as it came). The translucent white tile is
    # fitted first itself: its outline's gain, read low, is raised until its colour is one.
    photo = _textured(200, 260)
    tile = np.zeros((200, 260), np.float32)
    cv2.rectangle(tile, (90, 70), (170, 130), 1.0, -1)
    shadow = 0.5 * cv2.GaussianBlur(cv2.dilate(tile, np.ones((5, 5), np.uint8)), (0, 0), 5) * (1 - tile)
    under = (1 - shadow[..., None]) * photo / 255.0
    marked = (1 - opacity * tile[..., None]) * under + opacity * tile[..., None] * np.asarray(color)
    marked = np.round(marked * 255).astype(np.uint8)
    mask = (opacity * tile + shadow) > 0.02
    restorer = RestoreInpainter("opencv")
    before = psnr(marked, photo, mask)
    assert psnr(restorer.inpaint(InpaintRequest(marked, mask)), photo, mask) > before + 5
    monkeypatch.setattr(restorer, "_peel", lambda fits: False)
    alone = psnr(restorer.inpaint(InpaintRequest(marked, mask)), photo, mask)
    assert alone < before + 1 if peeled else alone > before + 5


def test_a_hole_a_fit_found_opaque_is_filled_at_the_break_even() -> None:
    # A hole departing from its fill by ~3× the fill's expected error: a faint mark might be what
    # departs, so by default it is left (margin 4); an opaque mark's error is known to be large, so
    # filling only has to be expected to err less than the mark does (2×).
    marked, inside, reference, _ = _departing_disc(3.0)
    by_default, _, _ = worth_filling(marked, inside, inside, reference)
    opaque, _, _ = worth_filling(marked, inside, inside, reference, opaque=inside)
    assert not by_default.any() and opaque[inside].all()


def test_a_hole_the_heads_read_as_a_strong_mark_is_filled_at_the_break_even() -> None:
    # The same hole: left by default, filled when the segmenter's heads read the mark's error at
    # more than twice the fill's expected error, not when they read it at the fill's error.
    marked, inside, reference, error = _departing_disc(3.0)
    strong = np.where(inside, 2.5 * error, 0.0).astype(np.float32)
    weak = np.where(inside, 1.0 * error, 0.0).astype(np.float32)
    read_strong, _, _ = worth_filling(marked, inside, inside, reference, mark_error=strong)
    read_weak, _, _ = worth_filling(marked, inside, inside, reference, mark_error=weak)
    assert read_strong[inside].all() and not read_weak.any()


def test_a_hole_not_worth_a_fill_moves_towards_it_by_the_smaller_reading_of_its_mark() -> None:
    # Departing by 3× the fill's expected error: not filled (margin 4). The departure less the
    # pessimistic fill error (2×) leaves a third of it to the mark; the heads read it lower or higher
    # (below twice the fill's error, which would fill at the break-even).
    # The blend's weight on the fill is the smaller share; without the heads nothing is blended.
    marked, inside, reference, error = _departing_disc(3.0)
    departure = float((((marked.astype(float) - reference) / 255) ** 2).sum(-1)[inside].mean())
    alone = worth_filling(marked, inside, inside, reference)
    assert not alone.fill.any() and not alone.partial.any()
    for heads, share in (
        (0.5 * error, 0.5 * error / departure),
        (1.5 * error, 1.0 - 2.0 * error / departure),
    ):
        read = np.where(inside, heads, 0.0).astype(np.float32)
        decision = worth_filling(marked, inside, inside, reference, mark_error=read)
        assert not decision.fill.any() and not decision.partial[~inside].any()
        # (within the decision's own estimate of the fill's error)
        assert np.allclose(decision.partial[inside], share, rtol=0.05)
        # on the segmenter's own mask its heads are no second opinion: nothing is blended
        assert not worth_filling(
            marked, inside, inside, reference, mark_error=read, blend=False
        ).partial.any()


def test_the_blend_towards_the_fill_brings_a_faint_mark_closer_to_the_photo() -> None:
    # The disc departs from its fill by 3× the fill's expected error, two thirds of it the mark's own
    # error: not filled at the margin, but blended a third of the way (the departure less the
    # pessimistic fill error is the smaller reading; the heads read the mark truly), it errs less.
    marked, inside, reference, _ = _departing_disc(3.0)
    photo = _textured()
    truth = np.where(inside, (((marked.astype(float) - photo) / 255) ** 2).sum(-1), 0.0).astype(np.float32)
    weight = worth_filling(marked, inside, inside, reference, mark_error=truth).partial[..., None]
    blended = np.round(marked + weight * (reference.astype(float) - marked)).astype(np.uint8)
    assert not worth_filling(marked, inside, inside, reference, mark_error=truth).fill.any()
    assert np.allclose(weight[inside], 1 / 3, atol=0.05)
    assert psnr(blended, photo, inside) > psnr(marked, photo, inside) + 1.0


def _departing_disc(times: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A disc over texture departing from its Telea fill by ``times`` the fill's expected error;
    returns (marked image, disc, fill reference, expected fill error)."""
    photo = _textured()
    hole = np.zeros(photo.shape[:2], np.uint8)
    cv2.circle(hole, (100, 80), 12, 1, -1)
    inside = hole > 0
    ys, xs = np.nonzero(inside)
    blocked = cv2.dilate(hole, np.ones((9, 9), np.uint8)) > 0
    error = fill_error(
        photo, blocked, hole[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], (ys.min(), xs.min())
    )
    assert error is not None
    marked = photo.astype(float)
    marked[inside] += np.sqrt((times - 1.0) * error / 3.0) * 255  # + the fill's own error
    marked = np.clip(marked, 0, 255).astype(np.uint8)
    reference = cv2.inpaint(marked, hole, 3, cv2.INPAINT_TELEA)
    departure = (((marked.astype(float) - reference) / 255) ** 2).sum(-1)[inside].mean()
    assert 0.8 * times < departure / error < 1.2 * times
    return marked, inside, reference, error


def _tile_in_a_faint_block(tile_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Noisy photo under a rough mask holding a faint mark (most of it) and an opaque magenta tile
    of ``tile_px`` a side; returns (photo, marked, the mask, the tile, the fill reference)."""
    rng = np.random.default_rng(5)
    photo = np.clip(_textured().astype(float) + rng.normal(0, 14, (160, 200, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros(photo.shape[:2], np.uint8)
    hole[50:110, 40:160] = 1
    tile = np.zeros_like(hole)
    tile[60 : 60 + tile_px, 50 : 50 + tile_px] = 1
    marked = photo.astype(float)
    marked[hole > 0] = 0.88 * marked[hole > 0] + 0.12 * 255.0  # a faint white mark
    marked[tile > 0] = (230, 20, 220)
    marked = np.clip(np.round(marked), 0, 255).astype(np.uint8)
    reference = cv2.inpaint(marked, hole, 3, cv2.INPAINT_TELEA)
    return photo, marked, hole > 0, tile > 0, reference


def test_the_opaque_part_of_a_group_is_filled_on_its_own() -> None:
    # A rough mask joins an opaque tile to a faint mark around it: judged as one group the tile's
    # departure is diluted under the margin and all of it comes back as it came. Read near-opaque
    # (a fit's or the decomposer's reading), the tile is judged on its own at the break-even and
    # filled, grown by its 2-px edge; the faint rest is left, and is no clean context for the fill.
    photo, marked, inside, tile, reference = _tile_in_a_faint_block(24)
    alone = worth_filling(marked, inside, inside, reference)
    assert not alone.fill.any()
    read = worth_filling(marked, inside, inside, reference, opaque=tile)
    grown = cv2.dilate(tile.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert read.fill[tile].all() and not (read.fill & ~grown).any() and not read.clean.any()
    filled = np.where(
        read.fill[..., None], cv2.inpaint(marked, inside.astype(np.uint8), 3, cv2.INPAINT_TELEA), marked
    )
    assert psnr(filled, photo, inside) > psnr(marked, photo, inside) + 3
    # a few opaque pixels in a wide mask (under 5 % of it) are more likely the photo's own object
    photo, marked, inside, tile, reference = _tile_in_a_faint_block(12)
    assert tile.sum() < 0.05 * inside.sum()
    assert not worth_filling(marked, inside, inside, reference, opaque=tile).fill.any()


@pytest.mark.parametrize("times", [6.0, 12.0])
def test_a_fill_waits_for_the_segmenters_reading_of_the_mark(times: float) -> None:
    # Past the margin (4×) the departure alone would fill. With the heads' reading given, a hole they
    # see no mark in is left — the departure may be the fill's own error, underestimated — unless it
    # departs by twice the margin or a fit found it opaque; a hole they see the mark in is filled.
    marked, inside, reference, error = _departing_disc(times)
    alone, _, _ = worth_filling(marked, inside, inside, reference)
    faint, _, _ = worth_filling(marked, inside, inside, reference, mark_error=np.zeros(inside.shape))
    seen, _, _ = worth_filling(
        marked, inside, inside, reference, mark_error=np.where(inside, error, 0.0).astype(np.float32)
    )
    # a hole a fit found opaque has its own evidence of a strong mark: the heads are not asked
    opaque, _, _ = worth_filling(
        marked, inside, inside, reference, opaque=inside, mark_error=np.zeros(inside.shape)
    )
    assert alone[inside].all() and seen[inside].all() and opaque[inside].all()
    assert faint[inside].all() == (times > 8.0)


def test_opaque_mark_is_inpainted() -> None:
    _, shape, marked = _marked(1.0, (1.0, 1.0, 1.0))
    fallback = RecordingFill()
    out = RestoreInpainter(fallback).inpaint(InpaintRequest(marked, shape > 0))
    # the whole mask, faint anti-aliased edge included: nothing of an opaque mark can be inverted
    assert fallback.masks and fallback.masks[0][shape > 0].all()
    assert (out[shape > 0] == 7).all()


def test_a_failed_fit_falls_back_to_inpainting() -> None:
    rng = np.random.default_rng(0)
    photo = _textured()
    mask = np.zeros(photo.shape[:2], bool)
    mask[40:100, 50:150] = True
    marked = photo.copy()
    # Not a blend: random colours per pixel, no (α0, W) explains them.
    marked[mask] = rng.integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    fallback = RecordingFill()
    out = RestoreInpainter(fallback).inpaint(InpaintRequest(marked, mask))
    assert fallback.masks and fallback.masks[0][mask].all()
    np.testing.assert_array_equal(out[~mask], marked[~mask])


def test_fill_error_is_measured_beside_the_hole() -> None:
    """Filling costs nothing on a smooth photo and about the texture's variance on a busy one;
    deep inside a hole too wide to probe beside it, a fill continues pixels that far away: twice it."""
    rng = np.random.default_rng(1)
    smooth = np.repeat(np.linspace(40, 200, 200)[None, :, None], 160, 0).repeat(3, 2).astype(np.uint8)
    busy = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    blocked = np.zeros((160, 200), bool)
    blocked[60:100, 80:120] = True
    stroke = np.zeros((40, 40), np.uint8)
    stroke[18:22, 4:36] = 1
    assert fill_error(smooth, blocked, stroke, (60, 80)) < 1e-4
    noise_var = float(busy.astype(np.float32).var(axis=(0, 1)).sum()) / 255.0**2
    assert 0.3 * noise_var < fill_error(busy, blocked, stroke, (60, 80)) < 3 * noise_var  # type: ignore[operator]
    # a hole with no room beside it: the photo's structure function around it (white noise: 2σ²)
    wide = np.ones((150, 190), np.uint8)
    blocked_all = np.zeros((160, 200), bool)
    blocked_all[5:155, 5:195] = True
    assert fill_error(busy, blocked_all, wide, (5, 5)) == pytest.approx(2 * noise_var, rel=0.3)
    # per pixel, on a photo that varies slowly, the rim (predicted from photo 1 px away) errs less
    # than the middle (predicted from photo far away)
    maps: list[np.ndarray] = []
    soft = cv2.GaussianBlur(busy, (0, 0), 3.0)
    assert fill_error(soft, blocked_all, wide, (5, 5), maps=maps) is not None
    assert len(maps) == 1 and maps[0][0, 0] < maps[0][75, 95] / 3
    assert fill_error(smooth, blocked_all, wide, (5, 5)) < fill_error(busy, blocked_all, wide, (5, 5)) / 10


def test_fill_error_is_not_believed_below_the_holes_own_surroundings() -> None:
    """Every copy beside the hole lands on smooth photo, but the hole sits in a busy patch: the
    structure function measured right around it keeps the estimate from reading ~0."""
    rng = np.random.default_rng(5)
    image = np.repeat(np.linspace(60, 180, 240)[None, :, None], 240, 0).repeat(3, 2)
    image[80:160, 80:160] = rng.integers(0, 256, (80, 80, 3))
    image = image.astype(np.uint8)
    blocked = np.zeros((240, 240), bool)
    blocked[100:140, 100:140] = True
    hole = np.ones((40, 40), np.uint8)
    noise_var = float(image[80:160, 80:160].astype(np.float32).var(axis=(0, 1)).sum()) / 255.0**2
    error = fill_error(image, blocked, hole, (100, 100))
    assert error is not None and error > 0.3 * noise_var  # the copies alone read ~1e-5


def test_a_copy_on_smoother_photo_is_scaled_to_the_holes_own_surroundings() -> None:
    """The copies land on photo whose noise is a quarter as strong as around the hole (and nothing
    around the hole is clean enough for the structure function): each copy's error is scaled up by
    how much busier the hole's ring is, so the estimate reads the hole's true fill error, not 1/16
    of it."""
    rng = np.random.default_rng(7)
    image = 128 + 10 * rng.standard_normal((200, 200, 3))
    image[85:115, 85:115] = 128 + 40 * rng.standard_normal((30, 30, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    blocked = np.zeros((200, 200), bool)
    blocked[87:113, 87:113] = True
    hole = np.zeros((10, 10), np.uint8)
    hole[2:8, 1:9] = 1
    placed = np.zeros((200, 200), np.uint8)
    placed[95:105, 95:105] = hole
    filled = cv2.inpaint(image, placed, 3.0, cv2.INPAINT_TELEA)
    true = float((((filled.astype(np.float32) - image) / 255.0) ** 2).sum(-1)[placed > 0].mean())
    error = fill_error(image, blocked, hole, (95, 95))
    assert error is not None and 0.5 * true < error < 2.0 * true


def test_copies_on_busier_photo_than_the_holes_surroundings_do_not_decide_its_fill_error() -> None:
    """A hole on flat grey, five of its eight copies on busy texture beside the flat part: the copies
    whose surroundings are most like the hole's are the estimate, not the median of all (an opaque
    logo on a grey wall, its copies on the photo beside the wall, was left as it came)."""
    rng = np.random.default_rng(11)
    image = np.full((200, 200, 3), 128, np.uint8)
    image[126:] = rng.integers(0, 256, (74, 200, 3))
    image[:, 126:] = rng.integers(0, 256, (200, 74, 3))
    blocked = np.zeros((200, 200), bool)
    blocked[61:99, 61:99] = True  # the hole and the band a fill reads around it
    hole = np.ones((30, 30), np.uint8)
    error = fill_error(image, blocked, hole, (65, 65))
    noise_var = float(image[130:, 130:].astype(np.float32).var(axis=(0, 1)).sum()) / 255.0**2
    assert error is not None and error < 1e-3 * noise_var


def test_a_wide_hole_in_busier_photo_than_its_clean_surroundings_reads_higher() -> None:
    """No room for copies and the clean photo the structure function reads starts a band away from
    the hole; when the ring right around the hole is busier than that photo (noise 5× as strong),
    the estimate rises by the ratio of their variances, as a copy's would."""
    rng = np.random.default_rng(3)
    calm = np.clip(128 + 8 * rng.standard_normal((120, 120, 3)), 0, 255).astype(np.uint8)
    busy = calm.copy()
    busy[17:103, 17:103] = np.clip(128 + 40 * rng.standard_normal((86, 86, 3)), 0, 255)
    hole = np.ones((80, 80), np.uint8)
    blocked = np.zeros((120, 120), bool)
    blocked[12:108, 12:108] = True
    low, high = fill_error(calm, blocked, hole, (20, 20)), fill_error(busy, blocked, hole, (20, 20))
    assert low is not None and high is not None
    assert 15 < high / low < 40  # variance ratio 25


def test_a_faint_mark_over_texture_is_left_rather_than_smeared() -> None:
    """Filling a faint mark on a busy photo would cost more than the mark: the photo comes back as
    it was (never worse); a strong mark on the same photo is still filled."""
    rng = np.random.default_rng(2)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8), (0, 0), 1.0)
    mask = np.zeros((160, 200), bool)
    mask[50:110, 40:160] = True
    for opacity, filled in ((0.08, False), (0.9, True)):
        marked = photo.copy()
        marked[mask] = np.round((1 - opacity) * photo[mask] + opacity * 255).astype(np.uint8)
        out = build_inpainter("restore").inpaint(InpaintRequest(marked, mask))
        error = [np.abs(x[mask].astype(int) - photo[mask]).mean() for x in (marked, out)]
        if filled:
            assert error[1] < error[0] / 2
        else:
            np.testing.assert_array_equal(out, marked)


def test_a_rough_brush_around_an_opaque_mark_fills_the_mark_not_the_brush() -> None:
    """An opaque word over texture, brushed 6 px wider: filling the whole brush would smear the
    clean rim too; the hole is cut to the mark, and the rim comes back as it was."""
    rng = np.random.default_rng(3)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (160, 240, 3), dtype=np.uint8), (0, 0), 1.5)
    truth = np.zeros((160, 240), np.uint8)
    cv2.putText(truth, "mark", (40, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.8, 1, 3)
    truth = truth > 0
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))
    rough = cv2.dilate(truth.astype(np.uint8), disk) > 0
    marked = photo.copy()
    marked[truth] = 235
    out = build_inpainter("restore").inpaint(InpaintRequest(marked, rough))
    near = cv2.dilate(truth.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))) > 0
    rim = rough & ~near
    assert rim.sum() > 1000
    assert (out[rim] != marked[rim]).any(-1).mean() < 0.2  # filling the whole brush changes all of it
    error = [np.abs(x[truth].astype(int) - photo[truth]).mean() for x in (marked, out)]
    assert error[1] < 0.15 * error[0]
    np.testing.assert_array_equal(out[~rough], marked[~rough])


def test_registered_and_unmarked_mask_changes_nothing() -> None:
    photo = _textured()
    mask = np.zeros(photo.shape[:2], bool)
    mask[20:60, 20:80] = True
    stage = build_inpainter("restore")
    np.testing.assert_array_equal(stage.inpaint(InpaintRequest(photo, mask)), photo)


def test_a_cancelled_job_stops_before_the_fallback_fill() -> None:
    """The inversion and the fill are separate stages: a job nobody waits for skips the fill."""
    _, shape, marked = _marked(1.0, (0.0, 0.0, 0.0))  # opaque: the fill has work to do
    fallback = RecordingFill()
    token = CancelToken()
    token.cancel("test")
    previous = use_token(token)
    try:
        with pytest.raises(JobCancelledError):
            RestoreInpainter(fallback).inpaint(InpaintRequest(marked, shape > 0))
    finally:
        reset_token(previous)
    assert not fallback.masks


def test_unblend_and_restore_read_the_decomposition_maps() -> None:
    assert uses_decomposition("unblend") and uses_decomposition("restore")
    assert not uses_decomposition("opencv") and not uses_decomposition("no-such-inpainter")


@pytest.mark.parametrize("grow", [0, 6])
def test_a_wide_translucent_plate_over_busy_texture_is_inverted(grow: int) -> None:
    """A big one-colour plate on a busy photo: the photo's own step across the outline is as large as
    the mark's, so the fit is judged on the step above texture; a mask grown evenly (a brush, a
    dilation) is shrunk back to the plate. Inverted, not smeared; the clean rim stays as it was."""
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.normal(0, 60, (200, 240, 3)), (0, 0), 1.5)
    photo = np.clip(_textured(200, 240).astype(np.float64) + noise, 0, 255).astype(np.uint8)
    plate = np.zeros((200, 240), np.uint8)
    cv2.rectangle(plate, (50, 40), (190, 160), 1, -1)
    truth = plate > 0
    a = 0.35
    marked = np.round((1 - a) * photo + a * np.array([25.0, 25.0, 30.0])).astype(np.uint8)
    marked[~truth] = photo[~truth]
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    mask = cv2.dilate(plate, disk) > 0 if grow else truth
    fallback = RecordingFill()
    out = RestoreInpainter(fallback).inpaint(InpaintRequest(marked, mask))
    inner = cv2.erode(plate, np.ones((5, 5), np.uint8)) > 0
    before = np.abs(marked[inner].astype(int) - photo[inner]).mean()
    after = np.abs(out[inner].astype(int) - photo[inner]).mean()
    assert after < before / 5  # α0 reads ~0.32 for 0.35 (the gain fit's bias, ISSUE_12_GAIN_FIT)
    assert not fallback.masks or fallback.masks[0][inner].mean() < 0.05  # inverted, not filled
    np.testing.assert_array_equal(out[~mask], marked[~mask])


def test_an_unobservable_opacity_where_the_fill_would_not_pay_is_left_as_it_was() -> None:
    """The photo is busier under the mark than around it, so the outline's spreads say nothing of
    the opacity, and a fill of the wide plate over that texture would not pay. No opacity is guessed
    for an inversion (on held-out sets such guesses, off by 3× and more, made more photos worse than
    they mended): the photo comes back exactly as it came, never worse."""
    rng = np.random.default_rng(4)
    h, w = 160, 200
    plate = np.zeros((h, w), bool)
    plate[40:120, 50:150] = True
    amplitude = np.where(plate, 70.0, 40.0)[..., None]  # busier under the plate
    photo = np.clip(110 + amplitude * cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)), (0, 0), 1.2) * 3, 0, 255)
    photo = photo.astype(np.uint8)
    a = 0.35
    marked = photo.copy()
    marked[plate] = np.round((1 - a) * photo[plate] + a * 255.0).astype(np.uint8)
    fits = fit_marks(marked, plate)
    assert fits and not fits[0].ok and "not observable" in fits[0].reason and fits[0].edge is not None
    stage = RestoreInpainter(RecordingFill())
    np.testing.assert_array_equal(stage.inpaint(InpaintRequest(marked, plate)), marked)
    np.testing.assert_array_equal(stage.inpaint(InpaintRequest(photo, plate)), photo)


def test_the_largest_of_several_mask_components_is_a_guess_of_its_own() -> None:
    # On an exact mask a platform mark's tile and its text lines are apart: the tile alone is fitted
    # too, its outline its own (the whole mask's mixes two colours); neither the departure from the
    # fill (none here) nor any shrink of the mask isolates it.
    mask = np.zeros((80, 160), bool)
    mask[20:60, 10:50] = True  # the tile
    mask[24:36, 60:150] = mask[44:56, 60:150] = True  # two lines of text
    tile = np.zeros_like(mask)
    tile[20:60, 10:50] = True
    guesses = _candidates(mask, np.zeros(mask.shape, np.float32), FitOptions())
    assert [np.array_equal(g, tile) for g in guesses].count(True) == 1
    assert np.array_equal(guesses[-1], tile)


def test_each_mask_components_solid_core_is_a_late_guess() -> None:
    # Two marks, each a tile in the soft halo of its shadow, one strong and one faint: the halo of the
    # strong one departs from its fill more than the faint tile does, so no threshold on the region's
    # departure, nor any shrink of the mask, is either tile's outline; a share of each component's
    # own strong departure is.
    mask = np.zeros((100, 220), bool)
    change = np.zeros(mask.shape, np.float32)
    tiles = []
    for x0, strong in ((20, 0.5), (130, 0.1)):
        mask[10:90, x0 : x0 + 80] = True
        change[10:90, x0 : x0 + 80] = 0.3 * strong  # the halo
        tile = np.zeros_like(mask)
        tile[30:70, x0 + 20 : x0 + 60] = True
        change[tile] = strong
        tiles.append(tile)
    guesses, cores = _candidates(mask, change, FitOptions()), _cores(mask, change, FitOptions())
    assert not any(np.array_equal(g, t) for g in guesses for t in tiles)
    assert len(cores) == 2
    for core, tile in zip(cores, tiles, strict=True):  # the tile, but for its corners (a 3×3 opening)
        assert (core <= tile).all() and core.sum() >= tile.sum() - 4


def _plate(photo: np.ndarray, inner: np.ndarray, opacity: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """A light plate at one opacity whose ``inner`` pixels are dark blue (a logo in its own colours):
    the photo marked, and the plate's mask."""
    plate = np.zeros(photo.shape[:2], np.uint8)
    cv2.rectangle(plate, (40, 60), (200, 140), 1, -1)
    color = np.where(inner[..., None], np.array([0.1, 0.2, 0.6]), np.array([0.95, 0.95, 0.95]))
    return _blend(photo, opacity * plate[..., None], color), plate > 0


def _letters(shape: tuple[int, int]) -> np.ndarray:
    """Thick letters inside the plate of ``_plate`` (16 % of it)."""
    letters = np.zeros(shape, np.uint8)
    cv2.putText(letters, "AB", (70, 125), cv2.FONT_HERSHEY_SIMPLEX, 2.2, 1, 9)
    return letters > 0


def _grainy(h: int = 200, w: int = 260, seed: int = 5) -> np.ndarray:
    """Texture as photos mostly have it: in brightness at two scales, a little in colour."""
    rng = np.random.default_rng(seed)
    coarse, fine = (cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), s) for s in (6.0, 1.5))
    grey = 35.0 * coarse / coarse.std() + 8.0 * fine / fine.std()
    tint = cv2.GaussianBlur(rng.normal(size=(h, w, 3)), (0, 0), 20.0)
    return np.clip(120.0 + grey[..., None] + 10.0 * tint / tint.std(), 0, 255).astype(np.uint8)


def test_a_mark_of_one_opacity_and_two_colours_is_inverted_colour_by_colour() -> None:
    # The outline fit reads the plate's white; inverted with it, the blue letters leave the gamut and
    # the whole plate went to the fill. With a colour per pixel both are inverted.
    photo = _grainy()
    letters = _letters(photo.shape[:2])
    marked, mask = _plate(photo, letters)
    request = InpaintRequest(marked, mask)
    notes = RestoreInpainter(RecordingFill()).plan(request).notes
    assert any("2 colours" in note for note in notes), notes
    out = RestoreInpainter(RecordingFill()).inpaint(request)
    assert psnr(out, photo, mask) > psnr(marked, photo, mask) + 8
    assert psnr(out, photo, letters) > psnr(marked, photo, letters) + 2
    assert np.array_equal(out[~mask], marked[~mask])


def test_each_piece_of_a_colour_is_judged_on_the_outline_on_its_own() -> None:
    # One cluster holds blue letters inside the plate and a red stripe of the photo that crosses it:
    # the stripe continues across the outline under the plate's white, so that piece is the photo's;
    # the letters, inside, stay a colour of the mark (judged as one, they went with the stripe).
    white, blue = np.array([0.95, 0.95, 0.95]), np.array([0.1, 0.2, 0.6])
    photo = _grainy()
    photo[128:138] = (200, 30, 40)
    letters = _letters(photo.shape[:2])
    marked, mask = _plate(photo, letters)
    stripe = np.zeros_like(mask)
    stripe[128:138] = True
    assert not (stripe & letters).any()
    labels = np.where(mask, ((stripe | letters) & mask).astype(np.int32), -1)
    kept = _mark_labels(
        marked.astype(np.float32) / 255.0, 0.45, mask, labels, np.stack([white, blue]).astype(np.float32)
    )
    assert kept is not None and np.array_equal(kept, np.where(mask, letters.astype(np.int32), -1))


def test_colours_are_taken_where_they_leave_the_photo_smoother_than_one() -> None:
    # A white glyph on a green tile: read in two colours, the photo is smoother across the glyph's
    # border than under the tile's green alone. A white bar over a striped texture read in two
    # colours: the split runs through the photo's own stripes, which one colour leaves smooth.
    photo = _textured(200, 260)
    tile = np.zeros((200, 260), np.uint8)
    cv2.rectangle(tile, (40, 70), (100, 130), 1, -1)
    glyph = np.zeros_like(tile)
    cv2.circle(glyph, (70, 100), 14, 1, 5)
    green = np.array([0.2, 0.75, 0.3])
    marked = _blend(photo, 0.35 * tile[..., None], np.where(glyph[..., None] > 0, 1.0, green))
    solid = tile > 0
    j, b = marked.astype(np.float32) / 255.0, background(marked, solid, 5)
    field = colour_field(j, b, 0.35, solid, 0.08, 0.1)
    assert field is not None and smoother(unblend(j, 0.35, green), unblend(j, 0.35, field), field, solid)
    photo[:, :120] = (120, 110, 100)  # the bar's surroundings as the region test draws them
    bar = np.zeros_like(tile)
    cv2.rectangle(bar, (120, 80), (230, 110), 1, -1)
    marked, solid = _blend(photo, 0.35 * bar[..., None], (1.0, 1.0, 1.0)), bar > 0
    j, b = marked.astype(np.float32) / 255.0, background(marked, solid, 5)
    field = colour_field(j, b, 0.35, solid, 0.08, 0.1)
    assert field is not None and not smoother(
        unblend(j, 0.35, np.ones(3)), unblend(j, 0.35, field), field, solid
    )


def test_a_mark_edge_between_two_of_its_colours_is_inverted_with_their_mix() -> None:
    # A white disc on a green tile at one opacity, anti-aliased: along the disc's edge the mark's
    # colour is a mix of the two, which neither inverts (a ring). The field is read as two colours,
    # taken (its borders are judged clear of that edge), and the edge is inverted with the mix.
    photo = _textured(200, 260)
    tile = np.zeros((800, 1040), np.uint8)
    cv2.rectangle(tile, (160, 280), (400, 520), 1, -1)
    disc = np.zeros_like(tile)
    cv2.circle(disc, (280, 400), 70, 1, -1)
    green, white = np.array([0.2, 0.75, 0.3]), np.ones(3)
    sharp = np.where(disc[..., None] > 0, white, green) * tile[..., None]
    cover = cv2.resize(disc.astype(np.float32), (260, 200), interpolation=cv2.INTER_AREA)
    solid = cv2.resize(tile, (260, 200), interpolation=cv2.INTER_NEAREST) > 0
    color = cv2.resize(sharp.astype(np.float32), (260, 200), interpolation=cv2.INTER_AREA)
    marked = _blend(photo, 0.4 * solid[..., None], np.where(solid[..., None], color, 0.0))
    j = marked.astype(np.float32) / 255.0
    field = np.where((cover > 0.5)[..., None], white, green).astype(np.float32)
    one, several = unblend(j, 0.4, green), unblend(j, 0.4, field)
    assert smoother(one, several, field, solid)
    mixed = mix_borders(j, np.full(solid.shape, 0.4, np.float32), field, solid, several)
    edge = solid & (cover > 0.05) & (cover < 0.95)
    truth = photo.astype(np.float32) / 255.0

    def error(img: np.ndarray) -> float:
        return float(np.abs(img[edge] - truth[edge]).mean() * 255.0)

    assert error(mixed) < error(several) / 3, (error(mixed), error(several))
    assert np.array_equal(mixed[~edge & ~solid], several[~edge & ~solid])


def test_a_fitted_colour_out_of_the_gamut_raises_the_gain_until_it_is_a_colour() -> None:
    # A blue tile at 0.38 over dark photo; the outline's gain read low (1.19 for 1.61, as where the
    # photo is busier inside the outline than outside) puts its colour past the gamut. Raised to the
    # least gain whose colour is one, the fit keeps the outline's mean step and comes nearer the truth.
    under, color = np.array([0.1, 0.2, 0.25]), np.array([0.45, 0.66, 0.84])
    mx, my = 0.62 * under + 0.38 * color, under
    low = 1.19
    c, d = gain_in_gamut(low, my - low * mx, mx, 0.02)
    fitted = -d / (c - 1.0)
    assert (-d / (low - 1.0)).max() > 1.1  # the low gain's colour is no colour
    assert fitted.min() >= 0.0 and abs(fitted.max() - 1.0) < 1e-6
    np.testing.assert_allclose(d + c * mx, my, atol=1e-9)  # the same step across the outline
    assert 1.0 - 1.0 / low < 1.0 - 1.0 / c < 0.38
    right = 1.0 / 0.62
    kept, same = gain_in_gamut(right, my - right * mx, mx, 0.02)  # in gamut: as it was
    assert kept == right and np.array_equal(same, my - right * mx)


def test_colour_clusters_are_the_same_whatever_ran_before_and_sampled_on_large_shapes() -> None:
    # Two colours over 150 000 pixels (more than the centres are found on): each pixel its own
    # colour, and the same answer on a second call (a service gives one image one result).
    rng = np.random.default_rng(0)
    truth = rng.random(150_000) < 0.3
    points = np.where(truth[:, None], [0.3, -0.1, 0.0, 0.1], [-0.1, 0.05, 0.05, 0.25])
    points = (points + rng.normal(0, 0.03, points.shape)).astype(np.float32)
    labels, centres = kmeans(points, 2)
    again, _ = kmeans(points, 2)
    assert np.array_equal(labels, again) and centres.shape == (2, 4)
    assert min((labels == truth).mean(), (labels != truth).mean()) == 0.0


def test_a_photo_object_under_the_mark_is_not_taken_for_a_colour_of_it() -> None:
    # A red stripe of the photo crosses a one-colour plate; labelled as a second colour, it continues
    # across the outline under the plate's colour, so it is the photo's. Letters of a second colour
    # inside the plate are the mark's; two shades of one colour are one colour.
    white, blue, red = np.array([0.95, 0.95, 0.95]), np.array([0.1, 0.2, 0.6]), np.array([0.8, 0.1, 0.15])
    photo = _grainy()
    photo[90:112] = (200, 30, 40)
    marked, mask = _plate(photo, np.zeros(photo.shape[:2], bool))
    stripe = np.zeros_like(mask)
    stripe[90:112] = True
    labels = np.where(mask, (stripe & mask).astype(np.int32), -1)
    j = marked.astype(np.float32) / 255.0
    assert _mark_labels(j, 0.45, mask, labels, np.stack([white, red]).astype(np.float32)) is None
    letters = _letters(mask.shape)
    marked, _ = _plate(_grainy(), letters)
    labels = np.where(mask, letters.astype(np.int32), -1)
    j = marked.astype(np.float32) / 255.0
    kept = _mark_labels(j, 0.45, mask, labels, np.stack([white, blue]).astype(np.float32))
    assert kept is not None and np.array_equal(kept, labels)
    assert _mark_labels(j, 0.45, mask, labels, np.stack([white, white - 0.1]).astype(np.float32)) is None


def test_two_shades_of_a_marks_colour_are_merged_and_its_other_colour_is_kept() -> None:
    # A white plate with blue letters, read in three colours: the plate's inside in a darker shade of
    # its white (the reading multiplies the photo's variation by (1 − α0)/α0), the letters blue. The
    # shades are one colour and the letters stay the mark's own (rejected as "two close colours",
    # such a tile went whole to the fill: a platform photo 29.9 → 32.0 dB read in its colours).
    white, blue = np.array([0.95, 0.95, 0.95]), np.array([0.1, 0.2, 0.6])
    letters = _letters((200, 260))
    marked, mask = _plate(_grainy(), letters)
    inner = np.zeros_like(mask)
    inner[80:120, 60:180] = True
    labels = np.where(mask, np.where(letters, 2, (inner & ~letters).astype(np.int32)), -1)
    colours = np.stack([white, white - 0.1, blue]).astype(np.float32)
    kept = _mark_labels(marked.astype(np.float32) / 255.0, 0.45, mask, labels, colours)
    assert kept is not None
    assert np.all(kept[mask & ~letters] == 0) and np.all(kept[mask & letters] == 2)


def test_a_glyph_of_another_colour_inside_a_tile_is_not_made_worse() -> None:
    # An app-icon tile as platform marks draw it: one opacity, a green tile and a white glyph on it.
    # Inverted with the tile's green, the glyph turns purple and stays in gamut (18.3 → 16.8 dB on
    # the tile): its own colour is read because it leaves the photo smoother across its border.
    photo = _textured(200, 260)
    tile = np.zeros((200, 260), np.float32)
    cv2.rectangle(tile, (40, 70), (100, 130), 1.0, -1)
    glyph = np.zeros((200, 260), np.float32)
    cv2.circle(glyph, (70, 100), 14, 1.0, 5)
    a = 0.35 * tile[..., None]
    color = np.where(glyph[..., None] > 0, np.array([1.0, 1.0, 1.0]), np.array([0.2, 0.75, 0.3]))
    marked = _blend(photo, a, color)
    mask = tile > 0
    restorer = RestoreInpainter("opencv")
    assert any("2 colours" in note for note in restorer.plan(InpaintRequest(marked, mask)).notes)
    out = restorer.inpaint(InpaintRequest(marked, mask))
    assert psnr(out, photo, mask) > psnr(marked, photo, mask) + 1.5
    assert psnr(out, photo, glyph > 0) >= psnr(marked, photo, glyph > 0)
