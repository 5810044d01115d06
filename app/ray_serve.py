"""Ray Serve application: the same FastAPI app as the HTTP ingress, the models on GPU replicas.

Two deployments scale independently:

- ``RemoverDeployment`` holds one ``Remover`` (built by ``app.main.load_remover`` from
  ``Settings``) and does only model work on decoded arrays. Its replicas ask for ``num_gpus``
  (fractional allowed: 0.5 packs two replicas on a GPU) and autoscale on ongoing requests.
- ``MarklessIngress`` serves ``app.main.create_app`` unchanged: decode, validation, limits,
  auth, metrics and encode stay in the HTTP layer, on CPU. The app is handed a
  ``RemoteRemover`` — the ``RemovalService`` interface the routes use, forwarding ``remove``
  and ``segment`` to the GPU deployment through a deployment handle — so no route knows about Ray.

Run it with ``serve run app.ray_serve:build_app``, a Serve config (``deploy/serve-config.yaml``),
or locally with ``python -m app.ray_serve --port 8000 --num-gpus 0``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from app.errors import JobTimeoutError, NotReadyError, QueueFullError
from app.main import create_app, install_remover, load_remover
from app.settings import Settings
from pipeline.errors import MarklessError
from pipeline.marks import MarkProfile
from pipeline.options import RemoveOptions, SegmentOptions
from pipeline.segment import SegmentOutput
from pipeline.service import Result, ServiceInfo

log = logging.getLogger(__name__)

APP_NAME = "markless"
# Seconds a client is told to wait when every GPU replica's queue is full.
BACKPRESSURE_RETRY_AFTER_S = 5


# ---------------------------------------------------------------------------------------------
# the HTTP side's view of the remote models


@dataclass
class RemoteRemover:
    """The ``RemovalService`` of the routes, backed by ``RemoverDeployment`` replicas.

    ``info`` and ``check`` answer from the description the deployment gave at startup (no
    round trip); ``remove``/``segment`` are called on the app's job workers (threads, not the
    event loop), so they block on the handle's ``result``. Pipeline errors raised on a replica
    come back as the same ``MarklessError`` (so the app maps them to the same 4xx), a saturated
    deployment as the app's 503 ``queue_full``, a missing one as 503 ``not_ready``.
    """

    handle: DeploymentHandle
    description: ServiceInfo
    timeout_s: float
    load_seconds: float | None = None

    def info(self) -> ServiceInfo:
        """The replicas' models, defaults and device."""
        return self.description

    def check(self, options: SegmentOptions) -> None:
        """Refuse what the replicas' models cannot do, before any upload travels."""
        self.description.check(options)

    def remove(
        self, image: np.ndarray, mask: np.ndarray | None = None, options: RemoveOptions | None = None
    ) -> Result:
        """``Remover.remove`` on a GPU replica."""
        result: Result = self._call(self.handle.remove.remote(image, mask, options))
        return result

    def learn_mark(self, images: Sequence[np.ndarray]) -> MarkProfile:
        """``Remover.learn_mark`` on a replica (CPU work; the profile travels back pickled)."""
        profile: MarkProfile = self._call(self.handle.learn_mark.remote(list(images)))
        return profile

    def remove_mark(
        self, image: np.ndarray, profile: MarkProfile, options: RemoveOptions | None = None
    ) -> Result:
        """``Remover.remove_mark`` on a GPU replica (its inpainter restores the mark's core)."""
        result: Result = self._call(self.handle.remove_mark.remote(image, profile, options))
        return result

    def segment(
        self,
        image: np.ndarray,
        options: SegmentOptions | None = None,
        *,
        timings: dict[str, float] | None = None,
    ) -> tuple[np.ndarray, SegmentOutput | None]:
        """``Remover.segment`` on a GPU replica.

        Only the refined mask and the stage timings travel back: the probability and
        decomposition maps are several float32 planes per pixel and no route uses them.
        """
        mask, remote_timings = self._call(self.handle.segment.remote(image, options))
        if timings is not None:
            timings.update(remote_timings)
        return mask, None

    def _call(self, response: DeploymentResponse) -> Any:
        try:
            return response.result(timeout_s=self.timeout_s)
        except TimeoutError:
            response.cancel()  # frees the GPU replica's slot if the job has not started
            raise JobTimeoutError(f"the model did not answer within {self.timeout_s:.0f} s") from None
        except RayTaskError as exc:
            if isinstance(exc.cause, MarklessError):
                raise exc.cause from None
            raise
        except BackPressureError:
            raise QueueFullError(
                "every model replica is busy; retry shortly", retry_after=BACKPRESSURE_RETRY_AFTER_S
            ) from None
        except DeploymentUnavailableError:
            raise NotReadyError("the model deployment is not available") from None
        except RayActorError:  # the replica died mid-request (OOM, device fault); Serve replaces it
            raise NotReadyError("the model replica failed; retry shortly") from None


# ---------------------------------------------------------------------------------------------
# deployments


@serve.deployment(
    name="RemoverDeployment",
    ray_actor_options={"num_gpus": 1, "num_cpus": 1},
    max_ongoing_requests=2,
    autoscaling_config={"min_replicas": 1, "max_replicas": 1, "target_ongoing_requests": 1},
    health_check_period_s=30,
    health_check_timeout_s=60,
)
class RemoverDeployment:
    """One ``Remover`` on one (share of a) device; only model work, on decoded arrays.

    Sync methods run on Serve's thread pool, so ``max_ongoing_requests`` > 1 lets the next
    request's upload and segmentation overlap the current diffusion run (which serialises
    itself with a lock).
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = Settings(**settings)
        self.remover, self.load_seconds = load_remover(self.settings)
        self.description = self.remover.info()
        log.info("models loaded in %.2f s on %s", self.load_seconds, self.description.device)

    def describe(self) -> tuple[ServiceInfo, float]:
        """What the ingress needs to know about the loaded models, and their load time (s)."""
        return self.description, self.load_seconds

    def remove(
        self, image: np.ndarray, mask: np.ndarray | None = None, options: RemoveOptions | None = None
    ) -> Result:
        """``Remover.remove``."""
        return self.remover.remove(image, mask, options)

    def learn_mark(self, images: list[np.ndarray]) -> MarkProfile:
        """``Remover.learn_mark``."""
        return self.remover.learn_mark(images)

    def remove_mark(
        self, image: np.ndarray, profile: MarkProfile, options: RemoveOptions | None = None
    ) -> Result:
        """``Remover.remove_mark``."""
        return self.remover.remove_mark(image, profile, options)

    def segment(
        self, image: np.ndarray, options: SegmentOptions | None = None
    ) -> tuple[np.ndarray, dict[str, float]]:
        """``Remover.segment``, returning the mask and the stage timings."""
        timings: dict[str, float] = {}
        mask, _ = self.remover.segment(image, options, timings=timings)
        return mask, timings

    def check_health(self) -> None:
        """Serve's periodic probe: a CUDA context broken by a device fault (Xid, illegal
        access) fails every later call, so surface it and let Serve replace the replica."""
        if self.description.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.description.device)


@serve.deployment(
    name="MarklessIngress",
    ray_actor_options={"num_cpus": 1},
    max_ongoing_requests=64,
)
@serve.ingress()
class MarklessIngress:
    """The FastAPI app of ``app.main``, with its model work sent to ``RemoverDeployment``."""

    def __init__(self, remover: DeploymentHandle, settings: dict[str, Any]) -> None:
        self._remover = remover
        self._settings = settings

    async def __serve_build_asgi_app__(self) -> FastAPI:
        """Called by Serve once per replica: wait for the models, then build the app."""
        description, seconds = await self._remover.describe.remote()
        settings = Settings(**self._settings)
        remote = RemoteRemover(self._remover, description, settings.request_timeout_s, seconds)
        app = create_app(settings, remover=remote)
        install_remover(app, remote, seconds)
        return app


# ---------------------------------------------------------------------------------------------
# application builder


class ServeArgs(BaseModel):
    """Arguments of ``build_app`` (``serve run app.ray_serve:build_app key=value``, or ``args:``
    in a Serve config). Deployment options in a Serve config's ``deployments:`` override these."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings overrides (field names of app.settings.Settings) for both deployments; "
        "MARKLESS_* environment variables of the replicas apply as well.",
    )
    num_gpus: float = Field(
        1.0, ge=0, description="GPUs per model replica; fractional shares a GPU, 0 = CPU."
    )
    num_cpus: float = Field(1.0, ge=0, description="CPUs per model replica.")
    max_ongoing_requests: int = Field(2, ge=1, description="Requests in flight per model replica.")
    min_replicas: int = Field(1, ge=0, description="Model replicas kept up (0 allows scale to zero).")
    max_replicas: int = Field(1, ge=1, description="Model replicas at most (e.g. the cluster's GPU count).")
    target_ongoing_requests: float = Field(1.0, gt=0, description="Autoscaling target per model replica.")
    ingress_replicas: int = Field(1, ge=1, description="HTTP ingress replicas (CPU only).")
    ingress_num_cpus: float = Field(1.0, ge=0, description="CPUs per ingress replica (decode/encode).")
    ingress_jobs: int = Field(
        8,
        ge=1,
        le=64,
        description="Concurrent jobs per ingress replica (its max_concurrent_jobs): decode/encode "
        "plus waiting on a model replica, so more than the one-per-GPU of a plain server.",
    )


def _checked_settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """Refuse unknown setting names (``Settings`` itself ignores them) and bad values, early."""
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; valid names: {sorted(Settings.model_fields)}")
    Settings(**overrides)
    return dict(overrides)


def build_app(args: dict[str, Any] | ServeArgs) -> serve.Application:
    """The Serve application: ``MarklessIngress`` → ``RemoverDeployment``."""
    opts = args if isinstance(args, ServeArgs) else ServeArgs.model_validate(args or {})
    settings = _checked_settings(opts.settings)
    if opts.min_replicas > opts.max_replicas:
        raise ValueError(f"min_replicas ({opts.min_replicas}) > max_replicas ({opts.max_replicas})")
    remover_settings = dict(settings)
    if opts.num_gpus == 0:  # a replica without a GPU share must not grab one through device=auto
        remover_settings.setdefault("device", "cpu")
    remover = RemoverDeployment.options(
        ray_actor_options={"num_gpus": opts.num_gpus, "num_cpus": opts.num_cpus},
        max_ongoing_requests=opts.max_ongoing_requests,
        autoscaling_config={
            "min_replicas": opts.min_replicas,
            "initial_replicas": max(opts.min_replicas, 1),
            "max_replicas": opts.max_replicas,
            "target_ongoing_requests": opts.target_ongoing_requests,
            # Loading a diffusion pipeline takes a while: scale up on sustained load only,
            # and keep warm replicas for some minutes.
            "upscale_delay_s": 30,
            "downscale_delay_s": 600,
        },
    ).bind(remover_settings)
    ingress_settings = {**settings, "max_concurrent_jobs": opts.ingress_jobs}
    return MarklessIngress.options(
        num_replicas=opts.ingress_replicas,
        ray_actor_options={"num_cpus": opts.ingress_num_cpus},
    ).bind(remover, ingress_settings)


# ---------------------------------------------------------------------------------------------
# local runner (``make ray-serve``)


def run_local(host: str, port: int, args: ServeArgs, *, address: str | None = None) -> DeploymentHandle:
    """Start (or join) a Ray cluster, start Serve's HTTP proxy on host:port, deploy the app."""
    import ray

    ray.init(address=address, include_dashboard=False, ignore_reinit_error=True)
    serve.start(http_options={"host": host, "port": port})
    return serve.run(build_app(args), name=APP_NAME, route_prefix="/")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m app.ray_serve``: the Ray Serve app on one machine, until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m app.ray_serve", description="Run markless on Ray Serve (settings: MARKLESS_* env)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="existing Ray cluster")
    parser.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per model replica (0 = CPU)")
    parser.add_argument("--max-replicas", type=int, default=1, help="model replicas at most")
    parser.add_argument("--ingress-replicas", type=int, default=1)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    args = ServeArgs(num_gpus=ns.num_gpus, max_replicas=ns.max_replicas, ingress_replicas=ns.ingress_replicas)
    import ray

    try:
        run_local(ns.host, ns.port, args, address=ns.address)
    except (MarklessError, RuntimeError, ValueError) as exc:  # bad settings, replicas that never load
        print(f"markless: {getattr(exc, 'message', exc)}", file=sys.stderr)
        ray.shutdown()
        return 2
    print(f"markless on Ray Serve: http://{ns.host}:{ns.port} (Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
