"""The corrector: a learned last pass that mends ``restore``'s output inside the mask.

``pipeline.inpaint.restore`` inverts the blend with one opacity and a few colours a region, or
fills, or leaves the photo as it came; each of these leaves an error with a look of its own (a
colour cast where the colour fit was off, the mark's faint edge where its opacity was read low, a
seam at a fill's border). This network sees the photo as it came, the restored photo and the mask,
and returns a change to add to the restored photo inside the mask: per pixel what no fit of a region
can say. It is the decomposer's encoder–decoder (smp Unet on EfficientNet-Lite0, 7 input channels)
and starts from the trained decomposer with its last layer at zero (``init_from_decomposer``), so
before training it returns the restored photo unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from models.decomposer import DecomposerConfig, MarkDecomposer, build_net
from models.storage import Pretrained

INPUTS = {"image": 3, "restored": 3, "mask": 1}  # channels, all in [0, 1]


class CorrectorConfig(DecomposerConfig):
    """The decomposer's architecture fields (so its weights carry over); its own model type."""

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "model_type": "markless-corrector"}


class MarkCorrector(Pretrained, nn.Module):
    """``forward(image, restored, mask)`` → Bx3xHxW change (0..1 units) to add inside the mask."""

    config_class = CorrectorConfig
    what = "corrector"
    hint = "train one with `markless train fit --config training/configs/corrector.yaml`"

    def __init__(self, config: CorrectorConfig) -> None:
        super().__init__()
        self.config = config
        self.net = build_net(config, in_channels=sum(INPUTS.values()), classes=3)
        with torch.no_grad():  # the last layer at zero: before training, the restored photo unchanged
            for p in self.net.segmentation_head.parameters():
                p.zero_()

    def forward(self, image: torch.Tensor, restored: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inputs in [0, 1] (H, W multiples of 32), normalised as the segmenter's (mean = std = 0.5)."""
        x = (
            torch.cat([image, restored, mask], 1)
            .mul(2.0)
            .sub(1.0)
            .contiguous(memory_format=torch.channels_last)
        )
        return self.net(x)


def init_from_decomposer(model: MarkCorrector, decomposer: MarkDecomposer) -> None:
    """Start ``model`` from a trained decomposer of the same architecture: every tensor but the last
    layer's is copied (the decomposer's fill channels take the restored photo, its nearest kin: the
    photo under the mark as restoration reads it); the last layer keeps the zero it is built with,
    so the corrector starts as the identity."""
    source = decomposer.net.state_dict()
    own = model.net.state_dict()
    with torch.no_grad():
        for name, tensor in own.items():
            if (
                not name.startswith("segmentation_head")
                and name in source
                and source[name].shape == tensor.shape
            ):
                tensor.copy_(source[name])
    model.net.load_state_dict(own)
