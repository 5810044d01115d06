"""``markless assets``: install (when allowed) and collect the generator's assets, then write the manifest."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from training.assets import Logger
from training.assets.fonts import collect_fonts
from training.assets.install import install_debs, install_simple_icons
from training.assets.logos import collect_logos
from training.assets.manifest import AssetManifest, default_assets_dir
from training.assets.photos import collect_photos


def collect_assets(
    cache_dir: Path | None = None,
    *,
    install: bool = True,
    workers: int | None = None,
    photo_dirs: Sequence[str | Path] | None = None,
    log: Logger = print,
) -> AssetManifest:
    """Install (when allowed) and collect all assets into ``cache_dir``; write and verify the manifest.

    ``photo_dirs``: folders of real photos to record (used in place, never copied); ``None`` keeps
    the folders an earlier run recorded, a list replaces them. Safe to re-run: finished photos and
    logo PNGs are reused. Raises ``ModelNotAvailableError`` when too little was found to train on
    (e.g. none of the packages is installed), ``InvalidParameterError`` for a photo folder that
    does not exist.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_assets_dir()
    if photo_dirs is None:
        try:
            dirs = AssetManifest.load(root).photo_dirs
        except ModelNotAvailableError:
            dirs = []
    else:
        dirs = [Path(d).expanduser().resolve() for d in photo_dirs]
    for d in dirs:
        if not d.is_dir():
            raise InvalidParameterError(f"photo folder {d} does not exist")
    root.mkdir(parents=True, exist_ok=True)
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    manifest = AssetManifest(root, photo_dirs=list(dirs))
    missing = install_debs(install, log)
    if missing:
        manifest.notes.append(f"missing Debian packages: {', '.join(missing)}")
    icons = install_simple_icons(root, install, log)
    if icons is None:
        manifest.notes.append("simple-icons not installed")
    manifest.photos = collect_photos(root, log)
    manifest.logos = collect_logos(root, icons, workers, log)
    manifest.fonts = collect_fonts(root, log)
    manifest.save()
    manifest.verify()
    return manifest


def summary(manifest: AssetManifest) -> str:
    """Human-readable counts per kind, split and script."""
    lines = [f"assets in {manifest.root}"]
    for key, by_split in manifest.counts().items():
        lines.append(f"  {key:<18} train {by_split['train']:>6}   val {by_split['val']:>5}")
    lines.extend(f"  photo folder: {d}" for d in manifest.photo_dirs)
    lines.extend(f"  note: {n}" for n in manifest.notes)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``markless assets [--dir DIR] [--photos DIR ...] [--no-install] [--workers N]``."""
    parser = argparse.ArgumentParser(
        prog="markless assets",
        description="Install and collect photos, logos and fonts for training; write the manifest.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="cache folder (default $MARKLESS_ASSETS or ~/.cache/markless/assets)",
    )
    parser.add_argument(
        "--photos",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="a folder of clean real photos to record in the manifest, used in place and split by a hash "
        "of each relative path (repeatable; replaces the folders recorded before, which are kept when "
        "the option is not given)",
    )
    parser.add_argument(
        "--no-install", action="store_true", help="only collect what is installed; print install commands"
    )
    parser.add_argument("--workers", type=int, default=None, help="processes for SVG rasterisation")
    args = parser.parse_args(argv)
    try:
        manifest = collect_assets(
            args.dir, install=not args.no_install, workers=args.workers, photo_dirs=args.photos
        )
    except (ModelNotAvailableError, InvalidParameterError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(summary(manifest))
    return 0
