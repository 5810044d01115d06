"""``markless`` command line: serve, remove, segment, train, eval, synth, assets, bench, download.

Subcommands import their heavy modules lazily so ``markless --help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import MarklessError

if TYPE_CHECKING:
    from pipeline.remover import Remover

log = logging.getLogger("markless")

DELEGATED = ("train", "synth", "assets")


def _image_files(inputs: Iterable[str]) -> list[Path]:
    """Expand files and folders (non-recursive, sorted) into image paths; unknown paths stay to fail loudly."""
    from pipeline.io import SUPPORTED_SUFFIXES

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            )
        else:
            files.append(path)
    return files


def _find_mask(mask_arg: str | None, image: Path) -> Path | None:
    """``--mask`` is one file for every input, or a folder holding a mask with each input's stem."""
    if mask_arg is None:
        return None
    path = Path(mask_arg)
    if not path.is_dir():
        return path
    matches = sorted(path.glob(f"{image.stem}.*"))
    if not matches:
        raise MarklessError(f"no mask named {image.stem}.* in {path}")
    return matches[0]


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    from pipeline.factory import DEFAULT_SEGMENTER

    parser.add_argument("--segmenter", default=str(DEFAULT_SEGMENTER), help="segmenter weights folder")
    parser.add_argument("--threshold", type=float, default=0.5, help="mask probability threshold")
    parser.add_argument("--dilate", type=int, default=4, help="grow the mask by this many pixels")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def _remover(args: argparse.Namespace, *, inpainter: str, segmenter: str | None) -> Remover:
    """The one place CLI options (``_add_model_options`` + diffusion model) become a ``Remover``."""
    from pipeline.factory import build_remover

    return build_remover(
        segmenter=segmenter,
        inpainter=inpainter,
        diffusion_model=getattr(args, "diffusion_model", None),
        device=args.device,
        threshold=args.threshold,
        dilate=args.dilate,
    )


def _run_files(files: list[Path], work, quiet: bool) -> int:  # type: ignore[no-untyped-def]
    """Apply ``work`` to every file; one line per failure, the rest still written, exit code 1 if any failed."""
    from tqdm import tqdm

    failures = 0
    bar = tqdm(files, unit="img", disable=quiet or not sys.stderr.isatty(), file=sys.stderr)
    for path in bar:
        try:
            work(path)
        except MarklessError as exc:
            failures += 1
            tqdm.write(f"markless: failed {path}: {exc.message}", file=sys.stderr)
        except OSError as exc:
            failures += 1
            tqdm.write(f"markless: failed {path}: {exc.strerror or exc}", file=sys.stderr)
    if failures:
        print(f"markless: {failures} of {len(files)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def cmd_remove(args: argparse.Namespace) -> int:
    from pipeline import io

    needs_segmenter = args.mask is None or args.inpainter == "unblend"
    remover = _remover(args, inpainter=args.inpainter, segmenter=args.segmenter if needs_segmenter else None)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    masks_dir = Path(args.masks_out) if args.masks_out else None
    if masks_dir:
        masks_dir.mkdir(parents=True, exist_ok=True)
    suffix = io.file_suffix(args.format)

    def work(path: Path) -> None:
        decoded = io.read_image_file(path)
        mask_path = _find_mask(args.mask, path)
        mask = None
        if mask_path is not None:
            mask = io.decode_mask(mask_path.read_bytes(), (decoded.width, decoded.height))
        result = remover.remove(decoded.rgb, mask, seed=args.seed, steps=args.steps)
        data = io.encode(
            result.image, args.format, alpha=decoded.alpha, exif=decoded.exif, icc_profile=decoded.icc_profile
        )
        (out_dir / f"{path.stem}{suffix}").write_bytes(data)
        if masks_dir:
            (masks_dir / f"{path.stem}.png").write_bytes(io.encode_mask(result.mask))

    return _run_files(_image_files(args.inputs), work, args.quiet)


def cmd_segment(args: argparse.Namespace) -> int:
    from pipeline import io

    remover = _remover(args, inpainter="opencv", segmenter=args.segmenter)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)

    def work(path: Path) -> None:
        decoded = io.read_image_file(path)
        mask, _ = remover.segment(decoded.rgb)
        (out_dir / f"{path.stem}.png").write_bytes(io.encode_mask(mask))

    return _run_files(_image_files(args.inputs), work, args.quiet)


def cmd_serve(args: argparse.Namespace) -> int:
    from app.main import serve

    serve(host=args.host, port=args.port)
    return 0


def _delegate(command: str, argv: Sequence[str]) -> int:
    """Subcommands that own their argument parsing (LightningCLI, the data tools)."""
    if command == "train":
        from training.cli import main as train_main

        train_main(list(argv))
        return 0
    if command == "synth":
        from training.synth.writer import main as synth_main

        return synth_main(list(argv))
    from training.assets import main as assets_main

    return assets_main(list(argv))


def cmd_bench(args: argparse.Namespace) -> int:
    from pipeline.bench import main as bench_main

    return bench_main(args)


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from training.evaluate import evaluate

    remover = _remover(args, inpainter="auto", segmenter=args.segmenter)
    modes = args.inpainters or sorted(remover.inpainters)
    metrics = evaluate(
        remover,
        args.dataset,
        modes=modes,
        report_dir=args.report,
        limit=args.limit,
        clean_dirs=[Path(d) for d in args.clean],
    )
    text = json.dumps(metrics, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from training.export import export_checkpoint

    print(export_checkpoint(args.checkpoint, args.output))
    return 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    import json

    from app.loadtest import run_load

    if args.image:
        image = Path(args.image).read_bytes()
    else:
        from pipeline.bench import bench_image

        image = bench_image(args.size)
    report = run_load(args.url, requests=args.requests, concurrency=args.concurrency, image=image)
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from pipeline.inpaint.diffusion import download

    print(download(args.model, cache_dir=args.cache_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="markless", description="Remove visible watermarks from photos.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("remove", help="remove watermarks from files or folders")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.add_argument("--masks-out", metavar="DIR", help="also write the masks used (8-bit PNG, 255 = removed)")
    p.add_argument(
        "--mask", metavar="FILE_OR_DIR", help="use these masks instead of segmenting (white = remove)"
    )
    p.add_argument("--inpainter", default="auto", help="auto, opencv, diffusion, unblend")
    p.add_argument(
        "--diffusion-model", default=None, help="diffusers inpainting model: hub id or local folder"
    )
    p.add_argument("--format", default="png", choices=["png", "jpeg", "webp"])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="diffusion steps")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_options(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("segment", help="write watermark masks (8-bit PNG, 255 = watermark)")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_options(p)
    p.set_defaults(func=cmd_segment)

    sub.add_parser(
        "train", help="train the segmenter (LightningCLI: fit/validate --config ...)", add_help=False
    )

    p = sub.add_parser("bench", help="per-stage latency as JSON")
    p.add_argument("-o", "--output", default="bench.json")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--segmenter", default=None, help="weights folder (default: the shipped one)")
    p.add_argument(
        "--diffusion-model", default=None, help="also time this diffusion model ('tiny' builds one)"
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("eval", help="mask + restoration metrics on a set laid out as input/ mask/ clean/")
    p.add_argument("dataset", metavar="DIR", nargs="?", default=None)
    p.add_argument(
        "--clean",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of photos without a mark: false alarms and harm (repeatable)",
    )
    p.add_argument(
        "--inpainters", nargs="+", default=None, help="restoration modes to compare (default: all loaded)"
    )
    p.add_argument("--diffusion-model", default=None)
    p.add_argument("--report", default=None, metavar="DIR", help="write metrics.json and worst.png here")
    p.add_argument("-o", "--output", default=None, help="write the metrics JSON to this file")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    _add_model_options(p)
    p.set_defaults(func=cmd_eval)

    sub.add_parser(
        "synth", help="write a synthetic evaluation set (input/ mask/ clean/ alpha/ color/)", add_help=False
    )
    sub.add_parser("assets", help="install and collect photos, logos and fonts for training", add_help=False)

    p = sub.add_parser("export", help="export a training checkpoint to a weights folder")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", default="weights/segmenter")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("loadtest", help="concurrent POSTs against a running server; latency/throughput JSON")
    p.add_argument("url", help="e.g. http://127.0.0.1:8000")
    p.add_argument("--requests", type=int, default=60)
    p.add_argument("--concurrency", type=int, default=6)
    p.add_argument("--image", default=None, help="image file to send (default: a generated JPEG)")
    p.add_argument("--size", type=int, default=1024, help="side of the generated JPEG")
    p.add_argument("-o", "--output", default=None)
    p.set_defaults(func=cmd_loadtest)

    p = sub.add_parser("download", help="fetch a diffusers inpainting model into the HF cache")
    p.add_argument("model")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(func=cmd_download)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        raise SystemExit(_delegate(argv[0], argv[1:]))
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        code = args.func(args)
    except MarklessError as exc:
        print(f"markless: {exc.message}", file=sys.stderr)
        code = 2
    except FileNotFoundError as exc:
        print(f"markless: no such file: {exc.filename or exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)
