"""Mark profiles: learn a watermark once from several photos, then remove it almost exactly.

Public API (what the CLI and the HTTP API call):

- ``learn_profile(images, layout="auto") -> MarkProfile``
- ``MarkProfile.save(path)`` / ``MarkProfile.load(path)`` (a JSON + PNG pair, or an RGBA image)
- ``MarkProfile.from_rgba(image)``: a user's own mark, searched for across position and scale
- ``remove_with_profile(image, profile, inpainter="opencv") -> (restored, mask, MarkReport)``
"""

from pipeline.marks.apply import MarkReport, locate, remove_with_profile
from pipeline.marks.learn import learn_profile
from pipeline.marks.profile import MarkProfile

__all__ = ["MarkProfile", "MarkReport", "learn_profile", "locate", "remove_with_profile"]
