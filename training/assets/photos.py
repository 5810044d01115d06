"""Collecting photos: Debian wallpaper packages and the photos inside the scikit-image wheel.

Each is resized to at most ``MAX_BACKGROUND_SIDE`` and copied into ``root/photos``. Folders of the
user's own photos are not collected here: they are recorded in the manifest and used in place.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from training.assets import Logger
from training.assets.licences import debian_licences, licence_for
from training.assets.manifest import VAL_FRACTION, PhotoEntry, split_of
from training.synth.pool import MAX_BACKGROUND_SIDE

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
WALLPAPER_DIRS = {
    "lomiri-wallpapers": Path("/usr/share/backgrounds"),
    "plasma-workspace-wallpapers": Path("/usr/share/wallpapers"),
}


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


def collect_photos(root: Path, log: Logger) -> list[PhotoEntry]:
    """Copy (resized) photos from the Debian wallpaper packages and scikit-image into ``root/photos``.

    JPEG wallpapers are photographs; PNG ones are renders/illustrations (kept, tagged ``illustration``).
    """
    entries: list[PhotoEntry] = []

    def add(
        src_img: Callable[[], np.ndarray | None], name: str, source: str, licence: str, kind: str, origin: str
    ) -> None:
        dest = root / "photos" / f"{name}.jpg"
        if not dest.is_file():
            img = src_img()
            if img is None or not _save_photo(img, dest):
                log(f"skipped photo {origin}")
                return
        split = split_of(f"photo:{name}", VAL_FRACTION["photos"])
        entries.append(PhotoEntry(str(dest.relative_to(root)), split, source, licence, origin, kind=kind))

    lomiri = WALLPAPER_DIRS["lomiri-wallpapers"]
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

    plasma = WALLPAPER_DIRS["plasma-workspace-wallpapers"]
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
