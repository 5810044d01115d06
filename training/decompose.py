"""The LightningModule that trains ``models.MarkDecomposer``; the network itself lives in models/.

The decomposer is trained for what restoration does with it: the photo recovered by inverting the
blend with its opacity and colour, ``(J − α·W) / (1 − α)``, is compared with the clean photo
(L1) inside the mask it was given, where the mark is not near-opaque (there the inversion has
nothing left to recover and the fill takes over). On a flat photo any (α, W) along one line recover
the same pixels, so this loss does not force one of them; the L1 on the opacity and on the
premultiplied colour ``α·W`` settles it, and teaches that the clean rim of a grown mask carries no
mark. Batches need the ``hint`` and ``background`` inputs: ``WatermarkDataModule(grow_px=...)``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from models.decomposer import DecomposerConfig, MarkDecomposer, init_from_segmenter
from models.segmenter import WatermarkSegmenter
from training.module import masked_l1, one_cycle


def recovered(image: torch.Tensor, alpha: torch.Tensor, color: torch.Tensor, ceiling: float) -> torch.Tensor:
    """The blend inverted with opacity capped at ``ceiling`` (the inversion divides by 1 − α)."""
    a = alpha.clamp(max=ceiling)
    return (image - a * color) / (1.0 - a)


class DecomposerModule(L.LightningModule):
    """Trains a decomposer of a segmenter preset's architecture; ``self.model`` is what gets exported.

    ``init_weights``: an exported decomposer to continue from (a later stage); else
    ``init_segmenter``: a segmenter folder with opacity and colour heads to start from (the shipped
    one by default); neither: random weights (tests)."""

    def __init__(
        self,
        preset: str = "unet-lite0",
        init_segmenter: str | None = "weights/segmenter",
        init_weights: str | None = None,
        lr: float = 3e-4,
        weight_decay: float = 1e-4,
        warmup_fraction: float = 0.03,
        alpha_weight: float = 1.0,
        premultiplied_weight: float = 1.0,
        opaque_alpha: float = 0.85,
        ceiling: float = 0.9,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = MarkDecomposer(DecomposerConfig.from_preset(preset))
        if init_weights:
            self.model.load_state_dict(MarkDecomposer.from_pretrained(init_weights).state_dict())
        elif init_segmenter:
            init_from_segmenter(self.model, WatermarkSegmenter.from_pretrained(init_segmenter))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Opacity (zero outside the hint) and colour in [0, 1]."""
        out = self.model(batch["image"], batch["background"], batch["hint"])
        return torch.sigmoid(out["alpha"]) * batch["hint"], torch.sigmoid(out["color"])

    def _losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The weighted losses, and the opacity they were computed from."""
        hp = self.hparams
        alpha, color = self(batch)
        hint = batch["hint"]
        invertible = hint * (batch["alpha"] < hp.opaque_alpha)
        photo = recovered(batch["image"], alpha, color, hp.ceiling).clamp(-0.5, 1.5)
        losses = {
            "recovered": masked_l1(photo, batch["clean"], invertible),
            "alpha": hp.alpha_weight * masked_l1(alpha, batch["alpha"], hint),
            "premultiplied": hp.premultiplied_weight
            * masked_l1(alpha * color, batch["alpha"] * batch["color"], hint),
        }
        return losses, alpha

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses, _ = self._losses(batch)
        total = torch.stack(list(losses.values())).sum()
        n = batch["image"].shape[0]
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=n)
        self.log("train/loss", total, prog_bar=True, batch_size=n)
        return total

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        losses, alpha = self._losses(batch)
        n = batch["image"].shape[0]
        invertible = batch["hint"] * (batch["alpha"] < self.hparams.opaque_alpha)
        # The error of the input itself in the same pixels: the recovered photo's must be below it.
        self.log(
            "val/input", masked_l1(batch["image"], batch["clean"], invertible), batch_size=n, sync_dist=True
        )
        self.log("val/recovered", losses["recovered"], prog_bar=True, batch_size=n, sync_dist=True)
        self.log("val/alpha_mae", masked_l1(alpha, batch["alpha"], batch["hint"]), batch_size=n)
        self.log("val/loss", torch.stack(list(losses.values())).sum(), batch_size=n, sync_dist=True)

    def configure_optimizers(self) -> Any:
        return one_cycle(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_fraction)
