"""``markless`` command line: serve, remove, segment, bench, loadtest, download, and the training
commands (train, eval, synth, assets, export) that ``training.commands`` registers when installed.

Subcommands import their heavy modules lazily so ``markless --help`` is instant. Every command
that loads models builds ``Settings`` (so ``MARKLESS_*`` and the limits apply as in the server)
with the command line's model flags on top; request flags are derived from ``pipeline.options``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import MarklessError, ModelNotAvailableError
from pipeline.options import RemoveOptions, SegmentOptions

if TYPE_CHECKING:
    from app.settings import Settings
    from pipeline.remover import Remover

log = logging.getLogger("markless")

TRAINING_COMMANDS = ("train", "synth", "assets", "corrections", "eval", "export")
# They parse their own arguments (``markless train --help``).
DELEGATED = ("train", "synth", "assets", "corrections")


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


class MaskSource:
    """``--mask``: one file for every input, or a folder holding a mask named like each input.

    A folder is listed once and looked up by exact stem: file names are data, never patterns
    (``[x].png``'s mask is ``[x].png``, not ``x.png``), and two candidates are an error, not a guess.
    """

    def __init__(self, mask_arg: str | None) -> None:
        self.path = Path(mask_arg) if mask_arg is not None else None
        self.by_stem: dict[str, list[Path]] = {}
        if self.path is not None and self.path.is_dir():
            for file in _image_files([str(self.path)]):
                self.by_stem.setdefault(file.stem, []).append(file)

    def files(self) -> list[Path]:
        """Every mask file this source may read (protected from being written over)."""
        if self.path is None:
            return []
        if self.path.is_dir():
            return [file for files in self.by_stem.values() for file in files]
        return [self.path]

    def find(self, image: Path) -> Path | None:
        """The mask for ``image``, or ``None`` without ``--mask``."""
        if self.path is None or not self.path.is_dir():
            return self.path
        matches = self.by_stem.get(image.stem, [])
        if not matches:
            raise MarklessError(f"no mask named {image.stem!r} (any image suffix) in {self.path}")
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches)
            raise MarklessError(f"more than one mask for {image.name} in {self.path} ({names}): keep one")
        return matches[0]


MAX_LISTED_CLASHES = 5


def check_writes(
    files: Sequence[Path],
    outputs: Sequence[Callable[[Path], Path]],
    *,
    also_inputs: Iterable[Path] = (),
    overwrite: bool = False,
) -> None:
    """Refuse, before anything is written, a run that would destroy data without being asked to.

    ``outputs`` name what is written for each input (the image, the mask...). Refused: two
    inputs with one output path (``a.jpg`` and ``a.png`` → ``a.png``: the second silently
    replaces the first), an output path that is an input (or one of ``also_inputs``, such as
    the masks read), and an output folder that holds inputs. ``overwrite`` allows all of them.
    """
    if overwrite:
        return
    inputs = {path.resolve() for path in [*files, *also_inputs]}
    input_dirs = {path.parent for path in inputs}
    problems: list[str] = []
    written: dict[Path, Path] = {}
    for path in files:
        for name in outputs:
            target = name(path).resolve()
            if target.parent in input_dirs:
                problems.append(f"{target.parent} is an output folder and holds inputs")
                input_dirs.discard(target.parent)  # say it once
            if target in inputs:
                problems.append(f"{target} would be written over, and it is an input")
            first = written.setdefault(target, path)
            if first != path:
                problems.append(f"{first} and {path} would both be written to {target}")
    if problems:
        more = len(problems) - MAX_LISTED_CLASHES
        listed = "; ".join(problems[:MAX_LISTED_CLASHES]) + (f"; and {more} more" if more > 0 else "")
        raise MarklessError(
            f"refusing to write anything: {listed}. Choose another output folder (-o), rename the "
            "clashing inputs, or pass --overwrite"
        )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """Which models to load (``Settings`` fields; unset flags keep the settings' values)."""
    parser.add_argument("--segmenter", default=None, help="segmenter weights folder (default: shipped)")
    parser.add_argument(
        "--decomposer",
        default=None,
        help="mark decomposer weights folder for restore (default: shipped; 'none': off)",
    )
    parser.add_argument(
        "--corrector",
        default=None,
        help="corrector weights folder: a learned last pass over restore's output (default: shipped; 'none': off)",
    )
    parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--diffusion-model", default=None, help="diffusers inpainting model: hub id or local folder"
    )


def _add_write_options(parser: argparse.ArgumentParser) -> None:
    """Flags of the commands that write one file per input."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="allow writing over inputs, into their folder, and several inputs to one output name",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_option_flags(parser: argparse.ArgumentParser, model: type[SegmentOptions]) -> None:
    """One flag per field of an options model (``--guidance-scale`` for ``guidance_scale``)."""
    for name, (kind, description) in model.field_types().items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=kind, default=None, help=description.replace("%", "%%"))


def _settings(args: argparse.Namespace) -> Settings:
    """``Settings`` (environment, ``.env``) with the command line's model flags on top."""
    from pydantic import ValidationError

    from app.settings import Settings
    from pipeline.config import ModelSettings
    from pipeline.options import describe_validation_error

    overrides = {
        name: value for name in ModelSettings.model_fields if (value := getattr(args, name, None)) is not None
    }
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise MarklessError(describe_validation_error(exc)) from None


def _remover(args: argparse.Namespace, *, with_segmenter: bool = True) -> Remover:
    """The one place CLI options become a ``Remover``."""
    from pipeline.factory import build_remover

    return build_remover(_settings(args), with_segmenter=with_segmenter)


def _options(args: argparse.Namespace, model: type[SegmentOptions]) -> Any:
    """The request options named on the command line (the inpainter is the remover's default)."""
    values = {name: getattr(args, name, None) for name in model.model_fields if name != "inpainter"}
    return model.of(**values)


def _run_files(files: list[Path], work, quiet: bool) -> int:  # type: ignore[no-untyped-def]
    """Apply ``work`` to every file; one line per failure, the rest still written, exit code 1 if any failed.

    ``work`` returns False for an input in which nothing was found to remove (written unchanged):
    those are counted in one summary line, because a user must know the photo was left as it was.
    """
    from tqdm import tqdm

    failures = unchanged = 0
    bar = tqdm(files, unit="img", disable=quiet or not sys.stderr.isatty(), file=sys.stderr)
    for path in bar:
        try:
            unchanged += work(path) is False
        except MarklessError as exc:
            failures += 1
            tqdm.write(f"markless: failed {path}: {exc.message}", file=sys.stderr)
        except OSError as exc:
            failures += 1
            tqdm.write(f"markless: failed {path}: {exc.strerror or exc}", file=sys.stderr)
    if unchanged:
        print(
            f"markless: no watermark found in {unchanged} of {len(files)} inputs: written unchanged "
            "(give a --mask to remove a mark by hand)",
            file=sys.stderr,
        )
    if failures:
        print(f"markless: {failures} of {len(files)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def _read_photos(files: list[Path], settings: Settings) -> list[Any]:
    """Decoded RGB arrays of ``files`` (a learning set: every one must read)."""
    from pipeline import io

    return [io.read_image_file(path, max_pixels=settings.max_pixels).rgb for path in files]


def _learn(files: list[Path], settings: Settings) -> Any:
    """The mark ``files`` share, with the photos that do not carry it named on stderr."""
    from pipeline.marks import learn_profile

    profile = learn_profile(_read_photos(files, settings))
    for index in profile.missing:
        print(f"markless: {files[index]} does not carry the shared mark; left untouched", file=sys.stderr)
    return profile


def _mark_files(mark_arg: str | None) -> list[Path]:
    """The files ``--mark`` reads (a profile's JSON and the PNG ``MarkProfile.save`` puts beside
    it, or a mark image), protected from being written over like the inputs."""
    if mark_arg is None:
        return []
    path = Path(mark_arg)
    return [path, path.with_suffix(".png")] if path.suffix.lower() == ".json" else [path]


def cmd_marks_learn(args: argparse.Namespace) -> int:
    import json

    profile = _learn(_image_files(args.inputs), _settings(args))
    path = profile.save(args.output)
    print(json.dumps({"profile": str(path), **profile.metadata()}, indent=2))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from pipeline import io
    from pipeline.factory import default_needs_decomposition, default_uses_decomposition
    from pipeline.marks import MarkProfile

    settings = _settings(args)
    if args.same_mark and (args.mark or args.mask):
        raise MarklessError(
            "--same-mark learns the mark from the inputs: do not combine it with --mark or --mask"
        )
    if args.mark and args.mask:
        raise MarklessError("give either --mask or --mark, not both")
    options = _options(args, RemoveOptions)
    fmt = io.normalize_format(args.format or settings.default_format)
    out_dir = Path(args.output)
    masks_dir = Path(args.masks_out) if args.masks_out else None
    masks = MaskSource(args.mask)
    files = _image_files(args.inputs)

    def image_out(path: Path) -> Path:
        return out_dir / f"{path.stem}{io.file_suffix(fmt)}"

    def mask_out(path: Path) -> Path:
        return Path(args.masks_out) / f"{path.stem}.png"

    outputs = [image_out, mask_out] if masks_dir else [image_out]
    check_writes(
        files, outputs, also_inputs=[*masks.files(), *_mark_files(args.mark)], overwrite=args.overwrite
    )
    profile = (
        _learn(files, settings) if args.same_mark else MarkProfile.load(args.mark) if args.mark else None
    )
    needs_segmenter = profile is None and (args.mask is None or default_uses_decomposition(settings))
    try:
        remover = _remover(args, with_segmenter=needs_segmenter)
    except ModelNotAvailableError:
        if not needs_segmenter or args.mask is None or default_needs_decomposition(settings):
            raise
        remover = _remover(args, with_segmenter=False)  # restore's fits need no model
    out_dir.mkdir(parents=True, exist_ok=True)
    if masks_dir:
        masks_dir.mkdir(parents=True, exist_ok=True)

    def work(path: Path) -> bool:
        decoded = io.read_image_file(path, max_pixels=settings.max_pixels)
        mask_path = masks.find(path)
        mask = None
        if mask_path is not None:
            size = (decoded.width, decoded.height)
            mask = io.decode_mask(mask_path.read_bytes(), size, max_pixels=settings.max_pixels)
        if profile is not None:
            result = remover.remove_mark(decoded.rgb, profile, options)
            if not result.found and result.mark:  # why: not there, or inverting it would harm
                print(f"markless: {path}: {result.mark['reason']}", file=sys.stderr)
        else:
            result = remover.remove(decoded.rgb, mask, options)
        image_out(path).write_bytes(decoded.encode_result(result.image, fmt, quality=settings.quality))
        if masks_dir:
            mask_out(path).write_bytes(io.encode_mask(result.mask))
        return result.found

    return _run_files(files, work, args.quiet)


def cmd_segment(args: argparse.Namespace) -> int:
    from pipeline import io

    settings = _settings(args)
    args.inpainter = "opencv"  # segmenting restores nothing: load no generative stage
    options = _options(args, SegmentOptions)
    out_dir = Path(args.output)
    files = _image_files(args.inputs)

    def mask_out(path: Path) -> Path:
        return out_dir / f"{path.stem}.png"

    check_writes(files, [mask_out], overwrite=args.overwrite)
    remover = _remover(args)
    out_dir.mkdir(parents=True, exist_ok=True)

    def work(path: Path) -> None:
        decoded = io.read_image_file(path, max_pixels=settings.max_pixels)
        mask, _ = remover.segment(decoded.rgb, options)
        mask_out(path).write_bytes(io.encode_mask(mask))

    return _run_files(files, work, args.quiet)


def cmd_serve(args: argparse.Namespace) -> int:
    from app.main import serve

    serve(host=args.host, port=args.port)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pipeline.bench import main as bench_main

    args.inpainter = "auto"
    settings = _settings(args)
    return bench_main(args, _remover(args), str(settings.segmenter))


def cmd_loadtest(args: argparse.Namespace) -> int:

    from app.loadtest import run_load

    if args.image:
        image = Path(args.image).read_bytes()
    else:
        from pipeline.bench import bench_image

        image = bench_image(args.size)
    report = run_load(args.url, requests=args.requests, concurrency=args.concurrency, image=image)
    return print_report(report, args.output)


def print_report(report: dict[str, Any], output: str | None, file_only: Sequence[str] = ()) -> int:
    """Print a JSON report (and write it to ``output`` when given); the command's exit code.
    ``file_only``: keys written to ``output`` but not printed (long per-item lists)."""
    import json

    if output:
        Path(output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in file_only}, indent=2))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from pipeline.inpaint.diffusion import download

    print(download(args.model, cache_dir=args.cache_dir))
    return 0


def _training_unavailable(args: argparse.Namespace) -> int:
    raise MarklessError(
        f"`markless {args.command}` is part of the training tools, which this install does not have: "
        "use a source checkout with pip install -e '.[train]' (or make install)"
    )


def _register_training(sub: argparse._SubParsersAction) -> Callable[[str, list[str]], int] | None:  # type: ignore[type-arg]
    """The training commands, from ``training.commands`` when the package is installed; else
    placeholders that say how to get them. Returns the runner of the delegated commands."""
    try:
        from training import commands
    except ImportError:
        for name in TRAINING_COMMANDS:
            p = sub.add_parser(name, help="(needs the training tools)", add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(func=_training_unavailable)
        return None
    commands.register(
        sub, lambda p: (_add_model_options(p), _add_option_flags(p, SegmentOptions)), _remover, print_report
    )
    return commands.run_delegated


def build_parser() -> tuple[argparse.ArgumentParser, Callable[[str, list[str]], int] | None]:
    """The parser, and the runner of training commands that parse their own arguments."""
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
    p.add_argument("--format", default=None, type=str.lower, choices=list(_output_formats()))
    p.add_argument(
        "--same-mark",
        action="store_true",
        help="the inputs (3 or more) share one mark: learn it from them, then remove exactly it from each",
    )
    _add_write_options(p)
    _add_model_options(p)
    _add_option_flags(p, RemoveOptions)  # --mark FILE: a saved profile (.json) or an RGBA mark image
    p.set_defaults(func=cmd_remove)

    marks = sub.add_parser("marks", help="mark profiles: learn a watermark once from several photos")
    marks_sub = marks.add_subparsers(dest="marks_command", required=True)
    p = marks_sub.add_parser("learn", help="learn the mark that the inputs share; writes PROFILE.json + .png")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="3 or more photos (files or folders)")
    p.add_argument("-o", "--output", required=True, metavar="PROFILE.json")
    p.set_defaults(func=cmd_marks_learn)

    p = sub.add_parser("segment", help="write watermark masks (8-bit PNG, 255 = watermark)")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    _add_write_options(p)
    _add_model_options(p)
    _add_option_flags(p, SegmentOptions)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("bench", help="per-stage latency as JSON")
    p.add_argument("-o", "--output", default="bench.json")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    p.add_argument("--runs", type=int, default=5)
    _add_model_options(p)
    p.set_defaults(func=cmd_bench)

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
    return parser, _register_training(sub)


def _output_formats() -> tuple[str, ...]:
    from pipeline.io import OUTPUT_FORMATS

    return OUTPUT_FORMATS


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, run_delegated = build_parser()
    try:
        if argv and run_delegated is not None and argv[0] in DELEGATED:
            raise SystemExit(run_delegated(argv[0], argv[1:]))
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
        )
        code = args.func(args)
    except MarklessError as exc:
        print(f"markless: {exc.message}", file=sys.stderr)
        code = 2
    except FileNotFoundError as exc:
        print(f"markless: no such file: {exc.filename or exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)


if __name__ == "__main__":
    main()
