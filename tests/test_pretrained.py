"""The offline ImageNet weights land in every encoder tensor and still classify real photos."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from skimage import data

from models import build_segmenter
from training.pretrained import init_encoder_from_imagenet, lite0_checkpoint, load_lite0_imagenet


def test_every_encoder_tensor_is_assigned() -> None:
    model = build_segmenter("unet-lite0")
    before = {k: v.clone() for k, v in model.net.encoder.state_dict().items()}
    n = init_encoder_from_imagenet(model)
    after = model.net.encoder.state_dict()
    source = torch.load(lite0_checkpoint(), map_location="cpu", weights_only=True)
    floats = [k for k, v in after.items() if v.is_floating_point()]
    assert n == 240 == len([k for k in after if not k.endswith("num_batches_tracked")])
    changed = [k for k in floats if not torch.equal(before[k], after[k])]
    # running_var of BN is initialised to ones and a few ImageNet ones may coincide; weights never do.
    assert len(changed) >= len(floats) - 2
    assert torch.equal(after["model.conv_stem.weight"], source["_conv_stem.weight"])


@pytest.mark.parametrize(("name", "classes"), [("chelsea", {285, 281, 282}), ("coffee", {967})])
def test_imagenet_classifier_names_the_photo(name: str, classes: set[int]) -> None:
    """Same mapping into timm's full classifier: a cat is a cat, an espresso an espresso."""
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    load_lite0_imagenet(net, with_head=True)
    image = getattr(data, name)()
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    with torch.inference_mode():
        probs = net((x - 0.5) / 0.5).softmax(-1)[0]
    assert int(probs.argmax()) in classes
    assert float(probs.max()) > 0.4


def test_wrong_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="tu-tf_efficientnet_lite0"):
        init_encoder_from_imagenet(build_segmenter("tiny"))
