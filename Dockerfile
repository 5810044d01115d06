# syntax=docker/dockerfile:1.7
# markless GPU image: one server process per GPU (run one container/replica per GPU).
#
#   docker build -t markless .
#   docker run --gpus '"device=0"' -p 8000:8000 -v markless-models:/models markless
#
# torch 2.14.1 from PyPI is the CUDA 13.0 build and carries its own CUDA runtime, cuBLAS, cuDNN
# and NCCL wheels, so the runtime stage only needs the CUDA *base* image (driver hooks for the
# NVIDIA container toolkit, libcudart); a cudnn-runtime base would ship a second cuDNN unused.
# The host needs an NVIDIA driver that supports CUDA 13.0 (R580 or newer).

ARG CUDA_BASE=nvidia/cuda:13.0.2-base-ubuntu24.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8
ARG PYTHON_VERSION=3.11
# Optional extras of the project: EXTRAS=ray builds the image Ray/KubeRay nodes run
# (deploy/rayservice.yaml); empty for the plain server.
ARG EXTRAS=""

FROM ${UV_IMAGE} AS uv

# ---------------------------------------------------------------------------------------------
# builder: a uv-managed CPython 3.11 (Ubuntu 24.04 ships 3.12 only) and a venv with the project
# ---------------------------------------------------------------------------------------------
FROM ${CUDA_BASE} AS builder
ARG PYTHON_VERSION
ARG EXTRAS
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    VIRTUAL_ENV=/opt/venv
RUN uv python install "${PYTHON_VERSION}" \
    && uv venv --python "${PYTHON_VERSION}" /opt/venv

WORKDIR /src
# Dependencies first (they are ~6 GB and change rarely), so editing the code reuses this layer.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python -r pyproject.toml ${EXTRAS:+--extra "${EXTRAS}"}
# Then the project itself (a regular, non-editable install: the source tree is not shipped).
COPY app ./app
COPY models ./models
COPY pipeline ./pipeline
# The import check fails the build on a broken wheel set; the GUI OpenCV build (X11/GL libraries
# the CUDA base does not have) must never sneak in next to opencv-contrib-python-headless.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python --no-deps . \
    && /opt/venv/bin/python -c "import cv2, diffusers, segmentation_models_pytorch, torch; print(torch.__version__, torch.version.cuda, cv2.__version__)" \
    && uv pip freeze --python /opt/venv/bin/python > /opt/venv/requirements.lock \
    && ! grep -qiE '^opencv-(contrib-)?python==' /opt/venv/requirements.lock

# ---------------------------------------------------------------------------------------------
# runtime: CUDA base + the interpreter + the venv + the shipped segmenter weights
# ---------------------------------------------------------------------------------------------
FROM ${CUDA_BASE} AS runtime
ARG EXTRAS

LABEL org.opencontainers.image.title="markless" \
      org.opencontainers.image.description="Self-hosted visible-watermark removal (segmentation + inpainting) behind a REST API" \
      org.opencontainers.image.licenses="Apache-2.0"

# ca-certificates: the `download` profile talks HTTPS to the Hugging Face hub. wget only in
# Ray images: KubeRay's default pod probes exec it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && if [ -n "${EXTRAS}" ]; then apt-get install -y --no-install-recommends wget; fi \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 markless \
    && useradd --system --uid 10001 --gid markless --home-dir /home/markless --create-home \
        --shell /usr/sbin/nologin markless \
    && mkdir -p /models /app \
    && chown markless:markless /models /app

COPY --from=builder /opt/python /opt/python
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The segmenter ships with the image; the build fails here rather than produce a server that
# refuses to start for want of weights.
COPY --chown=markless:markless weights ./weights
RUN test -f weights/segmenter/config.json && test -f weights/segmenter/model.safetensors

ENV PATH=/opt/venv/bin:${PATH} \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/models \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    MARKLESS_SEGMENTER=/app/weights/segmenter \
    MARKLESS_DECOMPOSER=/app/weights/decomposer \
    MARKLESS_CORRECTOR=/app/weights/corrector \
    MARKLESS_INPAINTER=auto \
    MARKLESS_DEVICE=auto \
    MARKLESS_DTYPE=auto \
    MARKLESS_MAX_CONCURRENT_JOBS=1 \
    MARKLESS_MAX_QUEUE=8 \
    MARKLESS_REQUEST_TIMEOUT_S=120 \
    MARKLESS_LOG_LEVEL=info

# Diffusion models live in the Hugging Face cache on a volume: fetched once by
# `markless download MODEL` (the compose `download` profile), never by the server at start-up.
VOLUME ["/models"]

# Numeric, so Kubernetes can verify runAsNonRoot.
USER 10001:10001
EXPOSE 8000

# /readyz answers 200 only once the models are loaded; the start period covers loading a
# diffusion pipeline onto the GPU. urllib, because the image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]

CMD ["markless", "serve", "--host", "0.0.0.0", "--port", "8000"]
