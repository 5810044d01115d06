"""Licences of collected files: Debian copyright files (DEP-5) and the font packages' licences."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path


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


def font_licence(origin: str) -> tuple[str, str]:
    """(source package, licence) of a system font file, by the folder its package installs into."""
    if "/noto/" in origin:
        return ("deb:fonts-noto-cjk" if "CJK" in origin else "deb:fonts-noto-core"), "OFL-1.1"
    if "/dejavu/" in origin:
        return "deb:fonts-dejavu-core", "Bitstream-Vera AND Public-Domain (DejaVu changes)"
    if "/liberation/" in origin:
        return "deb:fonts-liberation", "OFL-1.1"
    return "system", "unknown"
