"""Installing the asset packages: Debian packages with apt-get (as root) and simple-icons with npm."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from training.assets import Logger

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
