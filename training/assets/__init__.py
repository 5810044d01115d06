"""The generator's assets, collected through package managers into a cache and recorded in a manifest.

Sources (all redistributable; licences are recorded per file in the manifest):

- Debian: ``lomiri-wallpapers`` and ``plasma-workspace-wallpapers`` (photos), ``openclipart-svg``
  (~8,000 SVGs), ``fonts-noto-core``, ``fonts-noto-cjk`` (plus ``fonts-dejavu-core`` and
  ``fonts-liberation`` for more Latin/Cyrillic/Greek designs). Installed with apt-get when we run
  as root, otherwise the command is printed.
- npm: ``simple-icons`` (CC0, ~3,400 single-path brand icons).
- PyPI: photos shipped inside the scikit-image wheel (``skimage.data``; ones that need a
  download are skipped).
- Folders of real photos named with ``markless assets --photos DIR``: recorded, used in place.

The cache (``$MARKLESS_ASSETS`` or ``~/.cache/markless/assets``) holds photos resized to at most
1280 px, logos pre-rasterised to 384 px PNGs (rasterising an SVG costs more than a whole sample),
copies of the fonts, and ``manifest.json``: every file with its source, licence and split. The
train/val split is decided by a stable hash of each name, never by listing order, so it is the
same on every machine and when sources grow.

Modules: ``manifest`` (the typed manifest, cache location, split rule; no other ``training``
imports), ``install`` (apt/npm), ``licences`` (Debian copyright files), ``photos``, ``logos``,
``fonts`` (collectors), ``collect`` (``markless assets``).
"""

from collections.abc import Callable

Logger = Callable[[str], None]
