"""The ``save_pretrained`` folder layout every shipped network uses: config.json + model.safetensors.

One place for it, so the segmenter and the decomposer write and refuse folders the same way: fp16
tensors by default (lossless enough for inference, half the download), world-readable files
(safetensors writes 0600), and a clear error naming what is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from safetensors.torch import load_file, save_file

from models.errors import ModelNotAvailableError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_folder(
    directory: str | Path, config: dict[str, Any], state: dict[str, torch.Tensor], *, half: bool
) -> Path:
    """Write ``config`` and ``state`` (floating tensors as fp16 when ``half``) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    tensors = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in state.items()}
    weights = directory / WEIGHTS_NAME
    save_file(tensors, str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)
    return directory


def load_folder(
    directory: str | Path, *, what: str, hint: str, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The config and fp32 state of a folder written by ``save_folder``; ``what`` and ``hint`` name
    the model and how to get one in the error when a file is missing."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise ModelNotAvailableError(
            f"no {what} weights in {directory} (need {CONFIG_NAME} and {WEIGHTS_NAME}); {hint}"
        )
    state = load_file(str(weights_path), device=str(map_location))
    return json.loads(config_path.read_text()), {
        k: v.float() if v.is_floating_point() else v for k, v in state.items()
    }


class Pretrained:
    """``save_pretrained`` / ``from_pretrained`` for an ``nn.Module`` built from one config object
    (``config_class``, with ``from_dict``/``to_dict``); ``what`` and ``hint`` go into the error when
    a folder lacks its files."""

    config_class: ClassVar[Any]
    what: ClassVar[str]
    hint: ClassVar[str]
    config: Any

    def save_pretrained(self, directory: str | Path, *, half: bool = True) -> Path:
        """Write config.json + model.safetensors (fp16 by default), world-readable."""
        return save_folder(directory, self.config.to_dict(), self.state_dict(), half=half)  # type: ignore[attr-defined]

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, map_location: str | torch.device = "cpu") -> Self:
        """Load a folder written by ``save_pretrained``. Missing or mismatched files are refused."""
        config, state = load_folder(directory, what=cls.what, hint=cls.hint, map_location=map_location)
        model = cls(cls.config_class.from_dict(config))  # type: ignore[call-arg]
        model.load_state_dict(state, strict=True)  # type: ignore[attr-defined]
        return model.eval()  # type: ignore[attr-defined,no-any-return]
