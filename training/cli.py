"""``markless train``: LightningCLI over the segmenter module and the synthetic-data module.

Examples::

    markless train fit --config training/configs/default.yaml
    markless train fit --config training/configs/default.yaml --config training/configs/ddp.yaml
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.cli import LightningCLI

from training.data import WatermarkDataModule
from training.module import SegmenterModule


def main(argv: Sequence[str] | None = None) -> LightningCLI:
    return LightningCLI(
        SegmenterModule,
        WatermarkDataModule,
        args=list(argv) if argv is not None else None,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "markless train"},
    )
