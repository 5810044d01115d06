"""Mask quality over a whole set, from torchmetrics: one definition for training validation and ``markless eval``.

Pixels are counted over the whole set (not averaged per image), so a set's F1/IoU is not dominated
by images with tiny marks; an empty set (no true or predicted pixel) scores 0.
"""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryF1Score, BinaryJaccardIndex, BinaryPrecision, BinaryRecall


def mask_metrics(threshold: float = 0.5) -> MetricCollection:
    """``iou``, ``f1``, ``precision``, ``recall`` of binary masks; update with probabilities
    (thresholded at ``threshold``) or 0/1 integer masks, and a 0/1 integer truth of the same shape."""
    return MetricCollection(
        {
            "iou": BinaryJaccardIndex(threshold),
            "f1": BinaryF1Score(threshold),
            "precision": BinaryPrecision(threshold),
            "recall": BinaryRecall(threshold),
        },
        compute_groups=True,
    )
