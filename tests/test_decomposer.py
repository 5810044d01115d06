"""The mark decomposer: its start from the segmenter, storage, training module, data, and its use
by the restoration (only where the photo holds its reading)."""

from __future__ import annotations

from pathlib import Path

import cv2
import lightning as L
import numpy as np
import pytest
import torch

from app.settings import Settings
from models import DecomposerConfig, MarkDecomposer, WatermarkSegmenter, init_from_segmenter
from models.errors import ModelNotAvailableError
from pipeline.config import SHIPPED_DECOMPOSER
from pipeline.decompose import STRONG_READING, TRUST, Decomposer, invert_left, read_opaque
from pipeline.factory import build_remover
from pipeline.inpaint.base import InpaintRequest
from pipeline.inpaint.fit import FitOptions, background
from pipeline.inpaint.restore import RestoreInpainter
from training.data import WatermarkDataModule, decomposition_inputs
from training.decompose import DecomposerModule
from training.evaluate import psnr
from training.export import export_checkpoint
from training.synth import WatermarkSynth


def test_it_starts_reading_the_photo_as_the_segmenter_does(tiny_segmenter_dir: Path) -> None:
    segmenter = WatermarkSegmenter.from_pretrained(tiny_segmenter_dir)
    model = MarkDecomposer(DecomposerConfig.from_preset("tiny"))
    init_from_segmenter(model, segmenter)
    image = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        seg = segmenter(image)
        got = model.eval()(image, torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64))
    # The background and hint channels start at zero: its opacity and colour are the segmenter's.
    assert torch.allclose(got["alpha"], seg["alpha"], atol=1e-5)
    assert torch.allclose(got["color"], seg["color"], atol=1e-5)


def test_saved_and_loaded_in_the_shipped_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MarkDecomposer(DecomposerConfig.from_preset("tiny")).eval()
    loaded = MarkDecomposer.from_pretrained(model.save_pretrained(tmp_path / "dec"))
    assert (tmp_path / "dec" / "model.safetensors").stat().st_mode & 0o777 == 0o644
    x = (torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64))
    with torch.inference_mode():
        ref, got = model(*x), loaded(*x)
    for head in ("alpha", "color"):  # fp16 storage
        assert torch.allclose(ref[head], got[head], atol=5e-2), head
    with pytest.raises(ModelNotAvailableError, match="no decomposer weights"):
        MarkDecomposer.from_pretrained(tmp_path / "missing")


def test_its_inputs_are_the_mask_a_user_gives_and_the_photo_filled_under_it() -> None:
    synth = WatermarkSynth()
    marked = synth.sample(np.random.default_rng(3), (96, 96))
    assert marked.mask.any()
    got = decomposition_inputs(marked, np.random.default_rng(0), 6)
    hint = got["hint"][0].numpy() > 0.5
    assert hint[marked.mask].all()  # grown, never shrunk
    reach = cv2.dilate(marked.mask.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
    assert not (hint & ~reach).any()  # by at most 6 px
    fill = background(marked.image, hint, FitOptions().background_radius)
    assert np.allclose(got["background"].permute(1, 2, 0).numpy(), fill)
    clean = synth.sample(np.random.default_rng(3), (96, 96))
    clean.mask[:] = False  # a clean photo: a drawn ellipse is the hint
    assert decomposition_inputs(clean, np.random.default_rng(0), 6)["hint"].sum() > 50


def test_the_module_trains_and_its_checkpoint_exports(tmp_path: Path, tiny_segmenter_dir: Path) -> None:
    module = DecomposerModule(preset="tiny", init_segmenter=str(tiny_segmenter_dir))
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    data = WatermarkDataModule(
        assets_dir=None,
        crop_size=64,
        batch_size=2,
        num_workers=0,
        train_samples_per_epoch=4,
        val_samples=2,
        grow_px=4,
    )
    trainer = L.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(module, datamodule=data)
    after = module.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    assert {"train/recovered", "val/recovered", "val/input", "val/alpha_mae"} <= set(trainer.callback_metrics)
    checkpoint = next(tmp_path.rglob("*.ckpt"))
    out = export_checkpoint(checkpoint, tmp_path / "exported")  # told apart from a segmenter's
    assert MarkDecomposer.from_pretrained(out).config == module.model.config


def _constant(alpha: float, color: tuple[float, float, float]) -> Decomposer:
    """A tiny decomposer that reads one opacity and colour wherever its hint is."""
    model = MarkDecomposer(DecomposerConfig.from_preset("tiny"))
    head = model.net.segmentation_head[0]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.logit(torch.tensor([alpha, *color]).clamp(1e-4, 1 - 1e-4)))
    return Decomposer(model, device="cpu")


def _textured_disc(opacity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured photo, a disc mask, and the photo with a white disc at ``opacity``."""
    rng = np.random.default_rng(1)
    photo = np.clip(cv2.GaussianBlur(rng.normal(120, 50, (120, 160, 3)), (0, 0), 2.0), 0, 255).astype(
        np.uint8
    )
    mask = np.zeros((120, 160), np.uint8)
    cv2.circle(mask, (80, 60), 30, 1, -1)
    a = opacity * mask[..., None].astype(np.float64)
    marked = np.round((1 - a) * photo + a * 255.0).astype(np.uint8)
    return photo, mask > 0, marked


def _invert(
    decomposer: Decomposer,
    image: np.ndarray,
    mask: np.ndarray,
    heads: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[int, np.ndarray]:
    """``invert_left`` on all of ``mask``, with restore's defaults; (groups inverted, the output)."""
    out = image.copy()
    opt = FitOptions()
    done = invert_left(
        decomposer,
        image,
        out,
        mask,
        mask,
        alpha_ceiling=0.75,
        gamut_tolerance=opt.gamut_tolerance,
        min_change=opt.min_change,
        heads=heads,
    )
    return done, out


def test_a_reading_the_photo_holds_is_inverted_and_one_it_does_not_is_left() -> None:
    photo, mask, marked = _textured_disc(0.3)
    done, out = _invert(_constant(0.3, (1, 1, 1)), marked, mask)
    # Moved ``TRUST`` of the way to the photo: the mark's error falls by (1 − TRUST)², ~10 dB.
    expected = marked + TRUST * (photo.astype(np.float32) - marked)
    assert done == 1 and np.abs(out[mask] - expected[mask]).max() <= 2.0
    assert psnr(out, photo) > psnr(marked, photo) - 20 * np.log10(1 - TRUST) - 1
    assert np.array_equal(out[~mask], marked[~mask])
    # Read four times too strong: inverting would draw the disc's negative; it is left as it came.
    _, mask, faint = _textured_disc(0.1)
    assert np.array_equal(_invert(_constant(0.4, (1, 1, 1)), faint, mask)[1], faint)
    # A reading that would move the pixels less than the fits call a mark is not inverted, though
    # the photo holds it (gain ~1).
    _, mask, fainter = _textured_disc(0.025)
    assert np.array_equal(_invert(_constant(0.025, (1, 1, 1)), fainter, mask)[1], fainter)


def test_a_reading_of_the_wrong_colour_is_left() -> None:
    """A disc half red, half white, read as one colour between them (a network's average): the
    photo holds its edge pattern, but its inversion does not come closer to the fill around it."""
    photo, mask, _ = _textured_disc(0.0)
    color = np.full((*mask.shape, 3), 255.0)
    color[:, : mask.shape[1] // 2, 1:] = 0.0
    a = 0.3 * mask[..., None]
    marked = np.round((1 - a) * photo + a * color).astype(np.uint8)
    for read in ((1.0, 0.5, 0.5), (1.0, 1.0, 1.0)):
        assert np.array_equal(_invert(_constant(0.3, read), marked, mask)[1], marked), read


def test_a_clean_photo_under_a_mask_comes_back_as_it_came_with_a_decomposer() -> None:
    photo, mask, _ = _textured_disc(0.3)
    restore = RestoreInpainter(decomposer=_constant(0.3, (1, 1, 1)))
    assert np.array_equal(restore.inpaint(InpaintRequest(image=photo, mask=mask)), photo)


def test_its_near_opaque_reading_marks_pixels_for_a_fill_at_the_break_even() -> None:
    # ``read_opaque``: the pixels it reads at ``STRONG_READING`` or above, within those asked about.
    photo, mask, marked = _textured_disc(0.3)
    where = mask.copy()
    where[:, :80] = False
    assert np.array_equal(
        read_opaque(_constant(STRONG_READING + 0.05, (1, 1, 1)), marked, mask, where), where
    )
    assert not read_opaque(_constant(STRONG_READING - 0.05, (1, 1, 1)), marked, mask, where).any()
    # A fill at the break-even still has to pay: a clean photo read opaque comes back as it came.
    restore = RestoreInpainter(decomposer=_constant(0.9, (1, 1, 1)))
    assert np.array_equal(restore.inpaint(InpaintRequest(image=photo, mask=mask)), photo)


def test_the_service_loads_a_decomposer_for_restore(tmp_path: Path, tiny_segmenter_dir: Path) -> None:
    folder = MarkDecomposer(DecomposerConfig.from_preset("tiny")).save_pretrained(tmp_path / "dec")
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="restore", decomposer=folder)
    restore = remover.inpainters["restore"]
    assert isinstance(restore, RestoreInpainter) and restore.decomposer is not None
    with pytest.raises(ModelNotAvailableError):
        build_remover(segmenter=tiny_segmenter_dir, inpainter="restore", decomposer=tmp_path / "none")


def test_the_shipped_decomposer_is_on_by_default_and_none_turns_it_off(
    tiny_segmenter_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().decomposer == SHIPPED_DECOMPOSER
    on = build_remover(segmenter=tiny_segmenter_dir, inpainter="restore").inpainters["restore"]
    assert isinstance(on, RestoreInpainter) and on.decomposer is not None
    off = build_remover(segmenter=tiny_segmenter_dir, inpainter="restore", decomposer="none")
    assert isinstance(off.inpainters["restore"], RestoreInpainter)
    assert off.inpainters["restore"].decomposer is None
    monkeypatch.setenv("MARKLESS_DECOMPOSER", "none")
    assert Settings().decomposer is None


def test_the_segmenters_heads_veto_a_reading_far_stronger_than_theirs() -> None:
    _, mask, marked = _textured_disc(0.3)
    white = np.ones((*mask.shape, 3), np.float32)
    for heads_alpha, inverted in ((0.15, 1), (0.05, 0)):  # they read opacity low, but not 6 times low
        heads = (np.where(mask, heads_alpha, 0.0).astype(np.float32), white)
        done, out = _invert(_constant(0.3, (1, 1, 1)), marked, mask, heads)
        assert done == inverted
        assert np.array_equal(out, marked) == (not inverted)
