"""Build the product's ``Remover`` from plain options: the one place the app, the CLI, the
benchmark and Ray Serve turn configuration into loaded components."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from pipeline.inpaint.base import Inpainter, available_inpainters, build_inpainter
from pipeline.masks import MaskRefiner
from pipeline.remover import Remover
from pipeline.segment import Segmenter

log = logging.getLogger(__name__)

# The shipped weights, next to the code in a checkout; MARKLESS_SEGMENTER points elsewhere (installed images).
DEFAULT_SEGMENTER = Path(
    os.environ.get("MARKLESS_SEGMENTER") or Path(__file__).resolve().parents[1] / "weights" / "segmenter"
)
DECOMPOSITION_HEADS = {"alpha", "color"}


def resolve_inpainter_name(
    name: str, *, diffusion_model: str | None, device: str, heads: tuple[str, ...] = ()
) -> str:
    """Resolve ``auto``.

    ``restore``: it fits each mark's opacity and colour from the image (the decomposition heads,
    when loaded, are only its prior), inverts translucent marks, leaves unmarked pixels of a rough
    mask alone and hands opaque cores to the best fill we have (diffusion when a model is
    configured, else opencv). ``heads``, ``diffusion_model`` and ``device`` are kept for callers.
    """
    del heads, diffusion_model, device
    return "restore" if name == "auto" else name


def build_remover(
    *,
    segmenter: str | Path | None = DEFAULT_SEGMENTER,
    inpainter: str = "auto",
    extra_inpainters: tuple[str, ...] = ("opencv", "unblend", "diffusion", "restore"),
    diffusion_model: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    threshold: float = 0.5,
    dilate: int = 4,
    min_area: int = 16,
    max_side: int = 1024,
) -> Remover:
    """Load the segmenter (refusing to run without real weights) and the inpainters.

    ``inpainter`` is the default for requests; ``extra_inpainters`` are loaded too, where they
    can be (diffusion needs a configured model; unblend needs the decomposition heads), so a
    request may pick them.
    """
    seg: Segmenter | None = None
    if segmenter is not None:
        seg = Segmenter.from_pretrained(segmenter, device=device, max_side=max_side)
        log.info("segmenter loaded from %s (heads: %s)", segmenter, ", ".join(seg.heads))
    heads = seg.heads if seg is not None else ()
    default = resolve_inpainter_name(inpainter, diffusion_model=diffusion_model, device=device, heads=heads)
    unknown = {default, *extra_inpainters} - set(available_inpainters())
    if unknown:
        raise InvalidParameterError(
            f"unknown inpainter {sorted(unknown)}; choose from {available_inpainters()}"
        )
    if default == "diffusion" and not diffusion_model:
        raise ModelNotAvailableError(
            "the diffusion inpainter needs a model id or folder (MARKLESS_DIFFUSION_MODEL)"
        )
    if default == "unblend" and not set(heads) >= DECOMPOSITION_HEADS:
        raise ModelNotAvailableError("the unblend restoration needs a segmenter with alpha and color heads")

    wanted = {default, *extra_inpainters}
    inpainters: dict[str, Inpainter] = {"opencv": build_inpainter("opencv")}
    if "diffusion" in wanted and diffusion_model:
        inpainters["diffusion"] = build_inpainter(
            "diffusion", model=diffusion_model, device=device, dtype=dtype
        )
    if "unblend" in wanted and seg is not None and set(heads) >= DECOMPOSITION_HEADS:
        # The opaque core goes to the best generative stage we have; the segmenter checks the result.
        detector = seg
        inpainters["unblend"] = build_inpainter(
            "unblend",
            fallback=inpainters.get("diffusion", inpainters["opencv"]),
            verifier=lambda image: detector.predict(image).prob,
        )
    if "restore" in wanted:
        inpainters["restore"] = build_inpainter(
            "restore", fallback=inpainters.get("diffusion", inpainters["opencv"])
        )
    refiner = MaskRefiner(threshold=threshold, min_area=min_area, dilate=dilate)
    return Remover(seg, refiner, inpainters, default_inpainter=default)
