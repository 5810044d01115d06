"""FastAPI dependencies: where route handlers get the app's shared objects.

All of them read ``app.state`` (filled by ``create_app`` and its lifespan), so a test can
inject a ready ``RemovalService`` (a ``Remover``) into ``create_app`` or override any getter through
``app.dependency_overrides[get_remover] = ...``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.errors import NotReadyError
from app.jobs import JobQueue
from app.metrics import Metrics
from app.middleware import START_SCOPE_KEY
from app.settings import Settings
from pipeline.service import RemovalService


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_remover(request: Request) -> RemovalService:
    """The loaded service (``Remover`` or Ray's ``RemoteRemover``); 503 ``not_ready`` until loaded."""
    remover: RemovalService | None = getattr(request.app.state, "remover", None)
    if remover is None:
        raise NotReadyError()
    return remover


def get_jobs(request: Request) -> JobQueue:
    """The app's job queue (worker threads + admission control)."""
    jobs: JobQueue = request.app.state.jobs
    return jobs


def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[RemovalService, Depends(get_remover)]
JobsDep = Annotated[JobQueue, Depends(get_jobs)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


@dataclass(frozen=True)
class RequestContext:
    """What an image endpoint needs besides its own fields (one parameter instead of five)."""

    request: Request
    service: RemovalService
    settings: Settings
    jobs: JobQueue
    metrics: Metrics

    def remaining_budget(self) -> float:
        """Seconds left of the request's time budget, counted from when it arrived."""
        start = self.request.scope.get(START_SCOPE_KEY, time.perf_counter())
        return self.settings.request_timeout_s - (time.perf_counter() - start)


def get_context(
    request: Request, service: ServiceDep, settings: SettingsDep, jobs: JobsDep, metrics: MetricsDep
) -> RequestContext:
    """The request's context for the image endpoints."""
    return RequestContext(request, service, settings, jobs, metrics)


ContextDep = Annotated[RequestContext, Depends(get_context)]
