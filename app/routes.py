"""HTTP routes: the image endpoints under /v1 and the operational probes.

Handlers stay on the event loop only to validate cheap fields; reading the spooled upload,
decode, model and encode run as one job on the ``JobQueue``, so a slow request never stalls the
others and memory is bounded by admission, not by how many clients connect.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from app.admission import admit
from app.deps import JobsDep, MetricsDep, RemoverDep, SettingsDep
from app.errors import ERROR_RESPONSES, NotReadyError, error_body
from app.middleware import START_SCOPE_KEY
from app.schemas import (
    DefaultsInfo,
    HealthResponse,
    InfoResponse,
    InpaintersInfo,
    LimitsInfo,
    SegmenterInfo,
)
from app.settings import Settings
from pipeline import io
from pipeline.errors import InvalidParameterError, UnsupportedImageError, quote
from pipeline.inpaint.diffusion import validate_guidance, validate_seed, validate_steps, validate_strength
from pipeline.masks import MAX_DILATE_PX
from pipeline.remover import Remover

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Headers the web page reads from image responses (exposed through CORS as well).
RESULT_HEADERS = ("X-Request-ID", "X-Mask-Coverage", "Server-Timing", "X-Seed", "X-Inpainter")
EXPOSED_HEADERS = (*RESULT_HEADERS, "Retry-After", "Content-Disposition")

_SAFE_STEM = re.compile(r"[^A-Za-z0-9._-]+")


def version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("markless")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# ---------------------------------------------------------------------------------------------
# OpenAPI descriptions shared by the image endpoints

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_TIMING_HEADERS: dict[str, Any] = {
    "X-Request-ID": {
        "description": "Request id (the client's, if it sent a sane one).",
        "schema": {"type": "string"},
    },
    "X-Mask-Coverage": {"description": "Fraction of pixels in the mask, 0..1.", "schema": {"type": "number"}},
    "Server-Timing": {
        "description": "Per-stage durations in ms: queue, decode, segment, refine, inpaint, composite, encode.",
        "schema": {"type": "string"},
    },
}
REMOVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The restored image, same width and height as the (EXIF-rotated) input.",
        "content": {io.media_type(f): _BINARY for f in io.OUTPUT_FORMATS},
        "headers": {
            **_TIMING_HEADERS,
            "X-Inpainter": {
                "description": "Inpainter that restored the image.",
                "schema": {"type": "string"},
            },
            "X-Seed": {
                "description": "Seed that reproduces this result (the request's, or one drawn for it).",
                "schema": {"type": "integer"},
            },
        },
    },
    **ERROR_RESPONSES,
}
SEGMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "8-bit greyscale PNG mask, 255 = watermark, same size as the input.",
        "content": {"image/png": _BINARY},
        "headers": _TIMING_HEADERS,
    },
    **ERROR_RESPONSES,
}

ImageFile = Annotated[
    UploadFile,
    File(description="The photo: PNG, JPEG, WebP, BMP or TIFF. EXIF orientation is applied."),
]
ThresholdField = Annotated[
    float | None,
    Form(
        description="Mask probability threshold in (0, 1); lower catches fainter marks. Default from settings."
    ),
]
DilateField = Annotated[
    int | None,
    Form(description=f"Grow the mask by this many pixels, 0..{MAX_DILATE_PX}. Default from settings."),
]


# ---------------------------------------------------------------------------------------------
# the blocking work (runs on a job worker)


@dataclass
class _Output:
    body: bytes
    media_type: str
    coverage: float
    timings: dict[str, float] = field(default_factory=dict)
    inpainter: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class _RemoveOptions:
    inpainter: str | None
    threshold: float | None
    dilate: int | None
    seed: int | None
    steps: int | None
    guidance_scale: float | None
    strength: float | None
    fmt: str


def _read(upload: UploadFile) -> bytes:
    """The upload's bytes, read on the worker: only admitted jobs ever hold an image in memory
    (the parser spooled it to a temporary file), and the event loop never blocks on disk."""
    upload.file.seek(0)
    return upload.file.read()


def _remove_job(
    remover: Remover, settings: Settings, image: UploadFile, mask: UploadFile | None, opts: _RemoveOptions
) -> _Output:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    decoded = io.decode(_read(image), max_pixels=settings.max_pixels)
    user_mask = None
    if mask is not None:
        size = (decoded.width, decoded.height)
        user_mask = io.decode_mask(_read(mask), size, max_pixels=settings.max_pixels)
    timings["decode"] = time.perf_counter() - start
    result = remover.remove(
        decoded.rgb,
        user_mask,
        inpainter=opts.inpainter,
        threshold=opts.threshold,
        dilate=opts.dilate,
        seed=opts.seed,
        steps=opts.steps,
        guidance_scale=opts.guidance_scale,
        strength=opts.strength,
    )
    timings.update(result.timings)
    start = time.perf_counter()
    body = io.encode(
        result.image,
        opts.fmt,
        alpha=decoded.alpha,
        exif=decoded.exif,
        icc_profile=decoded.icc_profile,
        quality=settings.quality,
    )
    timings["encode"] = time.perf_counter() - start
    return _Output(body, io.media_type(opts.fmt), result.coverage, timings, result.inpainter, result.seed)


def _segment_job(
    remover: Remover, settings: Settings, image: UploadFile, threshold: float | None, dilate: int | None
) -> _Output:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    decoded = io.decode(_read(image), max_pixels=settings.max_pixels)
    timings["decode"] = time.perf_counter() - start
    mask, _ = remover.segment(decoded.rgb, threshold=threshold, dilate=dilate, timings=timings)
    start = time.perf_counter()
    body = io.encode_mask(mask)
    timings["encode"] = time.perf_counter() - start
    coverage = float(mask.mean()) if mask.size else 0.0
    return _Output(body, "image/png", coverage, timings)


# ---------------------------------------------------------------------------------------------
# helpers on the event loop


def _remaining_budget(request: Request, settings: Settings) -> float:
    start = request.scope.get(START_SCOPE_KEY, time.perf_counter())
    return settings.request_timeout_s - (time.perf_counter() - start)


def _require_content(upload: UploadFile) -> None:
    """Refuse an empty image before it takes a queue slot."""
    if upload.size == 0:
        raise UnsupportedImageError("the image file is empty: expected a PNG, JPEG, WebP, BMP or TIFF image")


def _is_blank_upload(upload: UploadFile | None) -> bool:
    """A file input left empty in a browser form arrives as a nameless, empty part."""
    return upload is None or (not upload.filename and upload.size == 0)


def _output_name(upload: UploadFile, suffix: str) -> str:
    stem = Path(upload.filename or "image").stem
    stem = _SAFE_STEM.sub("_", stem).strip("._") or "image"
    return f"{stem[:100]}{suffix}"


def _result_headers(out: _Output, queued_s: float) -> dict[str, str]:
    stages = {"queue": queued_s, **out.timings}
    headers = {
        "X-Mask-Coverage": f"{out.coverage:.6f}",
        "Server-Timing": ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in stages.items()),
        "Cache-Control": "no-store",
    }
    if out.inpainter:
        headers["X-Inpainter"] = out.inpainter
    if out.seed is not None:
        headers["X-Seed"] = str(out.seed)
    return headers


def _check_remove_options(remover: Remover, opts: _RemoveOptions) -> None:
    """Refuse bad parameters before the job takes a queue slot (the pipeline re-checks anyway)."""
    if opts.inpainter is not None and opts.inpainter not in remover.inpainters:
        raise InvalidParameterError(
            f"inpainter {quote(opts.inpainter)} is not loaded; choose one of: {', '.join(sorted(remover.inpainters))}"
        )
    remover.refiner.with_options(opts.threshold, opts.dilate)  # raises on out-of-range values
    if opts.seed is not None:
        validate_seed(opts.seed)
    if opts.steps is not None:
        validate_steps(opts.steps)
    if opts.guidance_scale is not None:
        validate_guidance(opts.guidance_scale)
    if opts.strength is not None:
        validate_strength(opts.strength)


# ---------------------------------------------------------------------------------------------
# routes

v1 = APIRouter(prefix="/v1", tags=["watermarks"])
ops = APIRouter(tags=["operations"])


@v1.post(
    "/remove",
    response_class=Response,
    responses=REMOVE_RESPONSES,
    summary="Remove the watermark from a photo",
)
async def remove(
    request: Request,
    remover: RemoverDep,
    settings: SettingsDep,
    jobs: JobsDep,
    metrics: MetricsDep,
    image: ImageFile,
    mask: Annotated[
        UploadFile | None,
        File(
            description="Optional mask, same size as the (EXIF-rotated) image: white = remove. "
            "Skips segmentation; pixels outside it are returned unchanged."
        ),
    ] = None,
    inpainter: Annotated[
        str | None,
        Form(
            description="Restoration stage, one of `inpainters.loaded` in GET /v1/info. Default from settings."
        ),
    ] = None,
    threshold: ThresholdField = None,
    dilate: DilateField = None,
    seed: Annotated[
        int | None, Form(description="Seed for generative inpainters, 0..2**63-1 (reproducible results).")
    ] = None,
    steps: Annotated[int | None, Form(description="Denoising steps for diffusion, 1..150.")] = None,
    guidance_scale: Annotated[
        float | None, Form(description="Classifier-free guidance for diffusion, 0..30.")
    ] = None,
    strength: Annotated[float | None, Form(description="Diffusion denoising strength in (0, 1].")] = None,
    output_format: Annotated[
        str | None,
        Form(alias="format", description="Output format: png, jpeg or webp. Default from settings."),
    ] = None,
) -> Response:
    """Segment the watermark (or use the given mask), inpaint it and return the clean image.

    PNG and WebP keep the input's alpha channel; EXIF (orientation reset, thumbnail dropped)
    and RGB ICC profiles are kept in every format.
    """
    opts = _RemoveOptions(
        inpainter=inpainter or None,
        threshold=threshold,
        dilate=dilate,
        seed=seed,
        steps=steps,
        guidance_scale=guidance_scale,
        strength=strength,
        fmt=io.normalize_format(output_format or settings.default_format),
    )
    _check_remove_options(remover, opts)
    _require_content(image)
    user_mask = None if _is_blank_upload(mask) else mask
    cost = await admit(remover, settings, image.file, inpainter=opts.inpainter or "", fmt=opts.fmt)
    out, queued = await jobs.run(
        lambda: _remove_job(remover, settings, image, user_mask, opts),
        timeout=_remaining_budget(request, settings),
        cost=cost,
    )
    metrics.observe_stages({"queue": queued, **out.timings})
    metrics.coverage.observe(out.coverage)
    headers = _result_headers(out, queued)
    headers["Content-Disposition"] = f'inline; filename="{_output_name(image, io.file_suffix(opts.fmt))}"'
    return Response(out.body, media_type=out.media_type, headers=headers)


@v1.post(
    "/segment",
    response_class=Response,
    responses=SEGMENT_RESPONSES,
    summary="Predict the watermark mask of a photo",
)
async def segment(
    request: Request,
    remover: RemoverDep,
    settings: SettingsDep,
    jobs: JobsDep,
    metrics: MetricsDep,
    image: ImageFile,
    threshold: ThresholdField = None,
    dilate: DilateField = None,
) -> Response:
    """Return the refined mask the remover would use: 8-bit PNG, 255 = watermark, same size."""
    if remover.segmenter is None:
        raise InvalidParameterError("no segmenter is loaded")
    remover.refiner.with_options(threshold, dilate)
    _require_content(image)
    cost = await admit(remover, settings, image.file, inpainter=None, fmt=None)
    out, queued = await jobs.run(
        lambda: _segment_job(remover, settings, image, threshold, dilate),
        timeout=_remaining_budget(request, settings),
        cost=cost,
    )
    metrics.observe_stages({"queue": queued, **out.timings})
    headers = _result_headers(out, queued)
    headers["Content-Disposition"] = f'inline; filename="{_output_name(image, "-mask.png")}"'
    return Response(out.body, media_type=out.media_type, headers=headers)


@v1.get(
    "/info", response_model=InfoResponse, responses={401: ERROR_RESPONSES[401], 503: ERROR_RESPONSES[503]}
)
async def info(request: Request, remover: RemoverDep, settings: SettingsDep) -> InfoResponse:
    """Versions, loaded models, limits and defaults, for clients such as the web page."""
    seg = remover.segmenter
    return InfoResponse(
        version=version(),
        device=str(request.app.state.device),
        segmenter=SegmenterInfo(
            loaded=seg is not None,
            heads=list(seg.heads) if seg is not None else [],
            max_side=seg.max_side if seg is not None else None,
        ),
        inpainters=InpaintersInfo(loaded=sorted(remover.inpainters), default=remover.default_inpainter),
        limits=LimitsInfo(
            max_body_bytes=settings.max_body_bytes,
            max_pixels=settings.max_pixels,
            max_queue=settings.max_queue,
            max_concurrent_jobs=settings.max_concurrent_jobs,
            request_timeout_s=settings.request_timeout_s,
        ),
        defaults=DefaultsInfo(
            threshold=remover.refiner.threshold,
            dilate=remover.refiner.dilate,
            max_dilate=MAX_DILATE_PX,
            format=settings.default_format,
        ),
        input_formats=[f.lower() for f in io.INPUT_FORMATS],
        output_formats=list(io.OUTPUT_FORMATS),
        auth_required=bool(settings.api_keys),
        model_load_seconds=getattr(request.app.state, "model_load_seconds", None),
    )


@ops.get("/healthz", response_model=HealthResponse, summary="Liveness: the process is up")
@ops.head("/healthz", response_model=HealthResponse, include_in_schema=False)
async def healthz() -> HealthResponse:
    """Answers as long as the event loop runs, whatever the models' state."""
    return HealthResponse(status="ok")


@ops.head("/readyz", response_model=HealthResponse, include_in_schema=False)
@ops.get(
    "/readyz",
    response_model=HealthResponse,
    responses={503: ERROR_RESPONSES[503]},
    summary="Readiness: the models are loaded",
)
async def readyz(request: Request) -> HealthResponse | JSONResponse:
    """200 once the models are loaded; 503 before (and after shutdown began)."""
    if getattr(request.app.state, "remover", None) is None:
        error = NotReadyError()
        return JSONResponse(error_body(error.code, error.message), status_code=503, headers=error.headers)
    return HealthResponse(status="ready")


@ops.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition.", "content": {"text/plain": {}}}},
    summary="Prometheus metrics",
)
async def prometheus_metrics(metrics: MetricsDep, jobs: JobsDep) -> Response:
    """Request counts and latency by route and status, stage histograms, queue depth, model load time."""
    metrics.queue_depth.set(jobs.depth)
    metrics.jobs_running.set(jobs.running)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@ops.get("/", include_in_schema=False)
async def index() -> Response:
    """The web page when it is installed, else the interactive API docs."""
    page = STATIC_DIR / "index.html"
    if page.is_file():
        return FileResponse(page, media_type="text/html")
    return RedirectResponse("/docs")


__all__ = ["EXPOSED_HEADERS", "STATIC_DIR", "ops", "v1", "version"]
