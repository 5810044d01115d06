"""Build the product's ``Remover`` from plain options: the one place the app, the CLI, the
benchmark and Ray Serve turn configuration into loaded components."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from pipeline.inpaint.base import Inpainter, available_inpainters, build_inpainter
from pipeline.masks import MaskRefiner
from pipeline.remover import Remover
from pipeline.segment import Segmenter

log = logging.getLogger(__name__)

DEFAULT_SEGMENTER = Path(__file__).resolve().parents[1] / "weights" / "segmenter"


def resolve_inpainter_name(name: str, *, diffusion_model: str | None, device: str) -> str:
    """``auto`` → ``diffusion`` when a diffusion model is configured and a GPU will run it, else ``opencv``."""
    if name != "auto":
        return name
    gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return "diffusion" if diffusion_model and gpu else "opencv"


def build_remover(
    *,
    segmenter: str | Path | None = DEFAULT_SEGMENTER,
    inpainter: str = "auto",
    extra_inpainters: tuple[str, ...] = ("opencv",),
    diffusion_model: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    threshold: float = 0.5,
    dilate: int = 4,
    min_area: int = 16,
    max_side: int = 1024,
) -> Remover:
    """Load the segmenter (refusing to run without real weights) and the inpainters.

    ``inpainter`` is the default for requests; ``extra_inpainters`` are loaded as well so a
    request may pick them (opencv is instant to build, diffusion is only loaded if configured).
    """
    seg: Segmenter | None = None
    if segmenter is not None:
        seg = Segmenter.from_pretrained(segmenter, device=device, max_side=max_side)
        log.info("segmenter loaded from %s (heads: %s)", segmenter, ", ".join(seg.heads))
    default = resolve_inpainter_name(inpainter, diffusion_model=diffusion_model, device=device)
    names = [default, *(n for n in extra_inpainters if n != default)]
    inpainters: dict[str, Inpainter] = {}
    for name in names:
        if name not in available_inpainters():
            raise InvalidParameterError(f"unknown inpainter {name!r}; choose one of {available_inpainters()}")
        if name == "diffusion":
            if not diffusion_model:
                if name == default:
                    raise ModelNotAvailableError("the diffusion inpainter needs a model id or folder")
                continue
            inpainters[name] = build_inpainter(name, model=diffusion_model, device=device, dtype=dtype)
        else:
            inpainters[name] = build_inpainter(name)
    refiner = MaskRefiner(threshold=threshold, min_area=min_area, dilate=dilate)
    return Remover(seg, refiner, inpainters, default_inpainter=default)
