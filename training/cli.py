"""``markless train``: LightningCLI over the trained modules and the synthetic-data module.

The YAML names the module (``model.class_path``) and its data (``data.class_path``):
``training.module.SegmenterModule`` (the segmenter) or ``training.decompose.DecomposerModule`` (the
mark decomposer) on ``training.data.WatermarkDataModule`` (synthetic marks made on the fly), or
``training.correct.CorrectorModule`` (the corrector) on ``training.corrections.CorrectionsDataModule``
(``restore``'s outputs, written beforehand by ``markless corrections``). A later ``--config`` may
override a few of the data's arguments without naming its class again. Examples::

    markless train fit --config training/configs/default.yaml
    markless train fit --config training/configs/default.yaml --config training/configs/ddp.yaml
    markless train fit --config training/configs/decomposer.yaml --config training/configs/cpu.yaml
    markless train fit --config training/configs/corrector.yaml
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
from lightning.pytorch.cli import LightningCLI


def main(argv: Sequence[str] | None = None) -> LightningCLI:
    return LightningCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=list(argv) if argv is not None else None,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "markless train"},
    )
