"""``markless train``: LightningCLI over the trained modules and the synthetic-data module.

The YAML names the module (``model.class_path``): ``training.module.SegmenterModule`` (the
segmenter) or ``training.decompose.DecomposerModule`` (the mark decomposer). Examples::

    markless train fit --config training/configs/default.yaml
    markless train fit --config training/configs/default.yaml --config training/configs/ddp.yaml
    markless train fit --config training/configs/decomposer.yaml --config training/configs/cpu.yaml
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
from lightning.pytorch.cli import LightningCLI

from training.data import WatermarkDataModule


def main(argv: Sequence[str] | None = None) -> LightningCLI:
    return LightningCLI(
        L.LightningModule,
        WatermarkDataModule,
        subclass_mode_model=True,
        args=list(argv) if argv is not None else None,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "markless train"},
    )
