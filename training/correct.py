"""The LightningModule that trains ``models.MarkCorrector``; the network itself lives in models/.

The corrector is trained on ``restore``'s own output (``training.corrections``): the restored photo
plus the change it returns, inside the mask, is compared with the clean photo (L1, or ``psnr``: the
crop's PSNR, as ``markless eval`` reads photos). Where ``restore`` was right (a clean photo under a
drawn mask, a mark it inverted exactly) the only way to score is to change nothing, so "leave it" is
learned from the same loss.
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch

from models.corrector import CorrectorConfig, MarkCorrector, init_from_decomposer
from models.decomposer import MarkDecomposer
from training.module import masked_l1, one_cycle

PSNR_FLOOR = 1e-5
"""Mean squared error (0..1 units) added before the log of the ``psnr`` loss: a crop restored
better than 50 dB gains little more, as a photo's PSNR in ``markless eval`` is capped."""


def crop_psnr_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Minus the mean PSNR (dB) of the crops: ``markless eval`` averages PSNR per photo, so a photo
    restored at 45 dB gains as much from a tenth of its error as one at 30 dB; L1 over pixels weighs
    the second far more."""
    mse = ((pred - target) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(mse + PSNR_FLOOR).mean()


class CorrectorModule(L.LightningModule):
    """Trains a corrector of a segmenter preset's architecture; ``self.model`` is what gets exported.

    ``init_weights``: an exported corrector to continue from; else ``init_decomposer``: a decomposer
    folder to start from (the shipped one by default); neither: random weights (tests), the last
    layer at zero as ``MarkCorrector`` builds it. ``loss``: ``l1`` inside the mask, or ``psnr``
    (``crop_psnr_loss``)."""

    def __init__(
        self,
        preset: str = "unet-lite0",
        init_decomposer: str | None = "weights/decomposer",
        init_weights: str | None = None,
        lr: float = 3e-4,
        weight_decay: float = 1e-4,
        warmup_fraction: float = 0.1,
        loss: Literal["l1", "psnr"] = "l1",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = MarkCorrector(CorrectorConfig.from_preset(preset))
        if init_weights:
            self.model.load_state_dict(MarkCorrector.from_pretrained(init_weights).state_dict())
        elif init_decomposer:
            init_from_decomposer(self.model, MarkDecomposer.from_pretrained(init_decomposer))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The corrected photo: the restored one plus the network's change inside the mask."""
        change = self.model(batch["image"], batch["restored"], batch["mask"])
        return batch["restored"] + batch["mask"] * change.float()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        corrected, clean = self(batch), batch["clean"]
        if self.hparams.loss == "psnr":
            loss = crop_psnr_loss(corrected, clean)
        else:
            loss = masked_l1(corrected, clean, batch["mask"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        n, mask, clean = batch["image"].shape[0], batch["mask"], batch["clean"]
        corrected = self(batch).clamp(0.0, 1.0)
        # ``restore``'s own error in the same pixels: the corrected photo's must be below it.
        self.log("val/restored", masked_l1(batch["restored"], clean, mask), batch_size=n, sync_dist=True)
        self.log(
            "val/corrected", masked_l1(corrected, clean, mask), prog_bar=True, batch_size=n, sync_dist=True
        )
        # Squared error over the whole photo (what PSNR reads), summed: the photos' weights as eval's.
        self.log(
            "val/sse_restored", ((batch["restored"] - clean) ** 2 * mask).sum(), batch_size=n, reduce_fx="sum"
        )
        self.log("val/sse_corrected", ((corrected - clean) ** 2 * mask).sum(), batch_size=n, reduce_fx="sum")
        # Mean PSNR per photo, as ``markless eval`` reads a set (minus: lower is better, as the others).
        self.log(
            "val/neg_psnr_restored", crop_psnr_loss(batch["restored"], clean), batch_size=n, sync_dist=True
        )
        self.log("val/neg_psnr", crop_psnr_loss(corrected, clean), batch_size=n, sync_dist=True)

    def configure_optimizers(self) -> Any:
        return one_cycle(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_fraction)
