"""Prometheus metrics of one app instance.

Each app gets its own ``CollectorRegistry`` (not the process-global one) so several apps can
live in one process — the tests build many — without "duplicated timeseries" errors.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

# Request latency spans cheap probes (ms) to CPU diffusion runs (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
COVERAGE_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class Metrics:
    """The service's metrics, all prefixed ``markless_``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        process_collector.ProcessCollector(registry=r)
        platform_collector.PlatformCollector(registry=r)
        gc_collector.GCCollector(registry=r)
        self.requests = Counter(
            "markless_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "markless_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "markless_stage_duration_seconds",
            "Time per pipeline stage of successful jobs (queue, decode, segment, refine, inpaint, composite, encode).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "markless_queue_depth",
            "Jobs admitted and not finished (waiting for a worker or running).",
            registry=r,
        )
        self.jobs_running = Gauge("markless_jobs_running", "Jobs running on a worker now.", registry=r)
        self.rejected = Counter(
            "markless_jobs_rejected",
            "Jobs refused or abandoned: 'queue_full' or 'work_budget' (503), 'timeout' (504).",
            ["reason"],
            registry=r,
        )
        self.cancelled = Counter(
            "markless_jobs_cancelled",
            "Jobs dropped because their client disconnected: 'queued' (never ran) or 'running' "
            "(stopped at the next stage boundary).",
            ["state"],
            registry=r,
        )
        self.model_load = Gauge(
            "markless_model_load_seconds", "Seconds it took to load the models at startup.", registry=r
        )
        self.coverage = Histogram(
            "markless_mask_coverage_ratio",
            "Fraction of the image covered by the mask that was restored.",
            buckets=COVERAGE_BUCKETS,
            registry=r,
        )
        self.build = Info("markless_build", "Version and device of the running service.", registry=r)

    def observe_stages(self, timings: dict[str, float]) -> None:
        """Record a job's per-stage timings (seconds)."""
        for stage, seconds in timings.items():
            self.stages.labels(stage=stage).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
