"""Run the segmenter on images of any size.

The network is fully convolutional, so instead of squashing every photo to the training crop
size we resize it so its long side is at most ``max_side`` (the scale marks had in training),
pad to a multiple of 32 and run one pass; only when that is still larger than
``max_tile_pixels`` do we tile with overlap (memory, not accuracy, is the reason). Maps are
resized back to the full image size at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from models.segmenter import WatermarkSegmenter
from pipeline.device import resolve_device

_STRIDE = 32


@dataclass
class SegmentOutput:
    """Per-pixel maps at the input image's size."""

    prob: np.ndarray  # HxW float32, P(watermark)
    alpha: np.ndarray | None = None  # HxW float32 opacity in [0, 1], when the model has the head
    color: np.ndarray | None = None  # HxWx3 float32 mark colour in [0, 1], when the model has the head
    presence: float | None = None  # P(the image carries a mark at all), when the model has the head


class Segmenter:
    """Inference wrapper: numpy RGB uint8 in, ``SegmentOutput`` out. fp16 autocast on CUDA."""

    def __init__(
        self,
        model: WatermarkSegmenter,
        *,
        device: str = "auto",
        max_side: int,
        max_tile_pixels: int = 1024 * 1024,
        batch_size: int = 4,
    ) -> None:
        self.device = torch.device(resolve_device(device))
        self.model = model.eval().to(self.device)
        self.max_side = max_side
        self.tile = max(_STRIDE, int(np.sqrt(max_tile_pixels)) // _STRIDE * _STRIDE)
        self.max_tile_pixels = max_tile_pixels
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: object) -> Segmenter:
        return cls(WatermarkSegmenter.from_pretrained(directory), **kwargs)  # type: ignore[arg-type]

    @property
    def heads(self) -> tuple[str, ...]:
        return self.model.heads

    def predict(self, image: np.ndarray) -> SegmentOutput:
        """HxWx3 uint8 RGB → maps at HxW."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        work_w, work_h = max(1, round(width * scale)), max(1, round(height * scale))
        work = cv2.resize(image, (work_w, work_h), interpolation=cv2.INTER_AREA) if scale < 1 else image
        x = (
            torch.from_numpy(np.ascontiguousarray(work)).to(self.device).permute(2, 0, 1)[None].float()
            / 255.0
        )
        maps, presence = self._run(x)  # 1xCxhxw probabilities, C = sum of head channels
        channels = maps[0].permute(1, 2, 0).float().cpu().numpy()
        if (work_w, work_h) != (width, height):
            channels = cv2.resize(channels, (width, height), interpolation=cv2.INTER_LINEAR)
            if channels.ndim == 2:
                channels = channels[..., None]
        out = self._split(channels)
        out.presence = None if presence is None else float(presence.max())
        return out

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        _, _, h, w = x.shape
        if h * w <= self.max_tile_pixels:
            return self._forward_padded(x)
        return self._forward_tiled(x)

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Probability maps (BxCxhxw) and, with the presence head, P(mark) per item (B,)."""
        with torch.autocast(
            device_type=self.device.type, dtype=torch.float16, enabled=self.device.type == "cuda"
        ):
            out = self.model(batch)
        maps = torch.cat([torch.sigmoid(out[h].float()) for h in self.heads], dim=1)
        presence = torch.sigmoid(out["presence"].float())[:, 0] if "presence" in out else None
        return maps, presence

    def _forward_padded(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        _, _, h, w = x.shape
        pad_h, pad_w = (-h) % _STRIDE, (-w) % _STRIDE
        if pad_h or pad_w:  # reflect keeps edge statistics natural; replicate when the image is too small
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        maps, presence = self._forward(x)
        return maps[:, :, :h, :w], presence

    def _forward_tiled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Overlapping tiles, blended with a ramp so seams carry no weight; presence is the tiles' max."""
        _, _, h, w = x.shape
        tile, overlap = self.tile, self.tile // 8
        ys = _starts(h, tile, overlap)
        xs = _starts(w, tile, overlap)
        ramp = _ramp(tile, overlap, x.device)
        acc: torch.Tensor | None = None
        presence: torch.Tensor | None = None
        weight = torch.zeros(1, 1, h, w, device=x.device)
        boxes = [(y, xx) for y in ys for xx in xs]
        for i in range(0, len(boxes), self.batch_size):
            chunk = boxes[i : i + self.batch_size]
            crops = torch.cat([self._crop(x, y, xx, tile) for y, xx in chunk])
            preds, tile_presence = self._forward_padded(crops)
            if tile_presence is not None:
                top = tile_presence.max()
                presence = top if presence is None else torch.maximum(presence, top)
            for (y, xx), pred in zip(chunk, preds, strict=True):
                th, tw = min(tile, h - y), min(tile, w - xx)
                wgt = ramp[:, :, :th, :tw]
                if acc is None:
                    acc = torch.zeros(1, pred.shape[0], h, w, device=x.device)
                acc[:, :, y : y + th, xx : xx + tw] += pred[None, :, :th, :tw] * wgt
                weight[:, :, y : y + th, xx : xx + tw] += wgt
        assert acc is not None
        return acc / weight.clamp_min(1e-6), presence

    @staticmethod
    def _crop(x: torch.Tensor, y: int, xx: int, tile: int) -> torch.Tensor:
        crop = x[:, :, y : y + tile, xx : xx + tile]
        ch, cw = crop.shape[-2:]
        if (ch, cw) != (tile, tile):  # only when the image is smaller than a tile in one direction
            crop = F.pad(crop, (0, tile - cw, 0, tile - ch), mode="replicate")
        return crop

    def _split(self, channels: np.ndarray) -> SegmentOutput:
        out: dict[str, np.ndarray] = {}
        start = 0
        for head in self.heads:
            n = 3 if head == "color" else 1
            part = channels[..., start : start + n]
            out[head] = np.ascontiguousarray(part if n == 3 else part[..., 0], dtype=np.float32)
            start += n
        return SegmentOutput(prob=out["mask"], alpha=out.get("alpha"), color=out.get("color"))


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(tile: int, overlap: int, device: torch.device) -> torch.Tensor:
    edge = torch.ones(tile, device=device)
    ramp = torch.linspace(1.0 / (overlap + 1), 1.0, overlap, device=device)
    edge[:overlap] = ramp
    edge[-overlap:] = ramp.flip(0)
    return (edge[:, None] * edge[None, :])[None, None]
