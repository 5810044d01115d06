"""Writing synthetic evaluation sets to disk (``markless synth``) and contact sheets for eyeballing."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.errors import InvalidParameterError
from training.assets.manifest import MANIFEST_NAME, default_assets_dir, photos_in_dirs
from training.synth.config import SynthConfig
from training.synth.generator import SynthSample, WatermarkSynth
from training.synth.pool import AssetPool

log = logging.getLogger(__name__)
LAYOUT = ("input", "mask", "clean", "alpha", "color")


def read_png(path: Path, grey: bool = False) -> np.ndarray:
    """A set's image file as written by ``write_png``: RGB (or grey) uint8; ``OSError`` when unreadable."""
    arr = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if arr is None:
        raise OSError(f"could not read {path}")
    return arr if grey else np.ascontiguousarray(arr[..., ::-1])


def write_png(path: Path, rgb_or_grey: np.ndarray) -> None:
    """An RGB (or grey) array as a PNG file; raises ``OSError`` when it cannot be written."""
    arr = rgb_or_grey[..., ::-1] if rgb_or_grey.ndim == 3 else rgb_or_grey
    if not cv2.imwrite(str(path), np.ascontiguousarray(arr)):
        raise OSError(f"could not write {path}")


def default_pool(split: str) -> AssetPool:
    """The cached assets of ``split`` if ``markless assets`` ran, else the built-in tiny pool (with a warning)."""
    root = default_assets_dir()
    if (root / MANIFEST_NAME).is_file():
        return AssetPool.from_manifest(root, split)
    log.warning("no asset cache at %s: using built-in procedural assets (run `markless assets`)", root)
    return AssetPool.builtin()


def write_dataset(
    out_dir: str | Path,
    n: int,
    seed: int,
    *,
    split: str = "val",
    size: tuple[int, int] | None = (512, 512),
    pool: AssetPool | None = None,
    config: SynthConfig | dict[str, Any] | None = None,
) -> Path:
    """Write ``n`` samples as ``input/ mask/ clean/ alpha/ color/`` PNGs with identical file names.

    ``mask`` is 8-bit 0/255, ``alpha`` 8-bit (alpha·255), ``color`` RGB. Sample ``i`` uses
    ``default_rng([seed, i])``, so a set is reproducible and extending ``n`` keeps earlier files.
    ``size=None`` keeps each background's own size (photos up to 1280 px on the long side).
    ``meta.jsonl`` records what was drawn; ``dataset.json`` the seed, split and config.
    """
    if n < 1:
        raise InvalidParameterError(f"n must be >= 1, got {n}")
    if size is not None and (len(size) != 2 or min(size) < 16):
        raise InvalidParameterError(f"size must be (h, w) with both >= 16, got {size}")
    out = Path(out_dir)
    pool = pool if pool is not None else default_pool(split)
    synth = WatermarkSynth(pool, config)
    for sub in LAYOUT:
        (out / sub).mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(n - 1)))
    with (out / "meta.jsonl").open("w", encoding="utf-8") as meta_file:
        for i in range(n):
            rng = np.random.default_rng([seed, i])
            sample = _sample_any_size(synth, rng, size)
            name = f"{i:0{width}d}.png"
            write_png(out / "input" / name, sample.image)
            write_png(out / "mask" / name, sample.mask.astype(np.uint8) * 255)
            write_png(out / "clean" / name, sample.clean)
            write_png(out / "alpha" / name, np.clip(sample.alpha * 255 + 0.5, 0, 255).astype(np.uint8))
            write_png(out / "color" / name, np.clip(sample.color * 255 + 0.5, 0, 255).astype(np.uint8))
            meta_file.write(json.dumps({"file": name, **sample.meta}, ensure_ascii=False, default=str) + "\n")
    info = {
        "n": n,
        "seed": seed,
        "split": split,
        "size": list(size) if size else None,
        "synth": synth.cfg.to_dict(),
    }
    (out / "dataset.json").write_text(json.dumps(info, indent=2, default=list))
    return out


def _sample_any_size(
    synth: WatermarkSynth, rng: np.random.Generator, size: tuple[int, int] | None
) -> SynthSample:
    if size is not None:
        return synth.sample(rng, size)
    pool = synth.pool
    if pool.backgrounds and rng.random() >= synth.cfg.p_procedural_background:
        clean = pool.background(int(rng.integers(len(pool.backgrounds))))
        return synth.generate(clean, rng)
    return synth.sample(rng, (512, 512))


def contact_sheet(
    samples: Sequence[SynthSample], path: str | Path, *, cols: int = 4, tile: int = 256
) -> Path:
    """Grid of ``input | mask`` pairs, to look at what the generator makes."""
    if not samples:
        raise InvalidParameterError("contact_sheet needs at least one sample")
    rows = (len(samples) + cols - 1) // cols
    sheet = np.full((rows * (tile + 4), cols * (2 * tile + 8), 3), 40, np.uint8)
    for k, s in enumerate(samples):
        r, c = divmod(k, cols)
        img = cv2.resize(s.image, (tile, tile), interpolation=cv2.INTER_AREA)
        m = cv2.resize(s.mask.astype(np.uint8) * 255, (tile, tile), interpolation=cv2.INTER_NEAREST)
        y, x = r * (tile + 4), c * (2 * tile + 8)
        sheet[y : y + tile, x : x + tile] = img
        sheet[y : y + tile, x + tile + 2 : x + 2 * tile + 2] = m[..., None]
    path = Path(path)
    write_png(path, sheet)
    return path


def _pool_for(assets: Path | None, split: str, photos: Sequence[Path]) -> AssetPool | None:
    """The asset cache's ``split`` plus the photo folders; photos alone take the built-in marks when
    no cache exists (a restoration set needs real backgrounds, not the downloaded marks)."""
    if assets is not None:
        return AssetPool.from_manifest(assets, split, photos)
    if not photos:
        return None
    if (default_assets_dir() / MANIFEST_NAME).is_file():
        return AssetPool.from_manifest(default_assets_dir(), split, photos)
    return AssetPool.builtin(photos_in_dirs(photos, split))


def _load_config(paths: Sequence[Path]) -> dict[str, Any]:
    """Generator overrides from YAML files, later ones over earlier ones (e.g. a restoration set:
    normal blend, translucent logos + text; then only platform marks on top of it)."""
    import yaml

    merged: dict[str, Any] = {}
    for path in paths:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise InvalidParameterError(f"{path}: synth config must be a YAML mapping")
        merged.update(data)
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    """``markless synth --n N --seed S -o DIR [--split val|train] [--size H W | --full-size] [--assets DIR] [--config YAML]...``."""
    import argparse
    import sys

    from pipeline.errors import MarklessError

    parser = argparse.ArgumentParser(
        prog="markless synth", description="Write a synthetic watermark evaluation set."
    )
    parser.add_argument(
        "-o", "--out", type=Path, required=True, help="output folder (input/ mask/ clean/ alpha/ color/)"
    )
    parser.add_argument("--n", type=int, default=200, help="number of samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("val", "train"), default="val", help="which assets to draw from")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=(512, 512))
    parser.add_argument(
        "--full-size", action="store_true", help="keep each photo's own size instead of --size"
    )
    parser.add_argument(
        "--assets", type=Path, default=None, help="asset cache (default $MARKLESS_ASSETS or ~/.cache)"
    )
    parser.add_argument(
        "--photos",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of clean real photos to add to the backgrounds (its --split share; repeatable)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        help="YAML mapping of generator overrides (SynthConfig fields; repeatable, later ones win)",
    )
    args = parser.parse_args(argv)
    try:
        config = _load_config(args.config) if args.config else None
        pool = _pool_for(args.assets, args.split, args.photos)
        out = write_dataset(
            args.out,
            args.n,
            args.seed,
            split=args.split,
            size=None if args.full_size else tuple(args.size),
            pool=pool,
            config=config,
        )
    except MarklessError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"wrote {args.n} samples to {out}")
    return 0
