"""The one object that runs the flow: segment → refine → inpaint → composite.

The app, the CLI, the benchmark and Ray Serve all call ``Remover``; nothing else in the tree
re-implements the flow.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from pipeline.cancel import checkpoint
from pipeline.errors import InvalidMaskError, InvalidParameterError, quote
from pipeline.inpaint.base import Inpainter, InpaintRequest
from pipeline.masks import MaskRefiner
from pipeline.masks import dilate as grow_mask
from pipeline.segment import Segmenter, SegmentOutput

MAX_MASK_COVERAGE = 0.9
"""Largest fraction of the image a mask may cover: beyond it there is nothing left to restore from."""


@dataclass
class Result:
    """What ``Remover.remove`` returns: the clean image, the mask used and stage timings (s)."""

    image: np.ndarray
    mask: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    inpainter: str = ""
    seed: int | None = None

    @property
    def coverage(self) -> float:
        """Fraction of pixels that were restored."""
        return float(self.mask.mean()) if self.mask.size else 0.0


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


class Remover:
    """Handed its parts; ``remove`` is the only entry point of the product's flow."""

    def __init__(
        self,
        segmenter: Segmenter | None,
        refiner: MaskRefiner,
        inpainters: Mapping[str, Inpainter],
        default_inpainter: str,
        *,
        max_coverage: float = MAX_MASK_COVERAGE,
    ) -> None:
        if default_inpainter not in inpainters:
            raise ValueError(f"default inpainter {default_inpainter!r} not among {sorted(inpainters)}")
        if not 0.0 < max_coverage <= 1.0:
            raise ValueError(f"max_coverage must be in (0, 1], got {max_coverage}")
        self.max_coverage = max_coverage
        self.segmenter = segmenter
        self.refiner = refiner
        self.inpainters = dict(inpainters)
        self.default_inpainter = default_inpainter

    def segment(
        self,
        image: np.ndarray,
        *,
        threshold: float | None = None,
        dilate: int | None = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[np.ndarray, SegmentOutput]:
        """Predict and refine the watermark mask of an RGB uint8 image."""
        if self.segmenter is None:
            raise InvalidParameterError("no segmenter is loaded: supply a mask")
        timings = {} if timings is None else timings
        refiner = self.refiner.with_options(threshold, dilate)
        checkpoint()
        with _timed(timings, "segment"):
            out = self.segmenter.predict(image)
        checkpoint()
        with _timed(timings, "refine"):
            mask = refiner.refine(out.prob)
        return mask, out

    def remove(
        self,
        image: np.ndarray,
        mask: np.ndarray | None = None,
        *,
        inpainter: str | None = None,
        threshold: float | None = None,
        dilate: int | None = None,
        seed: int | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        strength: float | None = None,
        segmentation: SegmentOutput | None = None,
    ) -> Result:
        """Remove the watermark. A user-supplied ``mask`` (bool or 0/255, same HxW) skips segmentation.

        ``segmentation``: this image's segmenter output when the caller already has it (evaluation
        restores one prediction with several modes), so decomposition maps are not predicted twice;
        its mask is then a prediction, exempt from the coverage limit on callers' masks.
        """
        name = inpainter or self.default_inpainter
        if name not in self.inpainters:
            raise InvalidParameterError(
                f"inpainter {quote(name)} is not loaded; available: {', '.join(sorted(self.inpainters))}"
            )
        stage = self.inpainters[name]
        if seed is None:  # draw here so the result always reports the seed that reproduces it
            seed = secrets.randbelow(2**32)
        timings: dict[str, float] = {}
        aux: SegmentOutput | None = None
        user_mask = mask
        if mask is None:
            mask, aux = self.segment(image, threshold=threshold, dilate=dilate, timings=timings)
        else:
            mask = self._user_mask(mask, image.shape[:2], dilate)
            if getattr(stage, "uses_decomposition", False):
                if segmentation is not None:
                    aux = segmentation
                elif self.segmenter is not None:
                    with _timed(timings, "segment"):
                        aux = self.segmenter.predict(image)
        if not mask.any():
            timings["inpaint"] = 0.0
            return Result(image=image.copy(), mask=mask, timings=timings, inpainter=name, seed=seed)
        if user_mask is not None and segmentation is None:  # a caller's mask, not a prediction
            self._check_coverage(mask)
        checkpoint()
        request = InpaintRequest(
            image=image,
            mask=mask,
            seed=seed,
            steps=steps,
            guidance_scale=guidance_scale,
            strength=strength,
            prob=aux.prob if aux is not None and user_mask is None else None,
            alpha=aux.alpha if aux is not None else None,
            color=aux.color if aux is not None else None,
        )
        with _timed(timings, "inpaint"):
            filled = stage.inpaint(request)
        checkpoint()
        with _timed(timings, "composite"):
            result = np.where(mask[..., None], filled, image).astype(np.uint8)
        checkpoint()  # the caller's next stage is encoding: not worth doing for nobody
        return Result(image=result, mask=mask, timings=timings, inpainter=name, seed=seed)

    def _check_coverage(self, mask: np.ndarray) -> None:
        """Refuse a caller's mask that leaves too little of the photo to restore the rest from.

        Inpainting rebuilds masked pixels from their surroundings; with (almost) nothing around
        them, every method returns noise or the input unchanged, which would look like success.
        """
        coverage = float(mask.mean())
        if coverage <= self.max_coverage:
            return
        raise InvalidMaskError(
            f"the mask covers {coverage:.0%} of the image, more than the limit of {self.max_coverage:.0%}: "
            "there is too little of the photo left to restore it from"
        )

    def _user_mask(self, mask: np.ndarray, shape: tuple[int, int], dilate: int | None) -> np.ndarray:
        if mask.shape[:2] != shape:
            raise InvalidMaskError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}"
            )
        if mask.ndim == 3:
            mask = mask.max(axis=2)
        binary = mask if mask.dtype == bool else mask >= 128
        if dilate:
            px = self.refiner.with_options(dilate=dilate).dilate  # validates the range
            binary = grow_mask(binary.astype(np.uint8), px).astype(bool)
        return binary
