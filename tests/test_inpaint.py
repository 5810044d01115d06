"""The restoration stage: per-region crops, OpenCV and diffusion inpainters (tiny random model, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import InvalidMaskError, InvalidParameterError, ModelNotAvailableError
from pipeline.inpaint.base import InpaintRequest, build_inpainter
from pipeline.inpaint.diffusion import DiffusionInpainter
from pipeline.inpaint.opencv import OpenCVInpainter
from pipeline.inpaint.regions import (
    feather_weights,
    find_regions,
    inpaint_regions,
    inpaint_regions_batched,
    plan_regions,
    work_size,
)
from pipeline.masks import MaskRefiner
from pipeline.options import RemoveOptions
from pipeline.remover import Remover
from tests.dummy_diffusion import TINY_NATIVE_SIZE

# -- fixtures & helpers -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def diffusion(tiny_inpaint_dir: Path) -> DiffusionInpainter:
    """Loaded through the registry, exactly as the product does."""
    inpainter = build_inpainter("diffusion", model=str(tiny_inpaint_dir), device="cpu", steps=2)
    assert isinstance(inpainter, DiffusionInpainter)
    return inpainter


class SpyPipe:
    """Wraps a diffusers pipeline and records what each call was given."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.pipe(**kwargs)


@pytest.fixture
def spy(diffusion: DiffusionInpainter, monkeypatch: pytest.MonkeyPatch) -> SpyPipe:
    wrapper = SpyPipe(diffusion.pipe)
    monkeypatch.setattr(diffusion, "pipe", wrapper)
    return wrapper


def coordinate_image(height: int, width: int) -> np.ndarray:
    """R encodes x, G encodes y (each over 0..255), B is a texture: crops reveal where they came from."""
    yy, xx = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(1)
    return np.stack(
        [xx * 255 // (width - 1), yy * 255 // (height - 1), rng.integers(0, 256, (height, width))], axis=-1
    ).astype(np.uint8)


def box_mask(shape: tuple[int, int], *boxes: tuple[int, int, int, int]) -> np.ndarray:
    """Bool mask with the given (x0, y0, x1, y1) rectangles set."""
    mask = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def noise_fill(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A fill that changes every pixel of the crop, masked or not (the worst-behaved inpainter)."""
    return np.asarray(255 - crop, dtype=np.uint8)


# -- regions ------------------------------------------------------------------------------------


def test_close_components_merge_and_far_ones_stay_apart() -> None:
    mask = box_mask((400, 600), (100, 100, 120, 120), (130, 100, 150, 120), (500, 300, 520, 320))
    boxes = find_regions(mask, margin=0.0, min_margin=8)
    assert boxes == [(100, 100, 150, 120), (500, 300, 520, 320)]
    # With a tiny margin the two close letters are separate regions too.
    assert len(find_regions(mask, margin=0.0, min_margin=2)) == 3
    # A huge margin folds everything into one region.
    assert find_regions(mask, margin=0.0, min_margin=400) == [(100, 100, 520, 320)]


def test_merging_cascades_when_merged_group_grows() -> None:
    # A and B merge; the merged box is larger, so its relative margin reaches C, which neither
    # A nor B alone would have reached.
    mask = box_mask((200, 400), (10, 90, 50, 110), (60, 90, 100, 110), (125, 90, 135, 110))
    assert find_regions(mask, margin=0.25, min_margin=0) == [(10, 90, 135, 110)]


def test_many_small_components_are_cheap_and_grouped() -> None:
    # A tiled text mark: hundreds of letter-sized blobs over the frame become one region.
    mask = np.zeros((600, 800), dtype=bool)
    mask[10:590:12, 10:790:9] = True
    regions = plan_regions(mask, margin=0.0, min_margin=8)
    assert len(regions) == 1
    assert regions[0].own.sum() == mask.sum()


def test_large_region_is_one_crop_of_the_whole_image() -> None:
    mask = box_mask((300, 500), (5, 5, 495, 295))
    (region,) = plan_regions(mask, target_size=64, multiple=8)
    assert region.crop == (0, 0, 500, 300)
    w, h = region.work_size
    assert w % 8 == 0 and h % 8 == 0
    assert abs(w * h - 64 * 64) / (64 * 64) < 0.3


def test_crop_is_shifted_not_shrunk_at_borders_and_respects_min_crop_and_aspect() -> None:
    mask = box_mask((768, 1024), (1000, 0, 1024, 10))  # top-right corner
    (region,) = plan_regions(mask, margin=0.25, min_margin=16, target_size=512, min_crop=256)
    x0, y0, x1, y1 = region.crop
    assert (x1 - x0, y1 - y0) == (256, 256)
    assert (x1, y0) == (1024, 0)
    assert region.work_size == (512, 512)
    # A wide banner gets a crop no wider than max_aspect times its height.
    banner = box_mask((768, 1024), (100, 700, 900, 730))
    (wide,) = plan_regions(banner, target_size=512, max_aspect=2.0)
    cw, ch = wide.crop_size
    assert cw / ch <= 2.0 + 1e-6
    assert wide.crop[0] <= 100 and wide.crop[2] >= 900


@pytest.mark.parametrize(
    ("crop", "target", "expected"),
    [
        ((300, 300), 512, (512, 512)),
        ((1000, 500), 512, (728, 360)),
        ((37, 91), None, (37, 91)),
        ((2000, 10), 512, (728, 360)),  # a sliver is stretched to the aspect limit
    ],
)
def test_work_size(crop: tuple[int, int], target: int | None, expected: tuple[int, int]) -> None:
    assert work_size(crop, target, 8, max_aspect=2.0) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(8, 90), st.integers(8, 90)),
    density=st.floats(0.0, 0.2),
    target=st.sampled_from([None, 32, 64]),
    min_margin=st.integers(0, 12),
)
def test_plan_invariants(
    seed: int, shape: tuple[int, int], density: float, target: int | None, min_margin: int
) -> None:
    """Crops lie in the image and contain their region; every mask pixel is owned exactly once."""
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    regions = plan_regions(mask, margin=0.25, min_margin=min_margin, target_size=target, min_crop=10)
    owned = np.zeros(shape, dtype=np.int32)
    for r in regions:
        x0, y0, x1, y1 = r.crop
        bx0, by0, bx1, by1 = r.bbox
        assert 0 <= x0 <= bx0 < bx1 <= x1 <= shape[1]
        assert 0 <= y0 <= by0 < by1 <= y1 <= shape[0]
        assert r.own.shape == (y1 - y0, x1 - x0)
        owned[y0:y1, x0:x1] += r.own
        if target is not None:
            assert r.work_size[0] % 8 == 0 and r.work_size[1] % 8 == 0
    np.testing.assert_array_equal(owned, mask.astype(np.int32))


@pytest.mark.parametrize("target", [None, 64])
@pytest.mark.parametrize("feather", [0, 3])
def test_outside_mask_is_bit_identical_even_when_fill_changes_everything(
    target: int | None, feather: int
) -> None:
    image = coordinate_image(240, 320)
    mask = box_mask((240, 320), (0, 0, 30, 12), (150, 100, 190, 140), (300, 220, 320, 240))
    out = inpaint_regions(image, mask, noise_fill, target_size=target, feather_px=feather)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert (out[mask] != image[mask]).mean() > 0.9


def test_fill_sees_every_mask_pixel_in_its_crop_including_neighbours() -> None:
    # Two groups far enough apart not to merge, close enough for their min-size crops to overlap:
    # each fill must see the other group's pixels as holes, not as watermark context.
    mask = box_mask((200, 200), (40, 90, 50, 100), (80, 90, 90, 100))
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def fill(crop: np.ndarray, crop_mask: np.ndarray) -> np.ndarray:
        seen.append((crop, crop_mask))
        return np.zeros_like(crop)

    out = inpaint_regions(
        np.full((200, 200, 3), 200, np.uint8), mask, fill, margin=0, min_margin=4, min_crop=100
    )
    assert len(seen) == 2
    for _, crop_mask in seen:
        assert crop_mask.sum() == mask.sum()  # both boxes lie in each 100x100 crop
    assert (out[mask] == 0).all() and (out[~mask] == 200).all()


def test_batched_fill_groups_same_size_crops() -> None:
    mask = box_mask((300, 900), (50, 50, 60, 60), (450, 50, 460, 60), (850, 250, 860, 260))
    batches: list[int] = []

    def fill_batch(crops: Any, masks: Any) -> list[np.ndarray]:
        batches.append(len(crops))
        return [np.zeros_like(c) for c in crops]

    image = np.full((300, 900, 3), 50, np.uint8)
    out = inpaint_regions_batched(image, mask, fill_batch, max_batch=2, target_size=32, min_crop=40)
    assert batches == [2, 1]
    assert (out[mask] == 0).all() and (out[~mask] == 50).all()


def test_feather_weights_ramp_inside_the_mask_only() -> None:
    mask = box_mask((40, 40), (0, 10, 30, 30))  # touches the left border
    w = feather_weights(mask, 3)
    assert (w[~mask] == 0).all()
    assert (w[mask] > 0).all() and w.max() == 1.0
    assert w[20, 29] == pytest.approx(0.25)  # outermost masked pixel: 1 / (feather + 1)
    assert w[20, 0] == 1.0  # the image border is no seam: not feathered


def test_empty_mask_calls_nothing_and_bad_mask_is_a_typed_error() -> None:
    image = np.zeros((20, 30, 3), np.uint8)

    def fail(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise AssertionError("fill called for an empty mask")

    out = inpaint_regions(image, np.zeros((20, 30), bool), fail)
    np.testing.assert_array_equal(out, image)
    assert out is not image
    with pytest.raises(InvalidMaskError):
        inpaint_regions(image, np.zeros((30, 20), bool), fail)


# -- OpenCV -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_opencv_per_crop_equals_full_frame(method: str, photo: np.ndarray) -> None:
    """Cropping with a margin is a pure speed-up: the fill is exactly the full-frame one."""
    mask = box_mask(photo.shape[:2], (0, 0, 25, 15), (100, 100, 140, 112), (300, 200, 320, 240))
    mask[60:63, :] = True  # a thin line across the whole width, touching both borders
    inpainter = build_inpainter("opencv", method=method)
    out = inpainter.inpaint(InpaintRequest(image=photo, mask=mask))
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    full = cv2.inpaint(photo, mask.astype(np.uint8), inpainter.radius, flag)
    np.testing.assert_array_equal(out, full)
    np.testing.assert_array_equal(out[~mask], photo[~mask])


def test_opencv_restores_a_smooth_background() -> None:
    yy, xx = np.mgrid[0:120, 0:160]
    clean = np.stack([xx * 1.2, yy * 1.5, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    marked = clean.copy()
    mask = box_mask((120, 160), (60, 50, 100, 58))
    marked[mask] = 255  # a white bar "watermark"
    out = OpenCVInpainter(radius=5).inpaint(InpaintRequest(image=marked, mask=mask))
    error = np.abs(out[mask].astype(int) - clean[mask].astype(int)).mean()
    assert error < 3.0  # the bar itself was ~130 levels off


def _stripes(h: int = 160, w: int = 200) -> np.ndarray:
    """Texture a smooth fill cannot continue: diagonal stripes with a 9-px period."""
    yy, xx = np.mgrid[0:h, 0:w]
    v = 128 + 90 * np.sin(2 * np.pi * (xx + 0.5 * yy) / 9.0)
    return np.stack([v, 0.6 * v + 40, 255 - v], -1).clip(0, 255).astype(np.uint8)


def test_fsr_continues_texture_in_a_wide_hole_and_leaves_thin_ones_to_telea() -> None:
    clean = _stripes()
    wide = box_mask(clean.shape[:2], (70, 50, 110, 90))
    thin = box_mask(clean.shape[:2], (20, 130, 180, 132))  # a 2-px stroke
    marked = clean.copy()
    marked[wide | thin] = 255
    request = InpaintRequest(image=marked, mask=wide | thin)
    fsr = build_inpainter("opencv", method="fsr").inpaint(request)
    telea = build_inpainter("opencv").inpaint(request)
    err = {
        name: np.abs(out[wide].astype(int) - clean[wide]).mean()
        for name, out in (("fsr", fsr), ("telea", telea))
    }
    assert err["fsr"] < err["telea"] / 2  # the stripes go on through the hole
    np.testing.assert_array_equal(fsr[thin], telea[thin])
    np.testing.assert_array_equal(fsr[~(wide | thin)], marked[~(wide | thin)])
    # over the pixel budget the request gets Telea alone: time stays bounded
    capped = build_inpainter("opencv", method="fsr", fsr_max_pixels=100).inpaint(request)
    np.testing.assert_array_equal(capped, telea)


@pytest.mark.parametrize(
    ("kwargs"), [{"method": "fast"}, {"radius": 0}, {"radius": 1000}, {"method": "fsr", "fsr_max_pixels": -1}]
)
def test_opencv_rejects_bad_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        build_inpainter("opencv", **kwargs)


# -- diffusion ----------------------------------------------------------------------------------


def test_diffusion_loads_from_folder_and_reads_native_size(diffusion: DiffusionInpainter) -> None:
    assert diffusion.native_size == TINY_NATIVE_SIZE
    assert diffusion.device == "cpu"
    assert diffusion.strength == 1.0  # the SD inpainting pipeline's own default


def test_remove_on_a_big_image_diffuses_only_the_crop(diffusion: DiffusionInpainter, spy: SpyPipe) -> None:
    image = coordinate_image(768, 1024)
    mask = box_mask((768, 1024), (700, 200, 724, 224))
    remover = Remover(
        None,
        MaskRefiner(threshold=0.5, min_area=16, dilate=4),
        {"diffusion": diffusion},
        default_inpainter="diffusion",
    )
    result = remover.remove(image, mask, seed=3)

    assert len(spy.calls) == 1
    call = spy.calls[0]
    size = TINY_NATIVE_SIZE
    assert call["image"].shape == (1, size, size, 3)
    assert call["mask_image"].shape == (1, size, size, 1)
    assert (call["height"], call["width"]) == (size, size)
    assert call["num_inference_steps"] == 2
    # The crop's coordinate colours put its centre on the mark's centre (712, 212).
    crop = call["image"][0] * 255
    cx = crop[..., 0].mean() / 255 * 1023
    cy = crop[..., 1].mean() / 255 * 767
    assert abs(cx - 712) < 6 and abs(cy - 212) < 6
    # The mark is centred in the crop and covers a proportionate part of it.
    ys, xs = np.nonzero(call["mask_image"][0, ..., 0])
    assert abs(xs.mean() - size / 2) < 3 and abs(ys.mean() - size / 2) < 3

    np.testing.assert_array_equal(result.image[~mask], image[~mask])
    assert (result.image[mask] != image[mask]).any()


def test_regions_of_equal_size_share_one_call(
    diffusion: DiffusionInpainter, spy: SpyPipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = coordinate_image(300, 800)
    mask = box_mask((300, 800), (20, 20, 40, 40), (700, 250, 720, 270))
    request = InpaintRequest(image=image, mask=mask, options=RemoveOptions(seed=11))
    batched = diffusion.inpaint(request)
    assert [c["image"].shape[0] for c in spy.calls] == [2]
    monkeypatch.setattr(diffusion, "max_batch", 1)
    one_by_one = diffusion.inpaint(request)
    assert [c["image"].shape[0] for c in spy.calls[1:]] == [1, 1]
    # Region i is seeded with seed + i whatever the batching.
    assert np.abs(batched.astype(int) - one_by_one.astype(int)).max() <= 1


def test_diffusion_is_reproducible_for_a_seed(diffusion: DiffusionInpainter) -> None:
    image = coordinate_image(200, 260)
    mask = box_mask((200, 260), (100, 80, 140, 110))
    first = diffusion.inpaint(InpaintRequest(image=image, mask=mask, options=RemoveOptions(seed=123)))
    again = diffusion.inpaint(InpaintRequest(image=image, mask=mask, options=RemoveOptions(seed=123)))
    other = diffusion.inpaint(InpaintRequest(image=image, mask=mask, options=RemoveOptions(seed=124)))
    np.testing.assert_array_equal(first, again)
    assert (first[mask] != other[mask]).any()
    drawn = diffusion.inpaint(InpaintRequest(image=image, mask=mask))
    assert diffusion.last_seed is not None
    replay = diffusion.inpaint(
        InpaintRequest(image=image, mask=mask, options=RemoveOptions(seed=diffusion.last_seed))
    )
    np.testing.assert_array_equal(drawn, replay)


def test_diffusion_handles_masks_touching_borders(diffusion: DiffusionInpainter) -> None:
    image = coordinate_image(150, 220)
    mask = box_mask((150, 220), (0, 0, 30, 20), (200, 130, 220, 150), (0, 70, 220, 74))
    out = diffusion.inpaint(InpaintRequest(image=image, mask=mask, options=RemoveOptions(seed=0)))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert (out[mask] != image[mask]).mean() > 0.5


def test_native_size_override_changes_the_work_size(tiny_inpaint_dir: Path) -> None:
    inpainter = build_inpainter(
        "diffusion", model=str(tiny_inpaint_dir), device="cpu", steps=2, native_size=32
    )
    spy = SpyPipe(inpainter.pipe)
    inpainter.pipe = spy  # type: ignore[attr-defined]
    mask = box_mask((100, 100), (40, 40, 50, 50))
    inpainter.inpaint(
        InpaintRequest(image=coordinate_image(100, 100), mask=mask, options=RemoveOptions(seed=0))
    )
    assert spy.calls[0]["image"].shape == (1, 32, 32, 3)


@pytest.mark.parametrize(
    "overrides",
    [
        {"steps": 0},
        {"steps": 151},
        {"steps": 2.5},
        {"strength": 0.0},
        {"strength": 1.5},
        {"guidance_scale": -1.0},
        {"guidance_scale": 31.0},
        {"seed": -1},
        {"steps": 3, "strength": 0.2},  # int(3 * 0.2) = 0 denoising steps
    ],
)
def test_bad_request_options_are_typed_errors(
    diffusion: DiffusionInpainter, overrides: dict[str, Any]
) -> None:
    image = coordinate_image(64, 64)
    mask = box_mask((64, 64), (10, 10, 20, 20))
    with pytest.raises(InvalidParameterError):
        diffusion.inpaint(InpaintRequest(image=image, mask=mask, options=RemoveOptions.of(**overrides)))


@pytest.mark.parametrize(
    "kwargs",
    [{"steps": 0}, {"guidance_scale": 99.0}, {"strength": 2.0}, {"dtype": "float64"}, {"device": "tpu"}],
)
def test_bad_constructor_options_are_typed_errors(tiny_inpaint_dir: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        build_inpainter("diffusion", model=str(tiny_inpaint_dir), **{"device": "cpu", **kwargs})


@pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument is deprecated")
def test_missing_models_are_model_not_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        build_inpainter("diffusion", model=str(tmp_path / "nope"), device="cpu")
    (tmp_path / "weights.ckpt").write_bytes(b"not a pipeline")
    with pytest.raises(ModelNotAvailableError, match="not a pipeline folder"):
        build_inpainter("diffusion", model=str(tmp_path / "weights.ckpt"), device="cpu")
    with pytest.raises(ModelNotAvailableError, match=r"model_index\.json"):
        build_inpainter("diffusion", model=str(tmp_path), device="cpu")
    # A hub id that is not cached, with offline mode from the environment: no network is tried.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="markless download nobody/no-such-inpainting"):
        build_inpainter("diffusion", model="nobody/no-such-inpainting", device="cpu", cache_dir=str(tmp_path))


@pytest.mark.gpu
def test_diffusion_on_cuda_in_half_precision(tiny_inpaint_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    inpainter = build_inpainter("diffusion", model=str(tiny_inpaint_dir), device="cuda", steps=2)
    assert isinstance(inpainter, DiffusionInpainter)
    assert inpainter.dtype == torch.float16  # dtype="auto" on a GPU
    image = coordinate_image(300, 400)
    mask = box_mask((300, 400), (100, 100, 130, 120), (390, 0, 400, 300))
    first = inpainter.inpaint(InpaintRequest(image=image, mask=mask, options=RemoveOptions(seed=9)))
    again = inpainter.inpaint(InpaintRequest(image=image, mask=mask, options=RemoveOptions(seed=9)))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[~mask], image[~mask])


def test_texture_fill_at_the_frame_edge_continues_the_photo() -> None:
    """A wide hole touching the frame's edge (a corner or edge mark): FSR, given no photo beyond the
    edge, returned garbage there (a bright green bar on a grey wall); mirrored out, it continues
    the photo like Telea does."""
    yy, xx = np.mgrid[0:120, 0:200].astype(np.float32)
    photo = np.stack(
        [120 + 0.2 * xx + 6 * np.sin(xx / 5), 125 + 0.1 * yy + 6 * np.cos(yy / 4), 110 + 0 * xx], -1
    )
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    mask = np.zeros((120, 200), bool)
    mask[95:, 40:170] = True  # 25 px tall, on the bottom edge
    for method in ("fsr", "telea"):
        out = build_inpainter("opencv", method=method).inpaint(InpaintRequest(photo, mask))
        assert np.abs(out[mask].astype(int) - photo[mask]).mean() < 8, method
