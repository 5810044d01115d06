"""Classical inpainting with OpenCV (Telea fast marching or Navier-Stokes): instant on CPU.

No model, no GPU: the fallback that always works, and the right tool for thin marks (text,
outlines) on smooth backgrounds. It smears texture over larger holes; ``fsr`` adds contrib's
frequency-selective reconstruction for the wide parts of a hole (texture continued, ~100× the
time, within a pixel budget), and the diffusion inpainter goes further on a GPU.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np

from pipeline.errors import InvalidParameterError
from pipeline.inpaint.base import InpaintRequest, register_inpainter
from pipeline.inpaint.regions import inpaint_regions

Method = Literal["telea", "ns", "fsr"]
MAX_RADIUS = 64
THICK_PX = 2
"""A hole part at least this far from its edge somewhere (≥ 4 px across) gets the texture fill
(restoration set, exact masks, no pixel budget: restore's fill with Telea / FSR on parts ≥ 4 px /
≥ 6 px / everywhere 40.18 / 40.65 / 40.33 / 40.73 dB; everywhere cost 10× the time on thin rims)."""


FSR_PAD = 32
"""Mirrored border around an FSR crop: its reconstruction works on blocks of up to 32² pixels."""


def thick_parts(hole: np.ndarray, depth: int) -> np.ndarray:
    """The connected parts of ``hole`` (uint8) that reach ``depth`` px from their edge somewhere."""
    n, labels = cv2.connectedComponents(hole, connectivity=8)
    if n <= 1:
        return np.zeros_like(hole)
    inner = cv2.distanceTransform(np.pad(hole, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    deepest = np.zeros(n, np.float32)
    np.maximum.at(deepest, labels.ravel(), inner.ravel())
    keep = deepest >= depth
    keep[0] = False
    return keep[labels].astype(np.uint8)


@register_inpainter("opencv")
class OpenCVInpainter:
    """``cv2.inpaint`` run per mask region on a crop, not over the whole frame.

    Both algorithms only look ``radius`` pixels around the hole, so a crop with a margin a little
    wider than that gives the same fill as the full frame while a small logo on a 4K photo
    touches a few thousand pixels instead of eight million.
    """

    name = "opencv"
    # ``fsr``: Telea everywhere first, then the texture fill over the wide parts (``fill``).
    _FLAGS: ClassVar[dict[str, int]] = {
        "telea": cv2.INPAINT_TELEA,
        "ns": cv2.INPAINT_NS,
        "fsr": cv2.INPAINT_TELEA,
    }

    def __init__(self, method: Method = "telea", radius: int = 3, fsr_max_pixels: int = 8_000) -> None:
        # radius 3: cost grows with radius² per masked pixel; 5 doubled the time on large masks
        # (2048², 15 % coverage: 1.09 s vs 0.52 s) with no visible gain on thin marks.
        if method not in self._FLAGS:
            raise InvalidParameterError(f"opencv method must be one of {sorted(self._FLAGS)}, got {method!r}")
        if not 1 <= int(radius) <= MAX_RADIUS:
            raise InvalidParameterError(f"opencv radius must be in [1, {MAX_RADIUS}] px, got {radius}")
        if int(fsr_max_pixels) < 0:
            raise InvalidParameterError(f"fsr_max_pixels must be >= 0, got {fsr_max_pixels}")
        self.method: Method = method
        self.radius = int(radius)
        # Beyond it (FSR costs ~140 s per megapixel of hole) Telea alone: MARKLESS_TEXTURE_FILL_MAX_PIXELS.
        self.fsr_max_pixels = int(fsr_max_pixels)
        self._flag = self._FLAGS[method]

    @property
    def context_px(self) -> int:
        """Crop margin: the neighbourhood the algorithms read plus slack for their gradients."""
        return 32 if self.method == "fsr" else 2 * self.radius + 2  # FSR models 32² blocks of texture

    def fill(self, crop: np.ndarray, mask: np.ndarray, texture: bool = False) -> np.ndarray:
        """Inpaint one crop (uint8 RGB, bool mask); channel order does not matter to OpenCV.

        ``texture``: give the wide parts the FSR fill (``inpaint`` decides, from the budget)."""
        hole = mask.astype(np.uint8)
        out = cv2.inpaint(crop, hole, float(self.radius), self._flag)
        thick = thick_parts(hole, THICK_PX) if texture else None
        if thick is not None and thick.any():
            # Frequency-selective reconstruction (contrib ``xphoto``) continues texture, not just
            # colour, where a hole is wide enough for that to matter. It costs per 16² block the hole
            # touches (thin strokes spread over many), so Telea keeps the thin parts. Its mask marks
            # the *known* pixels.
            # A hole at the frame's edge (a corner logo) left FSR without the blocks around it, and it
            # returned garbage there (a bright green bar); the frame is mirrored out (known pixels,
            # Telea's inside the hole) so every hole pixel has photo on all sides.
            p = FSR_PAD
            known = cv2.copyMakeBorder(
                (thick == 0).astype(np.uint8), p, p, p, p, cv2.BORDER_CONSTANT, value=1
            )
            padded = cv2.copyMakeBorder(out, p, p, p, p, cv2.BORDER_REFLECT)
            textured = np.zeros_like(padded)
            cv2.xphoto.inpaint(padded, known, textured, cv2.xphoto.INPAINT_FSR_FAST)
            textured = textured[p:-p, p:-p]
            out[thick > 0] = textured[thick > 0]  # FSR re-rounds known pixels too: keep only its fill
        return out

    def inpaint(self, request: InpaintRequest) -> np.ndarray:
        """Fill ``request.mask``; seed/steps/guidance are meaningless here and ignored. The texture
        fill runs only when the request's wide hole parts fit the pixel budget (time is bounded)."""
        texture = self.method == "fsr" and (
            int(thick_parts(request.mask.astype(np.uint8), THICK_PX).sum()) <= self.fsr_max_pixels
        )
        return inpaint_regions(
            request.image,
            request.mask,
            lambda crop, mask: self.fill(crop, mask, texture),
            margin=0.0,
            min_margin=self.context_px,
            target_size=None,
            feather_px=0,
        )
