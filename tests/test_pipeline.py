"""Mask refinement, segmentation at any size, and the Remover flow on tiny real components."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import WatermarkSegmenter, build_segmenter
from pipeline.errors import InvalidMaskError, InvalidParameterError, ModelNotAvailableError
from pipeline.factory import build_remover, resolve_inpainter_name
from pipeline.inpaint.opencv import OpenCVInpainter
from pipeline.masks import MaskRefiner
from pipeline.options import SegmentOptions
from pipeline.segment import Segmenter, SegmentOutput


def test_refiner_thresholds_drops_specks_and_dilates() -> None:
    prob = np.zeros((100, 100), np.float32)
    prob[40:60, 40:60] = 0.9  # a mark
    prob[5, 5] = 0.99  # a speck
    prob[80:82, 80:82] = 0.4  # below threshold
    mask = MaskRefiner(threshold=0.5, min_area=4, dilate=3).refine(prob)
    assert mask.dtype == bool and mask.shape == prob.shape
    assert not mask[5, 5] and not mask[81, 81]
    assert mask[37, 50] and mask[50, 62] and not mask[36, 50]  # grown by exactly 3 px
    assert not mask[37, 37]  # elliptic kernel: corners are rounded


@pytest.mark.parametrize(("threshold", "dilate"), [(0.0, 1), (1.0, 1), (0.5, -1), (0.5, 10_000)])
def test_refiner_rejects_bad_options(threshold: float, dilate: int) -> None:
    with pytest.raises(InvalidParameterError):
        SegmentOptions.of(threshold=threshold, dilate=dilate)
    with pytest.raises(InvalidParameterError):
        MaskRefiner(threshold=threshold, min_area=16, dilate=dilate)


@pytest.mark.parametrize("shape", [(17, 1), (50, 70), (300, 200), (900, 1300)])
def test_segmenter_output_matches_any_input_size(tiny_segmenter_dir: Path, shape: tuple[int, int]) -> None:
    seg = Segmenter.from_pretrained(tiny_segmenter_dir, device="cpu", max_side=512, max_tile_pixels=128 * 128)
    out = seg.predict(np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8))
    assert out.prob.shape == shape and out.alpha.shape == shape and out.color.shape == (*shape, 3)
    assert out.prob.dtype == np.float32 and out.prob.min() >= 0 and out.prob.max() <= 1


def test_tiling_matches_a_single_pass(tiny_segmenter_dir: Path, photo: np.ndarray) -> None:
    """Tiles are a memory measure: away from seams the result must equal the one-pass result."""
    whole = Segmenter.from_pretrained(tiny_segmenter_dir, device="cpu", max_side=4096, max_tile_pixels=10**8)
    tiled = Segmenter.from_pretrained(
        tiny_segmenter_dir, device="cpu", max_side=4096, max_tile_pixels=128 * 128
    )
    a, b = whole.predict(photo).prob, tiled.predict(photo).prob
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_save_load_round_trip_is_fp16_exact(tmp_path: Path) -> None:
    import torch

    model = build_segmenter("tiny", heads=("mask", "alpha"))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o044 == 0o044  # readable by others
    loaded = WatermarkSegmenter.from_pretrained(tmp_path)
    assert loaded.heads == ("mask", "alpha")
    for key, value in model.state_dict().items():
        expected = value.half().float() if value.is_floating_point() else value
        assert torch.equal(loaded.state_dict()[key], expected), key


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="no segmenter weights"):
        build_remover(segmenter=tmp_path / "nothing-here")


def test_auto_picks_restore() -> None:
    assert resolve_inpainter_name("auto", diffusion_model=None, device="cpu", heads=("mask",)) == "restore"
    assert resolve_inpainter_name("auto", diffusion_model="x", device="cuda", heads=("mask",)) == "restore"
    assert resolve_inpainter_name("opencv", diffusion_model="x", device="cuda") == "opencv"


def test_restore_fills_with_the_texture_fill_under_its_configured_budget(tiny_segmenter_dir: Path) -> None:
    remover = build_remover(segmenter=tiny_segmenter_dir, texture_fill_max_pixels=1234)
    fill = remover.inpainters["restore"].fallback  # type: ignore[attr-defined]
    assert isinstance(fill, OpenCVInpainter)
    assert (fill.method, fill.fsr_max_pixels) == ("fsr", 1234)
    with pytest.raises(InvalidParameterError, match="texture_fill_max_pixels"):
        build_remover(segmenter=tiny_segmenter_dir, texture_fill_max_pixels=-1)


@pytest.mark.parametrize("inpainter", ["opencv", "unblend", "restore"])
def test_remover_never_changes_pixels_outside_the_mask(
    tiny_segmenter_dir: Path, photo: np.ndarray, inpainter: str
) -> None:
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter=inpainter, threshold=0.5)
    result = remover.remove(photo)
    assert result.image.shape == photo.shape and result.image.dtype == np.uint8
    np.testing.assert_array_equal(result.image[~result.mask], photo[~result.mask])
    assert {"segment", "refine", "inpaint"} <= set(result.timings)


def test_unblend_is_checked_by_the_loaded_segmenter(tiny_segmenter_dir: Path, photo: np.ndarray) -> None:
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="unblend")
    stage = remover.inpainters["unblend"]
    assert remover.segmenter is not None
    verifier = stage.verifier  # type: ignore[attr-defined]
    np.testing.assert_array_equal(verifier(photo), remover.segmenter.predict(photo).prob)


def test_user_mask_skips_segmentation_and_is_used_as_given(
    tiny_segmenter_dir: Path, photo: np.ndarray
) -> None:
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[100:140, 100:200] = 255
    result = remover.remove(photo, mask)
    assert "segment" not in result.timings
    np.testing.assert_array_equal(result.mask, mask > 0)
    np.testing.assert_array_equal(result.image[mask == 0], photo[mask == 0])
    assert not np.array_equal(result.image[mask > 0], photo[mask > 0])


def test_a_callers_prediction_is_restored_as_the_product_path_restores_it(
    tiny_segmenter_dir: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Evaluation hands the Remover a prediction it already has: with no mask, its refined mask is
    # restored without a second prediction, and the restoration knows the mask is the segmenter's
    # (its probabilities come along), as when the Remover predicts the mask itself.
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")
    prob = np.zeros(photo.shape[:2], np.float32)
    prob[100:140, 100:200] = 0.9
    seen = []
    stage = remover.inpainters["opencv"]
    monkeypatch.setattr(stage, "inpaint", lambda request: seen.append(request) or request.image.copy())
    result = remover.remove(photo, segmentation=SegmentOutput(prob=prob))
    assert "segment" not in result.timings
    np.testing.assert_array_equal(result.mask, remover.refiner.refine(prob))
    assert seen[0].prob is prob


def test_user_mask_of_the_wrong_size_is_refused(tiny_segmenter_dir: Path, photo: np.ndarray) -> None:
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")
    with pytest.raises(InvalidMaskError, match="320x240"):
        remover.remove(photo, np.zeros((10, 10), bool))


def test_unknown_inpainter_is_a_parameter_error(tiny_segmenter_dir: Path, photo: np.ndarray) -> None:
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")
    with pytest.raises(InvalidParameterError, match="not loaded"):
        remover.remove(photo, inpainter="nope")


def test_refiner_returns_no_mask_when_no_mark_is_present() -> None:
    prob = np.zeros((50, 50), np.float32)
    prob[10:30, 10:30] = 0.95
    refiner = MaskRefiner(threshold=0.5, min_area=16, dilate=4, presence_threshold=0.6)
    assert refiner.refine(prob).any()  # no presence head: the pixels decide
    assert refiner.refine(prob, presence=0.7).any()
    assert not refiner.refine(prob, presence=0.3).any()
    with pytest.raises(InvalidParameterError):
        MaskRefiner(threshold=0.5, min_area=16, dilate=4, presence_threshold=1.5)


def test_segmenter_reports_presence_in_one_pass_and_tiled(tmp_path: Path, photo: np.ndarray) -> None:
    import torch

    torch.manual_seed(0)
    directory = build_segmenter("tiny", heads=("mask", "alpha", "color"), presence=True).save_pretrained(
        tmp_path
    )
    whole = Segmenter.from_pretrained(directory, device="cpu", max_side=1024).predict(photo)
    tiled = Segmenter.from_pretrained(
        directory, device="cpu", max_side=1024, max_tile_pixels=64 * 64
    ).predict(photo)
    assert whole.presence is not None and 0.0 <= whole.presence <= 1.0
    assert tiled.presence is not None and 0.0 <= tiled.presence <= 1.0


def test_remover_leaves_a_photo_untouched_when_no_mark_is_found(
    no_mark_segmenter_dir: Path, photo: np.ndarray
) -> None:
    directory = no_mark_segmenter_dir
    remover = build_remover(segmenter=directory, inpainter="opencv", presence_threshold=0.5)
    result = remover.remove(photo)
    assert not result.found and not result.mask.any() and result.presence < 0.01
    np.testing.assert_array_equal(result.image, photo)
    loose = build_remover(segmenter=directory, inpainter="opencv", presence_threshold=0.0).remove(photo)
    assert loose.found and loose.mask.all()  # the same model without the decision repaints everything


def test_bench_times_the_flow_and_the_restoration_on_the_marks_own_mask(tiny_segmenter_dir: Path) -> None:
    """``markless bench`` reports per-stage medians and, on the mark's own mask, the restoration's cost
    per masked megapixel, which does not depend on what the segmenter finds."""
    from pipeline.bench import bench_mark, bench_tiled, run_bench
    from pipeline.factory import build_remover

    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv", extra_inpainters=("opencv",))
    rows = run_bench(remover, [96], runs=1, modes=["opencv"])
    row = rows[0]
    assert {"decode", "segment", "encode", "total", "remove"} <= set(row["median_ms"])
    mark = bench_mark(96)[1]
    assert row["given_mask"]["mask_coverage"] == round(float(mark.mean()), 4) > 0
    assert row["given_mask"]["inpaint_ms_per_masked_mp"] > 0
    tiled = bench_tiled(96)[1]  # a tiled stamp on its own mask: the repeat estimate is timed too
    assert row["given_tiled_mask"]["mask_coverage"] == round(float(tiled.mean()), 4) > 0
    assert row["given_tiled_mask"]["inpaint_ms_per_masked_mp"] > 0
