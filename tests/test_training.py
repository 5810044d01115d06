"""Lightning module on tiny synthetic data, export → load round trip, and the eval command."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from models import WatermarkSegmenter
from pipeline.factory import build_remover
from training.data import WatermarkDataModule
from training.evaluate import OPACITY_PARTS, compare, evaluate, made_worse, opacity_parts, psnr
from training.export import export_module
from training.metrics import mask_metrics
from training.module import SegmenterModule, soft_dice_loss


def _tiny_module() -> SegmenterModule:
    return SegmenterModule(preset="tiny", input_size=64, imagenet_init=False, lr=1e-3)


def _tiny_data() -> WatermarkDataModule:
    return WatermarkDataModule(
        assets_dir=None, crop_size=64, batch_size=2, num_workers=0, train_samples_per_epoch=4, val_samples=2
    )


def test_losses_behave() -> None:
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:6, 2:6] = 1
    assert soft_dice_loss(target * 40 - 20, target) < 0.01  # confident and right
    assert soft_dice_loss(20 - target * 40, target) > 0.9  # confident and wrong
    assert soft_dice_loss(torch.full_like(target, -20.0), torch.zeros_like(target)) < 0.01  # clean, empty
    assert soft_dice_loss(torch.full_like(target, 20.0), torch.zeros_like(target)) > 0.9  # clean, false alarm
    metrics = mask_metrics()
    metrics.update(torch.sigmoid(target * 40 - 20), target.long())
    assert {k: float(v) for k, v in metrics.compute().items()} == {
        "iou": 1,
        "f1": 1,
        "precision": 1,
        "recall": 1,
    }
    wrong = target.clone()
    wrong[0, 0, 0, :4] = 1  # 4 false positives, counted over the whole set: tp 32, fp 4, fn 0
    metrics.reset()
    metrics.update(wrong, target.long())
    got = {k: float(v) for k, v in metrics.compute().items()}
    assert got == pytest.approx({"iou": 32 / 36, "f1": 64 / 68, "precision": 32 / 36, "recall": 1.0})


def test_fast_dev_run_trains_and_exports(tmp_path: Path) -> None:
    module = _tiny_module()
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer = L.Trainer(
        fast_dev_run=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(module, datamodule=_tiny_data())
    after = module.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    assert {"train/loss", "val/f1", "val/iou"} <= set(trainer.callback_metrics)

    out = export_module(module, tmp_path / "seg", metrics={"val/f1": 0.5})
    assert json.loads((out / "metrics.json").read_text())["val/f1"] == 0.5
    loaded = WatermarkSegmenter.from_pretrained(out)
    x = torch.rand(1, 3, 64, 64)
    module.model.eval()
    with torch.inference_mode():
        ref, got = module.model(x), loaded(x)
    for head in ("mask", "alpha", "color"):  # fp16 storage: equal to within half precision
        assert torch.allclose(ref[head], got[head], atol=5e-2), head


def test_train_cli_parses_the_shipped_configs(tmp_path: Path) -> None:
    """The YAML configs stay valid for LightningCLI (parsed, not run): the segmenter's with each
    override file, the decomposer's and the corrector's."""
    from training.cli import main

    configs = Path(__file__).resolve().parents[1] / "training" / "configs"
    for pair in (
        ("default.yaml", "cpu.yaml"),
        ("default.yaml", "ddp.yaml"),
        ("decomposer.yaml", "cpu.yaml"),
        ("corrector.yaml",),
    ):
        with pytest.raises(SystemExit) as exc:
            main(["fit", *(a for name in pair for a in ("--config", str(configs / name))), "--print_config"])
        assert exc.value.code == 0


def test_eval_reports_every_mode(tmp_path: Path, tiny_segmenter_dir: Path) -> None:
    from training.synth import AssetPool, write_dataset

    root = write_dataset(tmp_path / "set", 3, seed=1, size=(96, 96), pool=AssetPool.builtin())
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")
    metrics = evaluate(
        remover,
        root,
        modes=["opencv", "unblend", "restore"],
        report_dir=tmp_path / "report",
        mask_kinds=("exact", "rough", "predicted"),
    )
    assert metrics["images"] == 3
    assert set(metrics["restoration"]) == {"input", "opencv", "unblend", "restore"}
    assert set(metrics["restoration_by_mask"]) == {"exact", "rough", "predicted"}
    exact = metrics["restoration_by_mask"]["exact"]
    assert exact["opencv"]["psnr_mask"] > exact["input"]["psnr_mask"]  # the true mask is restored
    assert 0.0 <= metrics["mask"]["f1"] <= 1.0
    assert (tmp_path / "report" / "worst.png").stat().st_size > 0


def test_eval_keeps_each_photo_and_compares_two_runs(tmp_path: Path, tiny_segmenter_dir: Path) -> None:
    import copy

    from training.synth import AssetPool, write_dataset

    root = write_dataset(tmp_path / "set", 3, seed=6, size=(96, 96), pool=AssetPool.builtin())  # all marked
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")
    after = evaluate(remover, root, modes=["opencv"], mask_kinds=("exact", "rough"))
    rows = after["per_image"]
    assert [r["name"] for r in rows] == sorted(p.name for p in (root / "input").iterdir())
    exact = [r["psnr"]["exact"]["opencv"] for r in rows]
    assert np.mean(exact) == pytest.approx(after["restoration_by_mask"]["exact"]["opencv"]["psnr"])
    assert compare(after, after)["exact"]["opencv"] == {
        "images": 3, "up": 0, "down": 0, "newly_worse": [], "no_longer_worse": [], "mean_delta": 0.0
    }  # fmt: skip
    # Before, the first photo's exact restoration was 1 dB better than it is now and not worse than
    # its input; the second was 3 dB worse than its input and is now where it is.
    before = copy.deepcopy(after)
    first, second = before["per_image"][0], before["per_image"][1]
    first["psnr"]["exact"]["opencv"] = max(first["input"], exact[0] + 1.0)
    second["psnr"]["exact"]["opencv"] = second["input"] - 3.0
    table = compare(before, after)["exact"]["opencv"]
    assert table["down"] == 1 and table["up"] == int(exact[1] > second["input"] - 3.0 + 0.1)
    assert table["newly_worse"] == ([rows[0]["name"]] if made_worse(exact[0], rows[0]["input"]) else [])
    assert table["no_longer_worse"] == (
        [rows[1]["name"]] if not made_worse(exact[1], rows[1]["input"]) else []
    )
    expected = (
        exact[0] - first["psnr"]["exact"]["opencv"] + exact[1] - second["psnr"]["exact"]["opencv"]
    ) / 3
    assert table["mean_delta"] == pytest.approx(expected)
    assert compare(before, after)["rough"]["opencv"]["mean_delta"] == 0.0
    assert made_worse(30.0, 30.6) and not made_worse(30.2, 30.6)  # more than 0.5 dB below the input


def test_opacity_parts_split_a_mark_by_its_true_opacity() -> None:
    alpha = np.zeros((40, 40), np.float32)
    alpha[10:30, 10:30] = 0.3  # a translucent plate
    alpha[17:23, 17:23] = 1.0  # with an opaque core
    parts = opacity_parts(alpha)
    assert OPACITY_PARTS[parts[2, 2]] == "no mark" and OPACITY_PARTS[parts[9, 20]] == "no mark"
    assert OPACITY_PARTS[parts[10, 20]] == "edge"  # the plate's outline, inside it
    assert OPACITY_PARTS[parts[16, 20]] == "edge"  # plate beside the core
    assert OPACITY_PARTS[parts[13, 13]] == "translucent"
    assert OPACITY_PARTS[parts[20, 20]] == "opaque" and OPACITY_PARTS[parts[17, 17]] == "opaque"


def test_eval_splits_the_error_by_the_marks_true_opacity(tmp_path: Path, tiny_segmenter_dir: Path) -> None:
    import shutil

    from training.synth import AssetPool, write_dataset

    root = write_dataset(tmp_path / "set", 3, seed=6, size=(96, 96), pool=AssetPool.builtin())  # all marked
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv")
    metrics = evaluate(remover, root, modes=["opencv"], mask_kinds=("exact", "rough"))
    split = metrics["error_by_opacity"]
    assert set(split) == {"exact", "rough"}
    pixels, rows = 3 * 96 * 96, metrics["per_image"]
    for kind, table in split.items():
        assert sum(table["pixel_share"].values()) == pytest.approx(1.0)
        for mode in ("input", "opencv"):
            assert sum(table[mode]["error_share"].values()) == pytest.approx(1.0)
            # The parts add up to the photos' whole error, as their PSNRs give it (RGB summed).
            total = sum(table[mode]["mse"][p] * table["pixel_share"][p] * pixels for p in OPACITY_PARTS)
            scores = [r["input"] if mode == "input" else r["psnr"][kind][mode] for r in rows]
            expected = sum(3 * 96 * 96 * 10 ** (-s / 10) for s in scores)
            assert total == pytest.approx(expected, rel=1e-6)
    # Given the exact mask, the restoration leaves every pixel without mark as it came (the input's
    # error there is the set's degradations: JPEG, rescaling); a grown mask lets it touch them.
    exact = split["exact"]
    assert exact["opencv"]["mse"]["no mark"] == pytest.approx(exact["input"]["mse"]["no mark"])
    shutil.rmtree(root / "alpha")  # a set without its marks' opacity: no split, the rest as before
    assert "error_by_opacity" not in evaluate(remover, root, modes=["opencv"], mask_kinds=("exact",))


def test_psnr() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255
    assert psnr(a, a) == 100.0
    assert psnr(a, b) == pytest.approx(10 * np.log10(48), rel=1e-6)
    assert np.isnan(psnr(a, b, np.zeros((4, 4), bool)))


def test_presence_head_learns_an_image_label_and_is_gated(tmp_path: Path) -> None:
    module = SegmenterModule(
        preset="tiny", input_size=64, imagenet_init=False, presence=True, ohem_weight=1.0
    )
    x = torch.rand(2, 3, 64, 64)
    out = module(x)
    assert out["presence"].shape == (2, 1) and out["mask"].shape == (2, 1, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 10:30, 10:30] = 1  # one marked crop, one clean
    batch = {"image": x, "mask": mask, "alpha": mask * 0.5, "color": torch.rand(2, 3, 64, 64)}
    losses = module._losses(out, batch)
    assert {"presence", "hard_neg", "bce", "dice"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())


def test_hard_negatives_are_the_worst_background_pixels() -> None:
    from training.module import hard_negative_bce, has_mark

    target = torch.zeros(1, 1, 10, 10)
    target[..., :2, :] = 1  # mark pixels never count as negatives
    logits = torch.full((1, 1, 10, 10), -10.0)
    logits[..., :2, :] = 10.0
    calm = hard_negative_bce(logits, target, fraction=0.01)
    logits[0, 0, 9, 9] = 5.0  # one confident false positive in the background
    assert hard_negative_bce(logits, target, fraction=0.01) > 100 * calm
    assert has_mark(target).tolist() == [1.0] and has_mark(torch.zeros(1, 1, 8, 8)).tolist() == [0.0]


def test_continue_from_weights_without_presence_head(tmp_path: Path) -> None:
    old = WatermarkSegmenter.from_pretrained(
        SegmenterModule(
            preset="tiny", input_size=64, imagenet_init=False, presence=False
        ).model.save_pretrained(tmp_path / "old")
    )
    module = SegmenterModule(
        preset="tiny", input_size=64, imagenet_init=False, presence=True, init_weights=str(tmp_path / "old")
    )
    key = "net.encoder.model.conv_stem.weight"
    assert torch.allclose(module.model.state_dict()[key], old.state_dict()[key])
    other = SegmenterModule(preset="tiny", input_size=64, imagenet_init=False, heads=("mask",))
    other.model.save_pretrained(tmp_path / "mask-only")
    with pytest.raises(ValueError, match="does not match"):
        SegmenterModule(
            preset="tiny", input_size=64, imagenet_init=False, init_weights=str(tmp_path / "mask-only")
        )


def test_frozen_encoder_trains_only_the_decoder() -> None:
    module = SegmenterModule(preset="tiny", input_size=64, imagenet_init=False, freeze_encoder=True)
    enc = {k: v.clone() for k, v in module.model.net.encoder.state_dict().items()}
    dec = {k: v.clone() for k, v in module.model.net.decoder.state_dict().items()}
    trainer = L.Trainer(
        fast_dev_run=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(module, datamodule=_tiny_data())
    assert all(torch.equal(enc[k], v) for k, v in module.model.net.encoder.state_dict().items())
    assert any(not torch.equal(dec[k], v) for k, v in module.model.net.decoder.state_dict().items())
    assert {"val/f1_gated", "val/false_alarm_rate", "val/false_alarm_rate_ungated"} <= set(
        trainer.callback_metrics
    )


def test_eval_reports_harm_on_clean_photos(tmp_path: Path, tiny_segmenter_dir: Path) -> None:
    from pipeline import io
    from training.synth import AssetPool, write_dataset

    root = write_dataset(tmp_path / "set", 2, seed=1, size=(96, 96), pool=AssetPool.builtin())
    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(3):
        photo = np.random.default_rng(i).integers(0, 255, (80, 100, 3), dtype=np.uint8)
        (clean / f"{i}.png").write_bytes(io.encode(photo, "png"))
    remover = build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv", threshold=0.01, dilate=0)
    metrics = evaluate(remover, root, modes=["opencv"], clean_dirs=[clean])
    harm = metrics["harm"]
    assert metrics["images"] == 5 and harm["clean_images"] == 3
    # A random tiny model at threshold 0.01 masks everything: every clean photo is a false alarm.
    assert harm["false_alarm_rate"] == 1.0
    assert 0.0 < harm["clean_psnr_vs_input"]["opencv"] <= 100.0
    assert 0.0 <= harm["made_worse_rate"]["opencv"] <= 1.0
    only_clean = evaluate(
        build_remover(segmenter=tiny_segmenter_dir, inpainter="opencv", threshold=0.99),
        None,
        modes=["opencv"],
        clean_dirs=[clean],
    )
    assert only_clean["harm"]["false_alarm_rate"] == 0.0
    assert only_clean["harm"]["clean_psnr_vs_input"]["opencv"] == 100.0  # untouched


def test_eval_reports_no_mark_operating_points(tmp_path: Path, no_mark_segmenter_dir: Path) -> None:
    from pipeline import io

    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(2):
        photo = np.random.default_rng(i).integers(0, 255, (64, 80, 3), dtype=np.uint8)
        (clean / f"{i}.png").write_bytes(io.encode(photo, "png"))
    remover = build_remover(segmenter=no_mark_segmenter_dir, inpainter="opencv")
    harm = evaluate(remover, None, modes=["opencv"], clean_dirs=[clean])["harm"]
    assert harm["false_alarm_rate"] == 0.0  # every pixel scores "mark"; the decision overrules them
    points = {p["presence_threshold"]: p for p in harm["operating_points"]}
    assert sorted(points) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert all(p["false_alarm_rate"] == 0.0 for p in points.values())  # presence ~0.007 everywhere
    sweep = evaluate(remover, None, modes=["opencv"], clean_dirs=[clean])["mask_operating_points"]
    assert [p["threshold"] for p in sweep] == [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert all(p["false_alarm_rate"] == 0.0 for p in sweep)  # gated at every mask threshold
    ungated = build_remover(segmenter=no_mark_segmenter_dir, inpainter="opencv", presence_threshold=0.0)
    sweep = evaluate(ungated, None, modes=["opencv"], clean_dirs=[clean])["mask_operating_points"]
    assert all(p["false_alarm_rate"] == 1.0 for p in sweep)  # every pixel scores "mark" without the gate
