"""The ``markless`` CLI: folders in, same names out, one line per failure, non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.cli import main


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


@pytest.fixture
def folder(tmp_path: Path, photo: np.ndarray) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo).save(src / "a.jpg", quality=90)
    Image.fromarray(photo[:100, :150]).save(src / "b.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (src / "notes.txt").write_text("not an image, and not picked up from a folder")
    return src


def test_remove_folder_with_one_broken_file(
    folder: Path, tmp_path: Path, tiny_segmenter_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, masks = tmp_path / "out", tmp_path / "masks"
    code = _run(
        ["remove", str(folder), "-o", str(out), "--masks-out", str(masks), "--inpainter", "opencv",
         "--segmenter", str(tiny_segmenter_dir), "--dilate", "2"]
    )  # fmt: skip
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in masks.iterdir()) == ["a.png", "b.png"]
    assert Image.open(out / "a.png").size == (320, 240)
    assert Image.open(masks / "b.png").mode == "L"
    failures = [line for line in capsys.readouterr().err.splitlines() if line.startswith("markless: failed")]
    assert len(failures) == 1 and "broken.png" in failures[0]


def test_remove_with_user_mask_folder(folder: Path, tmp_path: Path, tiny_segmenter_dir: Path) -> None:
    masks = tmp_path / "given"
    masks.mkdir()
    m = np.zeros((240, 320), np.uint8)
    m[50:90, 60:200] = 255
    Image.fromarray(m).save(masks / "a.png")
    out = tmp_path / "out"
    code = _run(["remove", str(folder / "a.jpg"), "-o", str(out), "--mask", str(masks), "--inpainter", "opencv",
                 "--format", "webp", "--segmenter", str(tiny_segmenter_dir)])  # fmt: skip
    assert code == 0
    result = np.asarray(Image.open(out / "a.webp"))
    assert result.shape == (240, 320, 3)


def test_given_masks_load_the_segmenter_only_for_an_inpainter_that_reads_its_maps(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --mask, opencv needs no segmenter, restore (the default) reads its maps when there are
    weights and runs without them, unblend cannot."""
    masks = tmp_path / "given"
    masks.mkdir()
    m = np.zeros((240, 320), np.uint8)
    m[50:90, 60:200] = 255
    Image.fromarray(m).save(masks / "a.png")
    common = [str(folder / "a.jpg"), "--mask", str(masks), "--segmenter", str(tmp_path / "none")]
    assert _run(["remove", *common, "-o", str(tmp_path / "o1"), "--inpainter", "opencv"]) == 0
    assert _run(["remove", *common, "-o", str(tmp_path / "o2")]) == 0
    assert _run(["remove", *common, "-o", str(tmp_path / "o3"), "--inpainter", "unblend"]) == 2
    assert "no segmenter weights" in capsys.readouterr().err


def test_segment_writes_8bit_masks(folder: Path, tmp_path: Path, tiny_segmenter_dir: Path) -> None:
    out = tmp_path / "seg"
    code = _run(["segment", str(folder / "b.png"), "-o", str(out), "--segmenter", str(tiny_segmenter_dir)])
    assert code == 0
    mask = Image.open(out / "b.png")
    assert mask.mode == "L" and mask.size == (150, 100)
    assert set(np.unique(np.asarray(mask))) <= {0, 255}


def test_eval_compares_with_an_earlier_run(
    tmp_path: Path, tiny_segmenter_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.synth import AssetPool, write_dataset

    root = write_dataset(tmp_path / "set", 2, seed=6, size=(96, 96), pool=AssetPool.builtin())
    common = [
        "eval",
        str(root),
        "--inpainters",
        "opencv",
        "--mask-kinds",
        "exact",
        "--segmenter",
        str(tiny_segmenter_dir),
    ]
    assert _run([*common, "-o", str(tmp_path / "a.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "per_image" not in printed and len(json.loads((tmp_path / "a.json").read_text())["per_image"]) == 2
    assert _run([*common, "--compare", str(tmp_path / "a.json")]) == 0
    same = json.loads(capsys.readouterr().out)["comparison"]["exact"]["opencv"]
    assert same["images"] == 2 and same["mean_delta"] == 0.0 and same["up"] == same["down"] == 0
    (tmp_path / "bad.json").write_text("{}")
    assert _run([*common, "--compare", str(tmp_path / "bad.json")]) == 2
    assert "not a metrics file" in capsys.readouterr().err


def test_missing_weights_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(["segment", str(tmp_path), "-o", str(tmp_path / "o"), "--segmenter", str(tmp_path / "none")])
    assert code == 2
    assert "no segmenter weights" in capsys.readouterr().err


def test_remove_says_which_photos_had_no_watermark(
    folder: Path, tmp_path: Path, no_mark_segmenter_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "broken.png").unlink()
    out = tmp_path / "out"
    code = _run(["remove", str(folder), "-o", str(out), "--segmenter", str(no_mark_segmenter_dir)])
    assert code == 0
    lines = capsys.readouterr().err.splitlines()
    assert "markless: no watermark found in 2 of 2 inputs: written unchanged" in "\n".join(lines)
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "b.png")), np.asarray(Image.open(folder / "b.png"))
    )
