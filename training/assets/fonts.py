"""Collecting fonts: faces of known families, each verified to render its scripts, split by family."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import ImageFont

from training.assets import Logger
from training.assets.licences import font_licence
from training.assets.manifest import VAL_FRACTION, FontEntry, stable_fraction
from training.synth.config import SCRIPTS
from training.synth.text import SCRIPT_PROBES

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


def collect_fonts(root: Path, log: Logger) -> list[FontEntry]:
    """Verified faces, copied into ``root/fonts`` so the cache is self-contained."""
    faces = scan_fonts()
    assign_font_splits(faces)
    entries = []
    for f in faces:
        src = Path(f["origin"])
        dest = root / "fonts" / src.name
        if not dest.is_file() or dest.stat().st_size != src.stat().st_size:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        source, licence = font_licence(f["origin"])
        entries.append(
            FontEntry(
                **{**f, "scripts": tuple(f["scripts"])},
                path=str(dest.relative_to(root)),
                source=source,
                license=licence,
            )
        )
    return entries
