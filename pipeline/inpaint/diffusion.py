"""Diffusion inpainting with any Hugging Face diffusers inpainting pipeline.

Loads SD 1.5 / SD 2 / SDXL inpainting (and other ``AutoPipelineForInpainting`` families) from a
hub id or a local ``save_pretrained`` folder. Each mask region is cropped with context, resized
to the model's native size, diffused, and pasted back inside the mask (``regions.py``), so a 4K
photo with one logo costs one native-size run and nothing outside the mask moves.

diffusers and torch are imported only when a model is built, so importing this module (and the
inpainter registry) stays cheap for processes that never diffuse.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from pipeline.device import resolve_device
from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from pipeline.inpaint.base import InpaintRequest, register_inpainter
from pipeline.inpaint.regions import inpaint_regions_batched
from pipeline.options import MAX_SEED, RemoveOptions

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# runwayml/stable-diffusion-inpainting was withdrawn from the hub; this is its official mirror.
DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"
DEFAULT_PROMPT = "clean background, high quality photo"
DEFAULT_NEGATIVE_PROMPT = "watermark, text, logo, letters, signature, caption, stamp, blurry, artifacts"

_DTYPES = ("auto", "float16", "bfloat16", "float32")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _is_local(model: str) -> bool:
    """True for things meant as a folder; hub ids look like ``name`` or ``org/name``."""
    return Path(model).expanduser().exists() or not _HUB_ID.match(model) or model.startswith(".")


def download(model: str, cache_dir: str | None = None, variant: str | None = None) -> str:
    """Fetch a hub inpainting model into the Hugging Face cache; returns its local folder.

    Uses ``DiffusionPipeline.download`` (``huggingface_hub.snapshot_download`` underneath) because
    it fetches only the files the pipeline loads: inpainting repos also hold multi-GB single-file
    checkpoints and duplicate weight formats that would triple the download.
    """
    from diffusers import DiffusionPipeline

    try:
        return str(DiffusionPipeline.download(model, cache_dir=cache_dir, variant=variant))
    except Exception as exc:  # network, auth, missing repo: all mean "not available"
        raise ModelNotAvailableError(f"cannot download diffusion model {model!r}: {exc}") from exc


@register_inpainter("diffusion")
class DiffusionInpainter:
    """A diffusers inpainting pipeline run per mask region at the model's native size.

    Calls are serialised with a lock: a pipeline's scheduler keeps per-call state and a GPU runs
    one batch at a time anyway. Results are reproducible for a given seed on a given device;
    a request without a seed draws one and exposes it as ``last_seed``.
    """

    name = "diffusion"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "auto",
        dtype: str = "auto",
        steps: int = 30,
        guidance_scale: float = 6.0,
        strength: float | None = None,
        prompt: str = DEFAULT_PROMPT,
        negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
        local_files_only: bool | None = None,
        native_size: int | None = None,
        cache_dir: str | None = None,
        variant: str | None = None,
        max_batch: int = 4,
        max_aspect: float = 2.0,
        feather_px: int = 3,
        color_match: bool = True,
        cpu_offload: bool = False,
    ) -> None:
        """Load the pipeline now so a bad model fails at startup, not on the first request.

        ``strength=None`` takes the pipeline's own default (1.0 for SD, 0.9999 for SDXL, whose
        authors advise staying just below 1). ``local_files_only=None`` follows ``HF_HUB_OFFLINE``.
        """
        self.model = model
        RemoveOptions.of(steps=steps, guidance_scale=guidance_scale, strength=strength)  # the ranges
        self.steps = int(steps)
        self.guidance_scale = float(guidance_scale)
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        if max_batch < 1:
            raise InvalidParameterError(f"max_batch must be >= 1, got {max_batch}")
        if max_aspect < 1:
            raise InvalidParameterError(f"max_aspect must be >= 1, got {max_aspect}")
        if feather_px < 0:
            raise InvalidParameterError(f"feather_px must be >= 0, got {feather_px}")
        self.max_batch = int(max_batch)
        self.max_aspect = float(max_aspect)
        self.feather_px = int(feather_px)
        self.color_match = color_match
        self.device = resolve_device(device)
        self.dtype: torch.dtype = _resolve_dtype(dtype, self.device)
        self.local_files_only = _env_flag("HF_HUB_OFFLINE") if local_files_only is None else local_files_only
        self.pipe = self._load(model, cache_dir=cache_dir, variant=variant, cpu_offload=cpu_offload)
        self._call_params = dict(inspect.signature(self.pipe.__call__).parameters)
        self.strength = float(strength) if strength is not None else self._default_strength()
        self.vae_scale_factor = int(getattr(self.pipe, "vae_scale_factor", 8))
        self.native_size = int(native_size) if native_size is not None else self._native_size()
        # Latent sides must divide by the VAE factor; transformer models (Flux, SD3) also pack
        # 2x2 latent patches, so twice the factor suits every family.
        self.multiple = 2 * self.vae_scale_factor
        if self.native_size < self.multiple:
            raise InvalidParameterError(f"native_size must be >= {self.multiple}, got {self.native_size}")
        self.last_seed: int | None = None
        self._lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------------

    def _load(self, model: str, *, cache_dir: str | None, variant: str | None, cpu_offload: bool) -> Any:
        from diffusers import AutoPipelineForInpainting

        source = model
        if _is_local(model):
            folder = Path(model).expanduser()
            if not folder.exists():
                raise ModelNotAvailableError(f"diffusion model folder {model!r} does not exist")
            if not folder.is_dir():
                raise ModelNotAvailableError(f"diffusion model {model!r} is a file, not a pipeline folder")
            if not (folder / "model_index.json").is_file():
                raise ModelNotAvailableError(
                    f"{model!r} is not a diffusers pipeline folder (no model_index.json); "
                    "save one with pipeline.save_pretrained(folder)"
                )
            source = str(folder)
        try:
            pipe = AutoPipelineForInpainting.from_pretrained(
                source,
                dtype=self.dtype,
                local_files_only=self.local_files_only,
                cache_dir=cache_dir,
                variant=variant,
            )
        except Exception as exc:  # hub errors, missing files, bad configs: one user-facing meaning
            hint = ""
            if source == model and self.local_files_only:
                hint = (
                    f"; it is not in the local Hugging Face cache and offline mode is on "
                    f"(HF_HUB_OFFLINE): download it first with `markless download {model}`"
                )
            elif source == model:
                hint = (
                    f"; check the hub id, or download it where there is network: `markless download {model}`"
                )
            raise ModelNotAvailableError(f"cannot load diffusion model {model!r}: {exc}{hint}") from exc
        pipe.set_progress_bar_config(disable=True)
        if getattr(pipe, "safety_checker", None) is not None:
            # SD 1.x ships an NSFW filter that blacks out a whole crop on a false positive; on the
            # user's own photo that is a broken result, not a safeguard, so it is not run.
            pipe.safety_checker = None
        try:
            if cpu_offload and self.device.startswith("cuda"):
                # Keeps only the running component on the GPU: SDXL fits in ~6 GB, at some speed cost.
                pipe.enable_model_cpu_offload(device=self.device)
            else:
                pipe.to(self.device)
        except Exception as exc:  # CUDA out of memory, unsupported dtype on the device...
            raise ModelNotAvailableError(
                f"cannot move diffusion model {model!r} to {self.device}: {exc}"
            ) from exc
        vae = getattr(pipe, "vae", None)
        if self.device.startswith("cuda") and self.max_batch > 1 and hasattr(vae, "enable_slicing"):
            # Decoding a batch of native-size latents is the memory peak; slicing decodes one at a
            # time for the same speed. (Attention slicing is not used: with PyTorch's fused
            # attention it only slows the UNet down.)
            vae.enable_slicing()
        return pipe

    def _default_strength(self) -> float:
        param = self._call_params.get("strength")
        if param is None or not isinstance(param.default, int | float):
            return 1.0
        return float(param.default)

    def _native_size(self) -> int:
        """Pixel side the model was trained at: UNet (or transformer) sample size x VAE factor."""
        sample = getattr(self.pipe, "default_sample_size", None)
        unet = getattr(self.pipe, "unet", None)
        if unet is not None and getattr(unet.config, "sample_size", None):
            sample = unet.config.sample_size
        if isinstance(sample, list | tuple):
            sample = max(sample)
        return int(sample) * self.vae_scale_factor if sample else 512

    # -- inference -----------------------------------------------------------------------------

    def resolve(self, request: InpaintRequest) -> tuple[int, float, float]:
        """(steps, guidance_scale, strength) for a request: its (validated) overrides or the defaults."""
        opts = request.options
        steps = opts.steps if opts.steps is not None else self.steps
        guidance = opts.guidance_scale if opts.guidance_scale is not None else self.guidance_scale
        strength = opts.strength if opts.strength is not None else self.strength
        if effective_steps(steps, strength) < 1:
            raise InvalidParameterError(
                f"steps x strength must be at least 1 (the pipeline runs int(steps * strength) steps), "
                f"got {steps} x {strength:g}"
            )
        return steps, guidance, strength

    def inpaint(self, request: InpaintRequest) -> np.ndarray:
        """Fill ``request.mask``: one pipeline call per batch of same-size region crops."""
        steps, guidance, strength = self.resolve(request)
        seed = request.options.seed_or_draw()
        counter = itertools.count()

        def fill_batch(crops: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
            # Region i gets seed + i whatever the batching, so a region's fill does not depend
            # on how many other regions share its batch.
            seeds = [(seed + next(counter)) % (MAX_SEED + 1) for _ in crops]
            return self._run(crops, masks, seeds, steps=steps, guidance=guidance, strength=strength)

        with self._lock:
            self.last_seed = seed
            return inpaint_regions_batched(
                request.image,
                request.mask,
                fill_batch,
                max_batch=self.max_batch,
                margin=0.25,
                min_margin=max(self.native_size // 8, 8),
                target_size=self.native_size,
                min_crop=self.native_size // 2,
                max_aspect=self.max_aspect,
                multiple=self.multiple,
                feather_px=self.feather_px,
            )

    def _run(
        self,
        crops: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        seeds: Sequence[int],
        *,
        steps: int,
        guidance: float,
        strength: float,
    ) -> list[np.ndarray]:
        """One pipeline call on a batch of same-size crops; uint8 crops out."""
        import torch

        # Pre-fill the holes: 9-channel inpainting UNets never see masked pixels anyway, but 4-channel
        # pipelines and strength < 1 start from the crop itself and would repaint the mark.
        prefilled = [
            cv2.inpaint(c, m.astype(np.uint8), 3, cv2.INPAINT_TELEA)
            for c, m in zip(crops, masks, strict=True)
        ]
        height, width = prefilled[0].shape[:2]
        batch = len(prefilled)
        kwargs: dict[str, Any] = {
            "prompt": [self.prompt] * batch,
            "negative_prompt": [self.negative_prompt] * batch,
            "image": np.stack(prefilled).astype(np.float32) / 255.0,
            "mask_image": np.stack(masks)[..., None].astype(np.float32),
            "height": height,
            "width": width,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "strength": strength,
            "generator": [torch.Generator(device=self.device).manual_seed(s) for s in seeds],
            "output_type": "np",
        }
        kwargs = {k: v for k, v in kwargs.items() if k in self._call_params}
        with torch.inference_mode():
            images = np.asarray(self.pipe(**kwargs).images, dtype=np.float32)
        if not np.isfinite(images).all():
            raise RuntimeError(
                f"diffusion model {self.model!r} produced NaNs in {self.dtype}; "
                "use dtype='float32' or 'bfloat16' (or an fp16-safe VAE)"
            )
        out = [np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8) for img in images]
        if self.color_match:
            out = [_match_ring_color(o, c, m) for o, c, m in zip(out, prefilled, masks, strict=True)]
        return out


def _match_ring_color(filled: np.ndarray, crop: np.ndarray, mask: np.ndarray, ring_px: int = 6) -> np.ndarray:
    """Shift the fill's colour so its mean matches the original just around the hole.

    The VAE round trip tints a whole crop slightly; pasted inside the mask that tint shows as a
    seam. A per-channel offset measured on a thin ring of unmasked pixels removes most of it.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring_px + 1, 2 * ring_px + 1))
    ring = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool) & ~mask
    if ring.sum() < 16:
        return filled
    offset = crop[ring].astype(np.float32).mean(axis=0) - filled[ring].astype(np.float32).mean(axis=0)
    return np.clip(np.rint(filled.astype(np.float32) + offset), 0, 255).astype(np.uint8)


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto`` → float16 on CUDA (half the memory, tensor cores), float32 on CPU."""
    import torch

    if dtype not in _DTYPES:
        raise InvalidParameterError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if dtype == "float16" and device == "cpu":
        raise InvalidParameterError("float16 needs a GPU; use float32 or bfloat16 on CPU")
    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]


def effective_steps(steps: int, strength: float) -> int:
    """How many denoising steps a diffusers inpainting pipeline actually runs."""
    return min(math.floor(steps * strength), steps)
