"""Per-request options: one typed, validated model for the API form, the CLI, /v1/info and ``Remover``.

Each option is declared once, here, with its range and description. The HTTP form fields
(``app.forms``) and the CLI flags (``app.cli``) are derived from these fields, so adding an
option is one field here plus the code that reads it. ``None`` means "the service's default"
(from ``Settings``). Ranges shared with ``Settings`` (the defaults) are the ``Annotated`` types
below, so a default can never be something a request may not ask for.
"""

from __future__ import annotations

import secrets
import typing
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.errors import InvalidParameterError, quote

MAX_DILATE_PX = 256
MAX_SEED = 2**63 - 1
STEPS_RANGE = (1, 150)
GUIDANCE_RANGE = (0.0, 30.0)

Threshold = Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)]
Dilate = Annotated[int, Field(ge=0, le=MAX_DILATE_PX)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Steps = Annotated[int, Field(ge=STEPS_RANGE[0], le=STEPS_RANGE[1])]
Guidance = Annotated[float, Field(ge=GUIDANCE_RANGE[0], le=GUIDANCE_RANGE[1], allow_inf_nan=False)]
Strength = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
Presence = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field, for a 400 message or a CLI error."""
    parts = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "value"
        parts.append(f"{name}: {error['msg'][0].lower()}{error['msg'][1:]}, got {quote(error.get('input'))}")
    return "; ".join(parts)


class SegmentOptions(BaseModel):
    """What shapes the mask: the options of /v1/segment and ``markless segment``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: Threshold | None = Field(
        None,
        description="Mask probability threshold in (0, 1); lower catches fainter marks. Default from settings.",
    )
    dilate: Dilate | None = Field(
        None, description=f"Grow the mask by this many pixels, 0..{MAX_DILATE_PX}. Default from settings."
    )
    presence_threshold: Presence | None = Field(
        None,
        description="How sure the segmenter must be that the photo carries a mark at all, 0..1, before "
        "anything is masked; below it the photo comes back untouched. 0 turns the decision off. "
        "Default from settings.",
    )

    @classmethod
    def of(cls, **values: Any) -> Self:
        """Validate ``values``; a bad one is an ``InvalidParameterError`` (HTTP 400, CLI exit 2)."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise InvalidParameterError(describe_validation_error(exc)) from None

    @classmethod
    def coerce(cls, options: SegmentOptions | None, values: dict[str, Any]) -> Self:
        """``options`` when given (and no loose ``values``), else ``values`` validated."""
        if options is None:
            return cls.of(**values)
        if values:
            raise TypeError("pass either an options object or keyword options, not both")
        if not isinstance(options, cls):
            return cls.of(**options.model_dump(include=set(cls.model_fields)))
        return options

    @classmethod
    def field_types(cls) -> dict[str, tuple[type, str]]:
        """Each field's plain value type (ranges stripped) and description: what a form or a
        command line parses before the model validates the ranges."""
        return {
            name: (_plain_type(info.annotation), info.description or "")
            for name, info in cls.model_fields.items()
        }


class RemoveOptions(SegmentOptions):
    """What /v1/remove and ``markless remove`` accept besides the image and the mask."""

    inpainter: str | None = Field(
        None,
        description="Restoration stage, one of `inpainters.loaded` in GET /v1/info. Default from settings.",
    )
    seed: Seed | None = Field(
        None, description="Seed for generative inpainters, 0..2**63-1 (reproducible results)."
    )
    steps: Steps | None = Field(
        None, description=f"Denoising steps for diffusion, {STEPS_RANGE[0]}..{STEPS_RANGE[1]}."
    )
    guidance_scale: Guidance | None = Field(
        None,
        description=f"Classifier-free guidance for diffusion, {GUIDANCE_RANGE[0]:g}..{GUIDANCE_RANGE[1]:g}.",
    )
    strength: Strength | None = Field(None, description="Diffusion denoising strength in (0, 1].")
    mark: str | None = Field(
        None,
        max_length=4096,  # no min_length: "" is the default, as for every blank form field
        description="Remove exactly this learned mark instead of segmenting: the id from POST /v1/marks "
        "(API), or a saved profile (.json) or an RGBA mark image (CLI). A photo where it is not found "
        "comes back untouched.",
    )

    @field_validator("inpainter", "mark", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        # A browser form sends an empty select as ""; that means "the default" too.
        return value or None

    def seed_or_draw(self) -> int:
        """The request's seed, else one drawn now: the only place a seed is drawn."""
        return self.seed if self.seed is not None else secrets.randbelow(2**32)

    def seeded(self) -> RemoveOptions:
        """These options with a seed, so a result can always report the seed that reproduces it."""
        return self if self.seed is not None else self.model_copy(update={"seed": self.seed_or_draw()})


def _plain_type(annotation: Any) -> type:
    """``Threshold | None`` → ``float``: the parse type without ranges (those give 400, not 422)."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) is Annotated or (args and annotation is not None):
        return _plain_type(args[0])
    return typing.cast(type, annotation)


__all__ = [
    "GUIDANCE_RANGE",
    "MAX_DILATE_PX",
    "MAX_SEED",
    "STEPS_RANGE",
    "Dilate",
    "Guidance",
    "Presence",
    "RemoveOptions",
    "Seed",
    "SegmentOptions",
    "Steps",
    "Strength",
    "Threshold",
    "describe_validation_error",
]
