"""The base of markless's typed errors, free of any dependency so ``models`` stands alone.

``pipeline.errors`` re-exports these and adds the pipeline's own; ``app.errors`` maps every
``MarklessError`` to an HTTP status and the CLI prints its message.
"""

from __future__ import annotations


class MarklessError(Exception):
    """Base of all errors caused by the caller's input or configuration."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotAvailableError(MarklessError):
    """A configured model (weights folder, hub id) cannot be loaded."""

    code = "model_not_available"
