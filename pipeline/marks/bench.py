"""Measure mark profiles on synthetic groups over real photos: PSNR vs clean and CPU time by N.

Three kinds of group, as in issue 13: a centred mark on same-size photos, a corner mark on photos
of different sizes, a mark tiled at 35 % opacity. Photos come from a folder (by default
``/work/shared/photos``), held out by a hash of the file name (the training split's rule), so the
numbers are on photos the segmenter never trained on. Learning gets the group's N marked photos
plus one photo without the mark (as a real folder may hold); removal is scored on each marked
photo, and the unmarked one must be reported missing and come back untouched. ``--seed`` picks the
groups: develop on one seed, report on another. Run:
``python -m pipeline.marks.bench --seed 7 -o marks-bench.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import MarklessError
from pipeline.marks import learn_profile, remove_with_profile, synth

KINDS = ("centred", "corner", "tiled")
MARKS = {
    "centred": {"text": "(c) stockfoto", "color": (255, 255, 255), "accent": (255, 200, 0), "opacity": 0.5},
    "corner": {"text": "@portfolio", "color": (250, 250, 250), "accent": (220, 30, 60), "opacity": 0.6},
    "tiled": {"text": "PREVIEW", "color": (255, 255, 255), "accent": (30, 30, 30), "opacity": 0.35},
}


def held_out_photos(root: Path, fraction: float = 0.2) -> list[Path]:
    """Photos whose name hashes into the validation share (same rule as training's split)."""
    from training.assets.manifest import stable_fraction  # the train extra: a source checkout

    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [p for p in files if stable_fraction(f"photo:{p.stem}") < fraction]


def _read(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _centre_crop(img: np.ndarray, h: int, w: int) -> np.ndarray:
    scale = max(h / img.shape[0], w / img.shape[1], 1.0)
    if scale > 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top : top + h, left : left + w]


def make_group(kind: str, files: list[Path]) -> synth.Group:
    """Clean and marked photos of one kind of group."""
    spec = MARKS[kind]
    if kind == "tiled":
        mark = synth.make_mark(160, 50, **spec)  # type: ignore[arg-type]
        clean = [_centre_crop(_read(f), 320, 400) for f in files]
        marked = [synth.tile(c, mark, (90, 190), (20, 15)) for c in clean]
    elif kind == "centred":
        mark = synth.make_mark(300, 100, **spec)  # type: ignore[arg-type]
        clean = [_centre_crop(_read(f), 320, 420) for f in files]
        marked = [
            synth.blend(c, mark, *synth.corner_position(c.shape, mark.shape, "center", 0)) for c in clean
        ]
    else:
        mark = synth.make_mark(180, 60, **spec)  # type: ignore[arg-type]
        clean = [_read(f) for f in files]
        marked = [synth.blend(c, mark, *synth.corner_position(c.shape, mark.shape, "br", 12)) for c in clean]
    return synth.Group(clean, marked, mark)


def pick_group(files: list[Path], kind: str, n: int, seed: int) -> tuple[synth.Group, np.ndarray]:
    """The (kind, n, seed) group and one more photo without the mark (same size where the group's are)."""
    rng = np.random.default_rng([seed, KINDS.index(kind), n])
    picked = rng.choice(len(files), size=n + 1, replace=False)
    group = make_group(kind, [files[i] for i in picked[:n]])
    extra = make_group(kind, [files[picked[n]]]).clean[0]
    if kind != "corner":
        extra = _centre_crop(extra, *group.clean[0].shape[:2])
    return group, extra


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-10))


def run(root: Path, sizes: list[int], kinds: list[str], seed: int = 0) -> list[dict[str, object]]:
    files = held_out_photos(root)
    rows: list[dict[str, object]] = []
    for kind in kinds:
        for n in sizes:
            group, extra = pick_group(files, kind, n, seed)
            t0 = time.process_time()
            try:
                profile = learn_profile([*group.marked, extra])
            except MarklessError as e:  # a failed group is a result too, not a crash
                rows.append({"kind": kind, "n": n, "error": e.message})
                print(json.dumps(rows[-1]), flush=True)
                continue
            learn_cpu = time.process_time() - t0
            t0 = time.process_time()
            scores, inputs, found = [], [], 0
            for clean, marked in zip(group.clean, group.marked, strict=True):
                restored, _, report = remove_with_profile(marked, profile)
                found += report.found
                scores.append(psnr(restored, clean))
                inputs.append(psnr(marked, clean))
            remove_cpu = (time.process_time() - t0) / n
            untouched = bool(np.array_equal(remove_with_profile(extra, profile)[0], extra))
            row = {
                "kind": kind,
                "n": n,
                "psnr_min": round(min(scores), 2),
                "psnr_mean": round(float(np.mean(scores)), 2),
                "input_psnr_mean": round(float(np.mean(inputs)), 2),
                "worse_than_input": int(sum(s < i - 0.01 for s, i in zip(scores, inputs, strict=True))),
                "found": found,
                "learn_cpu_s": round(learn_cpu, 2),
                "remove_cpu_s_per_photo": round(remove_cpu, 2),
                "layout": profile.layout,
                "anchor": profile.anchor,
                "quality": round(profile.quality, 3),
                "missing": profile.missing,
                "unmarked_reported": profile.missing == [n],
                "unmarked_untouched": untouched,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("/work/shared/photos"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 10, 30])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--seed", type=int, default=7, help="which groups (develop on another seed)")
    parser.add_argument("-o", "--output", type=Path, default=Path("marks-bench.json"))
    args = parser.parse_args(argv)
    rows = run(args.photos, args.sizes, args.kinds, args.seed)
    args.output.write_text(json.dumps({"results": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
