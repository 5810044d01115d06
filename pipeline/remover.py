"""The one object that runs the flow: segment → refine → inpaint → composite.

The app, the CLI, the benchmark and Ray Serve all call ``Remover``; nothing else in the tree
re-implements the flow.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from pipeline.cancel import checkpoint
from pipeline.config import MAX_MASK_COVERAGE
from pipeline.errors import InvalidMaskError, InvalidParameterError
from pipeline.inpaint.base import Inpainter, InpaintRequest
from pipeline.inpaint.unblend import UnblendInpainter
from pipeline.marks import MarkProfile, learn_profile, remove_with_profile
from pipeline.masks import MaskRefiner
from pipeline.masks import dilate as grow_mask
from pipeline.options import RemoveOptions, SegmentOptions
from pipeline.segment import Segmenter, SegmentOutput
from pipeline.service import NO_SEGMENTER, Result, SegmenterInfo, ServiceInfo

__all__ = ["Remover", "Result"]


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

    def info(self) -> ServiceInfo:
        """The loaded models and defaults (``RemovalService``)."""
        seg = self.segmenter
        devices = [str(seg.device)] if seg is not None else []
        devices += [str(d) for stage in self.inpainters.values() if (d := getattr(stage, "device", None))]
        return ServiceInfo(
            segmenter=SegmenterInfo(tuple(seg.heads), int(seg.max_side), str(seg.device)) if seg else None,
            inpainters=tuple(sorted(self.inpainters)),
            default_inpainter=self.default_inpainter,
            defaults=SegmentOptions(threshold=self.refiner.threshold, dilate=self.refiner.dilate),
            device=devices[0] if devices else "cpu",
        )

    def check(self, options: SegmentOptions) -> None:
        """Refuse a request these models cannot serve (``RemovalService``)."""
        self.info().check(options)

    def _stage(self, options: RemoveOptions) -> tuple[str, Inpainter]:
        """The request's restoration stage, after checking these models can serve the request."""
        self.check(options)
        name = options.inpainter or self.default_inpainter
        return name, self.inpainters[name]

    def segment(
        self,
        image: np.ndarray,
        options: SegmentOptions | None = None,
        *,
        timings: dict[str, float] | None = None,
        **values: Any,
    ) -> tuple[np.ndarray, SegmentOutput]:
        """Predict and refine the watermark mask of an RGB uint8 image.

        ``values`` (``threshold=``, ``dilate=``) are a shorthand for ``SegmentOptions`` in Python callers.
        """
        options = SegmentOptions.coerce(options, values)
        if self.segmenter is None:
            raise InvalidParameterError(NO_SEGMENTER)
        timings = {} if timings is None else timings
        checkpoint()
        with _timed(timings, "segment"):
            out = self.segmenter.predict(image)
        checkpoint()
        with _timed(timings, "refine"):
            mask = self._refine(out, options)
        return mask, out

    def _refine(self, out: SegmentOutput, options: SegmentOptions) -> np.ndarray:
        """The mask a prediction gives under the request's threshold and dilation."""
        return self.refiner.with_options(options).refine(out.prob, out.presence)

    def remove(
        self,
        image: np.ndarray,
        mask: np.ndarray | None = None,
        options: RemoveOptions | None = None,
        *,
        segmentation: SegmentOutput | None = None,
        **values: Any,
    ) -> Result:
        """Remove the watermark. A user-supplied ``mask`` (bool or 0/255, same HxW) replaces the
        segmenter's (which still runs for its maps when the restoration reads them).

        ``values`` (``seed=``, ``inpainter=``...) are a shorthand for ``RemoveOptions``.
        ``segmentation``: this image's segmenter output when the caller already has it (evaluation
        restores one prediction with several modes), so decomposition maps are not predicted twice.
        Without a ``mask`` its refined mask is restored exactly as on the product path; with one,
        that mask is exempt from the coverage limit on callers' masks.
        """
        options = RemoveOptions.coerce(options, values).seeded()  # the result reports its seed
        name, stage = self._stage(options)
        timings: dict[str, float] = {}
        aux: SegmentOutput | None = None
        user_mask = mask
        if mask is None and segmentation is not None:
            aux = segmentation
            mask = self._refine(aux, options)
        elif mask is None:
            mask, aux = self.segment(image, options, timings=timings)
        else:
            mask = self._user_mask(mask, image.shape[:2], options)
            if getattr(stage, "uses_decomposition", False):
                if segmentation is not None:
                    aux = segmentation
                elif self.segmenter is not None:
                    checkpoint()
                    with _timed(timings, "segment"):
                        aux = self.segmenter.predict(image)
        presence = aux.presence if aux is not None else None
        # Nothing found (or an empty user mask): the photo comes back untouched.
        if not mask.any():
            timings["inpaint"] = 0.0
            return Result(
                image=image.copy(),
                mask=mask,
                timings=timings,
                inpainter=name,
                seed=options.seed,
                found=False,
                presence=presence,
            )
        if user_mask is not None and segmentation is None:  # a caller's mask, not a prediction
            self._check_coverage(mask)
        checkpoint()
        request = InpaintRequest(
            image=image,
            mask=mask,
            options=options,
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
        return Result(
            image=result, mask=mask, timings=timings, inpainter=name, seed=options.seed, presence=presence
        )

    def learn_mark(self, images: Sequence[np.ndarray]) -> MarkProfile:
        """The mark several photos share (``RemovalService``); CPU work, no model involved."""
        checkpoint()
        return learn_profile(images)

    def remove_mark(
        self, image: np.ndarray, profile: MarkProfile, options: RemoveOptions | None = None
    ) -> Result:
        """Remove ``profile``'s mark (``RemovalService``): located and inverted, its near-opaque
        core restored by the request's inpainter. ``options.mark`` is the caller's reference to
        the profile and is not read here; mask options do not apply (the profile is the mask)."""
        options = (options or RemoveOptions()).seeded()
        name, stage = self._stage(options)
        if isinstance(stage, UnblendInpainter):  # the profile's α/W replace the segmenter's
            stage = stage.fallback
        timings: dict[str, float] = {}
        checkpoint()
        with _timed(timings, "inpaint"):
            restored, mask, report = remove_with_profile(image, profile, stage, options=options)
        checkpoint()  # the caller's next stage is encoding: not worth doing for nobody
        return Result(
            image=restored,
            mask=mask,
            timings=timings,
            inpainter=name,
            seed=options.seed,
            found=report.found,
            mark=report.to_json(),
        )

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

    def _user_mask(self, mask: np.ndarray, shape: tuple[int, int], options: SegmentOptions) -> np.ndarray:
        if mask.shape[:2] != shape:
            raise InvalidMaskError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}"
            )
        if mask.ndim == 3:
            mask = mask.max(axis=2)
        binary = mask if mask.dtype == bool else mask >= 128
        if options.dilate:
            binary = grow_mask(binary.astype(np.uint8), options.dilate).astype(bool)
        return binary
