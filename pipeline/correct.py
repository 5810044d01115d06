"""The corrector at work: a learned last pass over ``restore``'s output, inside the mask only.

``models.corrector`` reads the photo as it came, the restored photo and the mask, and returns a
change per pixel. It is a learned guess, trained to change nothing where ``restore`` was right, so
four things keep it from doing harm: its reading is the mean of the photo's and its mirror image's
(a change only one of them sees is halved); a change smaller than ``DEAD_ZONE`` is dropped (its
output is never exactly zero, and a photo ``restore`` recovered, or a clean photo under a drawn mask,
should come back as ``restore`` left it, not with a level of noise over every masked pixel); and a
group of changed pixels must not leave them farther from the fill of the mask from its surroundings
than ``restore`` did (``CLOSER``). Pixels ``restore`` left as they came are its judgement that
there is nothing it can mend there (a clean photo under a drawn mask, a faint mark over texture a
fill would smear): a group of them is changed only where the segmenter's heads see a mark, and by no
more than ``HEADS_RATIO`` times as far as the heads' own inversion would move it.
``weights/corrector/MODEL_CARD.md`` has what it gains and costs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from models.corrector import MarkCorrector
from pipeline.decompose import cluster_boxes, departure, heads_move, network_inputs, shown_fill
from pipeline.device import resolve_device

DEAD_ZONE = 4.0 / 255.0
"""Changes (per channel, 0..1 units) below which the corrector's output is dropped. Session 31's
measurement of a first corrector: without it, photos ``restore`` recovers at 60–100 dB lost up to 16
dB to the network's small changes everywhere in the mask. A change at or above it is the network's
reading and is kept whole: shrinking it by the dead zone as well (sessions 31–35) took 4 levels off
every mend (six checking sets, session 36: twelve rows 38.33 → 38.36 dB kept whole, photos made
worse 18 → 17, clean photos under a drawn mask changed 21 → 18 of 80)."""
CLOSER = 1.0
"""A group of changed pixels is kept only if it leaves them at most this close (mean squared, RGB) to
the fill of the mask from its surroundings as ``restore`` left them (``pipeline.decompose.CLOSER``
reads the same way): a change that moves a group away from what its surroundings suggest is a
reading of something that is not there. Six checking sets (session 32): without it 19 photos made
worse and 43 of 80 clean photos under a mask changed, with it 18 and 39, the same mean PSNR."""
HEADS_RATIO = 2.0
"""A group of pixels ``restore`` left as they came is changed only if the change moves them at most
this many times as far (mean RGB distance) as inverting the segmenter's heads' reading would. The
heads read opacity low (a median 2.8 times: ``pipeline.inpaint.restore.HEADS_VETO``), so this is a
ceiling on how strong a mark may be read where the segmenter sees a faint one, and no change where
it sees none. Six checking sets (session 35): with the corrector acting everywhere, 19 photos made
worse than they came (``restore`` alone: 18); with the ratio at 4, 19 (a faint mark over a fine grid
read too strong, 45.2 → 42.7 dB); at 2, 18, for 91 % of the gain."""


class Corrector:
    """Inference wrapper: the photo, the restored photo (RGB uint8) and the mask in, a change out."""

    def __init__(
        self, model: MarkCorrector, *, device: str = "auto", max_pixels: int = 2_000_000, flips: bool = True
    ) -> None:
        self.device = torch.device(resolve_device(device))
        self.model = model.eval().to(self.device)
        self.max_pixels = max_pixels
        self.flips = flips

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: object) -> Corrector:
        return cls(MarkCorrector.from_pretrained(directory), **kwargs)  # type: ignore[arg-type]

    def predict(self, image: np.ndarray, restored: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The change (HxWx3 float32, 0..1 units) the network adds to ``restored`` inside ``mask``."""
        h, w = mask.shape
        x = network_inputs(
            self.device,
            image.astype(np.float32) / 255.0,
            restored.astype(np.float32) / 255.0,
            mask.astype(np.float32),
        )
        with torch.inference_mode():
            change = self.model(*x)
            if self.flips:  # the mirrored photo's reading, mirrored back: what both readings agree on
                change = (change + self.model(*(t.flip(-1) for t in x)).flip(-1)) / 2
            change = change[0, :, :h, :w].float()
        return np.ascontiguousarray(change.permute(1, 2, 0).cpu().numpy(), dtype=np.float32)


def correct(
    corrector: Corrector,
    image: np.ndarray,
    restored: np.ndarray,
    mask: np.ndarray,
    *,
    where: np.ndarray | None = None,
    closer: float | None = CLOSER,
    heads: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``restored`` (written in place and returned) with the corrector's change, where it reaches
    ``DEAD_ZONE``, on the pixels of ``where`` (default: the whole ``mask``) whose group passes the
    ``closer`` check (None: no check). Of the pixels ``restore`` left as they came (equal to
    ``image``), only groups the ``heads`` (the segmenter's opacity and colour maps, full frame) bear
    out change (module docstring); without heads they stay as they came. The network sees the whole
    mask, per cluster (``cluster_boxes``)."""
    allowed = mask if where is None else where & mask
    left = mask & (restored == image).all(-1)
    for box, cluster in cluster_boxes(mask, corrector.max_pixels):
        change = corrector.predict(image[box], restored[box], mask[box])
        change = np.where(np.abs(change) >= DEAD_ZONE, change, 0.0)
        moved = cluster & allowed[box] & (change != 0).any(-1)
        if not moved.any():
            continue
        before = restored[box].astype(np.float32) / 255.0
        after = np.clip(before + change, 0.0, 1.0)
        if closer is not None:
            fill = shown_fill(image[box], mask[box])
            n, groups = cv2.connectedComponents(moved.astype(np.uint8))
            for g in range(1, n):
                pixels = groups == g
                if departure(after, fill, pixels) > closer * departure(before, fill, pixels):
                    moved &= ~pixels
        moved &= ~left[box] | _borne_out(image[box], after, moved & left[box], heads, box)
        restored[box][moved] = np.clip(after[moved] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return restored


def _borne_out(
    image: np.ndarray,
    after: np.ndarray,
    pixels: np.ndarray,
    heads: tuple[np.ndarray, np.ndarray] | None,
    box: tuple[slice, slice],
) -> np.ndarray:
    """The groups of ``pixels`` (left as they came by ``restore``) whose change ``after`` moves them at
    most ``HEADS_RATIO`` times as far (mean RGB distance) as inverting the heads' reading would."""
    if heads is None or not pixels.any():
        return np.zeros_like(pixels)
    j = image.astype(np.float32) / 255.0
    n, groups = cv2.connectedComponents(pixels.astype(np.uint8))
    # Per group, summed over its pixels (a tiled mask makes hundreds of groups): the ratio of means.
    ours, theirs = (
        np.bincount(groups.ravel(), weights=move.ravel(), minlength=n)
        for move in (np.linalg.norm(after - j, axis=-1), heads_move(j, heads, box, pixels))
    )
    keep = ours <= HEADS_RATIO * theirs
    keep[0] = False
    return keep[groups] & pixels
