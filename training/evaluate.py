"""``markless eval``: mask and restoration metrics on a folder set (``input/ mask/ clean/``).

Every restoration mode is run on the same images in one pass, next to the do-nothing baseline
(the watermarked input itself), so the numbers compare like with like. Writes metrics JSON and a
PNG sheet of the worst cases (input | predicted mask | true mask | result).

Harm is reported next to quality, because it is what users see first: on images without a mark
(empty true masks, or folders of clean photos given with ``clean_dirs``) the false-alarm rate (share
whose mask covers more than 0.1 % of the pixels) and how far each mode's output moved from the
input (PSNR); on marked images the share that a mode left worse than its input by more than 0.5 dB.

Each photo's own figures are kept (``per_image``), so two runs (before and after a change) can be
compared photo by photo with ``compare``: a mean can rise while single photos are made worse.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from skimage.metrics import structural_similarity

from pipeline import io
from pipeline.errors import InvalidParameterError
from pipeline.masks import MaskRefiner
from pipeline.masks import dilate as grow_mask
from pipeline.remover import Remover
from training.metrics import mask_metrics

BASELINE = "input"
MASK_KINDS = ("exact", "rough", "predicted")
ROUGH_PX = 6  # a brush stroke or generous dilation: the true mask grown by this many pixels
FALSE_ALARM_COVERAGE = 0.001
"""A clean photo counts as a false alarm when its mask covers more than this share of its pixels."""

WORSE_DB = 0.5
"""A marked photo counts as made worse when a mode's PSNR is this far below the input's."""
CHANGED_DB = 0.1
"""``compare`` counts a photo as changed when its PSNR moved by more than this."""
OPACITY_PARTS = ("no mark", "edge", "translucent", "opaque")
"""Where ``error_by_opacity`` splits a set's error, by the true opacity (``alpha/``, as ``markless synth``
writes it): no mark (α 0: what a restoration must leave as it is), the mark's edge (its anti-aliased
outline, where α jumps), its translucent inside (recoverable by inversion) and its near-opaque part
(only a fill can restore it)."""
OPAQUE_ALPHA = 0.75
"""True opacity from which a mark's pixel counts as opaque (the restoration fills from here)."""
EDGE_JUMP = 0.1
"""A mark pixel is on its edge where the true opacity in its 3×3 neighbourhood spans more than this."""
MASK_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
"""Mask thresholds swept for ``mask_operating_points`` (the product's mask, gated and dilated)."""


def made_worse(score: float, before: float) -> bool:
    """Whether a restoration's PSNR ``score`` leaves a marked photo worse than its input's ``before``."""
    return score < before - WORSE_DB


def masks_photo(mask: np.ndarray) -> bool:
    """Whether a mask touches the photo enough to count (a false alarm on a clean one)."""
    return bool(mask.mean() > FALSE_ALARM_COVERAGE)


def restoration_masks(
    kinds: Sequence[str], truth: np.ndarray, predicted: np.ndarray, rough_px: int = ROUGH_PX
) -> dict[str, np.ndarray]:
    """The masks each restoration is handed: the true one, the true one grown (rough), the predicted one."""
    unknown = set(kinds) - set(MASK_KINDS)
    if unknown:
        raise InvalidParameterError(f"unknown mask kind(s) {sorted(unknown)}; choose from {MASK_KINDS}")
    out = {}
    for kind in kinds:
        if kind == "exact":
            out[kind] = truth
        elif kind == "rough":
            out[kind] = grow_mask(truth.astype(np.uint8), rough_px).astype(bool)
        else:
            out[kind] = predicted
    return out


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB over all pixels, or only where ``where`` is True (inf when identical, capped at 100)."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        if not where.any():
            return math.nan
        diff = diff[where]
    mse = float(np.mean(diff**2))
    return 100.0 if mse == 0 else min(100.0, 10 * math.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=-1, data_range=255))


def opacity_parts(alpha: np.ndarray) -> np.ndarray:
    """Each pixel's index into ``OPACITY_PARTS`` from the true opacity (HxW float, 0..1)."""
    kernel = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(alpha, kernel) - cv2.erode(alpha, kernel)
    marked = alpha >= 0.5 / 255.0  # at least one grey level of the 8-bit alpha file
    parts = np.where(marked, 2, 0).astype(np.uint8)
    parts[marked & (spread > EDGE_JUMP)] = 1
    parts[alpha >= OPAQUE_ALPHA] = 3
    return parts


def _counterpart(root: Path, folder: str, stem: str) -> Path | None:
    """The file of a set's ``folder`` (``mask``, ``clean``, ``alpha``) named as the input ``stem``."""
    return next(iter(sorted((root / folder).glob(f"{stem}.*"))), None)


def _read_alpha(root: Path, stem: str) -> np.ndarray | None:
    """The true opacity a synthetic set keeps in ``alpha/`` (8-bit grey), or None without one."""
    path = _counterpart(root, "alpha", stem)
    if path is None:
        return None
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return None if grey is None else grey.astype(np.float32) / 255.0


@dataclass
class _ErrorParts:
    """Squared error summed over the photos, per part of ``OPACITY_PARTS``: where a mode's error lies
    (a set's mean PSNR does not say whether the edges, the translucent inside or the opaque core of
    its marks cost it most), next to the input's."""

    pixels: np.ndarray = field(default_factory=lambda: np.zeros(len(OPACITY_PARTS)))
    squared: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, parts: np.ndarray, clean: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        self.pixels += np.bincount(parts.ravel(), minlength=len(OPACITY_PARTS))
        for mode, out in outputs.items():
            err = (((out.astype(np.float64) - clean) / 255.0) ** 2).sum(-1)
            total = self.squared.setdefault(mode, np.zeros(len(OPACITY_PARTS)))
            total += np.bincount(parts.ravel(), weights=err.ravel(), minlength=len(OPACITY_PARTS))

    def summary(self) -> dict[str, Any]:
        """Per mode (the input too): each part's share of the squared error, and its mean squared
        error per pixel (RGB summed, 0..1 units); the parts' shares of the photos' pixels."""
        out: dict[str, Any] = {
            "pixel_share": dict(zip(OPACITY_PARTS, (self.pixels / self.pixels.sum()).tolist(), strict=True))
        }
        for mode, sq in self.squared.items():
            out[mode] = {
                "error_share": dict(zip(OPACITY_PARTS, (sq / max(sq.sum(), 1e-12)).tolist(), strict=True)),
                "mse": dict(zip(OPACITY_PARTS, (sq / np.maximum(self.pixels, 1)).tolist(), strict=True)),
            }
        return out


@dataclass
class _ModeStats:
    psnr: list[float] = field(default_factory=list)
    psnr_mask: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        def mean(v: list[float]) -> float:
            v = [x for x in v if not math.isnan(x)]
            return float(np.mean(v)) if v else math.nan

        return {"psnr": mean(self.psnr), "psnr_mask": mean(self.psnr_mask), "ssim": mean(self.ssim)}


@dataclass
class _HarmStats:
    clean_images: int = 0
    false_alarms: int = 0
    clean_psnr: dict[str, list[float]] = field(default_factory=dict)
    marked_images: int = 0
    made_worse: dict[str, int] = field(default_factory=dict)
    decisions: list[tuple[float, bool, bool]] = field(default_factory=list)
    """(presence, masked without the decision, marked) per image: the no-mark operating points."""

    def add_clean(self, mask: np.ndarray, scores: dict[str, float]) -> None:
        """One photo without a mark: its predicted mask and each mode's PSNR against the photo itself."""
        self.clean_images += 1
        self.false_alarms += masks_photo(mask)
        for mode, score in scores.items():
            self.clean_psnr.setdefault(mode, []).append(score)

    def add_marked(self, scores: dict[str, float], before: float) -> None:
        """One marked photo: each mode's PSNR and the input's own."""
        self.marked_images += 1
        for mode, score in scores.items():
            self.made_worse[mode] = self.made_worse.get(mode, 0) + int(made_worse(score, before))

    def operating_points(self) -> list[dict[str, float]]:
        """False-alarm and detection rates if the presence threshold were each of 0.1 … 0.9."""
        clean = [(p, m) for p, m, marked in self.decisions if not marked]
        marked = [(p, m) for p, m, is_marked in self.decisions if is_marked]

        def rate(items: list[tuple[float, bool]], t: float) -> float:
            return sum(p >= t and m for p, m in items) / len(items) if items else math.nan

        return [
            {"presence_threshold": t, "false_alarm_rate": rate(clean, t), "detection_rate": rate(marked, t)}
            for t in np.round(np.arange(0.1, 1.0, 0.1), 2).tolist()
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "operating_points": self.operating_points() if self.decisions else [],
            "clean_images": self.clean_images,
            "false_alarm_rate": self.false_alarms / self.clean_images if self.clean_images else math.nan,
            "clean_psnr_vs_input": {m: float(np.mean(v)) for m, v in self.clean_psnr.items()},
            "marked_images": self.marked_images,
            "made_worse_rate": {
                m: n / self.marked_images for m, n in self.made_worse.items() if self.marked_images
            },
        }


@dataclass
class _ThresholdSweep:
    """The product's mask (presence gate, specks, dilation) at each mask threshold: pixel quality on
    marked photos and false alarms on clean ones, so the threshold is chosen with both in view."""

    counts: dict[float, Any] = field(default_factory=lambda: {t: mask_metrics() for t in MASK_THRESHOLDS})
    alarms: dict[float, int] = field(default_factory=lambda: dict.fromkeys(MASK_THRESHOLDS, 0))
    clean_images: int = 0
    marked_images: int = 0

    def add(self, refiner: MaskRefiner, prob: np.ndarray, presence: float | None, truth: np.ndarray) -> None:
        marked = bool(truth.any())
        self.clean_images += int(not marked)
        self.marked_images += int(marked)
        for t, counts in self.counts.items():
            mask = replace(refiner, threshold=t).refine(prob, presence)
            if marked:
                counts.update(torch.from_numpy(mask), torch.from_numpy(truth))
            else:
                self.alarms[t] += masks_photo(mask)

    def summary(self) -> list[dict[str, float]]:
        def pixels(counts: Any) -> dict[str, float]:
            if not self.marked_images:
                return dict.fromkeys(("iou", "f1", "precision", "recall"), math.nan)
            return {k: float(v) for k, v in counts.compute().items()}

        return [
            {
                "threshold": t,
                **pixels(counts),
                "false_alarm_rate": self.alarms[t] / self.clean_images if self.clean_images else math.nan,
            }
            for t, counts in self.counts.items()
        ]


def _clean_inputs(dirs: list[Path]) -> list[tuple[Path, None, None]]:
    """Every image under ``dirs`` as a photo without a mark (its own clean reference)."""
    return [
        (p, None, None)
        for d in dirs
        for p in sorted(Path(d).rglob("*"))
        if p.suffix.lower() in io.SUPPORTED_SUFFIXES and p.is_file()
    ]


def _pairs(root: Path) -> list[tuple[Path, Path | None, Path | None]]:
    inputs = sorted(p for p in (root / "input").iterdir() if p.suffix.lower() in io.SUPPORTED_SUFFIXES)
    out: list[tuple[Path, Path | None, Path | None]] = []
    for path in inputs:
        mask, clean = _counterpart(root, "mask", path.stem), _counterpart(root, "clean", path.stem)
        if mask is None or clean is None:
            raise FileNotFoundError(f"{path.name}: missing mask/ or clean/ counterpart in {root}")
        out.append((path, mask, clean))
    if not out:
        raise FileNotFoundError(f"no images in {root / 'input'}")
    return out


def evaluate(
    remover: Remover,
    root: str | Path | None,
    *,
    modes: list[str] | None = None,
    report_dir: str | Path | None = None,
    worst: int = 8,
    limit: int | None = None,
    clean_dirs: list[Path] | None = None,
    mask_kinds: Sequence[str] = ("predicted",),
    rough_px: int = ROUGH_PX,
) -> dict[str, Any]:
    """Run segmentation once per image and every restoration mode on every mask kind; return metrics.

    ``root``: a set laid out as ``input/ mask/ clean/`` (or ``None``); ``clean_dirs``: folders of
    photos without a mark, evaluated for harm only. ``limit`` caps each of the two.
    ``mask_kinds``: which masks restorations are handed (``MASK_KINDS``): ``restoration_by_mask``
    and ``harm_by_mask`` hold one table per kind; ``restoration`` and ``harm`` are the
    predicted-mask ones (or the first kind's). Photos without a mark only get the predicted mask
    (an exact or grown empty mask asks for nothing).
    """
    modes = modes or sorted(remover.inpainters)
    pairs = (_pairs(Path(root))[:limit] if root is not None else []) + _clean_inputs(clean_dirs or [])[:limit]
    if not pairs:
        raise FileNotFoundError("nothing to evaluate: give a dataset folder or clean photo folders")
    counts = mask_metrics()
    raw_counts = mask_metrics()
    sweep = _ThresholdSweep()
    kinds = list(dict.fromkeys(mask_kinds)) or ["predicted"]
    restoration_masks(kinds, np.zeros((1, 1), bool), np.zeros((1, 1), bool))  # validate early
    primary = "predicted" if "predicted" in kinds else kinds[0]
    harm = {k: _HarmStats() for k in kinds}
    by_kind = {k: {m: _ModeStats() for m in modes} for k in kinds}
    stats = {BASELINE: _ModeStats()}
    cases: list[tuple[float, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    per_image: list[dict[str, Any]] = []
    error_parts = {k: _ErrorParts() for k in kinds}
    for inp, mask_path, clean_path in pairs:
        image = io.read_image_file(inp).rgb
        clean = io.read_image_file(clean_path).rgb if clean_path is not None else image
        if mask_path is not None:
            truth = io.decode_mask(mask_path.read_bytes(), (image.shape[1], image.shape[0]))
        else:
            truth = np.zeros(image.shape[:2], bool)
        mask, seg = remover.segment(image)
        if seg.presence is not None:
            ungated = masks_photo(remover.refiner.refine(seg.prob))
            harm[primary].decisions.append((seg.presence, bool(ungated), bool(truth.any())))
        raw_counts.update(torch.from_numpy(seg.prob >= remover.refiner.threshold), torch.from_numpy(truth))
        counts.update(torch.from_numpy(mask), torch.from_numpy(truth))
        sweep.add(remover.refiner, seg.prob, seg.presence, truth)
        before = psnr(image, clean)
        stats[BASELINE].psnr.append(before)
        stats[BASELINE].psnr_mask.append(psnr(image, clean, truth))
        stats[BASELINE].ssim.append(ssim(image, clean))
        outputs: dict[str, dict[str, np.ndarray]] = {}
        scores: dict[str, dict[str, float]] = {}
        for kind, given in restoration_masks(kinds, truth, mask, rough_px).items():
            if not truth.any() and kind != "predicted":
                continue
            outputs[kind], scores[kind] = {}, {}
            for mode in modes:
                # The predicted kind goes the product's way: the Remover refines the prediction itself.
                mask_in = None if kind == "predicted" else given
                result = remover.remove(image, mask_in, inpainter=mode, seed=0, segmentation=seg).image
                mode_stats = by_kind[kind][mode]
                scores[kind][mode] = psnr(result, clean)
                mode_stats.psnr.append(scores[kind][mode])
                mode_stats.psnr_mask.append(psnr(result, clean, truth))
                mode_stats.ssim.append(ssim(result, clean))
                outputs[kind][mode] = result
            if truth.any():
                harm[kind].add_marked(scores[kind], before)
            else:
                harm[kind].add_clean(mask, scores[kind])  # its clean reference is the photo itself
        alpha = _read_alpha(Path(root), inp.stem) if mask_path is not None and root is not None else None
        if alpha is not None and alpha.shape == truth.shape and truth.any():
            parts = opacity_parts(alpha)
            for kind, results in outputs.items():
                error_parts[kind].add(parts, clean, {BASELINE: image, **results})
        # A set's photos are named by their file; a clean photo by its path (folders may share names).
        name = inp.name if mask_path is not None else str(inp)
        per_image.append({"name": name, "marked": bool(truth.any()), "input": before, "psnr": scores})
        last = outputs[next(reversed(outputs))] if outputs else {modes[0]: image}
        default_result = last.get(remover.default_inpainter, next(iter(last.values())))
        cases.append((psnr(default_result, clean), inp.name, image, mask, truth, default_result))
    metrics: dict[str, Any] = {
        "dataset": str(root) if root is not None else None,
        "clean_dirs": [str(d) for d in clean_dirs or []],
        "images": len(pairs),
        "threshold": remover.refiner.threshold,
        "dilate": remover.refiner.dilate,
        "mask": {k: float(v) for k, v in raw_counts.compute().items()},
        "mask_refined": {k: float(v) for k, v in counts.compute().items()},
        "mask_operating_points": sweep.summary(),
        "restoration": {
            BASELINE: stats[BASELINE].summary(),
            **{m: s.summary() for m, s in by_kind[primary].items()},
        },
        "restoration_by_mask": {
            k: {BASELINE: stats[BASELINE].summary(), **{m: s.summary() for m, s in per.items()}}
            for k, per in by_kind.items()
        },
        "rough_px": rough_px,
        "harm": harm[primary].summary(),
        "harm_by_mask": {k: h.summary() for k, h in harm.items()},
        "default_inpainter": remover.default_inpainter,
        "per_image": per_image,
    }
    if any(parts.squared for parts in error_parts.values()):  # the set keeps its marks' opacity
        metrics["error_by_opacity"] = {k: p.summary() for k, p in error_parts.items() if p.squared}
    if report_dir is not None:
        report = Path(report_dir)
        report.mkdir(parents=True, exist_ok=True)
        (report / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        cases.sort(key=lambda c: c[0])
        _write_sheet(report / "worst.png", cases[:worst])
    return metrics


def compare(before: dict[str, Any], after: dict[str, Any], changed_db: float = CHANGED_DB) -> dict[str, Any]:
    """Photo by photo, how ``after`` (a later ``evaluate`` run on the same set) differs from ``before``.

    Per mask kind and mode: the mean PSNR change over the photos both runs have, how many photos
    moved up or down by more than ``changed_db``, and which marked photos became (or stopped being)
    worse than their input by more than ``WORSE_DB``.
    """
    old = {row["name"]: row for row in before.get("per_image", [])}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for row in after.get("per_image", []):
        prev = old.get(row["name"])
        if prev is None:
            continue
        for kind, modes in row["psnr"].items():
            for mode, value in modes.items():
                was = prev["psnr"].get(kind, {}).get(mode)
                if was is None:
                    continue
                entry = table.setdefault(kind, {}).setdefault(
                    mode,
                    {"images": 0, "delta": 0.0, "up": 0, "down": 0, "newly_worse": [], "no_longer_worse": []},
                )
                entry["images"] += 1
                entry["delta"] += value - was
                entry["up"] += int(value > was + changed_db)
                entry["down"] += int(value < was - changed_db)
                if row["marked"]:
                    worse_now, worse_before = made_worse(value, row["input"]), made_worse(was, prev["input"])
                    if worse_now and not worse_before:
                        entry["newly_worse"].append(row["name"])
                    elif worse_before and not worse_now:
                        entry["no_longer_worse"].append(row["name"])
    for modes in table.values():
        for entry in modes.values():
            entry["mean_delta"] = entry.pop("delta") / entry["images"]
    return table


def _write_sheet(
    path: Path, cases: list[tuple[float, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
) -> None:
    """Rows of input | predicted mask | true mask | result, each tile 256 px high."""
    rows = []
    for score, name, image, mask, truth, result in cases:
        tiles = [
            image,
            np.repeat(mask[..., None] * 255, 3, 2),
            np.repeat(truth[..., None] * 255, 3, 2),
            result,
        ]
        h = 256
        w = max(1, round(image.shape[1] * h / image.shape[0]))
        row = np.concatenate(
            [cv2.resize(t.astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA) for t in tiles], 1
        )
        cv2.putText(row, f"{name} {score:.1f} dB", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 0, 0), 2)
        rows.append(row)
    if rows:
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
        path.write_bytes(io.encode(np.concatenate(rows, 0), "png"))
