"""Collect the generator's assets through package managers into a cache, and record them.

Sources (all redistributable; licences are recorded per file in the manifest):

- Debian: ``lomiri-wallpapers`` and ``plasma-workspace-wallpapers`` (photos), ``openclipart-svg``
  (~8,000 SVGs), ``fonts-noto-core``, ``fonts-noto-cjk`` (plus ``fonts-dejavu-core`` and
  ``fonts-liberation`` for more Latin/Cyrillic/Greek designs). Installed with apt-get when we run
  as root, otherwise the command is printed.
- npm: ``simple-icons`` (CC0, ~3,400 single-path brand icons).
- PyPI: photos shipped inside the scikit-image wheel (``skimage.data``; ones that need a
  download are skipped).

The cache (``$MARKLESS_ASSETS`` or ``~/.cache/markless/assets``) holds photos resized to at most
1280 px, logos pre-rasterised to 384 px PNGs (rasterising an SVG costs more than a whole sample),
copies of the fonts, and ``manifest.json``: every file with its source, licence and split. The
train/val split is decided by a stable hash of each name, never by listing order, so it is the
same on every machine and when sources grow.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import ImageFont

from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from training.synth.config import SCRIPTS
from training.synth.pool import (
    LOGO_SIZE,
    MANIFEST_NAME,
    MAX_BACKGROUND_SIDE,
    default_assets_dir,
    rasterize_svg,
)
from training.synth.text import SCRIPT_PROBES

APT_PACKAGES: tuple[str, ...] = (
    "lomiri-wallpapers",
    "plasma-workspace-wallpapers",
    "openclipart-svg",
    "fonts-noto-core",
    "fonts-noto-cjk",
    "fonts-dejavu-core",
    "fonts-liberation",
)
SIMPLE_ICONS = "simple-icons@16.37.0"
"""Pinned so the logo list (and hence the split) is reproducible."""
VAL_FRACTION = {"photos": 0.2, "logos": 0.1, "fonts": 0.2}
MAX_CLIPART_BYTES = 400_000
"""Bigger openclipart files are detailed illustrations (and slow to rasterise), not logo-like marks."""
MANIFEST_VERSION = 1

SKIMAGE_PHOTOS: dict[str, str] = {
    "astronaut": "photo",
    "chelsea": "photo",
    "coffee": "photo",
    "rocket": "photo",
    "motorcycle_left": "photo",
    "motorcycle_right": "photo",
    "hubble_deep_field": "photo",
    "camera": "photo",
    "coins": "photo",
    "moon": "photo",
    "text": "photo",  # scene text: a natural hard negative
    "page": "photo",
    "retina": "photo",
    "brick": "texture",
    "grass": "texture",
    "gravel": "texture",
}
"""Photos inside the scikit-image wheel (file stem → kind); anything missing is skipped."""

# Font families (file-name prefix before "-") → scripts they cover. CJK collections are per face index.
FONT_FAMILIES: dict[str, tuple[str, ...]] = {
    **{
        fam: ("latin", "cyrillic", "greek")
        for fam in (
            "NotoSans",
            "NotoSerif",
            "NotoSansDisplay",
            "NotoSerifDisplay",
            "NotoSansMono",
            "DejaVuSans",
            "DejaVuSerif",
            "DejaVuSansMono",
            "DejaVuSansCondensed",
            "DejaVuSerifCondensed",
            "LiberationSans",
            "LiberationSerif",
            "LiberationMono",
            "LiberationSansNarrow",
        )
    },
    "NotoSansArabic": ("arabic",),
    "NotoNaskhArabic": ("arabic",),
    "NotoKufiArabic": ("arabic",),
    "NotoSansDevanagari": ("devanagari",),
    "NotoSerifDevanagari": ("devanagari",),
}
CJK_FACES: dict[int, str] = {0: "japanese", 1: "korean", 2: "chinese", 3: "chinese"}
"""Noto CJK .ttc face order: JP, KR, SC, TC (then HK and the Mono variants, unused)."""
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/noto"),
    Path("/usr/share/fonts/opentype/noto"),
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/liberation"),
)
PHOTO_DIRS = {
    "lomiri-wallpapers": Path("/usr/share/backgrounds"),
    "plasma-workspace-wallpapers": Path("/usr/share/wallpapers"),
}
CLIPART_DIR = Path("/usr/share/openclipart/svg")

Logger = Callable[[str], None]


@dataclass
class AssetManifest:
    """What ``collect_assets`` found: entries per kind (dicts as in manifest.json) and where it lives."""

    root: Path
    photos: list[dict[str, Any]] = field(default_factory=list)
    logos: list[dict[str, Any]] = field(default_factory=list)
    fonts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Entries per kind and split (and fonts per script and split)."""
        out: dict[str, dict[str, int]] = {}
        for kind in ("photos", "logos", "fonts"):
            entries = getattr(self, kind)
            out[kind] = {s: sum(e["split"] == s for e in entries) for s in ("train", "val")}
        for script in SCRIPTS:
            out[f"fonts:{script}"] = {
                s: sum(e["split"] == s and script in e["scripts"] for e in self.fonts)
                for s in ("train", "val")
            }
        return out

    def to_json(self) -> dict[str, Any]:
        licences: dict[str, int] = {}
        for e in (*self.photos, *self.logos, *self.fonts):
            licences[e["license"]] = licences.get(e["license"], 0) + 1
        return {
            "version": MANIFEST_VERSION,
            "counts": self.counts(),
            "licenses": dict(sorted(licences.items())),
            "notes": self.notes,
            "photos": self.photos,
            "logos": self.logos,
            "fonts": self.fonts,
        }

    @classmethod
    def load(cls, root: Path) -> AssetManifest:
        """Read ``root/manifest.json``."""
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise ModelNotAvailableError(f"no asset manifest at {path}")
        data = json.loads(path.read_text())
        return cls(root, data["photos"], data["logos"], data["fonts"], data.get("notes", []))


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone: the basis of the train/val split."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)


def split_of(key: str, val_fraction: float) -> str:
    """``"val"`` for about ``val_fraction`` of keys, chosen by hash."""
    return "val" if stable_fraction(key) < val_fraction else "train"


# --- package managers ---------------------------------------------------------------------------------------
def _missing_debs(packages: Sequence[str]) -> list[str]:
    if not shutil.which("dpkg-query"):
        return list(packages)
    missing = []
    for pkg in packages:
        res = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in res.stdout:
            missing.append(pkg)
    return missing


def install_debs(install: bool, log: Logger) -> list[str]:
    """apt-get the Debian packages (root only); returns the ones still missing."""
    missing = _missing_debs(APT_PACKAGES)
    if not missing:
        return []
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if install and is_root and shutil.which("apt-get"):
        log(f"installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=False, env=env)
        subprocess.run(cmd, check=False, env=env)
        missing = _missing_debs(missing)
    if missing:
        log(f"missing Debian packages; install them with:\n  sudo {' '.join(cmd[:4])} {' '.join(missing)}")
    return missing


def install_simple_icons(root: Path, install: bool, log: Logger) -> Path | None:
    """``npm install simple-icons`` into ``root/npm``; returns its icons folder (or None)."""
    icons = root / "npm" / "node_modules" / "simple-icons" / "icons"
    if icons.is_dir():
        return icons
    cmd = ["npm", "install", "--prefix", str(root / "npm"), "--no-audit", "--no-fund", SIMPLE_ICONS]
    if not install or not shutil.which("npm"):
        log(f"simple-icons not installed; run:\n  {' '.join(cmd)}")
        return None
    log(f"installing {SIMPLE_ICONS} with npm")
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0 or not icons.is_dir():
        log(f"npm install failed ({res.returncode}): {res.stderr.strip()[-400:]}")
        return None
    return icons


# --- Debian copyright files (DEP-5) ---------------------------------------------------------------------------
def debian_licences(package: str) -> list[tuple[list[str], str]]:
    """(file patterns, licence) pairs from ``/usr/share/doc/<package>/copyright``; empty if not DEP-5."""
    path = Path("/usr/share/doc") / package / "copyright"
    if not path.is_file():
        return []
    pairs: list[tuple[list[str], str]] = []
    for para in re.split(r"\n\s*\n", path.read_text(errors="replace")):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", para, re.M)
        lic = re.search(r"^License:[ \t]*(\S.*)?$", para, re.M)
        if files and lic and lic.group(1):
            pairs.append((files.group(1).split(), lic.group(1).strip()))
    return pairs


def licence_for(pairs: list[tuple[list[str], str]], name: str, default: str) -> str:
    """Last matching paragraph wins, as in DEP-5.

    Installed files rarely sit at the source-tree path the copyright file names, so a pattern also
    matches on its file-name part when that part is more than wildcards (``16.04/*_by_Ann.jpg``).
    """
    base = name.rsplit("/", 1)[-1]

    def matches(p: str) -> bool:
        if fnmatch.fnmatch(name, p) or fnmatch.fnmatch(name, f"*/{p}"):
            return True
        tail = p.rsplit("/", 1)[-1]
        return bool(tail.strip("*?")) and fnmatch.fnmatch(base, tail)

    found = default
    for patterns, lic in pairs:
        if any(matches(p) for p in patterns):
            found = lic
    return found


# --- photos ----------------------------------------------------------------------------------------------------------
def _save_photo(img: np.ndarray, dest: Path) -> bool:
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(img.astype(np.float64) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if min(img.shape[:2]) < 128:
        return False
    scale = MAX_BACKGROUND_SIDE / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(
            img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    return bool(cv2.imwrite(str(dest), np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95]))


def _read_rgb(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _plasma_image(folder: Path) -> Path | None:
    """The largest landscape image of a Plasma wallpaper package (``contents/images/WxH.ext``)."""
    best: tuple[int, Path] | None = None
    for p in (folder / "contents" / "images").glob("*"):
        m = re.match(r"(\d+)x(\d+)\.(jpe?g|png)$", p.name, re.I)
        if m and int(m.group(1)) >= int(m.group(2)):
            area = int(m.group(1)) * int(m.group(2))
            if best is None or area > best[0]:
                best = (area, p)
    return best[1] if best else None


def collect_photos(root: Path, log: Logger) -> list[dict[str, Any]]:
    """Copy (resized) photos from the Debian wallpaper packages and scikit-image into ``root/photos``.

    JPEG wallpapers are photographs; PNG ones are renders/illustrations (kept, tagged ``illustration``).
    """
    entries: list[dict[str, Any]] = []

    def add(
        src_img: Callable[[], np.ndarray | None], name: str, source: str, licence: str, kind: str, origin: str
    ) -> None:
        dest = root / "photos" / f"{name}.jpg"
        if not dest.is_file():
            img = src_img()
            if img is None or not _save_photo(img, dest):
                log(f"skipped photo {origin}")
                return
        entries.append(
            {
                "path": str(dest.relative_to(root)),
                "source": source,
                "license": licence,
                "kind": kind,
                "origin": origin,
                "split": split_of(f"photo:{name}", VAL_FRACTION["photos"]),
            }
        )

    lomiri = PHOTO_DIRS["lomiri-wallpapers"]
    lic = debian_licences("lomiri-wallpapers")
    for p in sorted(lomiri.glob("*")) if lomiri.is_dir() else []:
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file():
            kind = "photo" if p.suffix.lower() != ".png" else "illustration"
            add(
                lambda p=p: _read_rgb(p),
                f"lomiri__{p.stem}",
                "deb:lomiri-wallpapers",
                licence_for(lic, p.name, "unknown (see /usr/share/doc/lomiri-wallpapers/copyright)"),
                kind,
                str(p),
            )

    plasma = PHOTO_DIRS["plasma-workspace-wallpapers"]
    for folder in sorted(plasma.glob("*")) if plasma.is_dir() else []:
        img_path = _plasma_image(folder)
        if img_path is None:
            continue
        licence = "LGPL-3.0"
        meta = folder / "metadata.json"
        if meta.is_file():
            with contextlib.suppress(ValueError, AttributeError):
                licence = json.loads(meta.read_text()).get("KPlugin", {}).get("License") or licence
        kind = "photo" if img_path.suffix.lower() in (".jpg", ".jpeg") else "illustration"
        add(
            lambda p=img_path: _read_rgb(p),
            f"plasma__{folder.name}",
            "deb:plasma-workspace-wallpapers",
            licence,
            kind,
            str(img_path),
        )

    try:
        import skimage.data as skdata
    except ImportError:  # scikit-image is a pinned dependency; tolerate its absence anyway
        skdata = None
    if skdata is not None:
        data_dir = Path(skdata.__file__).parent
        for stem, kind in SKIMAGE_PHOTOS.items():
            files = [p for p in data_dir.glob(f"{stem}.*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
            if not files:
                log(f"skimage.data.{stem} is not inside the wheel (needs a download): skipped")
                continue
            add(
                lambda f=files[0]: _read_rgb(f),
                f"skimage__{stem}",
                "pypi:scikit-image",
                "BSD-3-Clause/CC0 (skimage.data)",
                kind,
                f"skimage.data.{stem}",
            )
    return entries


# --- logos ----------------------------------------------------------------------------------------------------------
def _rasterize_job(job: tuple[str, str]) -> tuple[str, str | None]:
    """Worker: rasterise one SVG to PNG; returns (dest, error or None)."""
    src, dest = job
    try:
        rgba = rasterize_svg(Path(src), LOGO_SIZE)
        ys, xs = np.nonzero(rgba[..., 3] >= 128)
        if len(ys) < 16:
            return dest, "almost empty"
        solid = len(ys) / float((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
        if solid > 0.97 and rgba.shape[0] > 8 and rgba.shape[1] > 8 and rgba[..., 3].min() > 0:
            return dest, "opaque rectangle (a picture, not a mark)"
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(dest, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 6])
        return dest, None if ok else "write failed"
    except (InvalidParameterError, OSError) as exc:
        return dest, str(exc)[:200]


def collect_logos(root: Path, icons_dir: Path | None, workers: int, log: Logger) -> list[dict[str, Any]]:
    """Rasterise simple-icons and openclipart SVGs into ``root/logos`` (incremental: existing PNGs are kept)."""
    sources: list[tuple[Path, Path, str, str]] = []  # svg, png, source, licence
    if icons_dir is not None:
        for svg in sorted(icons_dir.glob("*.svg")):
            sources.append(
                (svg, root / "logos" / "simple-icons" / f"{svg.stem}.png", "npm:simple-icons", "CC0-1.0")
            )
    if CLIPART_DIR.is_dir():
        for svg in sorted(CLIPART_DIR.rglob("*.svg")):
            if svg.stat().st_size > MAX_CLIPART_BYTES:
                continue
            rel = svg.relative_to(CLIPART_DIR).with_suffix("")
            png = root / "logos" / "openclipart" / ("__".join(rel.parts) + ".png")
            sources.append((svg, png, "deb:openclipart-svg", "CC0-1.0 (Openclipart public domain)"))
    failed_log = root / "logos" / "failed.json"
    failed: dict[str, str] = json.loads(failed_log.read_text()) if failed_log.is_file() else {}
    todo = [(str(s), str(p)) for s, p, _, _ in sources if not p.is_file() and str(p) not in failed]
    if todo:
        log(f"rasterising {len(todo)} SVGs with {workers} worker(s) (one-off; later runs reuse the PNGs)")
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for k, (dest, err) in enumerate(ex.map(_rasterize_job, todo, chunksize=32)):
                if err is not None:
                    failed[dest] = err
                if (k + 1) % 1000 == 0:
                    log(f"  {k + 1}/{len(todo)}")
        failed_log.parent.mkdir(parents=True, exist_ok=True)
        failed_log.write_text(json.dumps(failed, indent=0))
    entries = []
    for svg, png, source, licence in sources:
        if png.is_file():
            entries.append(
                {
                    "path": str(png.relative_to(root)),
                    "source": source,
                    "license": licence,
                    "origin": str(svg),
                    "split": split_of(f"logo:{png.stem}", VAL_FRACTION["logos"]),
                }
            )
    if failed:
        log(f"{len(failed)} SVGs could not be used (see {failed_log})")
    return entries


# --- fonts ----------------------------------------------------------------------------------------------------------
def has_glyphs(font: ImageFont.FreeTypeFont, text: str) -> bool:
    """True when every non-space character of ``text`` draws something other than the missing-glyph box."""
    notdef = font.getmask("\U0010fffd")
    notdef_key = (notdef.size, bytes(notdef))
    for ch in text:
        if ch.isspace():
            continue
        m = font.getmask(ch)
        if m.getbbox() is None or (m.size, bytes(m)) == notdef_key:
            return False
    return True


def _font_style(stem: str) -> tuple[str, str]:
    family, _, style = stem.partition("-")
    return family, style or "Regular"


def scan_fonts(dirs: Iterable[Path] = FONT_DIRS) -> list[dict[str, Any]]:
    """Font faces we know the scripts of, each verified to actually render its scripts."""
    faces: list[dict[str, Any]] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*")):
            if path.suffix.lower() not in (".ttf", ".otf", ".ttc"):
                continue
            family, style = _font_style(path.stem)
            if "ExtraLight" in style or "Light" in style:
                continue  # hairline faces vanish at watermark opacities
            if path.suffix.lower() == ".ttc" and family in ("NotoSansCJK", "NotoSerifCJK"):
                candidates = [(i, (s,)) for i, s in CJK_FACES.items()]
            elif family in FONT_FAMILIES:
                candidates = [(0, FONT_FAMILIES[family])]
            else:
                continue
            for index, scripts in candidates:
                try:
                    font = ImageFont.truetype(str(path), 32, index=index)
                except OSError:
                    continue
                ok = [s for s in scripts if has_glyphs(font, SCRIPT_PROBES[s])]
                if ok:
                    faces.append(
                        {
                            "origin": str(path),
                            "index": index,
                            "family": family + (f"#{index}" if path.suffix.lower() == ".ttc" else ""),
                            "style": style,
                            "bold": "Bold" in style or "Black" in style,
                            "italic": "Italic" in style or "Oblique" in style,
                            "scripts": ok,
                        }
                    )
    return faces


def assign_font_splits(faces: list[dict[str, Any]]) -> None:
    """Hold out whole families (all styles) for validation, at least one per script that has two or more.

    Families are picked by a stable hash of their name; a script with exactly two designs holds out
    the serif one.

    CJK families are held out as a design (Sans vs Serif) across all four regional faces, since the
    regional faces of one design share most glyph shapes.
    """

    def design(fam: str) -> str:
        return fam.split("#")[0]

    fams_by_script: dict[str, set[str]] = {s: set() for s in SCRIPTS}
    for f in faces:
        for s in f["scripts"]:
            fams_by_script[s].add(design(f["family"]))
    designs = sorted({design(f["family"]) for f in faces})
    val = {d for d in designs if stable_fraction(f"font:{d}") < VAL_FRACTION["fonts"]}
    for s in SCRIPTS:
        fams = sorted(fams_by_script[s], key=lambda d: stable_fraction(f"font:{d}"))
        if len(fams) == 2:
            # Two designs only (CJK, Devanagari): train on the sans, the commoner watermark face.
            val -= set(fams)
            fams.sort(key=lambda d: "Serif" not in d)
        if len(fams) >= 2 and not (val & set(fams)):
            val.add(fams[0])
        if fams and set(fams) <= val:  # never leave a script without training fonts
            val.discard(fams[-1])
    for f in faces:
        f["split"] = "val" if design(f["family"]) in val else "train"


def _font_licence(origin: str) -> tuple[str, str]:
    if "/noto/" in origin:
        return ("deb:fonts-noto-cjk" if "CJK" in origin else "deb:fonts-noto-core"), "OFL-1.1"
    if "/dejavu/" in origin:
        return "deb:fonts-dejavu-core", "Bitstream-Vera AND Public-Domain (DejaVu changes)"
    if "/liberation/" in origin:
        return "deb:fonts-liberation", "OFL-1.1"
    return "system", "unknown"


def collect_fonts(root: Path, log: Logger) -> list[dict[str, Any]]:
    """Verified faces, copied into ``root/fonts`` so the cache is self-contained."""
    faces = scan_fonts()
    assign_font_splits(faces)
    for f in faces:
        src = Path(f["origin"])
        dest = root / "fonts" / src.name
        if not dest.is_file() or dest.stat().st_size != src.stat().st_size:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        f["path"] = str(dest.relative_to(root))
        f["source"], f["license"] = _font_licence(f["origin"])
    return faces


# --- entry points -----------------------------------------------------------------------------------------------------
def collect_assets(
    cache_dir: Path | None = None,
    *,
    install: bool = True,
    workers: int | None = None,
    log: Logger = print,
) -> AssetManifest:
    """Install (when allowed) and collect all assets into ``cache_dir``; write and verify the manifest.

    Safe to re-run: finished photos and logo PNGs are reused. Raises ``ModelNotAvailableError`` when
    too little was found to train on (e.g. none of the packages is installed).
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_assets_dir()
    root.mkdir(parents=True, exist_ok=True)
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    manifest = AssetManifest(root)
    missing = install_debs(install, log)
    if missing:
        manifest.notes.append(f"missing Debian packages: {', '.join(missing)}")
    icons = install_simple_icons(root, install, log)
    if icons is None:
        manifest.notes.append("simple-icons not installed")
    manifest.photos = collect_photos(root, log)
    manifest.logos = collect_logos(root, icons, workers, log)
    manifest.fonts = collect_fonts(root, log)
    (root / MANIFEST_NAME).write_text(json.dumps(manifest.to_json(), indent=1, ensure_ascii=False))
    verify(manifest)
    return manifest


MIN_COUNTS = {"photos": 8, "logos": 100, "fonts": 4}


def verify(manifest: AssetManifest) -> None:
    """Every listed file exists and each kind has enough entries in both splits."""
    for kind in ("photos", "logos", "fonts"):
        entries = getattr(manifest, kind)
        absent = [e["path"] for e in entries if not (manifest.root / e["path"]).is_file()]
        if absent:
            raise ModelNotAvailableError(
                f"{len(absent)} {kind} listed in the manifest are missing, e.g. {absent[0]}"
            )
        for split in ("train", "val"):
            n = sum(e["split"] == split for e in entries)
            if n < (MIN_COUNTS[kind] if split == "train" else 1):
                raise ModelNotAvailableError(
                    f"only {n} {kind} in the {split} split under {manifest.root}; "
                    "install the packages listed by `markless assets` and re-run"
                )


def summary(manifest: AssetManifest) -> str:
    """Human-readable counts per kind, split and script."""
    lines = [f"assets in {manifest.root}"]
    for key, by_split in manifest.counts().items():
        lines.append(f"  {key:<18} train {by_split['train']:>6}   val {by_split['val']:>5}")
    lines.extend(f"  note: {n}" for n in manifest.notes)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``markless assets [--dir DIR] [--no-install] [--workers N]``."""
    parser = argparse.ArgumentParser(prog="markless assets", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="cache folder (default $MARKLESS_ASSETS or ~/.cache/markless/assets)",
    )
    parser.add_argument(
        "--no-install", action="store_true", help="only collect what is installed; print install commands"
    )
    parser.add_argument("--workers", type=int, default=None, help="processes for SVG rasterisation")
    args = parser.parse_args(argv)
    try:
        manifest = collect_assets(args.dir, install=not args.no_install, workers=args.workers)
    except (ModelNotAvailableError, InvalidParameterError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(summary(manifest))
    return 0
