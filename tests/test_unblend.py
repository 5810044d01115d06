"""Blend inversion: exact on a synthetic blend, routes opaque pixels to the fallback, never touches the outside."""

from __future__ import annotations

import numpy as np

from pipeline.inpaint.base import InpaintRequest
from pipeline.inpaint.unblend import UnblendInpainter


class RecordingFill:
    """A fallback that paints a known colour and records the mask it was handed (test double)."""

    name = "recording"

    def __init__(self) -> None:
        self.masks: list[np.ndarray] = []

    def inpaint(self, request: InpaintRequest) -> np.ndarray:
        self.masks.append(request.mask.copy())
        out = request.image.copy()
        out[request.mask] = (7, 7, 7)
        return out


def _blend(photo: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> np.ndarray:
    j = (1 - alpha[..., None]) * photo.astype(np.float64) / 255 + alpha[..., None] * color
    return np.round(j * 255).astype(np.uint8)


def test_inversion_is_exact_on_a_known_blend(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    alpha[60:180, 80:240] = np.linspace(0.15, 0.7, 160, dtype=np.float32)[None, :]
    color = np.ones((h, w, 3), np.float32)  # a white mark
    marked = _blend(photo, alpha, color)
    mask = alpha > 0
    fallback = RecordingFill()
    out = UnblendInpainter(fallback).inpaint(InpaintRequest(marked, mask, alpha=alpha, color=color))
    err = np.abs(out[mask].astype(int) - photo[mask].astype(int))
    # Quantisation of the blend to 8 bits, amplified at most by 1 / (1 − 0.7).
    assert err.max() <= 3
    assert not fallback.masks  # nothing needed inventing
    before = np.abs(marked[mask].astype(int) - photo[mask].astype(int)).mean()
    assert err.mean() < before / 10


def test_opaque_core_goes_to_the_fallback(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    alpha[50:150, 50:150] = 0.5
    alpha[90:110, 90:110] = 0.97  # the opaque core of the mark
    color = np.zeros((h, w, 3), np.float32)
    marked = _blend(photo, alpha, color)
    mask = alpha > 0
    fallback = RecordingFill()
    out = UnblendInpainter(fallback, alpha_ceiling=0.85).inpaint(
        InpaintRequest(marked, mask, alpha=alpha, color=color)
    )
    handed = fallback.masks[0]
    assert handed[90:110, 90:110].all()
    assert not handed[60:80, 60:80].any()
    assert (out[95:105, 95:105] == 7).all()
    assert np.abs(out[60:80, 60:80].astype(int) - photo[60:80, 60:80].astype(int)).max() <= 2


def test_missed_alpha_where_segmenter_is_sure_is_inpainted(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[20:40, 20:60] = True
    alpha = np.zeros((h, w), np.float32)  # the decomposition head missed the mark entirely
    prob = mask.astype(np.float32)
    fallback = RecordingFill()
    request = InpaintRequest(photo, mask, prob=prob, alpha=alpha, color=np.zeros((h, w, 3), np.float32))
    UnblendInpainter(fallback).inpaint(request)
    assert fallback.masks and fallback.masks[0][mask].all()


def test_dilation_band_without_opacity_is_kept(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[20:40, 20:60] = True
    prob = np.zeros((h, w), np.float32)  # only in the mask because of dilation
    alpha = np.zeros((h, w), np.float32)
    fallback = RecordingFill()
    request = InpaintRequest(photo, mask, prob=prob, alpha=alpha, color=np.zeros((h, w, 3), np.float32))
    out = UnblendInpainter(fallback).inpaint(request)
    assert not fallback.masks
    np.testing.assert_array_equal(out, photo)


def test_pixels_outside_the_mask_are_identical(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    rng = np.random.default_rng(1)
    alpha = rng.uniform(0, 1, (h, w)).astype(np.float32)
    color = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    mask = np.zeros((h, w), bool)
    mask[100:200, 10:300] = True
    out = UnblendInpainter("opencv").inpaint(InpaintRequest(photo, mask, alpha=alpha, color=color))
    np.testing.assert_array_equal(out[~mask], photo[~mask])


def test_without_decomposition_maps_it_is_plain_inpainting(photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[10:20, 10:20] = True
    fallback = RecordingFill()
    out = UnblendInpainter(fallback).inpaint(InpaintRequest(photo, mask))
    assert (out[mask] == 7).all()


class RemnantDetector:
    """A stand-in for the segmenter as verifier: P(mark) = 1 where the image still differs from
    the known photo by more than a few levels (test double); records what it was shown."""

    def __init__(self, photo: np.ndarray) -> None:
        self.photo = photo.astype(int)
        self.seen: list[np.ndarray] = []

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.seen.append(image.copy())
        return (np.abs(image.astype(int) - self.photo).max(axis=-1) > 6).astype(np.float32)


def test_verifier_sends_what_still_reads_as_a_mark_to_the_fallback(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    true_alpha = np.zeros((h, w), np.float32)
    true_alpha[20:60, 20:120] = 0.6  # region A: one translucent mark
    true_alpha[150:200, 20:120] = 0.4  # region B: another, separate mark ...
    true_alpha[170:176, 60:66] = 0.8  # ... with a small denser spot
    color = np.ones((h, w, 3), np.float32)
    marked = _blend(photo, true_alpha, color)
    mask = true_alpha > 0
    predicted = true_alpha.copy()
    predicted[20:60, 20:120] = 0.2  # A: α badly under-estimated everywhere
    predicted[170:176, 60:66] = 0.4  # B: the spot's α missed, the rest right
    detector = RemnantDetector(photo)
    fallback = RecordingFill()
    out = UnblendInpainter(fallback, verifier=detector).inpaint(
        InpaintRequest(marked, mask, alpha=predicted, color=color)
    )
    # The verifier judged the inverted image, not the input.
    np.testing.assert_allclose(detector.seen[0][155:165, 25:50], photo[155:165, 25:50], atol=3)
    handed = fallback.masks[0]
    assert handed[20:60, 20:120].all()  # A failed as a whole: inpainted whole
    assert handed[170:176, 60:66].all()  # B's remnant (grown by a couple of pixels) ...
    assert not handed[150:160, 20:50].any()  # ... but the rest of B stays inverted
    assert handed[150:200, 20:120].mean() < 0.1
    assert np.abs(out[155:165, 25:50].astype(int) - photo[155:165, 25:50].astype(int)).max() <= 3
    np.testing.assert_array_equal(out[~mask], photo[~mask])


def test_verifier_region_fallback_can_be_turned_off(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[20:60, 20:120] = True
    alpha = np.where(mask, 0.3, 0).astype(np.float32)
    color = np.ones((h, w, 3), np.float32)

    def verifier(image: np.ndarray) -> np.ndarray:
        prob = np.zeros((h, w), np.float32)
        prob[20:60, 20:90] = 0.9  # 70 % of the region still looks marked
        return prob

    fallback = RecordingFill()
    UnblendInpainter(fallback, verifier=verifier, region_fallback=1.0, verify_grow_px=0).inpaint(
        InpaintRequest(_blend(photo, alpha, color), mask, alpha=alpha, color=color)
    )
    handed = fallback.masks[0]
    assert handed[20:60, 20:90].all() and not handed[20:60, 90:120].any()
