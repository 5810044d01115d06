"""The FastAPI application: factory, lifespan (model loading) and ``serve``.

``create_app(settings, remover)`` builds a self-contained app; its lifespan loads the one
``Remover`` from the settings unless a ready one was injected (tests, benchmarks), and shuts
the job queue down gracefully. ``serve`` is what ``markless serve`` calls: it loads the models
*before* starting uvicorn, so missing weights end the command with one clear line.

For plain uvicorn use: ``uvicorn app.main:create_app --factory`` or ``uvicorn app.main:app``
(the module attribute ``app`` is built on first access).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from app.docs import install_docs
from app.errors import install_error_handlers
from app.jobs import JobQueue
from app.marks import MarkStore
from app.marks import router as marks_router
from app.metrics import Metrics
from app.middleware import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    DisconnectMiddleware,
    RequestContextMiddleware,
    RequestIdLogFilter,
    SecurityHeadersMiddleware,
)
from app.openapi import install_openapi
from app.routes import EXPOSED_HEADERS, STATIC_DIR, ops, v1, version
from app.server import uvicorn_config
from app.settings import Settings
from pipeline.errors import MarklessError
from pipeline.factory import build_remover
from pipeline.remover import Remover
from pipeline.service import RemovalService

log = logging.getLogger(__name__)

# Multipart hardening: the API takes two files (POST /v1/marks: max_mark_images) and a handful
# of small fields.
FORM_LIMITS = {"max_files": 4, "max_fields": 32, "max_part_size": 64 * 1024}


def form_limits(settings: Settings) -> dict[str, int]:
    """``FORM_LIMITS`` with room for the photos of one learning request."""
    return {**FORM_LIMITS, "max_files": max(FORM_LIMITS["max_files"], settings.max_mark_images + 1)}


def load_remover(settings: Settings) -> tuple[Remover, float]:
    """Build the ``Remover`` the settings describe; returns it and the seconds it took."""
    start = time.perf_counter()
    remover = build_remover(settings)
    return remover, time.perf_counter() - start


def install_remover(app: FastAPI, remover: RemovalService, load_seconds: float | None = None) -> None:
    """Make ``remover`` the app's service (ready from now on) and record how long it took to load."""
    state = app.state
    about = remover.info()
    state.device = about.device
    state.model_load_seconds = load_seconds
    if load_seconds is not None:
        state.metrics.model_load.set(load_seconds)
    state.metrics.build.info(
        {"version": version(), "device": state.device, "default_inpainter": about.default_inpainter}
    )
    state.remover = remover


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the models (unless injected) before serving; let admitted jobs finish on shutdown."""
    state = app.state
    if state.jobs.closed:  # the app is being started again (e.g. a second TestClient context)
        state.jobs = make_job_queue(state.settings, state.metrics)
    if state.remover is None and state.injected_remover is not None:
        install_remover(app, state.injected_remover, state.model_load_seconds)
    if state.remover is None:
        try:
            remover, seconds = await anyio.to_thread.run_sync(load_remover, state.settings)
        except MarklessError as exc:
            # One clear line for the server's log instead of a traceback (see RequestContextMiddleware).
            state.startup_error = f"markless cannot start: {exc.message}"
            raise
        install_remover(app, remover, seconds)
        log.info("models loaded in %.2f s on %s", seconds, state.device)
    try:
        yield
    finally:
        state.remover = None  # /readyz turns 503 while draining
        await anyio.to_thread.run_sync(state.jobs.close)


def make_job_queue(settings: Settings, metrics: Metrics) -> JobQueue:
    """The job queue the settings describe."""
    return JobQueue(
        settings.max_concurrent_jobs, settings.max_queue, max_work=settings.max_work, metrics=metrics
    )


def create_app(settings: Settings | None = None, remover: RemovalService | None = None) -> FastAPI:
    """Build the service. With ``remover`` the models are not loaded again (and it is ready at once)."""
    settings = settings or Settings()
    app = FastAPI(
        title="markless",
        version=version(),
        summary="Remove visible watermarks from photos.",
        description="Segmentation finds the watermark, inpainting restores what it covered. "
        'Errors are JSON `{"error": {"code", "message"}}`; with API keys configured, '
        "/v1 endpoints need `Authorization: Bearer <key>`.",
        lifespan=lifespan,
        form_limits=form_limits(settings),  # type: ignore[arg-type]
        docs_url=None,  # served by app.docs from the package's own Swagger UI files
        redoc_url=None,
    )
    metrics = Metrics()
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.jobs = make_job_queue(settings, metrics)
    app.state.remover = None
    app.state.device = settings.device
    app.state.model_load_seconds = None
    app.state.startup_error = None
    app.state.injected_remover = remover
    app.state.marks = MarkStore(settings.data_dir / "marks", settings.max_marks)
    if remover is not None:
        install_remover(app, remover)

    install_error_handlers(app)
    app.include_router(ops)
    # The keys are enforced by ApiKeyMiddleware before any body is read; this declares the
    # scheme in the OpenAPI document so /docs offers an "Authorize" button.
    bearer = HTTPBearer(auto_error=False, description="One of the keys in MARKLESS_API_KEYS.")
    app.include_router(v1, dependencies=[Security(bearer)] if settings.api_keys else [])
    app.include_router(marks_router, dependencies=[Security(bearer)] if settings.api_keys else [])
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_docs(app)
    install_openapi(app, lambda: app.state.remover)

    # Added inner to outer: the body limit sits closest to the routes, the context outermost.
    app.add_middleware(DisconnectMiddleware)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(ApiKeyMiddleware, keys=settings.key_bytes(), protected=settings.protected_paths())
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=list(EXPOSED_HEADERS),
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    label_routes = [
        *ops.routes,
        *v1.routes,
        *marks_router.routes,
        *app.routes,
    ]  # concrete routes first (metrics labels)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, routes=label_routes, state=app.state)
    return app


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging plus ours, every line tagged with the request id."""
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdLogFilter}},
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": upper},
    }


def serve(host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None) -> None:
    """Run the service with uvicorn until interrupted.

    The models are loaded first, so a missing or broken model raises its ``MarklessError``
    here (the CLI prints its one-line message) instead of failing inside the server.
    """
    import logging.config

    import uvicorn

    settings = settings or Settings()
    remover, seconds = load_remover(settings)  # before touching logging: a failure is one line
    logging.config.dictConfig(log_config(settings.log_level))
    app = create_app(settings, remover)
    install_remover(app, remover, seconds)
    log.info("models loaded in %.2f s on %s; serving on http://%s:%d", seconds, app.state.device, host, port)
    uvicorn.Server(uvicorn_config(app, settings, host=host, port=port)).run()


def __getattr__(name: str) -> Any:
    """``app.main.app``: the app built from the environment, created on first access."""
    if name == "app":
        global _app
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_app: FastAPI | None = None
