"""Checkpoint → shipped weights folder (config.json + fp16 model.safetensors + metrics.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch

from training.correct import CorrectorModule
from training.decompose import DecomposerModule
from training.module import SegmenterModule

# Each trained module and the arguments that rebuild it from a checkpoint without first loading the
# weights it started from (they are in the checkpoint).
RESTORE_OVERRIDES: dict[type[L.LightningModule], dict[str, Any]] = {
    SegmenterModule: {"imagenet_init": False},
    DecomposerModule: {"init_segmenter": None, "init_weights": None},
    CorrectorModule: {"init_decomposer": None, "init_weights": None},
}
Trained = SegmenterModule | DecomposerModule | CorrectorModule


def export_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, *, metrics: dict[str, Any] | None = None
) -> Path:
    """Load a Lightning checkpoint (the segmenter's, the decomposer's or the corrector's: told apart
    by their saved hyper-parameters) and write the network in the ``save_pretrained`` layout."""
    saved = torch.load(str(checkpoint), map_location="cpu", weights_only=False).get("hyper_parameters", {})
    kind: type[Trained] = SegmenterModule
    if "init_segmenter" in saved:
        kind = DecomposerModule
    elif "init_decomposer" in saved:
        kind = CorrectorModule
    module = kind.load_from_checkpoint(str(checkpoint), map_location="cpu", **RESTORE_OVERRIDES[kind])
    return export_module(module, out_dir, metrics=metrics)


def export_module(module: Trained, out_dir: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
    out = module.model.to("cpu").float().save_pretrained(out_dir, half=True)
    if metrics is not None:
        path = Path(out) / "metrics.json"
        path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        path.chmod(0o644)
    return Path(out)


class ExportOnFitEnd(L.Callback):
    """After ``fit``, export the best checkpoint (or the last weights) with the final validation metrics."""

    def __init__(self, out_dir: str = "weights/segmenter") -> None:
        self.out_dir = out_dir

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if isinstance(v, torch.Tensor)}
        metrics.update(global_step=trainer.global_step, epochs=trainer.current_epoch)
        callback = trainer.checkpoint_callback
        best = getattr(callback, "best_model_path", "")
        if best:
            metrics["checkpoint"] = best
            score = getattr(callback, "best_model_score", None)
            if score is not None:  # the exported weights are the best ones, not the last step's
                metrics[f"best/{getattr(callback, 'monitor', 'score')}"] = float(score)
            export_checkpoint(best, self.out_dir, metrics=metrics)
        else:
            assert isinstance(pl_module, (SegmenterModule, DecomposerModule, CorrectorModule))
            export_module(pl_module, self.out_dir, metrics=metrics)
