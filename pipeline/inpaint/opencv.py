"""Classical inpainting with OpenCV (Telea fast marching or Navier-Stokes): instant on CPU.

No model, no GPU: the fallback that always works, and the right tool for thin marks (text,
outlines) on smooth backgrounds. It smears texture over larger holes; that is what the
diffusion inpainter is for.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np

from pipeline.errors import InvalidParameterError
from pipeline.inpaint.base import InpaintRequest, register_inpainter
from pipeline.inpaint.regions import inpaint_regions

Method = Literal["telea", "ns"]
MAX_RADIUS = 64


@register_inpainter("opencv")
class OpenCVInpainter:
    """``cv2.inpaint`` run per mask region on a crop, not over the whole frame.

    Both algorithms only look ``radius`` pixels around the hole, so a crop with a margin a little
    wider than that gives the same fill as the full frame while a small logo on a 4K photo
    touches a few thousand pixels instead of eight million.
    """

    name = "opencv"
    _FLAGS: ClassVar[dict[str, int]] = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}

    def __init__(self, method: Method = "telea", radius: int = 3) -> None:
        # radius 3: cost grows with radius² per masked pixel; 5 doubled the time on large masks
        # (2048², 15 % coverage: 1.09 s vs 0.52 s) with no visible gain on thin marks.
        if method not in self._FLAGS:
            raise InvalidParameterError(f"opencv method must be one of {sorted(self._FLAGS)}, got {method!r}")
        if not 1 <= int(radius) <= MAX_RADIUS:
            raise InvalidParameterError(f"opencv radius must be in [1, {MAX_RADIUS}] px, got {radius}")
        self.method: Method = method
        self.radius = int(radius)
        self._flag = self._FLAGS[method]

    @property
    def context_px(self) -> int:
        """Crop margin: the neighbourhood the algorithms read plus slack for their gradients."""
        return 2 * self.radius + 2

    def fill(self, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Inpaint one crop (uint8 RGB, bool mask); channel order does not matter to OpenCV."""
        return cv2.inpaint(crop, mask.astype(np.uint8), float(self.radius), self._flag)

    def inpaint(self, request: InpaintRequest) -> np.ndarray:
        """Fill ``request.mask``; seed/steps/guidance are meaningless here and ignored."""
        return inpaint_regions(
            request.image,
            request.mask,
            self.fill,
            margin=0.0,
            min_margin=self.context_px,
            target_size=None,
            feather_px=0,
        )
