"""Build the product's ``Remover`` from plain options: the one place the app, the CLI, the
benchmark and Ray Serve turn configuration into loaded components."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.config import SHIPPED_SEGMENTER, ModelSettings
from pipeline.correct import Corrector
from pipeline.decompose import Decomposer
from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from pipeline.inpaint.base import (
    Inpainter,
    available_inpainters,
    build_inpainter,
    needs_decomposition,
    uses_decomposition,
)
from pipeline.masks import MaskRefiner
from pipeline.options import describe_validation_error
from pipeline.remover import Remover
from pipeline.segment import Segmenter

log = logging.getLogger(__name__)

DEFAULT_SEGMENTER = SHIPPED_SEGMENTER
DECOMPOSITION_HEADS = {"alpha", "color"}


def resolve_inpainter_name(
    name: str, *, diffusion_model: str | None, device: str, heads: tuple[str, ...] = ()
) -> str:
    """Resolve ``auto``.

    ``restore``: it fits each mark's opacity and colour from the image, inverts translucent marks,
    leaves unmarked pixels of a rough mask alone and hands opaque cores to the best fill we have
    (diffusion when a model is configured, else opencv). ``heads``, ``diffusion_model`` and
    ``device`` are kept for callers.
    """
    del heads, diffusion_model, device
    return "restore" if name == "auto" else name


def default_uses_decomposition(config: ModelSettings) -> bool:
    """Whether ``config``'s default inpainter (``auto`` resolved) reads the segmenter's maps with a
    given mask (unblend inverts with them; restore asks them before a fill replaces photo): then
    the segmenter is loaded even when every mask is supplied."""
    return uses_decomposition(_default_name(config))


def default_needs_decomposition(config: ModelSettings) -> bool:
    """Whether ``config``'s default inpainter cannot do without the segmenter's maps (unblend)."""
    return needs_decomposition(_default_name(config))


def _default_name(config: ModelSettings) -> str:
    return resolve_inpainter_name(
        config.inpainter, diffusion_model=config.diffusion_model, device=config.device
    )


def _optional(kind: type[Decomposer] | type[Corrector], folder: Path | None, device: str) -> Any:
    """An optional model of ``restore`` loaded from ``folder``, or None where its setting is off."""
    if folder is None:
        return None
    model = kind.from_pretrained(folder, device=device)
    log.info("%s loaded from %s", kind.__name__.lower(), folder)
    return model


def build_remover(
    config: ModelSettings | None = None,
    *,
    with_segmenter: bool = True,
    extra_inpainters: tuple[str, ...] = ("opencv", "unblend", "diffusion", "restore"),
    **overrides: Any,
) -> Remover:
    """Load the segmenter (refusing to run without real weights) and the inpainters.

    ``config`` (``app.settings.Settings`` is one) or ``overrides`` of its fields say what to load;
    its ``inpainter`` is the default for requests. ``extra_inpainters`` are loaded too, where they
    can be (diffusion needs a configured model; unblend needs the decomposition heads), so a
    request may pick them. ``with_segmenter=False`` skips the segmenter (masks are supplied).
    """
    base = config.model_dump(include=set(ModelSettings.model_fields)) if config is not None else {}
    try:
        cfg = ModelSettings.model_validate({**base, **overrides})
    except ValidationError as exc:
        raise InvalidParameterError(describe_validation_error(exc)) from None
    segmenter = cfg.segmenter if with_segmenter else None
    inpainter, diffusion_model, device = cfg.inpainter, cfg.diffusion_model, cfg.device
    seg: Segmenter | None = None
    if segmenter is not None:
        seg = Segmenter.from_pretrained(segmenter, device=device, max_side=cfg.max_side)
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
            "diffusion", model=diffusion_model, device=device, dtype=cfg.dtype
        )
    if "unblend" in wanted and seg is not None and set(heads) >= DECOMPOSITION_HEADS:
        # The opaque core goes to the best generative stage we have; the segmenter checks the result.
        detector = seg
        inpainters["unblend"] = build_inpainter(
            "unblend",
            fallback=inpainters.get("diffusion", inpainters["opencv"]),
            verifier=lambda image: detector.predict(image).prob,
        )
    if "restore" in wanted:  # its fill: diffusion when configured, else OpenCV with the texture fill
        fill = inpainters.get("diffusion") or build_inpainter(
            "opencv", method="fsr", fsr_max_pixels=cfg.texture_fill_max_pixels
        )
        inpainters["restore"] = build_inpainter(
            "restore",
            fallback=fill,
            decomposer=_optional(Decomposer, cfg.decomposer, device),
            # Trained on restore's OpenCV fill: over a diffusion fill its changes are not what it learned.
            corrector=None if "diffusion" in inpainters else _optional(Corrector, cfg.corrector, device),
        )
    refiner = MaskRefiner(
        threshold=cfg.threshold,
        min_area=cfg.min_area,
        dilate=cfg.dilate,
        presence_threshold=cfg.presence_threshold,
    )
    return Remover(seg, refiner, inpainters, default_inpainter=default, max_coverage=cfg.max_mask_coverage)
