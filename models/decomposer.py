"""The mark decomposer: per-pixel opacity and colour of the mark inside a given mask.

Restoration inverts ``J = (1 − α)·I + α·W`` where it knows α and W. Its fits (``pipeline.inpaint.fit``)
read them from a region's outline, one opacity and a few colours a region; where that model does not
hold (a soft shadow under a badge, a tile over busy texture, a rough mask) they fail. This network
reads them per pixel from the photo, the mask it is given (exact or grown, as a user draws it) and
the fill of that mask from its surroundings (the photo as the fits see it under the mark), so it
sees the mark's edges against the photo around them. It is the segmenter's own encoder–decoder
(smp Unet on EfficientNet-Lite0) with 7 input channels and two heads, and starts from the trained
segmenter: the first convolution's photo channels and the opacity and colour heads are copied, the
new channels start at zero (``init_from_segmenter``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from models.segmenter import PRESETS, WatermarkSegmenter
from models.storage import Pretrained

INPUTS = ("image", "background", "hint")  # 3 + 3 + 1 channels, all in [0, 1]
HEADS = {"alpha": 1, "color": 3}


@dataclass(frozen=True)
class DecomposerConfig:
    """Everything needed to rebuild the network; stored as config.json next to the weights."""

    arch: str = "unet"
    encoder: str = "tu-tf_efficientnet_lite0"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecomposerConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        kwargs = dict(known.get("arch_kwargs", {}))
        for key in ("decoder_channels",):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**{**known, "arch_kwargs": kwargs})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model_type": "markless-decomposer"}

    @classmethod
    def from_preset(cls, preset: str) -> DecomposerConfig:
        """The segmenter preset's architecture (``models.segmenter.PRESETS``), so weights carry over."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        p = PRESETS[preset]
        return cls(arch=p["arch"], encoder=p["encoder"], arch_kwargs=dict(p.get("arch_kwargs", {})))


def build_net(config: DecomposerConfig, *, in_channels: int, classes: int) -> nn.Module:
    """The smp network of ``config`` (random weights; the caller loads or copies them), channels-last
    as the segmenter's: faster on CPU and GPU."""
    net = smp.create_model(
        config.arch,
        encoder_name=config.encoder,
        encoder_weights=None,
        in_channels=in_channels,
        classes=classes,
        **config.arch_kwargs,
    )
    return net.to(memory_format=torch.channels_last)


class MarkDecomposer(Pretrained, nn.Module):
    """``forward(image, background, hint)`` → {"alpha": Bx1xHxW, "color": Bx3xHxW} logits."""

    config_class = DecomposerConfig
    what = "decomposer"
    hint = "train one with `markless train fit --config training/configs/decomposer.yaml`"

    def __init__(self, config: DecomposerConfig) -> None:
        super().__init__()
        self.config = config
        self.net = build_net(config, in_channels=sum((3, 3, 1)), classes=sum(HEADS.values()))

    def forward(
        self, image: torch.Tensor, background: torch.Tensor, hint: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Inputs in [0, 1] (H, W multiples of 32); the segmenter's normalisation (mean = std = 0.5)."""
        x = (
            torch.cat([image, background, hint], 1)
            .mul(2.0)
            .sub(1.0)
            .contiguous(memory_format=torch.channels_last)
        )
        alpha, color = self.net(x).split(list(HEADS.values()), dim=1)
        return {"alpha": alpha, "color": color}


def init_from_segmenter(model: MarkDecomposer, segmenter: WatermarkSegmenter) -> None:
    """Start ``model`` from a trained segmenter of the same architecture: every tensor of the same
    name and shape is copied; the first convolution takes the segmenter's kernels on the photo
    channels and zeros on the background and hint (so it starts out reading the photo as the
    segmenter does); the heads take the segmenter's opacity and colour rows."""
    if "alpha" not in segmenter.heads or "color" not in segmenter.heads:
        raise ValueError("the segmenter has no opacity and colour heads to start from")
    source = segmenter.net.state_dict()
    rows = []
    start = 0
    for head in segmenter.heads:
        n = 1 if head in ("mask", "alpha") else 3
        if head in HEADS:
            rows.extend(range(start, start + n))
        start += n
    own = model.net.state_dict()
    with torch.no_grad():
        for name, tensor in own.items():
            src = source.get(name)
            if src is None:
                continue
            if src.shape == tensor.shape:
                tensor.copy_(src)
            elif name.startswith("segmentation_head") and src.shape[0] == start:
                tensor.copy_(src[rows])
            elif (
                src.dim() == 4
                and src.shape[1] == 3
                and tensor.shape[1] == 7
                and src.shape[0] == tensor.shape[0]
            ):
                tensor.zero_()
                tensor[:, :3] = src
    model.net.load_state_dict(own)
