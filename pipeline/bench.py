"""``markless bench``: per-stage latency of the real flow, written as JSON.

Medians over several runs after a warm-up, per image size and restoration mode. The input is a
real photo (scikit-image's astronaut) with a translucent text mark, encoded as JPEG so decode is
measured too; the full flow (the segmenter's mask) and the restoration alone on the mark's own
mask (``given_mask``: the latency per masked megapixel whatever the segmenter finds). These
machines are noisy: compare medians and ratios, not single runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from pipeline import io
from pipeline.remover import Remover


def _photo(size: int) -> np.ndarray:
    """A real photo (scikit-image's astronaut), size×size."""
    from skimage import data

    return cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_CUBIC)


def bench_mark(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A size×size real photo with a white, half-transparent text watermark, and the mark's mask."""
    photo = _photo(size)
    layer = np.zeros_like(photo)
    scale = size / 512
    for i, text in enumerate(["(c) markless", "PREVIEW"]):
        org = (int(40 * scale), int((200 + 160 * i) * scale))
        cv2.putText(
            layer, text, org, cv2.FONT_HERSHEY_DUPLEX, 2.2 * scale, (255, 255, 255), max(1, int(5 * scale))
        )
    mark = layer.max(axis=2) > 0
    alpha = mark[..., None] * 0.5
    return (photo * (1 - alpha) + layer * alpha).astype(np.uint8), mark


def bench_tiled(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``bench_mark``'s photo under a tiled stamp instead (a small word on a lattice, α 0.35), and its
    mask: the repeat estimate's sparse solve (``pipeline.marks.estimate``) is timed too."""
    photo = _photo(size)
    layer = np.zeros(photo.shape[:2], np.uint8)
    step, scale = max(size // 5, 48), size / 512
    for row, y in enumerate(range(step // 2, size, step)):
        for x in range((row % 2) * step // 2 - step // 2, size, step):
            cv2.putText(
                layer, "stock", (x, y), cv2.FONT_HERSHEY_DUPLEX, 0.9 * scale, 255, max(1, int(2 * scale))
            )
    mark = layer > 0
    alpha = mark[..., None] * 0.35
    return (photo * (1 - alpha) + 255 * alpha).astype(np.uint8), mark


def _jpeg(image: np.ndarray) -> bytes:
    return io.encode(image, "jpeg", quality=92)


def bench_image(size: int) -> bytes:
    """``bench_mark``'s photo as a JPEG, so decoding is measured too."""
    return _jpeg(bench_mark(size)[0])


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def run_bench(remover: Remover, sizes: list[int], runs: int, modes: list[str]) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        marked, mark = bench_mark(size)
        data = _jpeg(marked)
        rgb = io.decode(data).rgb  # the given-mask runs time the restoration only
        given_mp = float(mark.mean()) * size * size / 1e6
        tiled, tiled_mark = bench_tiled(size)
        tiled_mp = float(tiled_mark.mean()) * size * size / 1e6
        for mode in modes:
            samples: dict[str, list[float]] = {}
            coverage = 0.0
            for i in range(runs + 1):  # the first run is a warm-up
                t0 = time.perf_counter()
                decoded = io.decode(data)
                t1 = time.perf_counter()
                result = remover.remove(decoded.rgb, inpainter=mode, seed=0)
                t2 = time.perf_counter()
                io.encode(result.image, "png")
                t3 = time.perf_counter()
                if i == 0:
                    continue
                stages = {"decode": t1 - t0, **result.timings, "encode": t3 - t2, "total": t3 - t0}
                stages["remove"] = t2 - t1
                for k, v in stages.items():
                    samples.setdefault(k, []).append(v)
                coverage = result.coverage
            median = {k: _median_ms(v) for k, v in samples.items()}
            masked_mp = coverage * size * size / 1e6
            # The restoration alone on the mark's own mask (a user's brush or the API's ``mask``):
            # its cost per masked megapixel, whatever the segmenter finds on this photo.
            given = [
                remover.remove(rgb, mark, inpainter=mode, seed=0).timings["inpaint"] for _ in range(runs + 1)
            ][1:]
            # A tiled stamp on its own mask: the copies' joint estimate is a stage of its own.
            tiled_runs = [
                remover.remove(tiled, tiled_mark, inpainter=mode, seed=0).timings["inpaint"]
                for _ in range(runs + 1)
            ][1:]
            results.append(
                {
                    "width": size,
                    "height": size,
                    "inpainter": mode,
                    "mask_coverage": round(coverage, 4),
                    "median_ms": median,
                    # restorations scale with the masked area, not the frame: compare them per megapixel of it
                    "inpaint_ms_per_masked_mp": round(median["inpaint"] / masked_mp, 1)
                    if masked_mp
                    else None,
                    "given_mask": {
                        "mask_coverage": round(float(mark.mean()), 4),
                        "inpaint_ms": _median_ms(given),
                        "inpaint_ms_per_masked_mp": round(_median_ms(given) / given_mp, 1),
                    },
                    "given_tiled_mask": {
                        "mask_coverage": round(float(tiled_mark.mean()), 4),
                        "inpaint_ms": _median_ms(tiled_runs),
                        "inpaint_ms_per_masked_mp": round(_median_ms(tiled_runs) / tiled_mp, 1),
                    },
                    "runs": runs,
                }
            )
            print(
                f"{size}x{size} {mode:9s} "
                + " ".join(f"{k}={v}" for k, v in results[-1]["median_ms"].items())
            )
    return results


def environment(remover: Remover) -> dict[str, Any]:
    device = remover.segmenter.device if remover.segmenter is not None else torch.device("cpu")
    info: dict[str, Any] = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": {},
    }
    for pkg in (
        "torch",
        "segmentation-models-pytorch",
        "diffusers",
        "opencv-contrib-python-headless",
        "numpy",
    ):
        try:
            info["versions"][pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info["versions"][pkg] = None
    return info


def main(args: argparse.Namespace, remover: Remover, segmenter: str) -> int:
    """Time every loaded mode of ``remover`` (built by the CLI from ``Settings``) into ``args.output``."""
    modes = sorted(remover.inpainters)
    report = {
        "environment": environment(remover),
        "segmenter": segmenter,
        "diffusion_model": args.diffusion_model,
        "results": run_bench(remover, args.sizes, args.runs, modes),
    }
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0
