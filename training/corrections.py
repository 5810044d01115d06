"""Training pairs for the corrector (``markless corrections``): what ``restore`` makes of a set's photos.

The corrector (``models.corrector``) learns to mend ``restore``'s own output, so its training data
is that output, made once (restoration is a CPU pipeline of fits and fills, seconds a photo) and
read many times (``CorrectionsDataModule``). For each photo of a ``markless synth`` set, the mask handed to ``restore`` is drawn
as users and the segmenter hand it: the exact mark, or the mark grown by a few pixels as a brush
grows it; and on a share of the photos, the clean photo under another photo's mark grown the same
way, so that "there is nothing here, leave it" is learned too. The photo is restored the product's
way (``Remover.remove`` with the mask given, the segmenter's heads as its second opinion), and
``input/ mask/ restored/ clean/`` are written with the set's file names. A rerun skips what exists.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from pipeline.errors import InvalidParameterError
from pipeline.masks import dilate
from training.assets.manifest import split_of
from training.synth.writer import read_png, write_png

LAYOUT = ("input", "mask", "restored", "clean")


@dataclass(frozen=True)
class MaskDraw:
    """How the mask handed to ``restore`` is drawn for each photo."""

    p_grown: float = 0.6  # the exact mark grown by ``grow_px``, as a brush grows it
    grow_px: tuple[int, int] = (2, 8)
    p_clean: float = 0.15  # the clean photo under another photo's (grown) mark: nothing to mend

    def __post_init__(self) -> None:
        if not (0.0 <= self.p_grown <= 1.0 and 0.0 <= self.p_clean <= 1.0):
            raise InvalidParameterError("p_grown and p_clean are probabilities")
        if not 0 <= self.grow_px[0] <= self.grow_px[1]:
            raise InvalidParameterError(
                f"grow_px must be (low, high) with 0 <= low <= high, got {self.grow_px}"
            )

    def draw(
        self,
        rng: np.random.Generator,
        marked: np.ndarray,
        clean: np.ndarray,
        truth: np.ndarray,
        other: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The photo handed to ``restore`` and its mask (bool)."""
        photo, mark = (clean, other) if rng.random() < self.p_clean else (marked, truth)
        grow = int(rng.integers(self.grow_px[0], self.grow_px[1] + 1)) if rng.random() < self.p_grown else 0
        return photo, dilate(mark.astype(np.uint8), grow).astype(bool)


def _work(job: tuple[str, str, list[str], int, int, int, dict[str, object], dict[str, object]]) -> int:
    """Restore the photos ``names[part::parts]`` (one process: one thread, its own models)."""
    from pipeline.factory import build_remover

    src_s, out_s, names, part, parts, seed, draw_kw, model_kw = job
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    src, out = Path(src_s), Path(out_s)
    draw = MaskDraw(**draw_kw)  # type: ignore[arg-type]
    remover = build_remover(
        extra_inpainters=("restore",), inpainter="restore", **{"corrector": None, **model_kw}
    )
    done = 0
    for i in range(part, len(names), parts):
        name = names[i]
        if (out / "restored" / name).is_file():
            continue
        rng = np.random.default_rng([seed, i])
        truth = read_png(src / "mask" / name, grey=True) > 127
        other = read_png(src / "mask" / names[(i + 1) % len(names)], grey=True) > 127
        if other.shape != truth.shape:
            other = cv2.resize(other.astype(np.uint8), truth.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        clean = read_png(src / "clean" / name)
        photo, mask = draw.draw(rng, read_png(src / "input" / name), clean, truth, other)
        restored = remover.remove(photo, mask, inpainter="restore", seed=0).image if mask.any() else photo
        write_png(out / "input" / name, photo)
        write_png(out / "mask" / name, mask.astype(np.uint8) * 255)
        write_png(out / "clean" / name, clean)
        write_png(out / "restored" / name, restored)  # last: its presence marks the sample done
        done += 1
    return done


def write_corrections(
    src: str | Path,
    out: str | Path,
    *,
    draw: MaskDraw | None = None,
    seed: int = 0,
    workers: int = 1,
    limit: int | None = None,
    **model: object,
) -> int:
    """Restore every photo of the set ``src`` (``input/ mask/ clean/``) into ``out``; ``model``: the
    ``build_remover`` settings (segmenter, decomposer, device; the corrector is off unless named: its
    training pairs are ``restore``'s own output). Returns how many were written."""
    src, out = Path(src), Path(out)
    if not (src / "input").is_dir() or not (src / "mask").is_dir() or not (src / "clean").is_dir():
        raise InvalidParameterError(f"{src} is not a set laid out as input/ mask/ clean/ (`markless synth`)")
    names = sorted(p.name for p in (src / "input").glob("*.png"))[:limit]
    if not names:
        raise InvalidParameterError(f"no PNG photos in {src / 'input'}")
    draw = draw or MaskDraw()
    for sub in LAYOUT:
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / "corrections.json").write_text(
        json.dumps(
            {"source": str(src), "seed": seed, "draw": asdict(draw), "model": model}, indent=2, default=str
        )
    )
    jobs = [(str(src), str(out), names, k, workers, seed, asdict(draw), model) for k in range(workers)]
    if workers == 1:
        return _work(jobs[0])
    with mp.get_context("spawn").Pool(workers) as pool:
        return sum(pool.map(_work, jobs))


def _tensor(a: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 (or HxW bool) → CxHxW float32 in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.permute(2, 0, 1).float().div_(255.0) if a.ndim == 3 else t.float()[None]


class CorrectionsDataset(Dataset[dict[str, torch.Tensor]]):
    """The samples of folders written by ``write_corrections``: ``image``, ``restored``, ``clean``
    (3xHxW) and ``mask`` (1xHxW), in [0, 1]. With ``crop`` (h, w), a crop around a random pixel of
    the mask (the corrector acts there only), flipped at random; without, the whole photo padded
    (reflected) to a multiple of 32, its padding outside the mask."""

    def __init__(self, samples: list[tuple[Path, str]], crop: tuple[int, int] | None) -> None:
        self.samples = samples
        self.crop = crop

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        root, name = self.samples[k]
        image, restored, clean = (read_png(root / sub / name) for sub in ("input", "restored", "clean"))
        mask = read_png(root / "mask" / name, grey=True) > 127
        arrays = [image, restored, clean, mask]
        if self.crop is not None:
            # Fresh crops at each visit, from torch's generator (seeded per run and per loader worker).
            arrays = self._cropped(arrays, np.random.default_rng(int(torch.randint(2**31, ()))))
        image_t, restored_t, clean_t, mask_t = (_tensor(a) for a in arrays)
        if self.crop is None:
            h, w = mask.shape
            pad = (0, (-w) % 32, 0, (-h) % 32)
            image_t, restored_t, clean_t = (
                F.pad(t[None], pad, mode="reflect")[0] for t in (image_t, restored_t, clean_t)
            )
            mask_t = F.pad(mask_t, pad)
        return {"image": image_t, "restored": restored_t, "clean": clean_t, "mask": mask_t}

    def _cropped(self, arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        ch, cw = self.crop  # type: ignore[misc]
        mask = arrays[-1]
        h, w = mask.shape
        if h < ch or w < cw:  # a photo smaller than the crop is padded (reflected; mask: nothing)
            grow = ((0, max(ch - h, 0)), (0, max(cw - w, 0)))
            arrays = [
                np.pad(a, grow + ((0, 0),) * (a.ndim - 2), mode="constant" if a.ndim == 2 else "reflect")
                for a in arrays
            ]
            mask, (h, w) = arrays[-1], arrays[-1].shape
        ys, xs = np.nonzero(mask)
        if len(ys):
            i = int(rng.integers(len(ys)))
            cy, cx = (
                ys[i] + int(rng.integers(-ch // 4, ch // 4 + 1)),
                xs[i] + int(rng.integers(-cw // 4, cw // 4 + 1)),
            )
        else:
            cy, cx = h // 2, w // 2
        y0, x0 = int(np.clip(cy - ch // 2, 0, h - ch)), int(np.clip(cx - cw // 2, 0, w - cw))
        out = [a[y0 : y0 + ch, x0 : x0 + cw] for a in arrays]
        if rng.random() < 0.5:
            out = [a[:, ::-1] for a in out]
        return out


class CorrectionsDataModule(L.LightningDataModule):
    """Batches of the corrector's training pairs from folders written by ``markless corrections``.

    ``dirs``: those folders (a sample counts once its ``restored/`` file exists); a share
    ``val_fraction`` is held out by a hash of the file name (``split_of``, the assets' rule), at
    most ``val_samples`` of them, validated whole.
    Training crops are ``crop_size`` around the mask, fresh at each visit."""

    def __init__(
        self,
        dirs: list[str],
        crop_size: int = 192,
        batch_size: int = 8,
        num_workers: int = 2,
        val_fraction: float = 0.05,
        val_samples: int = 64,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if crop_size < 32 or crop_size % 32 or batch_size < 1 or num_workers < 0 or not 0 < val_fraction < 1:
            raise InvalidParameterError(
                "crop_size must be a multiple of 32, batch_size >= 1, num_workers >= 0 and 0 < val_fraction < 1"
            )
        self.train_set: CorrectionsDataset | None = None
        self.val_set: CorrectionsDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        samples = [(Path(d), p.name) for d in hp.dirs for p in sorted((Path(d) / "restored").glob("*.png"))]
        if not samples:
            raise InvalidParameterError(
                f"no training pairs in {hp.dirs} (write them with `markless corrections`)"
            )
        held = [split_of(f"corrections:{name}", hp.val_fraction) == "val" for _, name in samples]
        train = [s for s, h in zip(samples, held, strict=True) if not h]
        val = [s for s, h in zip(samples, held, strict=True) if h][: hp.val_samples]
        self.train_set = CorrectionsDataset(train, (hp.crop_size, hp.crop_size))
        self.val_set = CorrectionsDataset(val or train[:1], None)

    def _loader(self, ds: CorrectionsDataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            ds,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None
        return self._loader(self.train_set, self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("validate")
        assert self.val_set is not None
        return self._loader(self.val_set, 1, shuffle=False)  # whole photos, of any size


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="markless corrections",
        description="Restore a synthetic set's photos with drawn masks: training pairs for the corrector.",
    )
    p.add_argument("src", help="a set written by `markless synth` (input/ mask/ clean/)")
    p.add_argument("-o", "--out", required=True, help="output folder (input/ mask/ restored/ clean/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes, one thread each")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--p-grown", type=float, default=MaskDraw.p_grown)
    p.add_argument("--grow-px", type=int, nargs=2, default=list(MaskDraw.grow_px), metavar=("LOW", "HIGH"))
    p.add_argument("--p-clean", type=float, default=MaskDraw.p_clean)
    p.add_argument("--segmenter", default=None, help="segmenter folder (default: the shipped one)")
    p.add_argument("--decomposer", default=None, help="decomposer folder (default: the shipped one; 'none')")
    args = p.parse_args(argv)
    draw = MaskDraw(p_grown=args.p_grown, grow_px=tuple(args.grow_px), p_clean=args.p_clean)
    model = {"device": "cpu"}
    model.update({k: v for k, v in (("segmenter", args.segmenter), ("decomposer", args.decomposer)) if v})
    n = write_corrections(
        args.src, args.out, draw=draw, seed=args.seed, workers=args.workers, limit=args.limit, **model
    )
    print(f"{n} samples written to {args.out}")
    return 0
