"""``markless bench``: per-stage latency of the real flow, written as JSON.

Medians over several runs after a warm-up, per image size and restoration mode. The input is a
real photo (scikit-image's astronaut) with a translucent text mark, encoded as JPEG so decode is
measured too. These machines are noisy: compare medians and ratios, not single runs.
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


def bench_image(size: int) -> bytes:
    """A size×size JPEG of a real photo with a white, half-transparent text watermark."""
    from skimage import data

    photo = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_CUBIC)
    layer = np.zeros_like(photo)
    scale = size / 512
    for i, text in enumerate(["(c) markless", "PREVIEW"]):
        org = (int(40 * scale), int((200 + 160 * i) * scale))
        cv2.putText(
            layer, text, org, cv2.FONT_HERSHEY_DUPLEX, 2.2 * scale, (255, 255, 255), max(1, int(5 * scale))
        )
    alpha = (layer[..., :1] > 0) * 0.5
    marked = (photo * (1 - alpha) + layer * alpha).astype(np.uint8)
    return io.encode(marked, "jpeg", quality=92)


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def run_bench(remover: Remover, sizes: list[int], runs: int, modes: list[str]) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        data = bench_image(size)
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
            results.append(
                {
                    "width": size,
                    "height": size,
                    "inpainter": mode,
                    "mask_coverage": round(coverage, 4),
                    "median_ms": {k: _median_ms(v) for k, v in samples.items()},
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
    for pkg in ("torch", "segmentation-models-pytorch", "diffusers", "opencv-python-headless", "numpy"):
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
