"""JSON bodies of the API (the image endpoints answer with image bytes, not JSON)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HealthResponse(BaseModel):
    """Liveness/readiness answer."""

    status: str = Field(description="'ok' (process up) or 'ready' (models loaded).")


class SegmenterInfo(BaseModel):
    """The loaded segmentation model."""

    loaded: bool = Field(
        description="False when the service runs without a segmenter (masks must be supplied)."
    )
    heads: list[str] = Field(
        description="Output heads: 'mask', plus 'alpha'/'color' for decomposition models."
    )
    max_side: int | None = Field(description="Long side (px) the segmenter works at.")


class InpaintersInfo(BaseModel):
    """Restoration stages a request may pick with the `inpainter` field."""

    loaded: list[str] = Field(description="Names accepted by the `inpainter` field.")
    default: str = Field(description="Used when a request names none.")


class LimitsInfo(BaseModel):
    """What the service refuses, so a client can check before uploading."""

    max_body_bytes: int = Field(description="Largest request body (413 above).")
    max_pixels: int = Field(description="Largest image, width x height (413 above).")
    max_queue: int = Field(description="Jobs that may wait for a worker (503 + Retry-After beyond).")
    max_concurrent_jobs: int = Field(description="Jobs processed at the same time.")
    request_timeout_s: float = Field(description="Time budget of a request (504 beyond).")


class DefaultsInfo(BaseModel):
    """Values used for omitted request fields."""

    threshold: float = Field(description="Mask probability threshold, in (0, 1).")
    dilate: int = Field(description="Mask dilation in pixels.")
    max_dilate: int = Field(description="Largest dilation accepted.")
    format: str = Field(description="Output format.")


class InfoResponse(BaseModel):
    """Everything the web page needs to configure itself."""

    version: str = Field(description="markless version.")
    device: str = Field(description="Torch device the models run on, e.g. 'cpu' or 'cuda:0'.")
    segmenter: SegmenterInfo
    inpainters: InpaintersInfo
    limits: LimitsInfo
    defaults: DefaultsInfo
    options: dict[str, Any] = Field(
        description="JSON Schema of the /v1/remove options (names, types, ranges, descriptions)."
    )
    input_formats: list[str] = Field(description="Image formats accepted as input.")
    output_formats: list[str] = Field(description="Values accepted by the `format` field.")
    auth_required: bool = Field(description="True when /v1 endpoints need 'Authorization: Bearer <key>'.")
    model_load_seconds: float | None = Field(description="Time it took to load the models at startup.")
