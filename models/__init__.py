"""Model builders and the save/load of shipped weights."""

from models.corrector import CorrectorConfig, MarkCorrector, init_from_decomposer
from models.decomposer import DecomposerConfig, MarkDecomposer, init_from_segmenter
from models.segmenter import PRESETS, SegmenterConfig, WatermarkSegmenter, build_segmenter

__all__ = [
    "PRESETS",
    "CorrectorConfig",
    "DecomposerConfig",
    "MarkCorrector",
    "MarkDecomposer",
    "SegmenterConfig",
    "WatermarkSegmenter",
    "build_segmenter",
    "init_from_decomposer",
    "init_from_segmenter",
]
