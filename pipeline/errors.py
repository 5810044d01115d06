"""Typed errors of the removal pipeline.

Every error a caller can provoke with bad input is a ``MarklessError`` subclass with a stable
``code``; ``app.errors`` maps them to HTTP statuses and the CLI prints their messages. Anything
else that escapes the pipeline is a bug, not bad input.
"""

from __future__ import annotations

from models.errors import MarklessError, ModelNotAvailableError

__all__ = [
    "ImageTooLargeError",
    "InvalidMaskError",
    "InvalidParameterError",
    "InvalidProfileError",
    "JobCancelledError",
    "MarklessError",
    "ModelNotAvailableError",
    "NoSharedMarkError",
    "NotEnoughPhotosError",
    "UnsupportedImageError",
    "quote",
]


class UnsupportedImageError(MarklessError):
    """The bytes are not an image in a format we accept (or are truncated/corrupt)."""

    code = "unsupported_image"


class ImageTooLargeError(MarklessError):
    """The image exceeds the configured pixel (or byte) limit; refused before decoding pixels."""

    code = "image_too_large"


class InvalidMaskError(MarklessError):
    """A user-supplied mask cannot be used (wrong size, not an image)."""

    code = "invalid_mask"


class InvalidParameterError(MarklessError):
    """An option is out of range or unknown (threshold, dilation, inpainter name, format...)."""

    code = "invalid_parameter"


class NotEnoughPhotosError(MarklessError):
    """Learning a mark needs several photos that carry it; fewer were given (or carried it)."""

    code = "not_enough_photos"


class NoSharedMarkError(MarklessError):
    """The photos given to learn a mark have nothing visible in common."""

    code = "no_shared_mark"


class InvalidProfileError(MarklessError):
    """A mark profile (JSON + PNG, or an RGBA mark image) is malformed or unreadable."""

    code = "invalid_profile"


class JobCancelledError(MarklessError):
    """The job was stopped at a stage boundary: its client left or its time ran out."""

    code = "cancelled"


def quote(value: object, limit: int = 40) -> str:
    """``repr`` of a caller's value for an error message, cut to ``limit`` characters.

    Messages name the offending value to be useful, but must never echo a long input back.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
