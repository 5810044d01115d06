"""The training side's ``markless`` subcommands: train, synth, assets, eval, export.

``app.cli`` registers them from here when the ``training`` package is installed (a source
checkout); the serving image ships without it. This module imports nothing heavy: each command
checks the ``train`` extra (Lightning, jsonargparse, cairosvg) first and says how to install it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import MarklessError

if TYPE_CHECKING:
    from pipeline.remover import Remover

EXTRA_HINT = "install the training extra: pip install -e '.[train]' (or make install)"
TRAIN_EXTRA = ("lightning", "jsonargparse", "cairosvg")


class MissingExtraError(MarklessError):
    """A training command ran without the ``train`` extra installed."""

    code = "missing_extra"


def require_extra(command: str, modules: Sequence[str] = TRAIN_EXTRA) -> None:
    """Refuse with one clear line when the extra's modules are not importable."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"`markless {command}` needs {', '.join(missing)}: {EXTRA_HINT}")


def _train(argv: list[str]) -> int:
    require_extra("train")
    from training.cli import main

    main(argv)
    return 0


def _synth(argv: list[str]) -> int:
    require_extra("synth", ("cairosvg",))
    from training.synth.writer import main

    return main(argv)


def _corrections(argv: list[str]) -> int:
    require_extra("corrections")
    from training.corrections import main

    return main(argv)


def _assets(argv: list[str]) -> int:
    require_extra("assets", ("cairosvg",))
    from training.assets.collect import main

    return main(argv)


# Subcommands that own their argument parsing (LightningCLI, the data tools): name → (help, run).
DELEGATED: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "train": ("train the segmenter (LightningCLI: fit/validate --config ...)", _train),
    "synth": ("write a synthetic evaluation set (input/ mask/ clean/ alpha/ color/)", _synth),
    "assets": ("install and collect photos, logos and fonts for training", _assets),
    "corrections": ("restore a synthetic set with drawn masks: the corrector's training pairs", _corrections),
}

RemoverBuilder = Callable[[argparse.Namespace], "Remover"]
ReportPrinter = Callable[[dict[str, Any], str | None, Sequence[str]], int]
"""``app.cli.print_report``: the report, the file to write it to, the keys kept out of the printout."""


def register(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_model_options: Callable[[argparse.ArgumentParser], None],
    build_remover: RemoverBuilder,
    print_report: ReportPrinter,
) -> None:
    """Add the training commands to ``markless``'s subparsers."""
    for name, (help_text, _) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)

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
    p.add_argument("--report", default=None, metavar="DIR", help="write metrics.json and worst.png here")
    p.add_argument("-o", "--output", default=None, help="write the metrics JSON to this file")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument(
        "--mask-kinds",
        nargs="+",
        default=["predicted"],
        choices=("exact", "rough", "predicted"),
        help="masks handed to the restorations: the true one, the true one grown, the segmenter's",
    )
    p.add_argument("--rough-px", type=int, default=6, help="how far a rough mask grows the true one (pixels)")
    p.add_argument(
        "--compare",
        default=None,
        metavar="JSON",
        help="an earlier run's metrics JSON on the same set: report the change photo by photo",
    )
    add_model_options(p)
    p.set_defaults(func=lambda args: _eval(args, build_remover, print_report))

    p = sub.add_parser("export", help="export a training checkpoint to a weights folder")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", default="weights/segmenter")
    p.set_defaults(func=_export)


def run_delegated(command: str, argv: Sequence[str]) -> int:
    """Run a delegated command with the rest of the command line."""
    return DELEGATED[command][1](list(argv))


def _eval(
    args: argparse.Namespace,
    build_remover: RemoverBuilder,
    print_report: ReportPrinter,
) -> int:
    from training.evaluate import compare, evaluate

    before = _earlier_run(Path(args.compare)) if args.compare else None
    remover = build_remover(args)
    modes = args.inpainters or list(remover.info().inpainters)
    metrics = evaluate(
        remover,
        args.dataset,
        modes=modes,
        report_dir=args.report,
        limit=args.limit,
        clean_dirs=[Path(d) for d in args.clean],
        mask_kinds=args.mask_kinds,
        rough_px=args.rough_px,
    )
    if before is not None:
        metrics["comparison"] = compare(before, metrics)
    # Each photo's figures go to the files only: printed, they would bury the summary.
    return print_report(metrics, args.output, ("per_image",))


def _earlier_run(path: Path) -> dict[str, Any]:
    """An earlier ``markless eval`` run's metrics, read before the long run so a wrong path fails fast."""
    try:
        before = json.loads(path.read_text())
    except ValueError as exc:
        raise MarklessError(f"--compare {path}: not a JSON file ({exc})") from exc
    if not isinstance(before, dict) or "per_image" not in before:
        raise MarklessError(
            f"--compare {path}: not a metrics file of `markless eval` with each photo's figures"
        )
    return before


def _export(args: argparse.Namespace) -> int:
    require_extra("export", ("lightning",))
    from training.export import export_checkpoint

    print(export_checkpoint(args.checkpoint, args.output))
    return 0
