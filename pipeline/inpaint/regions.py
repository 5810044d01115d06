"""Per-region restoration: crop around each mask region, fill it, paste it back.

Why: a 4K photo with a small logo should cost one small fill (one 512² diffusion run, or an
OpenCV pass over a few thousand pixels), not a pass over the whole frame; and a diffusion model
works best at its native size, so each crop is resized to that size and back.

How: 8-connected mask components are grouped while their boxes, grown by a context margin,
overlap. Each group gets a crop box (margin, optional minimum size and aspect limit, shifted to
stay inside the image), the crop is resized to a work size (area ≈ ``target_size``², sides a
multiple of ``multiple``), filled by a callback and resized back. Only the group's own mask
pixels are written, so pixels outside the mask stay bit-identical; an optional feather blends
the fill into the original over the outermost ``feather_px`` pixels *inside* the mask (the clean
halo that mask dilation adds), which softens the seam without leaving any of the mark.

Every crop sent to a callback has *all* mask pixels inside it marked, including those of
neighbouring groups, so no fill ever uses a watermark pixel as context.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

import cv2
import numpy as np

from pipeline.errors import InvalidMaskError, InvalidParameterError

Box = tuple[int, int, int, int]  # x0, y0, x1, y1; end-exclusive, image pixel coordinates
Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]
FillBatch = Callable[[Sequence[np.ndarray], Sequence[np.ndarray]], Sequence[np.ndarray]]


@dataclass(frozen=True, eq=False)
class Region:
    """One unit of work: a group of mask components and the crop that gives it context."""

    bbox: Box  # tight box around the group's mask pixels
    crop: Box  # context box (inside the image) that is cut out, resized and filled
    work_size: tuple[int, int]  # (width, height) of the crop as the fill callback sees it
    own: np.ndarray  # crop-sized bool: the pixels this region writes (its own components)

    @property
    def crop_size(self) -> tuple[int, int]:
        """(width, height) of the crop in image pixels."""
        return self.crop[2] - self.crop[0], self.crop[3] - self.crop[1]


def context_margin(width: int, height: int, margin: float, min_margin: int) -> int:
    """Context pixels added on each side of a ``width``×``height`` box."""
    return max(int(min_margin), math.ceil(margin * max(width, height)))


def _grow(box: Box, margin: float, min_margin: int) -> Box:
    x0, y0, x1, y1 = box
    m = context_margin(x1 - x0, y1 - y0, margin, min_margin)
    return x0 - m, y0 - m, x1 + m, y1 + m


def _group_components(
    stats: np.ndarray, shape: tuple[int, int], margin: float, min_margin: int
) -> tuple[np.ndarray, list[Box]]:
    """Map component labels (1..n) to group ids; returns (group_of_label, group boxes).

    Boxes are grown by the margin and painted on a canvas; connected blobs of the canvas are
    groups. Merged groups are bigger, so their (relative) margin is bigger too: repeat until
    the number of groups stops falling. Painting keeps thousands of letter-sized components
    (tiled text marks) linear in their number instead of quadratic.
    """
    h, w = shape
    n = stats.shape[0] - 1
    group_of_label = np.arange(-1, n, dtype=np.int64)  # label k (1-based) → group k-1 at first
    boxes: list[Box] = [
        (int(x), int(y), int(x + bw), int(y + bh))
        for x, y, bw, bh in stats[1:, : cv2.CC_STAT_AREA].tolist()  # columns: left, top, width, height
    ]
    while len(boxes) > 1:
        canvas = np.zeros((h, w), np.uint8)
        for box in boxes:
            x0, y0, x1, y1 = _grow(box, margin, min_margin)
            canvas[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)] = 1
        count, blobs = cv2.connectedComponents(canvas, connectivity=8)
        if count - 1 >= len(boxes):
            break
        # Every grown box lies inside one blob; its top-left pixel (clipped) names that blob.
        blob_of_group = np.array(
            [blobs[max(b[1], 0), max(b[0], 0)] - 1 for b in boxes],
            dtype=np.int64,
        )
        _, new_index = np.unique(blob_of_group, return_inverse=True)
        merged: dict[int, Box] = {}
        for old, new in enumerate(new_index.tolist()):
            x0, y0, x1, y1 = boxes[old]
            cur = merged.get(new)
            merged[new] = (
                (x0, y0, x1, y1)
                if cur is None
                else (min(cur[0], x0), min(cur[1], y0), max(cur[2], x1), max(cur[3], y1))
            )
        group_of_label[1:] = new_index[group_of_label[1:]]
        boxes = [merged[g] for g in range(len(merged))]
    return group_of_label, boxes


def _fit_span(center: float, length: int, limit: int) -> tuple[int, int]:
    """A span of ``length`` centred on ``center``, shifted (not shrunk) to lie in [0, limit)."""
    length = min(length, limit)
    start = round(center - length / 2)
    start = min(max(start, 0), limit - length)
    return start, start + length


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def crop_box(
    bbox: Box,
    shape: tuple[int, int],
    *,
    margin: float,
    min_margin: int,
    min_crop: int = 0,
    max_aspect: float | None = None,
) -> Box:
    """The context box around ``bbox``: margin, minimum side, aspect limit, kept inside the image."""
    h, w = shape
    x0, y0, x1, y1 = bbox
    m = context_margin(x1 - x0, y1 - y0, margin, min_margin)
    cw = max(x1 - x0 + 2 * m, min_crop)
    ch = max(y1 - y0 + 2 * m, min_crop)
    if max_aspect is not None:
        if cw > ch * max_aspect:
            ch = math.ceil(cw / max_aspect)
        elif ch > cw * max_aspect:
            cw = math.ceil(ch / max_aspect)
    left, right = _fit_span((x0 + x1) / 2, cw, w)
    top, bottom = _fit_span((y0 + y1) / 2, ch, h)
    return left, top, right, bottom


def work_size(
    crop_wh: tuple[int, int], target_size: int | None, multiple: int = 8, max_aspect: float | None = None
) -> tuple[int, int]:
    """(width, height) a crop is resized to: area ≈ ``target_size``², sides a multiple of ``multiple``.

    The crop's aspect ratio is kept, up to ``max_aspect`` (a crop that is thinner only because
    the image is, is stretched rather than handed to a model as a sliver). ``target_size=None``
    keeps the crop's own size (OpenCV needs no resize).
    """
    cw, ch = crop_wh
    if target_size is None:
        return cw, ch
    aspect = cw / ch
    if max_aspect is not None:
        aspect = min(max(aspect, 1 / max_aspect), max_aspect)
    root = math.sqrt(aspect)
    return _round_to(target_size * root, multiple), _round_to(target_size / root, multiple)


def _validate(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidParameterError(f"image must be HxWx3 uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise InvalidMaskError(
            f"mask is {mask.shape[1::-1] if mask.ndim >= 2 else mask.shape} but the image is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    return mask.astype(bool, copy=False)


class CropPolicy(TypedDict, total=False):
    """How regions are cropped (the keywords of ``plan_regions``, where their defaults live)."""

    margin: float
    min_margin: int
    target_size: int | None
    min_crop: int
    max_aspect: float | None
    multiple: int


def plan_regions(
    mask: np.ndarray,
    *,
    margin: float = 0.25,
    min_margin: int = 16,
    target_size: int | None = None,
    min_crop: int = 0,
    max_aspect: float | None = 2.0,
    multiple: int = 8,
) -> list[Region]:
    """Group the mask's components and compute each group's crop and work size.

    ``max_aspect`` only applies with a ``target_size`` (a model wants near-square input; OpenCV
    does not care). Regions come in raster order of their first component, so plans and
    per-region seeds are reproducible.
    """
    if margin < 0 or min_margin < 0 or min_crop < 0:
        raise InvalidParameterError("margin, min_margin and min_crop must be >= 0")
    if max_aspect is not None and max_aspect < 1:
        raise InvalidParameterError(f"max_aspect must be >= 1, got {max_aspect}")
    if multiple < 1 or (target_size is not None and target_size < multiple):
        raise InvalidParameterError(f"target_size {target_size} must be >= multiple {multiple} >= 1")
    binary = np.ascontiguousarray(mask).view(np.uint8) if mask.dtype == bool else (mask != 0).astype(np.uint8)
    # Everything below works in the frame of the mask's bounding box: grown boxes of components
    # inside it can only overlap inside it too, so the grouping canvas need not cover the image.
    fx, fy, fw, fh = cv2.boundingRect(binary)
    if fw == 0 or fh == 0:
        return []
    sub = np.ascontiguousarray(binary[fy : fy + fh, fx : fx + fw])
    _, labels, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
    group_of_label, boxes = _group_components(stats, sub.shape, margin, min_margin)
    aspect = max_aspect if target_size is not None else None
    regions = []
    for g, (bx0, by0, bx1, by1) in enumerate(boxes):
        bbox = (bx0 + fx, by0 + fy, bx1 + fx, by1 + fy)
        box = crop_box(
            bbox, binary.shape, margin=margin, min_margin=min_margin, min_crop=min_crop, max_aspect=aspect
        )
        x0, y0, x1, y1 = box
        own = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        # The group's pixels all lie in its bbox, which the crop contains.
        own[by0 + fy - y0 : by1 + fy - y0, bx0 + fx - x0 : bx1 + fx - x0] = (group_of_label == g)[
            labels[by0:by1, bx0:bx1]
        ]
        regions.append(
            Region(
                bbox=bbox,
                crop=box,
                work_size=work_size((x1 - x0, y1 - y0), target_size, multiple, aspect),
                own=own,
            )
        )
    return regions


def find_regions(mask: np.ndarray, *, margin: float = 0.25, min_margin: int = 16) -> list[Box]:
    """Tight boxes of the mask's component groups (components merge when grown boxes overlap)."""
    return [r.bbox for r in plan_regions(mask, margin=margin, min_margin=min_margin)]


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (width, height): area averaging when shrinking, bicubic when enlarging."""
    if (array.shape[1], array.shape[0]) == size:
        return array
    shrinking = size[0] * size[1] < array.shape[0] * array.shape[1]
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask so that any work pixel touching a masked pixel is masked (a superset)."""
    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    shrinking = size[0] * size[1] < mask.shape[0] * mask.shape[1]
    resized = cv2.resize(
        mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    return resized > 0


def extract(image: np.ndarray, mask: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """The region's crop of ``image`` and of the full ``mask``, resized to its work size."""
    x0, y0, x1, y1 = region.crop
    rgb = np.ascontiguousarray(image[y0:y1, x0:x1])
    return _resize(rgb, region.work_size), _resize_mask(mask[y0:y1, x0:x1], region.work_size)


def feather_weights(mask_crop: np.ndarray, feather_px: int) -> np.ndarray:
    """Weight of the fill per pixel of ``mask_crop``: ramps from 1/(f+1) at the mask edge to 1 inside.

    Zero outside the mask. Distances are to the nearest unmasked pixel, so a mask that runs off
    the crop or image edge is not feathered there (that edge is no seam).
    """
    if feather_px <= 0:
        return mask_crop.astype(np.float32)
    dist = cv2.distanceTransform(mask_crop.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.minimum(dist / (feather_px + 1), 1.0).astype(np.float32)


def paste(
    out: np.ndarray, image: np.ndarray, mask: np.ndarray, region: Region, filled: np.ndarray, feather_px: int
) -> None:
    """Write the region's own mask pixels of ``filled`` (work-sized) into ``out``, feathered."""
    x0, y0, x1, y1 = region.crop
    if filled.shape != (region.work_size[1], region.work_size[0], 3):
        raise ValueError(f"fill returned {filled.shape}, expected {region.work_size[::-1]} x 3")
    back = _resize(np.asarray(filled, dtype=np.uint8), region.crop_size)
    own = region.own
    if feather_px <= 0:
        out[y0:y1, x0:x1][own] = back[own]
        return
    weight = feather_weights(mask[y0:y1, x0:x1], feather_px)[own][:, None]
    original = image[y0:y1, x0:x1][own].astype(np.float32)
    blended = weight * back[own].astype(np.float32) + (1.0 - weight) * original
    out[y0:y1, x0:x1][own] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def inpaint_regions_batched(
    image: np.ndarray,
    mask: np.ndarray,
    fill_batch: FillBatch,
    *,
    max_batch: int = 1,
    feather_px: int = 0,
    **crop: Unpack[CropPolicy],
) -> np.ndarray:
    """Like ``inpaint_regions``, but hands ``fill_batch`` up to ``max_batch`` same-size crops at once.

    Crops are batched only when their work sizes are equal (a model batch needs one shape);
    the order within and across batches follows the region order, so results are reproducible.
    """
    mask = _validate(image, mask)
    if max_batch < 1:
        raise InvalidParameterError(f"max_batch must be >= 1, got {max_batch}")
    out = image.copy()
    regions = plan_regions(mask, **crop)
    by_size: dict[tuple[int, int], list[Region]] = {}
    for region in regions:
        by_size.setdefault(region.work_size, []).append(region)
    for same_size in by_size.values():
        for start in range(0, len(same_size), max_batch):
            chunk = same_size[start : start + max_batch]
            crops, masks = zip(*(extract(image, mask, r) for r in chunk), strict=True)
            filled = list(fill_batch(list(crops), list(masks)))
            if len(filled) != len(chunk):
                raise ValueError(f"fill_batch returned {len(filled)} crops for {len(chunk)}")
            for region, result in zip(chunk, filled, strict=True):
                paste(out, image, mask, region, result, feather_px)
    return out


def inpaint_regions(
    image: np.ndarray,
    mask: np.ndarray,
    fill: Fill,
    *,
    feather_px: int = 0,
    **crop: Unpack[CropPolicy],
) -> np.ndarray:
    """Fill every mask region of ``image`` (HxWx3 uint8) via ``fill(crop_rgb, crop_mask) -> crop_rgb``.

    ``fill`` gets a work-sized uint8 RGB crop and its bool mask and returns the same-shape RGB.
    Returns a new image; pixels outside ``mask`` are bit-identical to ``image``.
    """
    return inpaint_regions_batched(
        image,
        mask,
        lambda crops, masks: [fill(c, m) for c, m in zip(crops, masks, strict=True)],
        max_batch=1,
        feather_px=feather_px,
        **crop,
    )
