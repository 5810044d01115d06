"""The watermark segmenter: an smp encoder–decoder with named output heads.

One forward pass yields a dict of maps. ``mask`` (logits) is always there; ``alpha`` (opacity
logits) and ``color`` (mark colour logits, 3 channels) are the decomposition heads that the
``unblend`` restoration uses. Heads share the decoder and are slices of one final conv, so an
extra head costs a few kilobytes and no extra pass. ``presence`` (optional) is an image-level
logit from smp's classification head on the deepest encoder features (max-pooled, so one small
corner mark is enough): the product's "is there a mark at all" decision, trained on many photos
without one so that a clean photo comes back untouched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from models.storage import Pretrained

HEAD_CHANNELS: dict[str, int] = {"mask": 1, "alpha": 1, "color": 3}


@dataclass(frozen=True)
class SegmenterConfig:
    """Everything needed to rebuild the network; stored as config.json next to the weights."""

    arch: str = "unet"
    encoder: str = "tu-tf_efficientnet_lite0"
    heads: tuple[str, ...] = ("mask",)
    input_size: int = 512
    presence: bool = False
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [h for h in self.heads if h not in HEAD_CHANNELS]
        if unknown or "mask" not in self.heads:
            raise ValueError(
                f"heads must include 'mask' and be among {list(HEAD_CHANNELS)}, got {self.heads}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmenterConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("heads", "mean", "std"):
            if key in known:
                known[key] = tuple(known[key])
        if "decoder_channels" in known.get("arch_kwargs", {}):
            known["arch_kwargs"] = {**known["arch_kwargs"]}
            known["arch_kwargs"]["decoder_channels"] = tuple(known["arch_kwargs"]["decoder_channels"])
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_type"] = "markless-segmenter"
        return data


# name → config preset. The default is a Unet with a slim decoder on EfficientNet-Lite0: full-resolution
# masks (thin text strokes survive) at ~130 ms per 512² on 2 CPU cores; the measured alternatives are in
# weights/segmenter/MODEL_CARD.md.
PRESETS: dict[str, dict[str, Any]] = {
    "unet-lite0": {
        "arch": "unet",
        "encoder": "tu-tf_efficientnet_lite0",
        "arch_kwargs": {"decoder_channels": (128, 64, 32, 16, 16)},
    },
    "fpn-lite0": {
        "arch": "fpn",
        "encoder": "tu-tf_efficientnet_lite0",
        "arch_kwargs": {"decoder_pyramid_channels": 128, "decoder_segmentation_channels": 64},
    },
    "tiny": {  # tests only: ~170 k parameters, random weights
        "arch": "unet",
        "encoder": "tu-lcnet_035",
        "arch_kwargs": {"decoder_channels": (8, 8, 8, 8, 8)},
        "input_size": 64,
    },
}


class WatermarkSegmenter(Pretrained, nn.Module):
    """smp model + head split. ``forward`` returns raw logits per head."""

    config_class = SegmenterConfig
    what = "segmenter"
    hint = "train one with `markless train` or point MARKLESS_SEGMENTER at the shipped weights/segmenter"

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        self.config = config
        self.net = smp.create_model(
            config.arch,
            encoder_name=config.encoder,
            encoder_weights=None,  # ImageNet weights are loaded offline by training.pretrained
            in_channels=3,
            classes=sum(HEAD_CHANNELS[h] for h in config.heads),
            aux_params={"classes": 1, "pooling": "max", "dropout": 0.0} if config.presence else None,
            **config.arch_kwargs,
        )
        # channels_last: oneDNN's depthwise/pointwise kernels are 2-5x faster with it on CPU, and
        # tensor cores want it on GPU. Parameters keep the layout through .to() and load_state_dict.
        self.net.to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)

    @property
    def heads(self) -> tuple[str, ...]:
        return self.config.heads

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``image``: Bx3xHxW in [0, 1] (H, W multiples of 32) → {head: BxCxHxW logits}, plus
        ``presence``: Bx1 image-level logits when the model has that head."""
        x = ((image - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        out = self.net(x)
        presence = None
        if self.config.presence:
            out, presence = out
        maps = dict(zip(self.heads, out.split([HEAD_CHANNELS[h] for h in self.heads], dim=1), strict=True))
        if presence is not None:
            maps["presence"] = presence
        return maps


def build_segmenter(
    preset: str = "unet-lite0",
    *,
    heads: tuple[str, ...] | list[str] = ("mask",),
    input_size: int | None = None,
    presence: bool = False,
    **overrides: Any,
) -> WatermarkSegmenter:
    """Build a randomly initialised segmenter from a named preset (``PRESETS``) plus overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown segmenter preset {preset!r}; choose one of {sorted(PRESETS)}")
    values: dict[str, Any] = {**PRESETS[preset], **overrides, "heads": tuple(heads), "presence": presence}
    if input_size is not None:
        values["input_size"] = input_size
    return WatermarkSegmenter(SegmenterConfig(**values))
