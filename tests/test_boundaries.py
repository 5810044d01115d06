"""Package boundaries: the server loads no training code, ``models`` stands alone, training is an extra."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from app.cli import main
from training.commands import MissingExtraError, require_extra

ROOT = Path(__file__).resolve().parents[1]
TRAINING_ONLY = ("lightning", "jsonargparse", "cairosvg", "training")


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_the_server_loads_no_training_code() -> None:
    proc = _run_python(
        "import sys, app.main, app.routes, app.settings\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({TRAINING_ONLY!r})))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_models_import_nothing_of_the_other_packages() -> None:
    for path in (ROOT / "models").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"pipeline", "app", "training"}, (path, name)


def test_training_libraries_are_an_extra_not_base_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    train = " ".join(project["optional-dependencies"]["train"])
    for name in ("lightning", "jsonargparse", "cairosvg"):
        assert name not in base and name in train


def test_a_missing_extra_is_one_clear_line() -> None:
    with pytest.raises(MissingExtraError, match=r"markless\[train\]|\.\[train\]"):
        require_extra("train", ("no_such_module_markless",))


def test_training_commands_without_the_training_package(capsys: pytest.CaptureFixture[str]) -> None:
    proc = _run_python(
        "import sys; sys.modules['training'] = None\n"
        "from app.cli import main\n"
        "main(['train', 'fit', '--config', 'x.yaml'])"
    )
    assert proc.returncode == 2
    assert "[train]" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(SystemExit) as exc:  # with the package, the command is registered
        main(["export", "--help"])
    assert exc.value.code == 0
    assert "checkpoint" in capsys.readouterr().out
