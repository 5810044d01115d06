"""WatermarkDataModule: batch shapes, reproducibility, fresh epochs, fixed validation, workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from training.data import EpochSampler, SynthWatermarkDataset, WatermarkDataModule
from training.synth import AssetPool, SynthConfig, WatermarkSynth
from training.synth.background import procedural


@pytest.fixture(scope="module")
def pool() -> AssetPool:
    return AssetPool.builtin(backgrounds=[procedural(np.random.default_rng(3), (128, 160))])


def _dm(pool: AssetPool, **kw: object) -> WatermarkDataModule:
    args: dict[str, object] = dict(
        crop_size=64, batch_size=3, num_workers=0, train_samples_per_epoch=6, val_samples=4, seed=1, pool=pool
    )
    args.update(kw)
    return WatermarkDataModule(**args)  # type: ignore[arg-type]


def test_batches_have_the_documented_shapes_and_ranges(pool: AssetPool) -> None:
    dm = _dm(pool)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    shapes = {"image": 3, "clean": 3, "color": 3, "alpha": 1, "mask": 1}
    assert set(batch) == set(shapes)
    for key, channels in shapes.items():
        t = batch[key]
        assert t.dtype == torch.float32 and t.shape == (3, channels, 64, 64), key
        assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0, key
    assert set(torch.unique(batch["mask"]).tolist()) <= {0.0, 1.0}
    cfg = dm.synth_config
    mask, alpha = batch["mask"] > 0.5, batch["alpha"]
    assert not (mask & (alpha <= cfg.mask_alpha_threshold)).any()  # no mask without opacity
    assert mask[alpha >= cfg.mask_solid_alpha].all()  # solid parts of a mark are always mask
    assert len(dm.train_dataloader()) == 2  # 6 samples / batch 3
    val = next(iter(dm.val_dataloader()))
    assert val["image"].shape == (3, 3, 64, 64)


def test_reproducible_and_fresh_each_epoch(pool: AssetPool) -> None:
    a, b = _dm(pool), _dm(pool)
    a.setup("fit")
    b.setup("fit")
    la, lb = a.train_dataloader(), b.train_dataloader()
    first_a = next(iter(la))
    assert torch.equal(first_a["image"], next(iter(lb))["image"])
    assert isinstance(la.sampler, EpochSampler)
    la.sampler.set_epoch(1)
    assert not torch.equal(first_a["image"], next(iter(la))["image"])
    la.sampler.set_epoch(0)
    assert torch.equal(first_a["image"], next(iter(la))["image"])
    c = _dm(pool, seed=2)
    c.setup("fit")
    assert not torch.equal(first_a["image"], next(iter(c.train_dataloader()))["image"])


def test_validation_is_a_fixed_set_distinct_from_training(pool: AssetPool) -> None:
    dm = _dm(pool)
    dm.setup("fit")
    v1 = next(iter(dm.val_dataloader()))
    v2 = next(iter(dm.val_dataloader()))
    assert torch.equal(v1["image"], v2["image"]) and torch.equal(v1["alpha"], v2["alpha"])
    t = next(iter(dm.train_dataloader()))
    assert not torch.equal(v1["image"], t["image"])
    # A continuation stage with fresh training data (new seed) is scored on the same set ...
    other = _dm(pool, seed=5)
    other.setup("fit")
    assert torch.equal(v1["image"], next(iter(other.val_dataloader()))["image"])
    assert not torch.equal(t["image"], next(iter(other.train_dataloader()))["image"])
    # ... unless the validation seed itself changes.
    moved = _dm(pool, val_seed=3)
    moved.setup("fit")
    assert not torch.equal(v1["image"], next(iter(moved.val_dataloader()))["image"])


def test_workers_match_single_process_without_repeats(pool: AssetPool) -> None:
    single = _dm(pool, num_workers=0, train_samples_per_epoch=8, batch_size=2)
    multi = _dm(pool, num_workers=2, train_samples_per_epoch=8, batch_size=2)
    single.setup("fit")
    multi.setup("fit")
    xs = torch.cat([b["image"] for b in single.train_dataloader()])
    ys = torch.cat([b["image"] for b in multi.train_dataloader()])
    assert torch.equal(xs, ys)
    flat = xs.flatten(1)
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            assert not torch.equal(flat[i], flat[j]), f"samples {i} and {j} repeat"


def test_dataset_indices_past_length_give_new_samples(pool: AssetPool) -> None:
    ds = SynthWatermarkDataset(WatermarkSynth(pool), 4, (64, 64), seed=0, stream=0)
    assert len(ds) == 4
    assert not torch.equal(ds[0]["image"], ds[4]["image"])
    assert torch.equal(ds[5]["image"], ds[5]["image"])


def test_builtin_assets_when_no_cache(tmp_path) -> None:
    dm = WatermarkDataModule(
        assets_dir=None, crop_size=64, batch_size=2, num_workers=0, train_samples_per_epoch=2, val_samples=2
    )
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["image"].shape == (2, 3, 64, 64)
    missing = WatermarkDataModule(assets_dir=str(tmp_path / "none"), crop_size=64, num_workers=0)
    with pytest.raises(ModelNotAvailableError):
        missing.setup("fit")


def test_synth_options_from_yaml_mapping(pool: AssetPool) -> None:
    dm = _dm(pool, synth={"p_no_mark": 1.0, "opacity_range": [0.1, 0.5]})
    assert isinstance(dm.synth_config, SynthConfig) and dm.synth_config.opacity_range == (0.1, 0.5)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert float(batch["mask"].sum()) == 0.0
    with pytest.raises(InvalidParameterError):
        _dm(pool, synth={"no_such_option": 1})
    with pytest.raises(InvalidParameterError):
        _dm(pool, crop_size=100)
    with pytest.raises(InvalidParameterError):
        _dm(pool, batch_size=0)
