"""The service interface the HTTP layer talks to: info, check, remove, segment, and mark profiles
(learn_mark, remove_mark).

``pipeline.Remover`` implements it in process; ``app.ray_serve.RemoteRemover`` implements it by
forwarding to GPU replicas. Routes use only this interface, never a remover's parts, so a new
backend is one class and a new option never touches the routes' plumbing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from pipeline.errors import InvalidParameterError, quote
from pipeline.options import RemoveOptions, SegmentOptions
from pipeline.segment import SegmentOutput

if TYPE_CHECKING:
    from pipeline.marks import MarkProfile

NO_SEGMENTER = "no segmenter is loaded: supply a mask"


@dataclass
class Result:
    """What ``remove`` returns: the clean image, the mask used and stage timings (s)."""

    image: np.ndarray
    mask: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    inpainter: str = ""
    seed: int | None = None
    found: bool = True
    """False when there was nothing to remove: the segmenter found no mark (or the given mask was
    empty), and the image comes back untouched."""
    presence: float | None = None
    """The segmenter's P(mark) for the photo, when it has the presence head."""
    mark: dict[str, object] | None = None
    """With a mark profile: where it was found on the photo and how clearly (``MarkReport``)."""

    @property
    def coverage(self) -> float:
        """Fraction of pixels that were restored."""
        return float(self.mask.mean()) if self.mask.size else 0.0


@dataclass(frozen=True)
class SegmenterInfo:
    """The loaded segmenter's public description."""

    heads: tuple[str, ...]
    max_side: int
    device: str


@dataclass(frozen=True)
class ServiceInfo:
    """Plain, picklable description of loaded models: what /v1/info shows and what requests
    are checked against before they take a queue slot."""

    segmenter: SegmenterInfo | None
    inpainters: tuple[str, ...]
    default_inpainter: str
    defaults: SegmentOptions  # the service's threshold and dilate, filled in
    device: str

    def check(self, options: SegmentOptions) -> None:
        """Refuse what these models cannot do: an inpainter that is not loaded (remove), or
        segmenting without a segmenter (segment). Ranges were checked by the options model."""
        if isinstance(options, RemoveOptions):
            if options.inpainter is not None and options.inpainter not in self.inpainters:
                raise InvalidParameterError(
                    f"inpainter {quote(options.inpainter)} is not loaded; "
                    f"choose one of: {', '.join(sorted(self.inpainters))}"
                )
        elif self.segmenter is None:
            raise InvalidParameterError(NO_SEGMENTER)


@runtime_checkable
class RemovalService(Protocol):
    """What the routes call. ``remove`` and ``segment`` block: call them off the event loop."""

    def info(self) -> ServiceInfo:
        """The loaded models, defaults and device."""
        ...

    def check(self, options: SegmentOptions) -> None:
        """Raise ``InvalidParameterError`` for a request these models cannot serve."""
        ...

    def remove(
        self, image: np.ndarray, mask: np.ndarray | None = None, options: RemoveOptions | None = None
    ) -> Result:
        """Restore ``image`` where the (given or predicted) mask is set."""
        ...

    def segment(
        self,
        image: np.ndarray,
        options: SegmentOptions | None = None,
        *,
        timings: dict[str, float] | None = None,
    ) -> tuple[np.ndarray, SegmentOutput | None]:
        """The refined bool mask and, in process, the segmenter's maps (``None`` remotely)."""
        ...

    def learn_mark(self, images: Sequence[np.ndarray]) -> MarkProfile:
        """The mark that several RGB uint8 photos share (``pipeline.marks.learn_profile``)."""
        ...

    def remove_mark(
        self, image: np.ndarray, profile: MarkProfile, options: RemoveOptions | None = None
    ) -> Result:
        """Remove exactly ``profile``'s mark; the photo comes back untouched where it is not found."""
        ...
