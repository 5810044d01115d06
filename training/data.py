"""Training data: synthetic watermarked crops generated on the fly, as a LightningDataModule.

Reproducibility without shared state: item ``k`` of a stream is generated from
``numpy.random.default_rng([seed, stream, k])`` and nothing else, so any worker can produce any
item and no two workers ever repeat one. Fresh training randomness per epoch comes from the
sampler, which hands out the indices ``epoch * n ... epoch * n + n - 1`` (Lightning calls its
``set_epoch``). Validation uses a separate stream and the held-out ("val") assets, and is the same
fixed set every epoch.

For the decomposer (``models.decomposer``), each sample also carries the inputs the restoration
hands it: ``hint``, the mark's mask grown as a user's brush or a dilation grows it, and
``background``, the fill of that mask from its surroundings (``pipeline.inpaint.fit.background``,
the one the fits read).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipeline.decompose import shown_fill
from pipeline.errors import InvalidParameterError
from training.assets.manifest import photos_in_dirs
from training.synth import AssetPool, SynthConfig, SynthSample, WatermarkSynth, default_assets_dir

TRAIN_STREAM, VAL_STREAM = 0, 1


def sample_to_tensors(sample: SynthSample) -> dict[str, torch.Tensor]:
    """HWC numpy sample → CHW float32 tensors in [0, 1] (``mask`` as 0./1.)."""

    def chw(a: np.ndarray, scale: float) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))
        return t.float().mul_(scale) if scale != 1.0 else t.float()

    return {
        "image": chw(sample.image, 1 / 255.0),
        "clean": chw(sample.clean, 1 / 255.0),
        "color": chw(sample.color, 1.0),
        "alpha": torch.from_numpy(sample.alpha).float().unsqueeze(0),
        "mask": torch.from_numpy(sample.mask).float().unsqueeze(0),
    }


def decomposition_inputs(
    sample: SynthSample, rng: np.random.Generator, max_grow_px: int
) -> dict[str, torch.Tensor]:
    """The decomposer's ``hint`` (the mask grown by 0..``max_grow_px`` px, a disc) and ``background``
    (the photo filled in under the hint), as CHW tensors in [0, 1]. A sample without a mark gets an
    ellipse for a hint: a mask a user drew over a clean photo, where the decomposer must find none."""
    grow = int(rng.integers(0, max_grow_px + 1))
    hint = sample.mask.astype(np.uint8)
    if not hint.any():
        h, w = hint.shape
        centre = (int(rng.integers(w // 4, 3 * w // 4 + 1)), int(rng.integers(h // 4, 3 * h // 4 + 1)))
        axes = (int(rng.integers(w // 12, w // 4 + 1)), int(rng.integers(h // 12, h // 4 + 1)))
        cv2.ellipse(hint, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif grow:
        hint = cv2.dilate(hint, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    fill = shown_fill(sample.image, hint.astype(bool))
    return {
        "hint": torch.from_numpy(hint).float().unsqueeze(0),
        "background": torch.from_numpy(np.ascontiguousarray(fill.transpose(2, 0, 1))),
    }


class SynthWatermarkDataset(Dataset[dict[str, torch.Tensor]]):
    """``length`` synthetic samples of ``size`` (h, w); item ``k`` depends only on (seed, stream, k).

    Indices past ``length`` are valid and give new samples: that is how the epoch sampler draws
    fresh data each epoch. ``grow_px``: add the decomposer's inputs (``decomposition_inputs``), the
    mask grown by up to that many pixels; None: the segmenter's sample only.
    """

    def __init__(
        self,
        synth: WatermarkSynth,
        length: int,
        size: tuple[int, int],
        seed: int,
        stream: int,
        grow_px: int | None = None,
    ) -> None:
        if length < 1:
            raise InvalidParameterError(f"dataset length must be >= 1, got {length}")
        self.synth = synth
        self.length = int(length)
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.stream = int(stream)
        self.grow_px = grow_px

    def __len__(self) -> int:
        return self.length

    def sample(self, k: int) -> SynthSample:
        """The raw numpy sample behind item ``k``."""
        return self.synth.sample(np.random.default_rng([self.seed, self.stream, int(k)]), self.size)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        sample = self.sample(k)
        out = sample_to_tensors(sample)
        if self.grow_px is not None:  # its own generator: the sample stays what it is without it
            out.update(
                decomposition_inputs(
                    sample, np.random.default_rng([self.seed, self.stream, int(k), 1]), self.grow_px
                )
            )
        return out


class EpochSampler(Sampler[int]):
    """Yields ``epoch * n + i`` for ``i < n``: new samples each epoch, identical across runs and workers."""

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        base = self.epoch * self.n
        return iter(range(base, base + self.n))

    def __len__(self) -> int:
        return self.n


def _worker_init(_: int) -> None:
    # One OpenCV/torch thread per worker: the workers already use every core.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _size(crop_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    size = (crop_size, crop_size) if isinstance(crop_size, int) else (int(crop_size[0]), int(crop_size[1]))
    if min(size) < 32 or size[0] % 32 or size[1] % 32:
        raise InvalidParameterError(
            f"crop_size must be multiples of 32 and >= 32 (segmentation encoders), got {size}"
        )
    return size


class WatermarkDataModule(L.LightningDataModule):
    """Synthetic watermark batches: ``image``, ``mask``, ``alpha``, ``color``, ``clean`` (see module docstring).

    ``assets_dir``: the asset cache of ``markless assets`` ("default" = ``$MARKLESS_ASSETS`` or
    ``~/.cache/markless/assets``), or ``None`` for built-in procedural assets (no files needed).
    ``pool`` overrides both splits with explicit assets (tests). ``synth`` is a
    :class:`SynthConfig` or a mapping of overrides from YAML. ``worker_start`` is how loader
    workers start: the default ``forkserver`` gives them a clean process, because forking a parent
    whose OpenCV/OpenMP thread pools are mid-flight can deadlock a worker (seen under heavy load);
    ``fork`` starts faster. ``photo_dirs``: folders of clean real photos used in place as extra
    backgrounds (e.g. ``../shared/photos``), split train/val by a hash of each name. ``seed`` picks the training stream; the validation set depends only on
    ``val_seed``, so a continuation stage that draws fresh training data with a new ``seed`` is
    still scored on the same validation set as the stage before it; ``val_synth`` (default: the same as
    ``synth``) keeps it fixed too when training runs compare generator settings. ``grow_px``: batches
    also carry the decomposer's ``hint`` and ``background``, the mask grown by up to that many pixels.
    """

    def __init__(
        self,
        assets_dir: str | None = "default",
        photo_dirs: list[str] | None = None,
        crop_size: int | tuple[int, int] = 384,
        batch_size: int = 16,
        num_workers: int = 2,
        train_samples_per_epoch: int = 4000,
        val_samples: int = 256,
        seed: int = 0,
        val_seed: int = 0,
        synth: SynthConfig | dict[str, Any] | None = None,
        val_synth: SynthConfig | dict[str, Any] | None = None,
        worker_start: str = "forkserver",
        pool: AssetPool | None = None,
        grow_px: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["pool"])
        if batch_size < 1 or num_workers < 0 or train_samples_per_epoch < 1 or val_samples < 1:
            raise InvalidParameterError(
                "batch_size, train_samples_per_epoch and val_samples must be >= 1, num_workers >= 0"
            )
        if grow_px is not None and grow_px < 0:
            raise InvalidParameterError(f"grow_px must be >= 0 (or null), got {grow_px}")
        if worker_start not in ("fork", "forkserver", "spawn"):
            raise InvalidParameterError(
                f"worker_start must be fork, forkserver or spawn, got {worker_start!r}"
            )
        self.worker_start = worker_start
        self.assets_dir = assets_dir
        self.photo_dirs = list(photo_dirs or [])
        self.size = _size(crop_size)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_samples_per_epoch = train_samples_per_epoch
        self.grow_px = grow_px
        self.val_samples = val_samples
        self.seed = seed
        self.val_seed = val_seed
        self.synth_config = SynthConfig.from_any(synth)
        self.val_synth_config = self.synth_config if val_synth is None else SynthConfig.from_any(val_synth)
        self.pool = pool
        self.train_set: SynthWatermarkDataset | None = None
        self.val_set: SynthWatermarkDataset | None = None

    def _pool(self, split: str) -> AssetPool:
        if self.pool is not None:
            return self.pool
        if self.assets_dir is None:
            return AssetPool.builtin(photos_in_dirs(self.photo_dirs, split))
        root = default_assets_dir() if self.assets_dir == "default" else Path(self.assets_dir).expanduser()
        return AssetPool.from_manifest(root, split, self.photo_dirs)

    def setup(self, stage: str | None = None) -> None:
        """Build the train and val datasets (cheap: assets load lazily in each worker)."""
        if self.train_set is None and stage in (None, "fit"):
            synth = WatermarkSynth(self._pool("train"), self.synth_config)
            self.train_set = SynthWatermarkDataset(
                synth, self.train_samples_per_epoch, self.size, self.seed, TRAIN_STREAM, self.grow_px
            )
        if self.val_set is None and stage in (None, "fit", "validate", "test"):
            synth = WatermarkSynth(self._pool("val"), self.val_synth_config)
            self.val_set = SynthWatermarkDataset(
                synth, self.val_samples, self.size, self.val_seed, VAL_STREAM, self.grow_px
            )

    def _loader(self, ds: SynthWatermarkDataset, sampler: Sampler[int] | None, drop_last: bool) -> DataLoader:
        context: Any = None
        if self.num_workers > 0:
            context = mp.get_context(self.worker_start)
            if self.worker_start == "forkserver":
                # The server imports the heavy modules once; workers fork from it already warm.
                context.set_forkserver_preload(["training.data"])
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            worker_init_fn=_worker_init if self.num_workers > 0 else None,
            multiprocessing_context=context,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=drop_last,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None
        return self._loader(self.train_set, EpochSampler(len(self.train_set)), drop_last=True)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("validate")
        assert self.val_set is not None
        return self._loader(self.val_set, None, drop_last=False)
