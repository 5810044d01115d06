"""The LightningModule that trains ``models.WatermarkSegmenter``; the network itself lives in models/.

Losses: BCE + soft Dice on the mask (Dice keeps thin, small marks from drowning in background),
and, when the decomposition heads are on, L1 on opacity and colour inside the mark plus an L1 on
opacity gradients, so the edges of glyphs are sharp enough to invert the blend.

Doing no harm on clean photos is trained for explicitly: the ``presence`` head learns "is there a
mark at all" (BCE on the image-level label), ``neg_weight`` > 1 weights background pixels above
mark pixels in the BCE (precision over recall), and ``ohem_weight`` adds the mean loss of the
hardest 1 % background pixels of each image (online hard-negative mining: the decals, signs and hair
a photo-wide mean drowns). ``freeze_encoder`` trains only the decoder and heads (cheap on a CPU).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import BinaryF1Score, BinaryStatScores

from models import build_segmenter
from models.segmenter import WatermarkSegmenter
from training.metrics import mask_metrics


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 − Dice per image, averaged; images without a mark contribute through the eps terms.

    Not ``smp.losses.DiceLoss``: in binary mode it pools all pixels of the batch into one Dice (a
    small mark is drowned by a big one in the same batch) and zeroes the loss of a batch without
    mark pixels, so clean crops would never be pushed towards an empty mask. Both matter here:
    thin marks and no false alarms on clean photos are what this loss is for.
    """
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


def hard_negative_bce(logits: torch.Tensor, target: torch.Tensor, fraction: float = 0.01) -> torch.Tensor:
    """Mean BCE of the hardest ``fraction`` of background pixels per image (OHEM on negatives)."""
    loss = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    loss = (loss * (target < 0.5)).flatten(1)
    k = max(1, int(loss.shape[1] * fraction))
    return loss.topk(k, dim=1).values.mean()


def has_mark(mask: torch.Tensor, min_pixels: float = 16.0) -> torch.Tensor:
    """Image-level label (B,) from a Bx1xHxW mask: a crop that shows a mark's sliver only is not "marked"."""
    return (mask.flatten(1).sum(1) >= min_pixels).float()


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
        presence: bool = True,
        presence_weight: float = 0.5,
        presence_threshold: float = 0.5,
        neg_weight: float = 1.0,
        ohem_weight: float = 0.0,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model: WatermarkSegmenter = build_segmenter(
            preset, heads=tuple(heads), input_size=input_size, presence=presence
        )
        if init_weights:  # continue from an exported model (e.g. a second stage with new data settings)
            self._load_init(init_weights)
        elif imagenet_init:
            from training.pretrained import init_encoder_from_imagenet

            init_encoder_from_imagenet(self.model)
        if freeze_encoder:
            self.model.net.encoder.requires_grad_(False)
        # Validation, over the whole set: pixel F1/IoU of the mask, the same after the presence
        # decision (what the product returns), and image-level flags against has-a-mark labels.
        self.val_pixels = mask_metrics(threshold)
        self.val_pixels_gated = BinaryF1Score(threshold)
        self.val_images = BinaryStatScores()
        self.val_images_ungated = BinaryStatScores()

    def _load_init(self, directory: str) -> None:
        """Start from exported weights; a head the old model lacks (``presence``) starts fresh."""
        state = WatermarkSegmenter.from_pretrained(directory).state_dict()
        try:
            missing, unexpected = self.model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # same names, other shapes (e.g. other heads)
            raise ValueError(f"init_weights {directory} does not match this model: {exc}") from None
        fresh = [k for k in missing if "classification_head" not in k]
        if fresh or unexpected:
            raise ValueError(
                f"init_weights {directory} does not match this model: missing {fresh}, unexpected {unexpected}"
            )

    def on_train_epoch_start(self) -> None:
        if self.hparams.freeze_encoder:  # frozen BatchNorm statistics too, not only its weights
            self.model.net.encoder.eval()

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(image)

    def _losses(
        self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        hp = self.hparams
        mask = batch["mask"]
        pixel_weight = None if hp.neg_weight == 1.0 else torch.where(mask >= 0.5, 1.0, hp.neg_weight)
        losses = {
            "bce": F.binary_cross_entropy_with_logits(out["mask"], mask, weight=pixel_weight),
            "dice": hp.dice_weight * soft_dice_loss(out["mask"], mask),
        }
        if hp.ohem_weight > 0:
            losses["hard_neg"] = hp.ohem_weight * hard_negative_bce(out["mask"], mask)
        if "presence" in out:
            losses["presence"] = hp.presence_weight * F.binary_cross_entropy_with_logits(
                out["presence"][:, 0], has_mark(mask)
            )
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
        for metric in (self.val_pixels, self.val_pixels_gated, self.val_images, self.val_images_ungated):
            metric.reset()

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
        truth = (batch["mask"] >= 0.5).long()
        prob = torch.sigmoid(out["mask"])
        self.val_pixels.update(prob, truth)
        # What the product does: no mask at all where the presence head says "no mark".
        gated = prob
        if "presence" in out:
            found = torch.sigmoid(out["presence"][:, 0]) >= self.hparams.presence_threshold
            gated = prob * found[:, None, None, None]
        self.val_pixels_gated.update(gated, truth)
        labels = has_mark(batch["mask"]).long()
        self.val_images.update(self._flags(gated), labels)
        self.val_images_ungated.update(self._flags(prob), labels)

    def _flags(self, prob: torch.Tensor) -> torch.Tensor:
        """Images whose mask covers > 0.1 % of pixels: the false-alarm rule of ``markless eval``."""
        return ((prob >= self.hparams.threshold).flatten(1).float().mean(1) > 0.001).long()

    def on_validation_epoch_end(self) -> None:
        # compute() sums the counts over all processes under DDP.
        pixels = self.val_pixels.compute()
        self.log("val/iou", pixels["iou"], prog_bar=True)
        self.log("val/f1", pixels["f1"], prog_bar=True)
        self.log("val/f1_gated", self.val_pixels_gated.compute(), prog_bar=True)
        found, false_alarms, clean_ok, missed, _ = self.val_images.compute().tolist()
        self.log("val/false_alarm_rate", false_alarms / max(false_alarms + clean_ok, 1), prog_bar=True)
        self.log("val/detection_rate", found / max(found + missed, 1))
        _, raw_alarms, raw_ok, _, _ = self.val_images_ungated.compute().tolist()
        self.log("val/false_alarm_rate_ungated", raw_alarms / max(raw_alarms + raw_ok, 1))

    def configure_optimizers(self) -> Any:
        return one_cycle(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_fraction)


def one_cycle(module: L.LightningModule, lr: float, weight_decay: float, warmup_fraction: float) -> Any:
    """AdamW on the trainable parameters with a one-cycle schedule over the whole run (cosine)."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = max(int(module.trainer.estimated_stepping_batches), 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=total, pct_start=warmup_fraction, anneal_strategy="cos"
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
