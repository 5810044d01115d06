"""HTTP routes: the image endpoints under /v1 and the operational probes.

Handlers stay on the event loop only to validate cheap fields; reading the spooled upload,
decode, model and encode run as one job on the ``JobQueue``, so a slow request never stalls the
others and memory is bounded by admission, not by how many clients connect.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from app.admission import admit
from app.deps import ContextDep, JobsDep, MetricsDep, RequestContext, ServiceDep, SettingsDep
from app.errors import ERROR_RESPONSES, MARK_NOT_FOUND, NotReadyError, error_body
from app.forms import options_form
from app.marks import get_store
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
from pipeline.errors import InvalidParameterError, UnsupportedImageError
from pipeline.marks import MarkProfile
from pipeline.options import MAX_DILATE_PX, RemoveOptions, SegmentOptions
from pipeline.service import RemovalService

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Headers the web page reads from image responses (exposed through CORS as well).
RESULT_HEADERS = (
    "X-Request-ID",
    "X-Mask-Coverage",
    "X-Watermark-Found",
    "X-Watermark-Presence",
    "X-Mark-Reason",
    "Server-Timing",
    "X-Seed",
    "X-Inpainter",
)
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


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


_TIMING_HEADERS: dict[str, Any] = {
    "X-Request-ID": _header("Request id (the client's, if it sent a sane one)."),
    "X-Mask-Coverage": _header("Fraction of pixels in the mask, 0..1.", "number"),
    "X-Watermark-Found": _header(
        "`false` when nothing was found to remove: the segmenter decided the photo carries no mark "
        "(or the given mask was empty), and the image is returned unchanged."
    ),
    "X-Watermark-Presence": _header(
        "The segmenter's confidence, 0..1, that the photo carries a mark at all (when it has that head).",
        "number",
    ),
    "X-Mark-Reason": _header(
        "With `mark=<id>`, when the photo came back untouched: why (the learned mark is not on it, or "
        "only a fainter copy that inverting would make worse). Plain ASCII, at most 300 characters."
    ),
    "Server-Timing": _header(
        "Per-stage durations in ms: queue, decode, segment, refine, inpaint, composite, encode."
    ),
}
REMOVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The restored image, same width and height as the (EXIF-rotated) input.",
        "content": {io.media_type(f): _BINARY for f in io.OUTPUT_FORMATS},
        "headers": {
            **_TIMING_HEADERS,
            "X-Inpainter": _header("Inpainter that restored the image."),
            "X-Seed": _header(
                "Seed that reproduces this result (the request's, or one drawn for it).", "integer"
            ),
        },
    },
    **ERROR_RESPONSES,
    **MARK_NOT_FOUND,
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
RemoveOptionsDep = Annotated[RemoveOptions, Depends(options_form(RemoveOptions, text_fields=("format",)))]
SegmentOptionsDep = Annotated[SegmentOptions, Depends(options_form(SegmentOptions))]


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
    found: bool = True
    presence: float | None = None
    reason: str = ""  # why a mark profile left the photo untouched


def _read(upload: UploadFile) -> bytes:
    """The upload's bytes, read on the worker: only admitted jobs ever hold an image in memory
    (the parser spooled it to a temporary file), and the event loop never blocks on disk."""
    upload.file.seek(0)
    return upload.file.read()


def _remove_job(
    service: RemovalService,
    settings: Settings,
    image: UploadFile,
    mask: UploadFile | None,
    opts: RemoveOptions,
    fmt: str,
    profile: MarkProfile | None = None,
) -> _Output:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    decoded = io.decode(_read(image), max_pixels=settings.max_pixels)
    user_mask = None
    if mask is not None:
        size = (decoded.width, decoded.height)
        user_mask = io.decode_mask(_read(mask), size, max_pixels=settings.max_pixels)
    timings["decode"] = time.perf_counter() - start
    if profile is not None:
        result = service.remove_mark(decoded.rgb, profile, opts)
    else:
        result = service.remove(decoded.rgb, user_mask, opts)
    timings.update(result.timings)
    start = time.perf_counter()
    body = decoded.encode_result(result.image, fmt, quality=settings.quality)
    timings["encode"] = time.perf_counter() - start
    return _Output(
        body,
        io.media_type(fmt),
        result.coverage,
        timings,
        result.inpainter,
        result.seed,
        found=result.found,
        presence=result.presence,
        reason="" if result.found else str((result.mark or {}).get("reason") or ""),
    )


def _segment_job(
    service: RemovalService, settings: Settings, image: UploadFile, opts: SegmentOptions
) -> _Output:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    decoded = io.decode(_read(image), max_pixels=settings.max_pixels)
    timings["decode"] = time.perf_counter() - start
    mask, seg = service.segment(decoded.rgb, opts, timings=timings)
    start = time.perf_counter()
    body = io.encode_mask(mask)
    timings["encode"] = time.perf_counter() - start
    coverage = float(mask.mean()) if mask.size else 0.0
    return _Output(
        body,
        "image/png",
        coverage,
        timings,
        found=bool(mask.any()),
        presence=None if seg is None else seg.presence,
    )


# ---------------------------------------------------------------------------------------------
# helpers on the event loop


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
        "X-Watermark-Found": "true" if out.found else "false",
        "Server-Timing": ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in stages.items()),
        "Cache-Control": "no-store",
    }
    if out.presence is not None:
        headers["X-Watermark-Presence"] = f"{out.presence:.4f}"
    if out.reason:
        headers["X-Mark-Reason"] = out.reason.encode("ascii", "replace").decode()[:300]
    if out.inpainter:
        headers["X-Inpainter"] = out.inpainter
    if out.seed is not None:
        headers["X-Seed"] = str(out.seed)
    return headers


async def _respond(
    ctx: RequestContext,
    image: UploadFile,
    work: Callable[[], _Output],
    suffix: str,
    *,
    inpainter: str | None,
    fmt: str | None,
) -> Response:
    """Admit the request by its cost, run ``work`` as a job within the request's time budget and
    answer with its image. ``inpainter``/``fmt``: see ``app.admission.admit``."""
    _require_content(image)
    cost = await admit(ctx.service, ctx.settings, image.file, inpainter=inpainter, fmt=fmt)
    out, queued = await ctx.jobs.run(work, timeout=ctx.remaining_budget(), cost=cost)
    ctx.metrics.observe_stages({"queue": queued, **out.timings})
    if out.inpainter:
        ctx.metrics.coverage.observe(out.coverage)
    headers = _result_headers(out, queued)
    headers["Content-Disposition"] = f'inline; filename="{_output_name(image, suffix)}"'
    return Response(out.body, media_type=out.media_type, headers=headers)


# ---------------------------------------------------------------------------------------------
# routes

v1 = APIRouter(prefix="/v1", tags=["watermarks"])
ops = APIRouter(tags=["operations"])


@v1.post("/remove", response_class=Response, responses=REMOVE_RESPONSES, summary="Remove the watermark")
async def remove(
    ctx: ContextDep,
    image: ImageFile,
    opts: RemoveOptionsDep,
    mask: Annotated[
        UploadFile | None,
        File(
            description="Optional mask, same size as the (EXIF-rotated) image: white = remove. "
            "Used instead of the segmenter's mask (restore and unblend still read its opacity and "
            "colour maps); pixels outside it are returned unchanged."
        ),
    ] = None,
    output_format: Annotated[
        str | None,
        Form(alias="format", description="Output format: png, jpeg or webp. Default from settings."),
    ] = None,
) -> Response:
    """Segment the watermark (or use the given mask), inpaint it and return the clean image.

    With ``mark=<id>`` (from ``POST /v1/marks``) that learned mark is located and inverted
    instead; a photo where it is not found comes back untouched.

    PNG and WebP keep the input's alpha channel; EXIF (orientation reset, thumbnail dropped)
    and RGB ICC profiles are kept in every format.
    """
    fmt = io.normalize_format(output_format or ctx.settings.default_format)
    ctx.service.check(opts)  # before the job takes a queue slot
    user_mask = None if _is_blank_upload(mask) else mask
    profile = None
    if opts.mark is not None:
        if user_mask is not None:
            raise InvalidParameterError("give either a mask or a mark profile, not both")
        profile = get_store(ctx.request).load(opts.mark)  # 404 before the upload is decoded
    work = lambda: _remove_job(ctx.service, ctx.settings, image, user_mask, opts, fmt, profile)  # noqa: E731
    return await _respond(ctx, image, work, io.file_suffix(fmt), inpainter=opts.inpainter or "", fmt=fmt)


@v1.post(
    "/segment", response_class=Response, responses=SEGMENT_RESPONSES, summary="Predict the watermark mask"
)
async def segment(
    ctx: ContextDep,
    image: ImageFile,
    opts: SegmentOptionsDep,
) -> Response:
    """Return the refined mask the remover would use: 8-bit PNG, 255 = watermark, same size."""
    ctx.service.check(opts)
    work = lambda: _segment_job(ctx.service, ctx.settings, image, opts)  # noqa: E731
    return await _respond(ctx, image, work, "-mask.png", inpainter=None, fmt=None)


@v1.get(
    "/info", response_model=InfoResponse, responses={401: ERROR_RESPONSES[401], 503: ERROR_RESPONSES[503]}
)
async def info(request: Request, service: ServiceDep, settings: SettingsDep) -> InfoResponse:
    """Versions, loaded models, limits and defaults, for clients such as the web page."""
    about = service.info()
    seg = about.segmenter
    return InfoResponse(
        version=version(),
        device=about.device,
        segmenter=SegmenterInfo(
            loaded=seg is not None,
            heads=list(seg.heads) if seg is not None else [],
            max_side=seg.max_side if seg is not None else None,
        ),
        inpainters=InpaintersInfo(loaded=list(about.inpainters), default=about.default_inpainter),
        limits=LimitsInfo(
            max_body_bytes=settings.max_body_bytes,
            max_pixels=settings.max_pixels,
            max_queue=settings.max_queue,
            max_concurrent_jobs=settings.max_concurrent_jobs,
            request_timeout_s=settings.request_timeout_s,
        ),
        defaults=DefaultsInfo(
            **about.defaults.model_dump(exclude_none=True),
            max_dilate=MAX_DILATE_PX,
            format=settings.default_format,
        ),
        options=RemoveOptions.model_json_schema(),
        input_formats=[f.lower() for f in io.INPUT_FORMATS],
        output_formats=list(io.OUTPUT_FORMATS),
        auth_required=bool(settings.api_keys),
        model_load_seconds=getattr(request.app.state, "model_load_seconds", None),
    )


# GET is registered before HEAD: a 405 (OPTIONS...) names the first route matching the path in
# its Allow header, which must be the documented method (HEAD is implied by GET, RFC 9110).
@ops.head("/healthz", response_model=HealthResponse, include_in_schema=False)
@ops.get("/healthz", response_model=HealthResponse, summary="Liveness: the process is up")
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
    responses={
        200: {"description": "Prometheus text exposition.", "content": {"text/plain": {}}},
        401: ERROR_RESPONSES[401],
    },
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
