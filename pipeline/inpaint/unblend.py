"""Translucency-aware restoration: invert the blend where the photo is still there.

A translucent mark composites as ``J = (1 − α)·I + α·W``. Given the segmenter's per-pixel
opacity α and colour W, ``I = (J − α·W) / (1 − α)`` recovers the photo instead of inventing it.
The inversion amplifies errors by ``1 / (1 − α)``, so near-opaque pixels (α above a ceiling),
pixels whose inversion leaves the colour gamut, and pixels the segmenter marked but gave no
opacity (a missed α, or a user-drawn mask) go to a generative inpainter instead, with a soft
hand-over between the two. Without decomposition maps this is plain inpainting.

An opacity head that under-estimates α leaves a fainter copy of the mark after inversion. With a
``verifier`` (the segmenter's P(mark) on an image), the unblended result is checked: pixels the
detector still reads as a mark join the inpainting hole, and a connected mark region that mostly
still reads as one is inpainted whole, since its α estimate is wrong throughout. That is what keeps
a wrong decomposition no worse than plain inpainting.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from pipeline.errors import InvalidParameterError
from pipeline.inpaint.base import Inpainter, InpaintRequest, build_inpainter, register_inpainter


@register_inpainter("unblend")
class UnblendInpainter:
    """Blend inversion with a fallback inpainter for what cannot be inverted."""

    name = "unblend"
    uses_decomposition = True  # Remover runs the segmenter for α/W even when the user gives a mask
    needs_decomposition = True  # without them this is plain inpainting

    def __init__(
        self,
        fallback: Inpainter | str = "opencv",
        *,
        alpha_ceiling: float = 0.85,
        handover: float = 0.1,
        alpha_floor: float = 0.03,
        gamut_tolerance: float = 0.08,
        feather_px: int = 2,
        verifier: Callable[[np.ndarray], np.ndarray] | None = None,
        verify_threshold: float = 0.5,
        verify_grow_px: int = 2,
        region_fallback: float = 0.5,
    ) -> None:
        if not 0.0 < alpha_ceiling <= 1.0 or not 0.0 <= handover < alpha_ceiling:
            raise InvalidParameterError("need 0 <= handover < alpha_ceiling <= 1")
        if not 0.0 < verify_threshold < 1.0 or not 0.0 <= region_fallback <= 1.0 or verify_grow_px < 0:
            raise InvalidParameterError(
                "need 0 < verify_threshold < 1, 0 <= region_fallback <= 1, verify_grow_px >= 0"
            )
        self.fallback = build_inpainter(fallback) if isinstance(fallback, str) else fallback
        self.alpha_ceiling = alpha_ceiling
        self.handover = handover
        self.alpha_floor = alpha_floor
        self.gamut_tolerance = gamut_tolerance
        self.feather_px = feather_px
        self.verifier = verifier
        self.verify_threshold = verify_threshold
        self.verify_grow_px = verify_grow_px
        self.region_fallback = region_fallback

    def invert(
        self, image: np.ndarray, alpha: np.ndarray, color: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Float RGB estimate of the photo under the mark, and where that estimate is within gamut."""
        j = image.astype(np.float32) / 255.0
        a = np.clip(alpha, 0.0, 1.0)[..., None]
        estimate = (j - a * color) / np.maximum(1.0 - a, 1e-3)
        tol = self.gamut_tolerance
        in_gamut = ((estimate >= -tol) & (estimate <= 1.0 + tol)).all(axis=-1)
        return np.clip(estimate, 0.0, 1.0), in_gamut

    def residual(self, unblended: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Masked pixels where the verifier still sees a mark after inversion (see module docstring)."""
        if self.verifier is None:
            return np.zeros_like(mask)
        found = mask & (self.verifier(unblended) >= self.verify_threshold)
        if not found.any():
            return found
        if self.verify_grow_px > 0:  # glyph edges around a detected remnant
            k = 2 * self.verify_grow_px + 1
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
            found = mask & (cv2.dilate(found.astype(np.uint8), kernel) > 0)
        if self.region_fallback < 1.0:
            n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
            area = np.bincount(labels.ravel(), minlength=n)
            hits = np.bincount(labels[found], minlength=n)
            failed = hits > self.region_fallback * area
            failed[0] = False  # background label
            found |= failed[labels]
        return found

    def inpaint(self, request: InpaintRequest) -> np.ndarray:
        if request.alpha is None or request.color is None:
            return self.fallback.inpaint(request)
        mask = request.mask
        alpha = np.clip(request.alpha, 0.0, 1.0)
        estimate, in_gamut = self.invert(request.image, alpha, request.color)
        # Weight of the inversion: 1 below ceiling − handover, falling to 0 at the ceiling.
        trust = np.clip((self.alpha_ceiling - alpha) / max(self.handover, 1e-6), 0.0, 1.0)
        trust[~in_gamut] = 0.0
        # Marked but transparent: fine in the dilation band around a detected mark (the photo is
        # already clean there), but where the segmenter was sure of a mark — or the user drew the
        # mask — α was missed, so inventing beats leaving the mark.
        sure = np.ones_like(mask) if request.prob is None else request.prob >= 0.5
        trust[(alpha < self.alpha_floor) & sure] = 0.0
        unblended = np.where(mask[..., None], estimate * 255.0 + 0.5, request.image).astype(np.uint8)
        trust[self.residual(unblended, mask)] = 0.0
        trust[~mask] = 1.0
        hole = mask & (trust < 1.0)
        if not hole.any():
            return unblended
        filled = self.fallback.inpaint(InpaintRequest(image=unblended, mask=hole, options=request.options))
        weight = 1.0 - trust
        if self.feather_px > 0:  # soften the hand-over, but never spill outside the mask
            k = 2 * self.feather_px + 1
            weight = np.maximum(weight, cv2.GaussianBlur(weight, (k, k), 0) * hole)
        weight = (weight * mask)[..., None]
        out = weight * filled.astype(np.float32) + (1.0 - weight) * unblended.astype(np.float32)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
