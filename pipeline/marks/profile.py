"""A learned (or given) mark: opacity α, colour W and where it sits, stored as PNG + JSON.

The PNG holds W as RGB and α as its alpha channel at 16 bits, so a profile is also an ordinary
RGBA image a user can look at; the JSON next to it says how to place it on a photo:

- ``layout="fixed"``: one copy whose top-left is ``origin(anchor) + offset``, where the origin is
  the frame's corner or centre (``anchor`` in tl, tr, bl, br, center). ``anchor="any"`` means no
  known place (an RGBA mark given by a user): it is searched for, across scales too.
- ``layout="tiled"``: the image is one period cell, repeated every ``period`` from ``offset``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from pipeline.errors import InvalidProfileError

FORMAT_VERSION: Final = 1
ANCHORS: Final = ("tl", "tr", "bl", "br", "center")
LAYOUTS: Final = ("fixed", "tiled")
MAX_MARK_SIDE: Final = 8192


def origin(frame: Sequence[int], mark: Sequence[int], anchor: str) -> tuple[int, int]:
    """Top-left of a mark of size ``mark`` (h, w) flush with ``anchor`` of a ``frame`` (H, W)."""
    fh, fw = int(frame[0]), int(frame[1])
    mh, mw = int(mark[0]), int(mark[1])
    if anchor == "center":
        return (fh - mh) // 2, (fw - mw) // 2
    top = 0 if anchor[0] == "t" else fh - mh
    left = 0 if anchor[1] == "l" else fw - mw
    return top, left


@dataclass
class MarkProfile:
    """α (h×w float32 in [0, 1]) and W (h×w×3 float32 in [0, 1]) plus their placement rule."""

    alpha: np.ndarray
    color: np.ndarray
    layout: str = "fixed"
    anchor: str = "any"
    offset: tuple[int, int] = (0, 0)
    period: tuple[int, int] | None = None
    source_size: tuple[int, int] | None = None  # (H, W) of the photos it was learned on
    quality: float = 1.0
    photos: int = 0
    missing: list[int] = field(default_factory=list)  # learning photos that did not carry it
    scores: list[float] = field(default_factory=list)  # per learning photo: how well it explains it

    def __post_init__(self) -> None:
        self.alpha = np.clip(np.asarray(self.alpha, np.float32), 0.0, 1.0)
        self.color = np.clip(np.asarray(self.color, np.float32), 0.0, 1.0)
        if self.alpha.ndim != 2 or self.color.shape != (*self.alpha.shape, 3):
            raise InvalidProfileError(
                f"mark alpha {self.alpha.shape} and colour {self.color.shape} do not match"
            )
        if min(self.alpha.shape) < 1 or max(self.alpha.shape) > MAX_MARK_SIDE:
            raise InvalidProfileError(f"mark size {self.alpha.shape} is outside 1..{MAX_MARK_SIDE} px")
        if self.layout not in LAYOUTS:
            raise InvalidProfileError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.anchor not in (*ANCHORS, "any"):
            raise InvalidProfileError(
                f"anchor must be one of {', '.join(ANCHORS)} or any, got {self.anchor!r}"
            )
        if self.layout == "tiled" and (self.period is None or self.period != self.alpha.shape):
            raise InvalidProfileError("a tiled mark's image must be exactly one period cell")
        if not float(self.alpha.max(initial=0.0)) > 0.0:
            raise InvalidProfileError("the mark is fully transparent")

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the mark image."""
        return int(self.alpha.shape[0]), int(self.alpha.shape[1])

    @property
    def premultiplied(self) -> np.ndarray:
        """α·W, what the blend adds to a photo."""
        return self.alpha[..., None] * self.color

    @classmethod
    def from_rgba(cls, image: np.ndarray) -> MarkProfile:
        """A user's own mark (RGBA, 8- or 16-bit): placement unknown, searched for on each photo."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 4:
            shape = getattr(image, "shape", None)
            raise InvalidProfileError(f"a mark image must be RGBA (HxWx4), got shape {shape}")
        if image.dtype not in (np.uint8, np.uint16):
            raise InvalidProfileError(f"a mark image must be 8- or 16-bit, got {image.dtype}")
        scale = 255.0 if image.dtype == np.uint8 else 65535.0
        values = image.astype(np.float32) / scale
        alpha = values[..., 3]
        if not (alpha > 0).any():
            raise InvalidProfileError("the mark image is fully transparent")
        ys, xs = np.nonzero(alpha > 0)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        return cls(alpha[y0:y1, x0:x1], values[y0:y1, x0:x1, :3], anchor="any", photos=0)

    # --- files ---------------------------------------------------------------------------------
    def to_rgba16(self) -> np.ndarray:
        """W as RGB and α as alpha, 16-bit: the PNG half of the file."""
        rgba = np.dstack([self.color, self.alpha])
        return np.rint(rgba * 65535.0).astype(np.uint16)

    def metadata(self) -> dict[str, Any]:
        """The JSON half of the file (also what an API would show)."""
        return {
            "version": FORMAT_VERSION,
            "layout": self.layout,
            "anchor": self.anchor,
            "offset": list(self.offset),
            "period": list(self.period) if self.period else None,
            "size": list(self.shape),
            "source_size": list(self.source_size) if self.source_size else None,
            "quality": round(float(self.quality), 4),
            "photos": self.photos,
            "missing": list(self.missing),
            "scores": [round(float(s), 4) for s in self.scores],
        }

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (JSON) and the mark PNG beside it (same stem); returns the JSON path."""
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_suffix(".json")
        image_path = path.with_suffix(".png")
        bgra = cv2.cvtColor(self.to_rgba16(), cv2.COLOR_RGBA2BGRA)
        if not cv2.imwrite(str(image_path), bgra):
            raise OSError(f"cannot write {image_path}")
        meta = {**self.metadata(), "image": image_path.name}
        path.write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> MarkProfile:
        """Read a saved profile (its JSON), or an RGBA image as a mark with unknown placement."""
        path = Path(path)
        if path.suffix.lower() != ".json":
            return cls.from_rgba(_read_rgba(path))
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InvalidProfileError(f"{path}: not a readable mark profile ({e})") from e
        if not isinstance(meta, dict) or "image" not in meta:
            raise InvalidProfileError(f"{path}: a mark profile is a JSON object with an 'image' field")
        if meta.get("version") != FORMAT_VERSION:
            raise InvalidProfileError(f"{path}: profile version {meta.get('version')!r} is not supported")
        image_name = str(meta["image"])
        if Path(image_name).name != image_name:
            raise InvalidProfileError(f"{path}: the mark image must sit beside the profile")
        rgba = _read_rgba(path.parent / image_name)
        scale = 255.0 if rgba.dtype == np.uint8 else 65535.0
        values = rgba.astype(np.float32) / scale
        try:
            return cls(
                values[..., 3],
                values[..., :3],
                layout=str(meta.get("layout", "fixed")),
                anchor=str(meta.get("anchor", "any")),
                offset=_pair(meta.get("offset", (0, 0))),
                period=_pair(meta["period"]) if meta.get("period") else None,
                source_size=_pair(meta["source_size"]) if meta.get("source_size") else None,
                quality=float(meta.get("quality", 1.0)),
                photos=int(meta.get("photos", 0)),
                missing=[int(i) for i in meta.get("missing", [])],
                scores=[float(s) for s in meta.get("scores", [])],
            )
        except (TypeError, ValueError, KeyError) as e:
            raise InvalidProfileError(f"{path}: malformed field in mark profile ({e})") from e


def _pair(value: Any) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"expected two integers, got {value!r}")
    return int(value[0]), int(value[1])


def _read_rgba(path: Path) -> np.ndarray:
    """An RGBA array (8- or 16-bit) from an image file; RGB without alpha is refused."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if data is None:
        raise InvalidProfileError(f"{path}: not a readable image")
    if data.ndim != 3 or data.shape[2] != 4:
        raise InvalidProfileError(f"{path}: a mark image needs an alpha channel (RGBA)")
    return cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA)
