"""Collecting logos: simple-icons and openclipart SVGs, rasterised once into ``root/logos`` PNGs."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import InvalidParameterError
from training.assets import Logger
from training.assets.manifest import VAL_FRACTION, LogoEntry, split_of
from training.synth.pool import LOGO_SIZE, rasterize_svg

MAX_CLIPART_BYTES = 400_000
"""Bigger openclipart files are detailed illustrations (and slow to rasterise), not logo-like marks."""
CLIPART_DIR = Path("/usr/share/openclipart/svg")


def _rasterize_job(job: tuple[str, str]) -> tuple[str, str | None]:
    """Worker: rasterise one SVG to PNG; returns (dest, error or None)."""
    src, dest = job
    try:
        rgba = rasterize_svg(Path(src), LOGO_SIZE)
        ys, xs = np.nonzero(rgba[..., 3] >= 128)
        if len(ys) < 16:
            return dest, "almost empty"
        solid = len(ys) / float((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
        if solid > 0.97 and rgba.shape[0] > 8 and rgba.shape[1] > 8 and rgba[..., 3].min() > 0:
            return dest, "opaque rectangle (a picture, not a mark)"
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(dest, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 6])
        return dest, None if ok else "write failed"
    except (InvalidParameterError, OSError) as exc:
        return dest, str(exc)[:200]


def collect_logos(root: Path, icons_dir: Path | None, workers: int, log: Logger) -> list[LogoEntry]:
    """Rasterise simple-icons and openclipart SVGs into ``root/logos`` (incremental: existing PNGs are kept)."""
    sources: list[tuple[Path, Path, str, str]] = []  # svg, png, source, licence
    if icons_dir is not None:
        for svg in sorted(icons_dir.glob("*.svg")):
            sources.append(
                (svg, root / "logos" / "simple-icons" / f"{svg.stem}.png", "npm:simple-icons", "CC0-1.0")
            )
    if CLIPART_DIR.is_dir():
        for svg in sorted(CLIPART_DIR.rglob("*.svg")):
            if svg.stat().st_size > MAX_CLIPART_BYTES:
                continue
            rel = svg.relative_to(CLIPART_DIR).with_suffix("")
            png = root / "logos" / "openclipart" / ("__".join(rel.parts) + ".png")
            sources.append((svg, png, "deb:openclipart-svg", "CC0-1.0 (Openclipart public domain)"))
    failed_log = root / "logos" / "failed.json"
    failed: dict[str, str] = json.loads(failed_log.read_text()) if failed_log.is_file() else {}
    todo = [(str(s), str(p)) for s, p, _, _ in sources if not p.is_file() and str(p) not in failed]
    if todo:
        log(f"rasterising {len(todo)} SVGs with {workers} worker(s) (one-off; later runs reuse the PNGs)")
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for k, (dest, err) in enumerate(ex.map(_rasterize_job, todo, chunksize=32)):
                if err is not None:
                    failed[dest] = err
                if (k + 1) % 1000 == 0:
                    log(f"  {k + 1}/{len(todo)}")
        failed_log.parent.mkdir(parents=True, exist_ok=True)
        failed_log.write_text(json.dumps(failed, indent=0))
    entries = [
        LogoEntry(
            str(png.relative_to(root)),
            split_of(f"logo:{png.stem}", VAL_FRACTION["logos"]),
            source,
            licence,
            str(svg),
        )
        for svg, png, source, licence in sources
        if png.is_file()
    ]
    if failed:
        log(f"{len(failed)} SVGs could not be used (see {failed_log})")
    return entries
