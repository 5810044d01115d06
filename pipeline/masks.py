"""From a probability map to the mask the inpainter gets: threshold, drop specks, dilate."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from pipeline.errors import InvalidParameterError
from pipeline.options import MAX_DILATE_PX, SegmentOptions

__all__ = ["MAX_DILATE_PX", "MaskRefiner", "dilate", "remove_specks"]


@dataclass(frozen=True)
class MaskRefiner:
    """Turns a segmenter's probabilities into a boolean mask.

    Dilation matters because segmenters under-cover anti-aliased edges, glows and JPEG
    ringing around a mark; inpainting a few extra pixels costs little, leaving a halo is
    very visible. ``min_area`` is in pixels at the image's own resolution.

    ``presence_threshold``: with a segmenter that has the image-level ``presence`` head, a photo whose
    P(mark) is below it gets no mask at all, however its pixels score. Doing nothing to a clean photo
    is the product's first promise; a mark missed this way can still be painted over by hand.
    """

    threshold: float
    min_area: int
    dilate: int
    presence_threshold: float = 0.0  # no decision; the product's default is in ModelSettings

    def __post_init__(self) -> None:
        SegmentOptions.of(  # the ranges live there
            threshold=self.threshold, dilate=self.dilate, presence_threshold=self.presence_threshold
        )
        if self.min_area < 0:
            raise InvalidParameterError(f"min_area must be >= 0, got {self.min_area}")

    def with_options(self, options: SegmentOptions) -> MaskRefiner:
        """A copy with a request's (already validated) overrides."""
        changes = options.model_dump(include={"threshold", "dilate", "presence_threshold"}, exclude_none=True)
        return replace(self, **changes) if changes else self

    def found(self, presence: float | None) -> bool:
        """Whether the photo carries a mark at all (always, for a segmenter without the presence head)."""
        return presence is None or presence >= self.presence_threshold

    def refine(self, prob: np.ndarray, presence: float | None = None) -> np.ndarray:
        """Probability map (HxW float) → bool mask of the same size; empty when no mark was found."""
        if not self.found(presence):
            return np.zeros(prob.shape, bool)
        mask = (prob >= self.threshold).astype(np.uint8)
        mask = remove_specks(mask, self.min_area)
        return dilate(mask, self.dilate).astype(bool)


def remove_specks(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Drop 8-connected components smaller than ``min_area`` pixels (uint8 0/1 in and out)."""
    if min_area <= 1 or not mask.any():
        return mask
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # background
    return keep[labels].astype(np.uint8)


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """Grow a 0/1 uint8 mask by ``px`` pixels with an elliptic (round) structuring element."""
    if px <= 0 or not mask.any():
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask, kernel)
