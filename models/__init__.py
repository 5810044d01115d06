"""Model builders and the save/load of shipped weights."""

from models.decomposer import DecomposerConfig, MarkDecomposer, init_from_segmenter
from models.segmenter import PRESETS, SegmenterConfig, WatermarkSegmenter, build_segmenter

__all__ = [
    "PRESETS",
    "DecomposerConfig",
    "MarkDecomposer",
    "SegmenterConfig",
    "WatermarkSegmenter",
    "build_segmenter",
    "init_from_segmenter",
]
