"""Model builders and the save/load of shipped weights."""

from models.segmenter import PRESETS, SegmenterConfig, WatermarkSegmenter, build_segmenter

__all__ = ["PRESETS", "SegmenterConfig", "WatermarkSegmenter", "build_segmenter"]
