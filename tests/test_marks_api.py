"""Mark profiles through the product: POST/GET/DELETE /v1/marks, /v1/remove with mark=<id>, the
store surviving a restart, limits, and the CLI's ``marks learn``, ``--same-mark`` and ``--mark``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.admission import LEARN_PASSES
from app.cli import main as cli_main
from pipeline.factory import build_remover
from pipeline.io import decode
from pipeline.marks import synth
from pipeline.remover import Remover
from tests.conftest import app_clients
from tests.test_api import encode_image

SIZE = (150, 220)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-10))


@pytest.fixture(scope="module")
def group() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Five photos with one centred translucent mark, and their clean originals."""
    mark = synth.make_mark(150, 50, opacity=0.5, accent=(40, 90, 230))
    clean = [synth.procedural_photo(*SIZE, seed=i) for i in range(5)]
    top, left = synth.corner_position(clean[0].shape, mark.shape, "center", 0)
    return clean, [synth.blend(c, mark, top, left) for c in clean]


@pytest.fixture(scope="module")
def remover() -> Remover:
    return build_remover(with_segmenter=False, inpainter="opencv")


@pytest.fixture
def make_client(tmp_path: Path, remover: Remover) -> Iterator[Callable[..., TestClient]]:
    with app_clients(remover, inpainter="opencv", data_dir=tmp_path / "data") as make:
        yield make


def _files(images: list[np.ndarray]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (f"p{i}.png", encode_image(img), "image/png")) for i, img in enumerate(images)]


def test_learn_get_remove_delete_round_trip(make_client, group) -> None:
    clean, marked = group
    client = make_client()
    unmarked = synth.procedural_photo(*SIZE, seed=77)
    res = client.post("/v1/marks", files=_files([*marked, unmarked]))
    assert res.status_code == 201, res.text
    body = res.json()
    mark_id = body["id"]
    assert res.headers["Location"] == f"/v1/marks/{mark_id}"
    assert body["missing"] == [5] and body["layout"] == "fixed" and body["anchor"] == "center"
    assert len(mark_id) == 22 and body["image_url"] == f"/v1/marks/{mark_id}/image"

    shown = client.get(f"/v1/marks/{mark_id}").json()
    assert shown["size"] == body["size"] and shown["id"] == mark_id
    png = client.get(f"/v1/marks/{mark_id}/image")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"

    for c, m in zip(clean, marked, strict=True):
        out = client.post(
            "/v1/remove", files={"image": ("m.png", encode_image(m), "image/png")}, data={"mark": mark_id}
        )
        assert out.status_code == 200, out.text
        assert psnr(decode(out.content).rgb, c) > psnr(m, c) + 10.0
        assert "X-Mark-Reason" not in out.headers
    # a photo without the mark comes back untouched
    out = client.post(
        "/v1/remove", files={"image": ("u.png", encode_image(unmarked), "image/png")}, data={"mark": mark_id}
    )
    assert out.status_code == 200 and np.array_equal(decode(out.content).rgb, unmarked)
    assert float(out.headers["X-Mask-Coverage"]) == 0.0
    assert out.headers["X-Watermark-Found"] == "false"
    assert "untouched" in out.headers["X-Mark-Reason"] or "not found" in out.headers["X-Mark-Reason"]

    assert client.delete(f"/v1/marks/{mark_id}").status_code == 204
    for res in (client.get(f"/v1/marks/{mark_id}"), client.delete(f"/v1/marks/{mark_id}")):
        assert res.status_code == 404 and res.json()["error"]["code"] == "mark_not_found"
    gone = client.post(
        "/v1/remove", files={"image": ("m.png", encode_image(marked[0]), "image/png")}, data={"mark": mark_id}
    )
    assert gone.status_code == 404


def test_profiles_survive_a_restart(make_client, group) -> None:
    _, marked = group
    mark_id = make_client().post("/v1/marks", files=_files(marked[:4])).json()["id"]
    again = make_client()  # a new app over the same data folder
    assert again.get(f"/v1/marks/{mark_id}").status_code == 200


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "x" * 22, "short", "%2e%2e"])
def test_unknown_or_unsafe_ids_are_404(make_client, bad_id: str) -> None:
    res = make_client().get(f"/v1/marks/{bad_id}")
    assert res.status_code == 404 and res.json()["error"]["code"] in ("mark_not_found", "not_found")


def test_limits_are_4xx(make_client, group) -> None:
    clean, marked = group
    client = make_client(max_mark_images=4, max_marks=1, max_mark_pixels=4 * SIZE[0] * SIZE[1])
    cases = {
        "too_few": (client.post("/v1/marks", files=_files(marked[:2])), 400, "not_enough_photos"),
        "too_many": (client.post("/v1/marks", files=_files(marked)), 400, "invalid_parameter"),
        "no_shared": (client.post("/v1/marks", files=_files(clean[:4])), 422, "no_shared_mark"),
    }
    for name, (res, status, code) in cases.items():
        assert (res.status_code, res.json()["error"]["code"]) == (status, code), name
    assert client.post("/v1/marks", files=_files(marked[:4])).status_code == 201
    full = client.post("/v1/marks", files=_files(marked[1:5]))
    assert full.status_code == 409 and full.json()["error"]["code"] == "too_many_marks"
    small = make_client(max_mark_pixels=3 * SIZE[0] * SIZE[1])
    big = small.post("/v1/marks", files=_files(marked[:4]))
    assert big.status_code == 413 and big.json()["error"]["code"] == "image_too_large"


def test_learning_is_admitted_by_its_work(make_client, group) -> None:
    """Learning costs LEARN_PASSES per pixel of its photos: over the per-request work a 413 before
    any queue slot, and a header that is not an image a 415 before any decode."""
    _, marked = group
    pixels = 4 * SIZE[0] * SIZE[1]
    client = make_client(max_learn_work=0.5 * pixels * LEARN_PASSES / 1e6)
    res = client.post("/v1/marks", files=_files(marked[:4]))
    assert res.status_code == 413 and res.json()["error"]["code"] == "too_much_work"
    bad = [*_files(marked[:3]), ("images", ("x.png", b"not an image", "image/png"))]
    res = make_client().post("/v1/marks", files=bad)
    assert res.status_code == 415 and res.json()["error"]["code"] == "unsupported_image"


def test_a_path_with_several_routes_allows_all_of_them(make_client) -> None:
    res = make_client().put("/v1/marks/" + "a" * 22)
    assert res.status_code == 405 and res.headers["allow"] == "GET, DELETE"


def test_mark_and_mask_together_are_refused(make_client, group) -> None:
    _, marked = group
    client = make_client()
    mark_id = client.post("/v1/marks", files=_files(marked[:4])).json()["id"]
    files = {
        "image": ("m.png", encode_image(marked[0]), "image/png"),
        "mask": ("k.png", encode_image(np.full(SIZE, 255, np.uint8)), "image/png"),
    }
    res = client.post("/v1/remove", files=files, data={"mark": mark_id})
    assert res.status_code == 400 and res.json()["error"]["code"] == "invalid_parameter"


# ---------------------------------------------------------------------------------------------
# CLI


@pytest.fixture
def folder(tmp_path: Path, group) -> Path:
    _, marked = group
    src = tmp_path / "in"
    src.mkdir()
    for i, img in enumerate(marked):
        (src / f"m{i}.png").write_bytes(encode_image(img))
    (src / "z-unmarked.png").write_bytes(encode_image(synth.procedural_photo(*SIZE, seed=77)))
    return src


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    return int(exit_info.value.code or 0)


def _check_outputs(out: Path, folder: Path, group) -> None:
    clean, marked = group
    for i, (c, m) in enumerate(zip(clean, marked, strict=True)):
        restored = decode((out / f"m{i}.png").read_bytes()).rgb
        assert psnr(restored, c) > psnr(m, c) + 10.0
    untouched = (out / "z-unmarked.png").read_bytes()
    assert np.array_equal(decode(untouched).rgb, decode((folder / "z-unmarked.png").read_bytes()).rgb)


def test_cli_same_mark(folder: Path, tmp_path: Path, group, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _run(["remove", str(folder), "-o", str(out), "--same-mark", "--inpainter", "opencv", "-q"]) == 0
    _check_outputs(out, folder, group)
    err = capsys.readouterr().err
    assert "z-unmarked.png does not carry the shared mark" in err
    assert "z-unmarked.png: the mark was not found on this photo" in err  # and why, at removal


def test_cli_learn_then_mark(folder: Path, tmp_path: Path, group, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "mark.json"
    assert _run(["marks", "learn", str(folder), "-o", str(profile)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["missing"] == [5] and profile.is_file() and profile.with_suffix(".png").is_file()
    out = tmp_path / "out"
    assert (
        _run(["remove", str(folder), "-o", str(out), "--mark", str(profile), "--inpainter", "opencv", "-q"])
        == 0
    )
    _check_outputs(out, folder, group)


def test_cli_refusals(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["remove", str(folder), "-o", str(tmp_path / "o"), "--same-mark", "--mark", "x.json"]) == 2
    assert (
        _run(["remove", str(folder), "-o", str(tmp_path / "o"), "--mark", str(tmp_path / "none.json")]) == 2
    )
    assert _run(["marks", "learn", str(folder / "m0.png"), "-o", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "--same-mark" in err and "not a readable mark profile" in err and "at least 3" in err


def test_cli_mark_files_are_protected_inputs(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that would write over the profile it reads is refused before anything is written
    (``check_writes``), and allowed with ``--overwrite``."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    profile = profiles / "m1.json"  # its image is profiles/m1.png: the output name of in/m1.png
    assert _run(["marks", "learn", str(folder), "-o", str(profile)]) == 0
    mark_png = profile.with_suffix(".png").read_bytes()
    argv = ["remove", str(folder / "m1.png"), "-o", str(profiles), "--mark", str(profile), "-q"]
    assert _run([*argv, "--inpainter", "opencv"]) == 2
    assert "refusing to write anything" in capsys.readouterr().err
    assert profile.with_suffix(".png").read_bytes() == mark_png
    assert _run([*argv, "--inpainter", "opencv", "--overwrite"]) == 0
