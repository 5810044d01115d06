"""Synthetic visible-watermark generator: the only training data markless learns from.

``WatermarkSynth(pool, config).sample(rng, size)`` draws a clean background from an
:class:`AssetPool`, stamps realistic marks on it and returns a :class:`SynthSample` with the
ground truth (mask, alpha, colour layer, clean image). ``write_dataset`` writes an evaluation
set in the ``input/ mask/ clean/ alpha/ color/`` layout that ``markless eval`` reads.
"""

from training.assets.manifest import default_assets_dir
from training.synth.config import BLEND_MODES, MARK_KINDS, SCRIPTS, SynthConfig
from training.synth.generator import SynthSample, WatermarkSynth, blend, composite
from training.synth.pool import AssetPool, FontFace
from training.synth.writer import contact_sheet, write_dataset

__all__ = [
    "BLEND_MODES",
    "MARK_KINDS",
    "SCRIPTS",
    "AssetPool",
    "FontFace",
    "SynthConfig",
    "SynthSample",
    "WatermarkSynth",
    "blend",
    "composite",
    "contact_sheet",
    "default_assets_dir",
    "write_dataset",
]
