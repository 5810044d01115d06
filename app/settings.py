"""Service configuration: environment variables (``MARKLESS_*``) and an optional ``.env`` file.

One ``Settings`` object drives model loading, limits, CORS and authentication, so a deployment
is described entirely by its environment and the tests can build an app from plain values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.config import ModelSettings
from pipeline.io import DEFAULT_MAX_PIXELS, OutputFormat

MB = 1024 * 1024

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


def _split_list(value: Any) -> Any:
    """Accept ``a,b,c`` or a JSON list from the environment; lists pass through unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings, ModelSettings):
    """Everything a deployment can tune. Every field maps to ``MARKLESS_<FIELD>``.

    The one source of defaults and limits: the server, the CLI (which builds one too, so it
    refuses what the server refuses), the benchmark and Ray Serve all read them from here.
    """

    model_config = SettingsConfigDict(
        env_prefix="MARKLESS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- models and mask defaults: the fields of pipeline.config.ModelSettings ---------------

    # --- limits ---------------------------------------------------------------------------
    max_body_bytes: int = Field(
        25 * MB, ge=1024, description="Largest request body accepted, counted while streaming (413 above)."
    )
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS,
        ge=1,
        description="Largest image (width x height) decoded, checked from its header.",
    )
    max_concurrent_jobs: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker threads running model work. Model work on one device is serialised: keep 1 "
        "unless the device has room for several pipelines' activations.",
    )
    max_queue: int = Field(
        8, ge=0, description="Jobs allowed to wait for a worker; beyond this requests get 503 + Retry-After."
    )
    request_timeout_s: float = Field(
        120.0, gt=0.0, description="Time budget per request (upload, queue and work); 504 when exceeded."
    )
    max_request_work: float = Field(
        400.0,
        gt=0.0,
        description="Largest estimated work of one request, in megapixel-passes (see app/admission.py); "
        "413 above. The default admits a max_pixels photo with the opencv restoration.",
    )
    max_learn_work: float = Field(
        1200.0,
        gt=0.0,
        description="Largest estimated work of one mark-learning request (POST /v1/marks), in "
        "megapixel-passes: learning costs ~160 per pixel, so the default admits ~7.5 MP of photos in "
        "total (e.g. 10 photos of 0.75 MP); 413 above. Keep it at or below max_work.",
    )
    max_work: float = Field(
        1200.0,
        gt=0.0,
        description="Largest estimated work of all admitted requests together (megapixel-passes); "
        "beyond it requests get 503 + Retry-After even when job slots are free.",
    )
    header_timeout_s: float = Field(
        10.0, gt=0.0, description="Time a client has to send the request line and headers; then closed."
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0.0,
        description="Time a client has, from its request's arrival, to send the whole body; 408 after.",
    )

    # --- mark profiles (POST /v1/marks) ---------------------------------------------------
    data_dir: Path = Field(
        Path("data"),
        description="Folder for state that survives a restart: learned mark profiles live in <data_dir>/marks.",
    )
    max_marks: int = Field(
        200,
        ge=1,
        description="Mark profiles kept at most; learning another is refused (409) until one is deleted.",
    )
    max_mark_images: int = Field(
        30, ge=3, le=1000, description="Photos accepted by one POST /v1/marks (at least 3 are needed)."
    )
    max_mark_pixels: int = Field(
        60_000_000,
        ge=1,
        description="Total pixels of the photos of one POST /v1/marks (learning holds them all in memory).",
    )

    # --- HTTP -----------------------------------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (comma-separated). Empty: no CORS.",
    )
    cors_allow_credentials: bool = Field(
        False,
        description="Let browsers send cookies/HTTP auth cross-origin. Not needed for bearer keys; "
        "refused together with the '*' origin.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Accepted API keys (comma-separated). When set, /v1/* needs 'Authorization: Bearer <key>'.",
    )
    protect_metrics: bool = Field(
        False, description="With API keys set, /metrics needs a key too (for scrapers that can send one)."
    )
    protect_docs: bool = Field(
        False, description="With API keys set, /docs and /openapi.json need a key too."
    )
    default_format: OutputFormat = Field("png", description="Output format when a request names none.")
    quality: int = Field(95, ge=1, le=100, description="JPEG/WebP output quality.")
    log_level: LogLevel = Field("info", description="Logging level of the service.")

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        return [key for key in value if key.get_secret_value().strip()]

    @field_validator("default_format", mode="before")
    @classmethod
    def _normalise_format(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "jpg":
            return "jpeg"
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("cors_allow_credentials")
    @classmethod
    def _no_wildcard_with_credentials(cls, value: bool, info: ValidationInfo) -> bool:
        # A field validator (not a model one) so a config error never echoes the API keys.
        if value and "*" in info.data.get("cors_origins", []):
            raise ValueError("the '*' CORS origin cannot be combined with credentials: list the origins")
        return value

    def protected_paths(self) -> tuple[str, ...]:
        """Path prefixes that need an API key (when keys are configured)."""
        paths = ["/v1"]
        if self.protect_metrics:
            paths.append("/metrics")
        if self.protect_docs:
            paths += ["/docs", "/openapi.json"]
        return tuple(paths)

    def key_bytes(self) -> list[bytes]:
        """API keys as bytes, for constant-time comparison."""
        return [key.get_secret_value().encode("utf-8") for key in self.api_keys]
