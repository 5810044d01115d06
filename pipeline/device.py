"""The one device resolver: every model (segmenter, diffusion) and the ``auto`` inpainter choice use it."""

from __future__ import annotations

import re

from pipeline.errors import InvalidParameterError


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when present, else ``cpu``; refuse a GPU that is not there."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise InvalidParameterError(f"device {device!r} requested but CUDA is not available")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise InvalidParameterError(f"device {device!r}: only {torch.cuda.device_count()} GPU(s) present")
        return device
    raise InvalidParameterError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
