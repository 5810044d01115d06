"""What a ``Remover`` is built from: the model fields of ``app.settings.Settings``.

Declared here, once, so ``pipeline.factory.build_remover`` can take them without importing the
app; ``Settings`` inherits every field (and its ``MARKLESS_*`` variable), so these are the one
set of model defaults for the server, the CLI, the benchmark and Ray Serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from pipeline.options import Dilate, Presence, Threshold

# The shipped weights, next to the code in a checkout; MARKLESS_SEGMENTER points elsewhere (installed images).
SHIPPED_SEGMENTER = Path(__file__).resolve().parents[1] / "weights" / "segmenter"
SHIPPED_DECOMPOSER = SHIPPED_SEGMENTER.parent / "decomposer"
SHIPPED_CORRECTOR = SHIPPED_SEGMENTER.parent / "corrector"
OFF = ("", "none", "off")
"""Values of an optional model's setting (``MARKLESS_DECOMPOSER``, ``--decomposer``) that turn it off."""

MAX_MASK_COVERAGE = 0.9
"""Largest fraction of the image a caller's mask may cover: beyond it there is nothing left to restore from."""


class ModelSettings(BaseModel):
    """Which models to load, where, and the mask defaults requests may override."""

    segmenter: Path = Field(
        SHIPPED_SEGMENTER,
        description="Folder with the segmenter weights (config.json + model.safetensors). "
        "The service refuses to start without them rather than run random weights.",
    )
    decomposer: Path | None = Field(
        SHIPPED_DECOMPOSER,
        description="Folder with the mark decomposer's weights (models/decomposer.py): the restore "
        "restoration reads mask pixels its fits leave as they came with it, and inverts them where the "
        "photo holds its reading. 'none' turns it off (restore then uses its fits alone).",
    )
    corrector: Path | None = Field(
        SHIPPED_CORRECTOR,
        description="Folder with the corrector's weights (models/corrector.py): a learned last pass "
        "that mends the restore restoration's output inside the mask, where restore changed it or the "
        "segmenter's heads see a mark. Trained on restore's OpenCV fill, so not loaded when a diffusion "
        "model fills instead. 'none' turns it off.",
    )
    inpainter: str = Field(
        "auto",
        description="Default inpainter for requests: 'auto' (restore: invert translucent marks, fill "
        "the rest with diffusion when a model is configured, else opencv), or a registered name.",
    )
    diffusion_model: str | None = Field(
        None,
        description="Hugging Face hub id or local folder of a diffusers inpainting pipeline; "
        "without it the diffusion inpainter is not loaded.",
    )
    device: str = Field("auto", description="Torch device for the models: 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Weights dtype of the diffusion pipeline ('auto': fp16 on CUDA, fp32 on CPU)."
    )
    max_side: int = Field(
        1024,
        ge=64,
        le=8192,
        description="Long side (px) the segmenter works at; larger photos are segmented downscaled.",
    )
    threshold: Threshold = Field(0.4, description="Default mask probability threshold.")
    dilate: Dilate = Field(4, description="Default mask dilation in pixels.")
    presence_threshold: Presence = Field(
        0.9,
        description="Default no-mark decision: a photo the segmenter's presence head scores below this "
        "gets no mask and comes back untouched (segmenters without that head always mask). 0.9 is the "
        "shipped segmenter's precision-first operating point (weights/segmenter/MODEL_CARD.md).",
    )
    min_area: int = Field(16, ge=0, description="Mask components smaller than this (px) are dropped.")
    texture_fill_max_pixels: int = Field(
        8_000,
        ge=0,
        le=10_000_000,
        description="Largest wide hole area (px per request) that restore's CPU fill gives the texture "
        "fill (OpenCV FSR, ~0.14 s per 1 000 px); beyond it Telea alone, so the time stays bounded. "
        "0 turns it off.",
    )
    max_mask_coverage: float = Field(
        MAX_MASK_COVERAGE,
        gt=0.0,
        le=1.0,
        description="Largest fraction of the image a caller's mask may cover (400 above): with almost "
        "nothing left around it, no method can restore the photo.",
    )

    @field_validator("decomposer", "corrector", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        """'none' (or empty) turns an optional model off."""
        return None if isinstance(value, str) and value.strip().lower() in OFF else value
