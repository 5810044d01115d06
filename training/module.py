"""The LightningModule that trains ``models.WatermarkSegmenter``; the network itself lives in models/.

Losses: BCE + soft Dice on the mask (Dice keeps thin, small marks from drowning in background),
and, when the decomposition heads are on, L1 on opacity and colour inside the mark plus an L1 on
opacity gradients, so the edges of glyphs are sharp enough to invert the blend.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from models import build_segmenter
from models.segmenter import WatermarkSegmenter


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 − Dice per image, averaged; images without a mark contribute through the eps terms."""
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    inter = (prob * target).sum(1)
    return (1 - (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)).mean()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| over weighted pixels (weight broadcast over channels)."""
    err = (pred - target).abs() * weight
    return err.sum() / (weight.expand_as(err).sum() + 1e-6)


def gradient_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences, inside ``weight``."""
    loss = pred.new_zeros(())
    for dim in (-1, -2):
        dp, dt = torch.diff(pred, dim=dim), torch.diff(target, dim=dim)
        w = weight.narrow(dim, 0, weight.shape[dim] - 1)
        loss = loss + masked_l1(dp, dt, w)
    return loss


def binary_stats(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(tp, fp, fn) summed over the batch, for IoU/F1 over a whole validation set."""
    pred = torch.sigmoid(logits) >= threshold
    truth = target >= 0.5
    return torch.stack([(pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()]).double()


class SegmenterModule(L.LightningModule):
    """Trains a segmenter built from a preset; ``self.model`` is what gets exported."""

    def __init__(
        self,
        preset: str = "unet-lite0",
        heads: tuple[str, ...] = ("mask", "alpha", "color"),
        input_size: int = 512,
        imagenet_init: bool = True,
        init_weights: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_fraction: float = 0.03,
        dice_weight: float = 1.0,
        alpha_weight: float = 1.0,
        color_weight: float = 0.5,
        gradient_weight: float = 0.5,
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model: WatermarkSegmenter = build_segmenter(preset, heads=tuple(heads), input_size=input_size)
        if init_weights:  # continue from an exported model (e.g. a second stage with new data settings)
            self.model.load_state_dict(WatermarkSegmenter.from_pretrained(init_weights).state_dict())
        elif imagenet_init:
            from training.pretrained import init_encoder_from_imagenet

            init_encoder_from_imagenet(self.model)
        self._val_stats = torch.zeros(3, dtype=torch.float64)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(image)

    def _losses(
        self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        hp = self.hparams
        mask = batch["mask"]
        losses = {
            "bce": F.binary_cross_entropy_with_logits(out["mask"], mask),
            "dice": hp.dice_weight * soft_dice_loss(out["mask"], mask),
        }
        # Inside the mark, plus a thin band around it, so edges are learnt on both sides.
        region = F.max_pool2d(mask, kernel_size=5, stride=1, padding=2)
        if "alpha" in out:
            alpha = torch.sigmoid(out["alpha"])
            losses["alpha"] = hp.alpha_weight * masked_l1(alpha, batch["alpha"], region)
            losses["alpha_grad"] = hp.gradient_weight * gradient_l1(alpha, batch["alpha"], region)
        if "color" in out:
            # Colour is only defined (and only matters) where the mark has opacity.
            weight = batch["alpha"] * mask
            losses["color"] = hp.color_weight * masked_l1(torch.sigmoid(out["color"]), batch["color"], weight)
        return losses

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self._losses(self(batch["image"]), batch)
        total = torch.stack(list(losses.values())).sum()
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=batch["image"].shape[0])
        self.log("train/loss", total, prog_bar=True, batch_size=batch["image"].shape[0])
        return total

    def on_validation_epoch_start(self) -> None:
        self._val_stats = torch.zeros(3, dtype=torch.float64)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self(batch["image"])
        losses = self._losses(out, batch)
        n = batch["image"].shape[0]
        self.log("val/loss", torch.stack(list(losses.values())).sum(), batch_size=n, sync_dist=True)
        if "alpha" in out:
            inside = batch["mask"]
            self.log(
                "val/alpha_mae", masked_l1(torch.sigmoid(out["alpha"]), batch["alpha"], inside), batch_size=n
            )
        self._val_stats += binary_stats(out["mask"], batch["mask"], self.hparams.threshold).cpu()

    def on_validation_epoch_end(self) -> None:
        stats = self._val_stats
        if self.trainer.world_size > 1:
            stats = self.all_gather(stats.to(self.device)).reshape(-1, 3).sum(0).cpu()
        tp, fp, fn = stats.tolist()
        self.log("val/iou", tp / max(tp + fp + fn, 1.0), prog_bar=True)
        self.log("val/f1", 2 * tp / max(2 * tp + fp + fn, 1.0), prog_bar=True)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=hp.lr, total_steps=total, pct_start=hp.warmup_fraction, anneal_strategy="cos"
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
