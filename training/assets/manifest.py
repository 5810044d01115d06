"""The asset cache's one typed manifest, where the cache lives, and the train/val split rule.

``manifest.json`` is read and written only through :class:`AssetManifest`. The split rule
(:func:`split_of`, :data:`VAL_FRACTION`) lives here too, so the collectors, the recorded photo
folders and ``photo_dirs`` passed at training time all agree on it. This module imports nothing
else from ``training`` (``training.synth.pool`` imports it at module level).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import InvalidParameterError, ModelNotAvailableError
from pipeline.io import SUPPORTED_SUFFIXES

ASSETS_ENV = "MARKLESS_ASSETS"
"""Environment variable naming the asset cache; the one place it is read is :func:`default_assets_dir`."""
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
"""2 added ``photo_dirs``; version-1 files (without it) still load."""
VAL_FRACTION = {"photos": 0.2, "logos": 0.1, "fonts": 0.2}
SPLITS = ("train", "val")
MIN_COUNTS = {"photos": 8, "logos": 100, "fonts": 4}
"""Fewest train entries per kind worth training on (val needs one)."""


def default_assets_dir() -> Path:
    """``$MARKLESS_ASSETS`` or ``~/.cache/markless/assets``."""
    env = os.environ.get(ASSETS_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "markless" / "assets"


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone: the basis of the train/val split."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)


def split_of(key: str, val_fraction: float) -> str:
    """``"val"`` for about ``val_fraction`` of keys, chosen by hash (never by listing order)."""
    return "val" if stable_fraction(key) < val_fraction else "train"


def check_split(split: str) -> None:
    """Raise ``InvalidParameterError`` unless ``split`` is "train" or "val"."""
    if split not in SPLITS:
        raise InvalidParameterError(f"split must be 'train' or 'val', got {split!r}")


def photos_in_dirs(dirs: Sequence[str | Path], split: str) -> list[Path]:
    """The ``split`` share of the photos under ``dirs`` (recursive), used in place, sorted.

    The split is decided by a stable hash of each photo's path relative to its folder, the same rule
    as the asset cache's own photos, so a folder's held-out photos never change between runs and
    machines. A folder that does not exist is an error: a typo must not silently train on nothing.
    """
    check_split(split)
    found: list[Path] = []
    for d in dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise InvalidParameterError(f"photo folder {root} does not exist")
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() not in SUPPORTED_SUFFIXES or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            if split_of(f"photo:{rel}", VAL_FRACTION["photos"]) == split:
                found.append(path)
    return found


@dataclass(frozen=True)
class AssetEntry:
    """One file in the cache: where it is (relative to the cache), its split, source and licence."""

    path: str
    split: str
    source: str = ""
    license: str = ""
    origin: str = ""


@dataclass(frozen=True)
class PhotoEntry(AssetEntry):
    """A background copied into the cache; ``kind`` is "photo", "illustration" or "texture"."""

    kind: str = "photo"


@dataclass(frozen=True)
class LogoEntry(AssetEntry):
    """A logo pre-rasterised to PNG in the cache."""


@dataclass(frozen=True)
class FontEntry(AssetEntry):
    """A font face copied into the cache, with the scripts it was verified to render."""

    index: int = 0
    family: str = ""
    style: str = "Regular"
    bold: bool = False
    italic: bool = False
    scripts: tuple[str, ...] = ()


Entry = TypeVar("Entry", PhotoEntry, LogoEntry, FontEntry)


def _entries(cls: type[Entry], raw: Any, path: Path) -> list[Entry]:
    names = {f.name for f in fields(cls)}
    try:
        out = []
        for item in raw or []:
            known = {k: v for k, v in item.items() if k in names}
            if "scripts" in known:
                known["scripts"] = tuple(known["scripts"])
            out.append(cls(**known))
        return out
    except (TypeError, AttributeError) as exc:
        raise ModelNotAvailableError(f"malformed asset manifest {path}: {exc}") from exc


@dataclass
class AssetManifest:
    """What ``markless assets`` collected into ``root``: entries per kind, recorded photo folders, notes.

    ``photo_dirs`` are folders of real photos used in place (never copied); their photos are listed
    when a pool is built, split by :func:`photos_in_dirs`.
    """

    root: Path
    photos: list[PhotoEntry] = field(default_factory=list)
    logos: list[LogoEntry] = field(default_factory=list)
    fonts: list[FontEntry] = field(default_factory=list)
    photo_dirs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        """Where the manifest file lives."""
        return self.root / MANIFEST_NAME

    def resolve(self, entry_path: str) -> Path:
        """An entry's file: relative paths are inside the cache."""
        p = Path(entry_path)
        return p if p.is_absolute() else self.root / p

    def folder_photos(self, split: str, extra_dirs: Sequence[str | Path] = ()) -> list[Path]:
        """The ``split`` share of the recorded photo folders plus ``extra_dirs`` (each folder once)."""
        dirs: dict[Path, None] = {}
        for d in (*self.photo_dirs, *extra_dirs):
            dirs[Path(d).expanduser().resolve()] = None
        return photos_in_dirs(list(dirs), split)

    def counts(self) -> dict[str, dict[str, int]]:
        """Entries per kind and split (photo folders and fonts per script too)."""
        out: dict[str, dict[str, int]] = {}
        for kind in ("photos", "logos", "fonts"):
            entries = getattr(self, kind)
            out[kind] = {s: sum(e.split == s for e in entries) for s in SPLITS}
        if self.photo_dirs:
            out["photo folders"] = {s: len(self.folder_photos(s)) for s in SPLITS}
        for script in sorted({s for f in self.fonts for s in f.scripts}):
            out[f"fonts:{script}"] = {
                s: sum(e.split == s and script in e.scripts for e in self.fonts) for s in SPLITS
            }
        return out

    def to_json(self) -> dict[str, Any]:
        """The file's content: entries plus derived counts and licence totals for people reading it."""
        licences: dict[str, int] = {}
        for e in (*self.photos, *self.logos, *self.fonts):
            licences[e.license] = licences.get(e.license, 0) + 1
        return {
            "version": MANIFEST_VERSION,
            "counts": self.counts(),
            "licenses": dict(sorted(licences.items())),
            "notes": self.notes,
            "photo_dirs": [str(d) for d in self.photo_dirs],
            "photos": [asdict(e) for e in self.photos],
            "logos": [asdict(e) for e in self.logos],
            "fonts": [{**asdict(e), "scripts": list(e.scripts)} for e in self.fonts],
        }

    def save(self) -> Path:
        """Write ``root/manifest.json``; returns its path."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False))
        return self.path

    @classmethod
    def load(cls, root: str | Path) -> AssetManifest:
        """Read ``root/manifest.json`` (raises ``ModelNotAvailableError`` when absent or malformed)."""
        root = Path(root).expanduser()
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise ModelNotAvailableError(
                f"no asset manifest at {path}; run `markless assets` (or pass assets_dir=None)"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(f"cannot read asset manifest {path}: {exc}") from exc
        if not isinstance(data, dict) or int(data.get("version", 1)) > MANIFEST_VERSION:
            raise ModelNotAvailableError(f"{path} is not an asset manifest this version of markless reads")
        return cls(
            root,
            photos=_entries(PhotoEntry, data.get("photos"), path),
            logos=_entries(LogoEntry, data.get("logos"), path),
            fonts=_entries(FontEntry, data.get("fonts"), path),
            photo_dirs=[Path(d) for d in data.get("photo_dirs", [])],
            notes=list(data.get("notes", [])),
        )

    def verify(self) -> None:
        """Every listed file and folder exists and each kind has enough entries in both splits."""
        for kind in ("photos", "logos", "fonts"):
            entries = getattr(self, kind)
            absent = [e.path for e in entries if not self.resolve(e.path).is_file()]
            if absent:
                raise ModelNotAvailableError(
                    f"{len(absent)} {kind} listed in the manifest are missing, e.g. {absent[0]}"
                )
            for split in SPLITS:
                n = sum(e.split == split for e in entries)
                if kind == "photos":
                    n += len(self.folder_photos(split))  # raises for a recorded folder that is gone
                if n < (MIN_COUNTS[kind] if split == "train" else 1):
                    raise ModelNotAvailableError(
                        f"only {n} {kind} in the {split} split under {self.root}; "
                        "install the packages listed by `markless assets` and re-run"
                    )
