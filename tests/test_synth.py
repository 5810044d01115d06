"""Synthetic watermark generator: determinism, ground-truth contract, coverage, assets, dataset layout.

Everything runs on tiny in-memory assets (a procedural background, the bundled SVGs, Pillow's
built-in font); only the per-script font test looks at system Noto fonts and skips without them.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from training.assets.fonts import assign_font_splits, has_glyphs, scan_fonts
from training.assets.manifest import AssetManifest, PhotoEntry, photos_in_dirs, split_of, stable_fraction
from training.synth import (
    BLEND_MODES,
    MARK_KINDS,
    SCRIPTS,
    AssetPool,
    SynthConfig,
    WatermarkSynth,
    blend,
    composite,
    write_dataset,
)
from training.synth.background import dead_leaves, procedural
from training.synth.pool import BUILTIN_SVGS, FontFace, rasterize_svg
from training.synth.text import SCRIPT_PROBES, script_line

SIZE = (96, 128)


@pytest.fixture(scope="module")
def pool() -> AssetPool:
    photo = procedural(np.random.default_rng(7), (160, 200))
    return AssetPool.builtin(backgrounds=[photo])


def _synth(pool: AssetPool, **overrides: object) -> WatermarkSynth:
    return WatermarkSynth(pool, SynthConfig.from_any(dict(overrides)))


def _assert_contract(s, cfg: SynthConfig) -> None:
    h, w = s.image.shape[:2]
    assert s.image.dtype == np.uint8 and s.image.shape == (h, w, 3)
    assert s.clean.dtype == np.uint8 and s.clean.shape == (h, w, 3)
    assert s.mask.dtype == bool and s.mask.shape == (h, w)
    assert s.alpha.dtype == np.float32 and s.alpha.shape == (h, w)
    assert s.color.dtype == np.float32 and s.color.shape == (h, w, 3)
    assert s.alpha.min() >= 0.0 and s.alpha.max() <= 1.0
    assert s.color.min() >= 0.0 and s.color.max() <= 1.0
    change = s.alpha * np.abs(s.color - s.clean / 255.0).max(axis=-1)
    expected = (s.alpha > cfg.mask_alpha_threshold) & (
        (s.alpha >= cfg.mask_solid_alpha) | (change >= cfg.mask_min_change)
    )
    np.testing.assert_array_equal(s.mask, expected)
    assert not (s.mask & (s.alpha <= 0)).any()  # mask ⊆ alpha > 0


def test_same_seed_same_sample_different_seed_different(pool: AssetPool) -> None:
    synth = WatermarkSynth(pool)
    for i in range(4):
        a = synth.sample(np.random.default_rng([3, i]), SIZE)
        b = synth.sample(np.random.default_rng([3, i]), SIZE)
        for name in ("image", "clean", "mask", "alpha", "color"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.meta == b.meta
    c = synth.sample(np.random.default_rng([4, 0]), SIZE)
    d = synth.sample(np.random.default_rng([5, 0]), SIZE)
    assert not np.array_equal(c.image, d.image)


def test_determinism_survives_warm_caches(pool: AssetPool) -> None:
    """A fresh generator (cold caches) and a used one (warm caches) agree."""
    used = WatermarkSynth(pool)
    for i in range(5):
        used.sample(np.random.default_rng([9, i]), SIZE)
    fresh = WatermarkSynth(AssetPool.builtin(backgrounds=[pool.background(0)]))
    a = used.sample(np.random.default_rng([11, 1]), SIZE)
    b = fresh.sample(np.random.default_rng([11, 1]), SIZE)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.alpha, b.alpha)


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_blend_equation_holds_before_degradation(pool: AssetPool, mode: str) -> None:
    cfg = dict(p_no_mark=0.0, blend_weights={mode: 1.0}, p_scene_text=0.0)
    synth = _synth(pool, **cfg)
    seen_mark = False
    for i in range(6):
        rng = np.random.default_rng([21, i])
        s = synth.sample(rng, SIZE, degrade=False)
        _assert_contract(s, synth.cfg)
        assert all(m["blend"] == mode for m in s.meta["marks"])
        expected = (1 - s.alpha[..., None]) * (s.clean / 255.0) + s.alpha[..., None] * s.color
        err = np.abs(s.image / 255.0 - expected).max()
        assert err <= 0.51 / 255 + 1e-5, f"sample {i}: contract violated by {err * 255:.2f} levels"
        np.testing.assert_array_equal(s.image, composite(s.clean, s.alpha, s.color))
        seen_mark |= bool(s.mask.any())
        # Outside the marks nothing changes.
        np.testing.assert_array_equal(s.image[s.alpha == 0], s.clean[s.alpha == 0])
    assert seen_mark


def test_blend_mode_formulas() -> None:
    b = np.array([[0.2, 0.8]], np.float32)[..., None].repeat(3, -1)
    w = np.array([0.5, 0.5, 0.5], np.float32)
    np.testing.assert_allclose(blend("normal", b, w)[0, 0], w)
    np.testing.assert_allclose(blend("multiply", b, w)[0, :, 0], [0.1, 0.4])
    np.testing.assert_allclose(blend("screen", b, w)[0, :, 0], [0.6, 0.9])
    np.testing.assert_allclose(blend("overlay", b, w)[0, :, 0], [0.2, 0.8], atol=1e-6)
    with pytest.raises(InvalidParameterError):
        blend("dissolve", b, w)


def test_rescaled_samples_keep_contract_and_size(pool: AssetPool) -> None:
    synth = _synth(pool, p_no_mark=0.0, p_rescale=1.0, rescale_factor=(0.5, 2.0))
    factors = set()
    for i in range(6):
        s = synth.sample(np.random.default_rng([31, i]), SIZE, degrade=False)
        assert s.image.shape[:2] == SIZE
        _assert_contract(s, synth.cfg)
        np.testing.assert_array_equal(s.image, composite(s.clean, s.alpha, s.color))
        factors.add(s.meta.get("rescale"))
    # Note: with degrade=False the rescale is not drawn; draw it via the degrading path instead.
    s = synth.sample(np.random.default_rng([32, 0]), SIZE, degrade=True)
    assert s.image.shape[:2] == SIZE and "rescale" in s.meta
    _assert_contract(s, synth.cfg)


def test_degradations_touch_only_the_input(pool: AssetPool) -> None:
    base = dict(p_no_mark=0.0, p_rescale=0.0, p_scene_text=0.0)
    plain = _synth(pool, **base, p_jpeg=0.0, p_noise=0.0, p_blur=0.0)
    noisy = _synth(pool, **base, p_jpeg=1.0, jpeg_quality=(30, 30), p_noise=1.0, p_blur=0.0)
    a = plain.sample(np.random.default_rng([41, 0]), SIZE)
    b = noisy.sample(np.random.default_rng([41, 0]), SIZE)
    # Same draws up to the degradation step: identical ground truth, different input.
    np.testing.assert_array_equal(a.clean, b.clean)
    np.testing.assert_array_equal(a.alpha, b.alpha)
    assert b.meta["jpeg"] == 30 and "noise" in b.meta
    assert not np.array_equal(a.image, b.image)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 12


def test_tiling_covers_the_image(pool: AssetPool) -> None:
    synth = _synth(pool, p_no_mark=0.0, p_tiled=1.0, n_marks_weights={"1": 1.0}, p_rescale=0.0)
    H, W = 192, 256
    for i in range(8):
        s = synth.sample(np.random.default_rng([51, i]), (H, W), degrade=False)
        assert s.meta["marks"][0]["position"] == "tile"
        for qy in (0, H // 2):
            for qx in (0, W // 2):
                quadrant = s.mask[qy : qy + H // 2, qx : qx + W // 2]
                assert quadrant.any(), f"sample {i}: tiled mark misses quadrant at {(qy, qx)}"
        _, labels = cv2.connectedComponents(s.mask.astype(np.uint8))
        assert labels.max() >= 3, "a tiling repeats the mark"


def test_no_watermark_fraction_gives_empty_masks(pool: AssetPool) -> None:
    synth = _synth(pool, p_no_mark=1.0, p_scene_text=0.0)
    for i in range(4):
        s = synth.sample(np.random.default_rng([61, i]), SIZE, degrade=False)
        assert not s.mask.any() and s.alpha.max() == 0.0 and not s.color.any()
        np.testing.assert_array_equal(s.image, s.clean)
        assert s.meta["marks"] == []
    half = _synth(pool, p_no_mark=0.5)
    empty = sum(not half.sample(np.random.default_rng([62, i]), (64, 64)).mask.any() for i in range(60))
    assert 15 <= empty <= 45  # binomial(60, 0.5): far outside these bounds means the knob is ignored


def test_default_config_mostly_marks_with_many_clean_negatives(pool: AssetPool) -> None:
    synth = WatermarkSynth(pool)
    masks = [synth.sample(np.random.default_rng([63, i]), (64, 64)).mask for i in range(40)]
    n_empty = sum(not m.any() for m in masks)
    assert 4 <= n_empty <= 22  # p_no_mark 0.3 (+ the odd invisible mark): negatives are a real share
    assert sum(m.any() for m in masks) >= 18


def test_datestamp_is_an_opaque_orange_corner_imprint(pool: AssetPool) -> None:
    synth = _synth(
        pool, p_no_mark=0.0, kind_weights={"datestamp": 1.0}, p_tiled=0.0, n_marks_weights={"1": 1.0}
    )
    for i in range(4):
        s = synth.sample(np.random.default_rng([72, i]), (160, 200), degrade=False)
        info = s.meta["marks"][0]
        assert info["kind"] == "datestamp" and info["position"] == "corner" and info["angle"] == 0.0
        assert info["opacity"] >= 0.8 and any(c.isdigit() for c in info["text"])
        ys, _xs = np.nonzero(s.mask)
        assert len(ys) > 20
        r, _g, b = s.color[s.alpha > 0.5].mean(axis=0)
        assert r > 0.8 and r > b + 0.3  # warm: orange, red or yellow


def test_seven_segment_draws_each_digit_differently() -> None:
    from training.synth.render import seven_segment

    glyphs = [seven_segment(d, 24, slant=0.0) for d in "0123456789"]
    assert all(g.shape == glyphs[0].shape and g.max() > 0.9 for g in glyphs)
    sums = {round(float(g.sum())) for g in glyphs}
    assert len(sums) >= 6  # 7-segment digits differ in lit segments (some share a count)
    assert seven_segment("8", 24, slant=0.0).sum() > seven_segment("1", 24, slant=0.0).sum() * 2
    assert seven_segment("'19 8 15", 20).shape[0] >= 20


def test_platform_mark_has_an_icon_tile_and_an_account_line(pool: AssetPool) -> None:
    synth = _synth(
        pool, p_no_mark=0.0, kind_weights={"platform": 1.0}, p_tiled=0.0, n_marks_weights={"1": 1.0}
    )
    texts = []
    for i in range(6):
        s = synth.sample(np.random.default_rng([73, i]), (200, 300), degrade=False)
        assert s.meta["marks"][0]["kind"] == "platform"
        assert s.mask.sum() > 30
        texts.append(s.meta["marks"][0]["text"])
    assert any(t.startswith(("@", "ID: ", "No. ")) or "\n" in t for t in texts)


def test_photo_folders_split_by_name_in_place(tmp_path: Path) -> None:
    for sub in ("a", "b/c"):
        (tmp_path / sub).mkdir(parents=True)
    names = [f"a/{i}.jpg" for i in range(30)] + [f"b/c/{i}.png" for i in range(30)] + ["a/notes.txt"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    train, val = photos_in_dirs([tmp_path], "train"), photos_in_dirs([tmp_path], "val")
    assert not set(train) & set(val) and len(train) + len(val) == 60
    assert 3 <= len(val) <= 24  # ~20 % held out by a hash of the name
    assert photos_in_dirs([tmp_path], "val") == val  # stable
    with pytest.raises(InvalidParameterError):
        photos_in_dirs([tmp_path / "missing"], "train")


@pytest.mark.parametrize("kind", MARK_KINDS)
def test_every_mark_kind_draws_something(pool: AssetPool, kind: str) -> None:
    synth = _synth(pool, p_no_mark=0.0, kind_weights={kind: 1.0}, p_tiled=0.0, n_marks_weights={"1": 1.0})
    drawn = 0
    for i in range(3):
        s = synth.sample(np.random.default_rng([71, i]), (128, 160), degrade=False)
        assert s.meta["marks"][0]["kind"] in (kind, "text", "multiline")
        drawn += int(s.mask.sum() > 10)
    assert drawn >= 2


def test_opacity_and_blend_distributions_are_broad(pool: AssetPool) -> None:
    synth = WatermarkSynth(pool)
    ops, modes, angles = [], set(), []
    for i in range(80):
        s = synth.sample(np.random.default_rng([81, i]), (64, 64), degrade=False)
        for m in s.meta["marks"]:
            ops.append(m["opacity"])
            modes.add(m["blend"])
            angles.append(m["angle"])
    ops_a = np.array(ops)
    assert ops_a.min() < 0.2 and ops_a.max() > 0.85
    assert 0.25 < np.median(ops_a) < 0.75
    assert {"normal"} < modes  # at least one non-normal mode shows up
    assert any(20 <= abs(a) <= 55 for a in angles)  # diagonal marks
    assert sum(a == 0 for a in angles) > len(angles) / 4  # but upright ones dominate


def test_bad_inputs_raise_typed_errors(pool: AssetPool) -> None:
    synth = WatermarkSynth(pool)
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidParameterError):
        synth.generate(np.zeros((32, 32, 3), np.float32), rng)
    with pytest.raises(InvalidParameterError):
        synth.generate(np.zeros((32, 32), np.uint8), rng)
    with pytest.raises(InvalidParameterError):
        synth.generate(np.zeros((8, 8, 3), np.uint8), rng)
    with pytest.raises(InvalidParameterError):
        synth.sample(rng, (8, 400))
    with pytest.raises(InvalidParameterError):
        SynthConfig(p_jpeg=1.5)
    with pytest.raises(InvalidParameterError):
        SynthConfig.from_any({"p_jpg": 0.5})
    with pytest.raises(InvalidParameterError):
        SynthConfig(blend_weights={"dissolve": 1.0})
    with pytest.raises(InvalidParameterError):
        AssetPool(fonts={"klingon": [FontFace(None)]})


def test_generate_on_caller_photo_keeps_geometry(pool: AssetPool) -> None:
    clean = dead_leaves(np.random.default_rng(2), 80, 120)
    clean_u8 = (clean * 255).astype(np.uint8)
    s = _synth(pool, p_no_mark=0.0, p_scene_text=0.0).generate(
        clean_u8, np.random.default_rng(5), degrade=False
    )
    assert s.image.shape == clean_u8.shape
    np.testing.assert_array_equal(s.clean, clean_u8)


def test_logo_sources_rasterise_and_bad_svg_is_skipped() -> None:
    rgba = rasterize_svg(BUILTIN_SVGS[0], 64)
    assert rgba.dtype == np.uint8 and rgba.shape[2] == 4 and 51 <= max(rgba.shape[:2]) <= 64
    with pytest.raises(InvalidParameterError):
        rasterize_svg("<svg this is not xml")
    bad_pool = AssetPool(logos=["<svg xmlns='http://www.w3.org/2000/svg'></svg>", BUILTIN_SVGS[1]])
    assert bad_pool.logo(0) is None  # draws nothing: skipped, not a crash
    logo = bad_pool.logo(1)
    assert logo is not None and logo.mono and logo.rgba[..., 3].max() > 230
    coloured = AssetPool(logos=[BUILTIN_SVGS[2]]).logo(0)
    assert coloured is not None and not coloured.mono


def test_script_text_generators_produce_the_script() -> None:
    ranges = {
        "cyrillic": (0x0400, 0x04FF),
        "greek": (0x0370, 0x03FF),
        "arabic": (0x0600, 0x06FF),
        "devanagari": (0x0900, 0x097F),
        "korean": (0xAC00, 0xD7A3),
    }
    rng = np.random.default_rng(0)
    for script in SCRIPTS:
        for _ in range(20):
            line = script_line(rng, script)
            assert line.strip()
            if script in ranges:
                lo, hi = ranges[script]
                assert any(lo <= ord(c) <= hi for c in line), (script, line)


def _system_faces() -> dict[str, list[dict]]:
    by_script: dict[str, list[dict]] = {}
    for face in scan_fonts():
        for s in face["scripts"]:
            by_script.setdefault(s, []).append(face)
    return by_script


@pytest.mark.skipif(
    not Path("/usr/share/fonts/truetype/noto").is_dir(), reason="system Noto fonts not installed"
)
@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_renders_with_a_system_font(script: str) -> None:
    faces = _system_faces().get(script)
    if not faces:
        pytest.skip(f"no system font for {script}")
    face = faces[0]
    ff = FontFace(face["origin"], face["index"], face["family"])
    pool = AssetPool(fonts={script: [ff]})
    font = pool.font(ff, 40)
    assert has_glyphs(font, SCRIPT_PROBES[script])
    synth = _synth(
        pool,
        p_no_mark=0.0,
        kind_weights={"text": 1.0},
        script_weights={script: 1.0},
        n_marks_weights={"1": 1.0},
        p_tiled=0.0,
        position_weights={"centre": 1.0},
    )
    s = synth.sample(np.random.default_rng([91, 0]), (128, 192), degrade=False)
    assert s.meta["marks"][0]["script"] == script
    assert s.mask.sum() > 40


def test_stable_split_is_by_name_not_order() -> None:
    names = [f"file_{i}.jpg" for i in range(400)]
    splits = [split_of(n, 0.2) for n in names]
    assert splits == [split_of(n, 0.2) for n in reversed(names)][::-1]
    assert 0.12 < splits.count("val") / len(names) < 0.28
    assert 0.0 <= stable_fraction("x") < 1.0 and stable_fraction("x") == stable_fraction("x")


def test_font_split_holds_out_a_family_per_script() -> None:
    def face(family: str, scripts: list[str], style: str = "Regular") -> dict:
        return {"family": family, "style": style, "scripts": scripts}

    faces = [face(f"Latin{i}", ["latin", "cyrillic"]) for i in range(6)]
    faces += [face("NotoSansCJK#0", ["japanese"]), face("NotoSerifCJK#0", ["japanese"])]
    faces += [face("ArabicA", ["arabic"]), face("ArabicA", ["arabic"], "Bold"), face("ArabicB", ["arabic"])]
    faces += [face("OnlyDeva", ["devanagari"])]
    assign_font_splits(faces)
    for script in ("latin", "japanese", "arabic"):
        splits = {f["split"] for f in faces if script in f["scripts"]}
        assert splits == {"train", "val"}, script
    assert {f["split"] for f in faces if f["family"] == "ArabicA"} in ({"train"}, {"val"})  # whole family
    assert next(f for f in faces if f["family"] == "NotoSerifCJK#0")["split"] == "val"
    assert next(f for f in faces if f["family"] == "OnlyDeva")["split"] == "train"


def test_pool_from_manifest(tmp_path: Path) -> None:
    photo = procedural(np.random.default_rng(1), (200, 300))
    (tmp_path / "photos").mkdir()
    (tmp_path / "logos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.jpg"), photo[..., ::-1])
    cv2.imwrite(str(tmp_path / "photos" / "b.jpg"), photo[::-1, :, ::-1])
    rgba = rasterize_svg(BUILTIN_SVGS[1], 64)
    cv2.imwrite(str(tmp_path / "logos" / "l.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    entry = {"source": "test", "license": "CC0-1.0"}
    manifest = {
        "photos": [
            {"path": "photos/a.jpg", "split": "train", "kind": "photo", **entry},
            {"path": "photos/b.jpg", "split": "val", "kind": "photo", **entry},
        ],
        "logos": [
            {"path": "logos/l.png", "split": "train", **entry},
            {"path": "logos/l.png", "split": "val", **entry},
        ],
        "fonts": [],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    train = AssetPool.from_manifest(tmp_path, "train")
    val = AssetPool.from_manifest(tmp_path, "val")
    assert len(train.backgrounds) == 1 and len(val.backgrounds) == 1
    assert train.backgrounds[0] != val.backgrounds[0]
    assert train.background(0).shape == (200, 300, 3)
    assert train.logo(0) is not None and train.scripts == ["latin"]  # built-in font fallback
    s = WatermarkSynth(train).sample(np.random.default_rng(0), (64, 64))
    assert s.image.shape == (64, 64, 3)
    with pytest.raises(InvalidParameterError):
        AssetPool.from_manifest(tmp_path, "test")
    with pytest.raises(ModelNotAvailableError):
        AssetPool.from_manifest(tmp_path / "nowhere", "train")
    loaded = AssetManifest.load(tmp_path)
    with pytest.raises(ModelNotAvailableError):  # far too few assets to train on
        loaded.verify()


def test_manifest_round_trip_and_recorded_photo_folders(tmp_path: Path) -> None:
    cache, photos = tmp_path / "cache", tmp_path / "my photos"
    photo = procedural(np.random.default_rng(2), (160, 200))
    (cache / "photos").mkdir(parents=True)
    cv2.imwrite(str(cache / "photos" / "a.jpg"), photo[..., ::-1])
    for i in range(20):
        (photos / f"sub{i % 2}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(photos / f"sub{i % 2}" / f"{i}.png"), photo[..., ::-1])
    AssetManifest(
        cache,
        photos=[PhotoEntry("photos/a.jpg", "train", "test", "CC0-1.0", kind="texture")],
        photo_dirs=[photos.resolve()],
    ).save()
    loaded = AssetManifest.load(cache)
    assert loaded.photos == [PhotoEntry("photos/a.jpg", "train", "test", "CC0-1.0", kind="texture")]
    assert loaded.photo_dirs == [photos.resolve()]
    assert json.loads(loaded.path.read_text())["counts"]["photo folders"]["train"] > 0
    for split in ("train", "val"):
        pool = AssetPool.from_manifest(cache, split)
        folder = photos_in_dirs([photos], split)  # the same rule as an explicit photo_dirs
        assert pool.backgrounds[-len(folder) :] == folder and len(folder) > 0
        assert pool.background_kinds == ["texture"] * (split == "train") + ["photo"] * len(folder)
        again = AssetPool.from_manifest(cache, split, [photos])  # a folder passed again counts once
        assert again.backgrounds == pool.backgrounds
    bad = {"version": 1, "photos": [{"split": "train"}], "logos": [], "fonts": []}  # no path
    (tmp_path / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(ModelNotAvailableError):
        AssetManifest.load(tmp_path)


def test_assets_cli_records_photo_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``markless assets --photos DIR`` records the folder; a later run without it keeps it."""
    import training.assets.collect as collect
    from training.assets.manifest import FontEntry, LogoEntry

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):
        (photos / f"{i}.jpg").write_bytes(b"x")
    # Stand-ins for the package collectors (apt/npm and thousands of files): small real entries.
    logo = tmp_path / "l.png"
    logo.write_bytes(b"x")
    monkeypatch.setattr(collect, "install_debs", lambda install, log: [])
    monkeypatch.setattr(collect, "install_simple_icons", lambda root, install, log: None)
    monkeypatch.setattr(collect, "collect_photos", lambda root, log: [])
    monkeypatch.setattr(
        collect,
        "collect_logos",
        lambda root, icons, workers, log: [LogoEntry(str(logo), s) for s in ["train"] * 100 + ["val"]],
    )
    monkeypatch.setattr(
        collect,
        "collect_fonts",
        lambda root, log: [FontEntry(str(logo), s, scripts=("latin",)) for s in ["train"] * 4 + ["val"]],
    )
    cache = tmp_path / "cache"
    assert collect.main(["--dir", str(cache), "--no-install", "--photos", str(photos)]) == 0
    assert AssetManifest.load(cache).photo_dirs == [photos.resolve()]
    assert collect.main(["--dir", str(cache), "--no-install"]) == 0
    assert AssetManifest.load(cache).photo_dirs == [photos.resolve()]
    assert len(AssetPool.from_manifest(cache, "val").backgrounds) == len(photos_in_dirs([photos], "val"))
    assert collect.main(["--dir", str(cache), "--photos", str(tmp_path / "typo")]) == 1


def test_write_dataset_layout(tmp_path: Path, pool: AssetPool) -> None:
    out = write_dataset(tmp_path / "set", 3, seed=5, size=(64, 96), pool=pool)
    names = {p.name for p in (out / "input").iterdir()}
    assert len(names) == 3
    for sub in ("mask", "clean", "alpha", "color"):
        assert {p.name for p in (out / sub).iterdir()} == names
    for name in names:
        img = cv2.imread(str(out / "input" / name), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / "mask" / name), cv2.IMREAD_UNCHANGED)
        alpha = cv2.imread(str(out / "alpha" / name), cv2.IMREAD_UNCHANGED)
        assert img.shape == (64, 96, 3) and mask.shape == (64, 96) and alpha.shape == (64, 96)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert ((mask > 0) <= (alpha > 0)).all()
    lines = (out / "meta.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all("marks" in json.loads(x) for x in lines)
    assert json.loads((out / "dataset.json").read_text())["seed"] == 5
    again = write_dataset(tmp_path / "again", 3, seed=5, size=(64, 96), pool=pool)
    for name in names:
        a = cv2.imread(str(out / "input" / name))
        b = cv2.imread(str(again / "input" / name))
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidParameterError):
        write_dataset(tmp_path / "bad", 0, seed=1, pool=pool)


def test_synth_cli_writes_a_set_without_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.synth.writer import main

    monkeypatch.setenv("MARKLESS_ASSETS", str(tmp_path / "no-cache"))
    assert main(["-o", str(tmp_path / "out"), "--n", "2", "--seed", "3", "--size", "64", "64"]) == 0
    assert len(list((tmp_path / "out" / "mask").glob("*.png"))) == 2
    assert main(["-o", str(tmp_path / "bad"), "--n", "0"]) == 1  # typed error → exit code, no traceback


def test_synth_cli_stacks_configs_later_ones_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.synth.writer import main

    monkeypatch.setenv("MARKLESS_ASSETS", str(tmp_path / "no-cache"))
    base, only = tmp_path / "base.yaml", tmp_path / "only.yaml"
    base.write_text("kind_weights: {text: 1.0}\np_no_mark: 0.0\np_tiled: 0.0\n")
    only.write_text("kind_weights: {symbol: 1.0}\n")
    out = tmp_path / "out"
    args = ["-o", str(out), "--n", "3", "--seed", "1", "--size", "64", "64"]
    assert main([*args, "--config", str(base), "--config", str(only)]) == 0
    kinds = {
        m["kind"] for line in (out / "meta.jsonl").read_text().splitlines() for m in json.loads(line)["marks"]
    }
    assert kinds == {"symbol"}


def test_debian_copyright_licence_lookup() -> None:
    from training.assets.licences import licence_for

    pairs = [
        (["*"], "GPL-2+"),
        (["16.04/*_by_Ann.jpg", "20.04/Sea.jpg"], "CC-BY-4.0"),
        (["debian/*"], "Expat"),
    ]
    assert licence_for(pairs, "Wave_by_Ann.jpg", "unknown") == "CC-BY-4.0"
    assert licence_for(pairs, "Sea.jpg", "unknown") == "CC-BY-4.0"
    assert licence_for(pairs, "other.png", "unknown") == "GPL-2+"
    assert licence_for([], "x.jpg", "unknown") == "unknown"


def test_invisible_marks_are_recoloured_or_dropped(pool: AssetPool) -> None:
    white = np.full((96, 128, 3), 255, np.uint8)
    base = dict(
        p_no_mark=0.0,
        opacity_range=(0.08, 0.15),
        p_opaque=0.0,
        p_tiled=0.0,
        colour_weights={"white": 1.0},
        p_scene_text=0.0,
        p_emboss=0.0,
        p_stroke=0.0,
        p_shadow=0.0,
        p_glow=0.0,
        kind_weights={"text": 1.0},
        blend_weights={"normal": 1.0},
    )
    strict = _synth(pool, **base)
    lax = _synth(pool, **base, min_visibility=0.0)
    for i in range(4):
        s = strict.generate(white, np.random.default_rng([101, i]), degrade=False)
        t = lax.generate(white, np.random.default_rng([101, i]), degrade=False)
        solid = s.alpha > 0.5
        if solid.any():  # white-on-white became dark: clearly visible
            diff = np.abs(s.image.astype(int) - s.clean.astype(int)).max(axis=2)[solid]
            assert diff.mean() > 5
        assert all(m.get("inverted") or m.get("dropped") for m in s.meta["marks"])
        # Without the check the same marks are (nearly) invisible: ≤ 0.15 × 12 % contrast.
        assert np.abs(t.image.astype(int) - t.clean.astype(int)).max() <= 5
