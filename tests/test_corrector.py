"""The corrector: its start from the decomposer, storage, training pairs and module, and its use as
restore's last pass (inside the mask only, small changes dropped)."""

from __future__ import annotations

from pathlib import Path

import cv2
import lightning as L
import numpy as np
import pytest
import torch

from app.settings import Settings
from models.corrector import CorrectorConfig, MarkCorrector, init_from_decomposer
from models.decomposer import DecomposerConfig, MarkDecomposer
from models.errors import ModelNotAvailableError
from pipeline.config import SHIPPED_CORRECTOR
from pipeline.correct import DEAD_ZONE, Corrector, correct
from pipeline.factory import build_remover
from pipeline.inpaint.base import InpaintRequest
from pipeline.inpaint.restore import RestoreInpainter
from training.correct import PSNR_FLOOR, CorrectorModule, crop_psnr_loss
from training.corrections import CorrectionsDataModule, MaskDraw, write_corrections
from training.export import export_checkpoint


def _constant(change: float) -> Corrector:
    """A tiny corrector whose change is ``change`` everywhere (its last layer: zero weights, a bias)."""
    model = MarkCorrector(CorrectorConfig.from_preset("tiny"))
    with torch.no_grad():
        for p in model.net.segmentation_head.parameters():
            p.zero_()
        model.net.segmentation_head[0].bias.fill_(change)
    return Corrector(model, device="cpu")


def test_it_starts_from_the_decomposer_as_the_identity() -> None:
    torch.manual_seed(0)
    decomposer = MarkDecomposer(DecomposerConfig.from_preset("tiny"))
    model = MarkCorrector(CorrectorConfig.from_preset("tiny"))
    init_from_decomposer(model, decomposer)
    own, source = model.net.state_dict(), decomposer.net.state_dict()
    first = next(k for k in own if k.startswith("encoder") and own[k].dim() == 4)
    assert torch.equal(own[first], source[first])  # the photo and mask channels carry over
    with torch.inference_mode():
        change = model.eval()(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64))
    assert change.shape == (1, 3, 64, 64) and not change.any()


def test_saved_and_loaded_in_the_shipped_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MarkCorrector(CorrectorConfig.from_preset("tiny")).eval()
    loaded = MarkCorrector.from_pretrained(model.save_pretrained(tmp_path / "cor"))
    assert (tmp_path / "cor" / "model.safetensors").stat().st_mode & 0o777 == 0o644
    x = (torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64))
    with torch.inference_mode():
        assert torch.allclose(model(*x), loaded(*x), atol=5e-2)  # fp16 storage
    with pytest.raises(ModelNotAvailableError, match="no corrector weights"):
        MarkCorrector.from_pretrained(tmp_path / "missing")


def _heads(mask: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The segmenter's heads reading a white mark of ``alpha`` over ``mask``."""
    return np.where(mask, alpha, 0.0).astype(np.float32), np.ones((*mask.shape, 3), np.float32)


def test_it_changes_the_mask_only_and_drops_changes_inside_its_dead_zone_keeping_the_rest_whole(
    photo: np.ndarray,
) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[20:50, 30:90] = True
    heads = _heads(mask, 0.5)  # a strong mark read there: the heads bear any change out
    out = correct(_constant(DEAD_ZONE * 0.9), photo, photo.copy(), mask, closer=None, heads=heads)
    assert np.array_equal(out, photo)  # under the dead zone: nothing moves
    out = correct(_constant(DEAD_ZONE + 6 / 255), photo, photo.copy(), mask, closer=None, heads=heads)
    moved = out.astype(int) - photo.astype(int)
    assert np.array_equal(out[~mask], photo[~mask])
    inside = moved[mask][photo[mask].max(-1) < 240]  # not clipped at white
    assert inside.size and np.all(np.abs(inside - 10) <= 1)  # 4 + 6 levels: not shrunk by the dead zone


def _faint_mark() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth photo, a box mask and the photo with a faint light mark (+12 levels) over the box."""
    yy, xx = np.mgrid[0:64, 0:96]
    clean = np.stack([100 + yy, 120 + xx // 2, 90 + (xx + yy) // 4], -1).astype(np.uint8)
    mask = np.zeros(clean.shape[:2], bool)
    mask[20:44, 30:70] = True
    marked = clean.copy()
    marked[mask] += 12
    return clean, mask, marked


def test_a_change_is_kept_where_it_brings_the_photo_closer_to_its_surroundings() -> None:
    clean, mask, left = _faint_mark()  # ``left``: what ``restore`` made of the clean photo, marked
    mended = correct(_constant(-12 / 255), clean, left.copy(), mask)
    assert np.abs(mended.astype(int) - clean.astype(int)).max() <= 1
    worse = correct(_constant(12 / 255), clean, left.copy(), mask)
    assert np.array_equal(worse, left)  # it would move the pixels further from their surroundings
    only = np.zeros_like(mask)
    only[20:44, 30:50] = True
    half = correct(_constant(-12 / 255), clean, left.copy(), mask, where=only)
    assert np.array_equal(half[mask & ~only], left[mask & ~only]) and not np.array_equal(
        half[only], left[only]
    )


def test_what_restore_left_changes_only_where_the_heads_see_that_much_mark() -> None:
    clean, mask, marked = _faint_mark()  # a faint mark that ``restore`` left as it came
    mend = _constant(-12 / 255)
    for heads in (None, _heads(mask, 0.0), _heads(mask, 0.005)):  # none, no mark, too faint a one
        assert np.array_equal(correct(mend, marked, marked.copy(), mask, heads=heads), marked)
    mended = correct(mend, marked, marked.copy(), mask, heads=_heads(mask, 0.05))
    assert np.abs(mended.astype(int) - clean.astype(int)).max() <= 1
    restored = marked.copy()
    restored[mask] -= 4  # what ``restore`` changed is the corrector's to mend, heads or not
    mended = correct(mend, marked, restored, mask)
    assert np.abs(mended[mask].astype(int) - clean[mask].astype(int) + 4).max() <= 1


def test_restore_ends_with_the_corrector(photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[10:40, 10:60] = True
    alpha, color = _heads(mask, 0.5)
    request = InpaintRequest(image=photo, mask=mask, alpha=alpha, color=color)
    plain = RestoreInpainter().inpaint(request)
    mended = RestoreInpainter(corrector=_constant(DEAD_ZONE + 10 / 255)).inpaint(request)
    assert np.array_equal(mended[~mask], photo[~mask])
    assert (mended[mask].astype(int) - plain[mask].astype(int)).mean() > 5


def test_the_service_loads_the_corrector_unless_told_not_to(
    tmp_path: Path, tiny_segmenter_dir: Path, tiny_inpaint_dir: Path
) -> None:
    assert Settings().corrector == SHIPPED_CORRECTOR and Settings(corrector="none").corrector is None
    folder = MarkCorrector(CorrectorConfig.from_preset("tiny")).save_pretrained(tmp_path / "cor")
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="restore", corrector=folder)
    restore = remover.inpainters["restore"]
    assert isinstance(restore, RestoreInpainter) and restore.corrector is not None
    with pytest.raises(ModelNotAvailableError):
        build_remover(segmenter=tiny_segmenter_dir, inpainter="restore", corrector=tmp_path / "missing")
    # It learned restore's OpenCV fill: over a diffusion fill it is not used.
    remover = build_remover(
        segmenter=tiny_segmenter_dir,
        inpainter="restore",
        corrector=folder,
        diffusion_model=str(tiny_inpaint_dir),
    )
    assert remover.inpainters["restore"].corrector is None  # type: ignore[attr-defined]


def _tiny_set(root: Path, n: int = 4) -> Path:
    from training.synth import AssetPool, write_dataset

    return write_dataset(root, n, seed=5, size=(64, 96), pool=AssetPool.builtin())


def test_training_pairs_are_restore_output_under_drawn_masks(
    tmp_path: Path, tiny_segmenter_dir: Path
) -> None:
    src = _tiny_set(tmp_path / "set")
    out = tmp_path / "pairs"
    model = {"segmenter": tiny_segmenter_dir, "decomposer": "none", "device": "cpu"}
    assert write_corrections(src, out, draw=MaskDraw(p_grown=1.0, grow_px=(3, 3), p_clean=0.0), **model) == 4
    read = lambda sub, name, flag=cv2.IMREAD_UNCHANGED: cv2.imread(str(sub / name), flag)  # noqa: E731
    for name in ("00000.png", "00001.png"):
        truth = read(src / "mask", name) > 0
        given = read(out / "mask", name) > 0
        assert given.sum() > truth.sum() and given[truth].all()  # grown as a brush grows it
        restored, photo = read(out / "restored", name), read(out / "input", name)
        assert np.array_equal(restored[~given], photo[~given])  # restore's own guarantee
    assert write_corrections(src, out, **model) == 0  # a rerun skips what exists
    clean = write_corrections(src, tmp_path / "clean", draw=MaskDraw(p_clean=1.0), **model)
    assert clean == 4
    for name in ("00000.png", "00003.png"):  # the clean photo under another photo's mark
        assert np.array_equal(read(tmp_path / "clean" / "input", name), read(src / "clean", name))


def test_the_psnr_loss_is_minus_the_crops_mean_psnr_and_weighs_a_good_crop_more() -> None:
    clean = torch.zeros(2, 3, 8, 8)
    restored = clean.clone()
    restored[0] += 0.01  # 40 dB
    restored[1] += 0.1  # 20 dB
    restored.requires_grad_(True)
    loss = crop_psnr_loss(restored, clean)
    psnr = [10 * np.log10(1.0 / (e**2 + PSNR_FLOOR)) for e in (0.01, 0.1)]
    assert loss.item() == pytest.approx(-np.mean(psnr), abs=1e-3)
    loss.backward()
    assert restored.grad is not None
    per_level = restored.grad.flatten(1).mean(1) / torch.tensor([0.01, 0.1])
    assert per_level[0] > 50 * per_level[1]  # as eval's mean PSNR weighs them, unlike L1


@pytest.mark.parametrize("loss", ["l1", "psnr"])
def test_the_module_trains_on_the_pairs_and_its_checkpoint_exports(
    tmp_path: Path, tiny_segmenter_dir: Path, loss: str
) -> None:
    src = _tiny_set(tmp_path / "set", 6)
    pairs = tmp_path / "pairs"
    write_corrections(src, pairs, segmenter=tiny_segmenter_dir, decomposer="none", device="cpu")
    data = CorrectionsDataModule(
        dirs=[str(pairs)], crop_size=32, batch_size=2, num_workers=0, val_fraction=0.5
    )
    module = CorrectorModule(preset="tiny", init_decomposer=None, lr=1e-2, loss=loss)  # type: ignore[arg-type]
    trainer = L.Trainer(
        max_steps=3, accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(module, datamodule=data)
    assert module.model.net.segmentation_head[0].weight.abs().sum() > 0  # it learned something
    assert {"train/loss", "val/restored", "val/corrected", "val/neg_psnr"} <= set(trainer.callback_metrics)
    out = export_checkpoint(next(tmp_path.rglob("*.ckpt")), tmp_path / "exported")
    assert MarkCorrector.from_pretrained(out).config == module.model.config
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["mask"].shape == (2, 1, 32, 32)
