"""The one protocol every restoration stage implements, and the name→class registry.

Inpainters receive the full image and a boolean mask and return a full RGB image. They may
touch only masked pixels; ``Remover`` enforces that with a final composite anyway, so the
guarantee "pixels outside the mask never change" lives in exactly one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from pipeline.errors import InvalidParameterError
from pipeline.options import RemoveOptions


@dataclass(frozen=True)
class InpaintRequest:
    """One restoration job. Optional fields are hints an inpainter may ignore."""

    image: np.ndarray  # HxWx3 uint8 RGB
    mask: np.ndarray  # HxW bool, True = restore
    options: RemoveOptions = field(default_factory=RemoveOptions)  # validated; seed, steps...
    prob: np.ndarray | None = None  # HxW float32: segmenter's P(mark), only when the mask came from it
    alpha: np.ndarray | None = None  # HxW float32 in [0,1]: predicted mark opacity (decomposition heads)
    color: np.ndarray | None = None  # HxWx3 float32 in [0,1]: predicted mark colour


@runtime_checkable
class Inpainter(Protocol):
    """A restoration stage: fills ``request.mask`` and returns an HxWx3 uint8 image."""

    name: str

    def inpaint(self, request: InpaintRequest) -> np.ndarray: ...


InpainterT = TypeVar("InpainterT", bound=type)

_REGISTRY: dict[str, Callable[..., Inpainter]] = {}


def register_inpainter(name: str) -> Callable[[InpainterT], InpainterT]:
    """Class decorator: make an inpainter buildable by ``name`` (CLI, settings, API field)."""

    def decorator(cls: InpainterT) -> InpainterT:
        if name in _REGISTRY:
            raise ValueError(f"inpainter {name!r} registered twice")
        _REGISTRY[name] = cls
        return cls

    return decorator


def available_inpainters() -> list[str]:
    """Registered names, ``auto`` excluded (it is resolved, not built)."""
    _import_builtin()
    return sorted(_REGISTRY)


def uses_decomposition(name: str) -> bool:
    """Whether the registered inpainter ``name`` reads the segmenter's maps (opacity, colour) even
    when the mask is given, so a caller that supplies masks should still load the segmenter for it.
    Read from the class, before anything is built; an unknown name reads none."""
    _import_builtin()
    return bool(getattr(_REGISTRY.get(name), "uses_decomposition", False))


def needs_decomposition(name: str) -> bool:
    """Whether ``name`` is pointless without the segmenter's maps (unblend would be plain
    inpainting), so a caller must not run it without them; restore reads them only as a second
    opinion and runs without."""
    _import_builtin()
    return bool(getattr(_REGISTRY.get(name), "needs_decomposition", False))


def build_inpainter(name: str, **kwargs: Any) -> Inpainter:
    """Build a registered inpainter; unknown names are the caller's error."""
    _import_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise InvalidParameterError(
            f"unknown inpainter {name!r}; choose one of: {', '.join(available_inpainters())}"
        ) from None
    return factory(**kwargs)


def _import_builtin() -> None:
    """Import the modules whose decorators fill the registry.

    Done on first use rather than at import so ``pipeline`` stays cheap to import; the
    modules themselves import heavy libraries (diffusers) only when a model is built.
    """
    import pipeline.inpaint.diffusion
    import pipeline.inpaint.opencv
    import pipeline.inpaint.restore
    import pipeline.inpaint.unblend  # noqa: F401
