"""A tiny, randomly initialised Stable Diffusion inpainting pipeline saved to a folder.

No inpainting checkpoint can be downloaded in CI, yet the product's diffusion path (loading a
``save_pretrained`` folder through ``AutoPipelineForInpainting``, cropping, batching, seeding)
must be exercised for real. Shapes are what matter for that, not trained values, so every
component is built from a config with the smallest sizes diffusers accepts. Native size is
``sample_size * vae_scale_factor`` = 32 * 2 = 64 px, and one 2-step call costs milliseconds.

Other test modules reuse it: ``from tests.dummy_diffusion import make_tiny_inpaint_pipeline``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

TINY_NATIVE_SIZE = 64
_SEED = 0


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins a byte-level BPE uses for raw bytes.

    Bytes that are already visible Latin-1 characters stand for themselves; the others
    (controls, space, soft hyphen...) are shifted past 255 so every byte has a visible symbol.
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols: dict[int, str] = {b: chr(b) for b in visible}
    shifted = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + shifted)
            shifted += 1
    return [symbols[b] for b in range(256)]


def _write_tiny_tokenizer_files(folder: Path) -> None:
    """vocab.json + merges.txt covering every byte, so any prompt tokenizes without unknowns."""
    tokens = ["<|startoftext|>", "<|endoftext|>"]
    for symbol in _byte_symbols():
        tokens += [symbol, symbol + "</w>"]
    # A few merges so the BPE model has real work to do on common prompt words.
    merges = ["t e", "a t", "e r</w>", "o n</w>", "te x", "tex t</w>"]
    tokens += ["te", "at", "er</w>", "on</w>", "tex", "text</w>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def make_tiny_inpaint_pipeline(path: Path) -> Path:
    """Build a seeded tiny ``StableDiffusionInpaintPipeline`` and ``save_pretrained`` it to ``path``.

    Returns ``path``. The result loads with ``AutoPipelineForInpainting.from_pretrained(path)``,
    exactly as a downloaded SD 1.5 inpainting checkpoint does.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(_SEED)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=9,  # noisy latents (4) + mask (1) + masked-image latents (4): an inpainting UNet
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    with tempfile.TemporaryDirectory() as tmp:
        _write_tiny_tokenizer_files(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp, model_max_length=77)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            projection_dim=32,
        )
    ).eval()
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path)
    return path
