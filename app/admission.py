"""Admission by cost: what a request will cost, known from its image header before any work.

Bytes say little about work (a 780-byte JPEG can claim 36 megapixels), so the queue admits by an
estimate in *megapixel-passes*: how many times the pipeline walks over the image at full
resolution. Decode, refine, composite and encode are one pass each; the segmenter works at most
at ``max_side``² pixels; the restoration walks the masked area (at most ``max_coverage`` of the
image) as many times as its method is expensive. The header is read here, on a helper thread,
so a truncated, oversized or unwritable request is refused before it takes a queue slot.

Learning a mark (``POST /v1/marks``) walks its photos far more often than a removal does: it is
estimated from their pixels together, by the same unit and within the same per-request limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

import anyio

from app.errors import WorkTooLargeError
from app.settings import Settings
from pipeline import io
from pipeline.errors import ImageTooLargeError
from pipeline.service import RemovalService

MP = 1_000_000
FULL_RES_PASSES = 4.0  # decode, refine, composite, encode
SEGMENT_PASSES = 4.0  # the network, per pixel it sees (its input is at most max_side²)
INPAINT_PASSES: dict[str, float] = {"opencv": 4.0, "unblend": 4.0, "diffusion": 16.0, "restore": 24.0}
"""Passes per masked pixel of each restoration; an unknown one is assumed as costly as the worst.

``restore`` fits and inverts each region, measures what a fill would cost beside each hole, then
fills what is worth it: ``markless bench`` measured its ``inpaint_ms_per_masked_mp`` at 5.9x opencv's
on the segmenter's mask (512 px, opencv fallback), so 6 x 4. On thin text masks given as they are
(``given_mask``) the ratio reaches ~14x, but such masks are small: the estimate charges the largest
mask allowed (``max_coverage``), where the blob-like ratio holds."""
EXTRA_SEGMENT_PASSES: dict[str, int] = {"unblend": 1}
"""Whole segmenter passes a restoration adds: ``unblend`` re-checks its result with the segmenter,
a cost of the image's size, not of the masked area (which is why the bench's per-masked-MP figure
for it reads 30-60x opencv's)."""
LEARN_PASSES = 160.0
"""Passes per pixel of learning a mark: ``learn_profile`` on 4 real photos (0.14 and 0.75 MP each)
took 158-173 times as long as decoding and encoding them once (measured on 2 busy CPU cores)."""


def estimate_work(
    pixels: int,
    *,
    segment_pixels: int,
    inpainter: str | None,
    max_coverage: float,
) -> float:
    """Megapixel-passes of one request; ``inpainter`` None means segmentation only."""
    work = pixels * FULL_RES_PASSES + segment_pixels * SEGMENT_PASSES
    if inpainter is not None:
        passes = INPAINT_PASSES.get(inpainter, max(INPAINT_PASSES.values()))
        work += pixels * max_coverage * passes
        work += segment_pixels * SEGMENT_PASSES * EXTRA_SEGMENT_PASSES.get(inpainter, 0)
    return work / MP


def _probe(file: IO[bytes], max_pixels: int) -> io.ImageInfo:
    return io.probe(file, max_pixels=max_pixels)


async def admit(
    service: RemovalService,
    settings: Settings,
    image: IO[bytes],
    *,
    inpainter: str | None,
    fmt: str | None,
) -> float:
    """Check ``image``'s header and the output format's size limit; return the request's work.

    ``inpainter`` None: segmentation only; "" or a name: a removal with that restoration (""
    for the default). Raises the pipeline's typed errors for a bad header and
    ``WorkTooLargeError`` (413) over ``max_request_work``.
    """
    info = await anyio.to_thread.run_sync(_probe, image, settings.max_pixels)
    if fmt is not None:
        io.check_output_size(fmt, info.width, info.height)
    about = service.info()
    side = about.segmenter.max_side if about.segmenter is not None else 0
    work = estimate_work(
        info.pixels,
        segment_pixels=min(info.pixels, side * side),  # also with a user mask: unblend and restore segment
        inpainter=None if inpainter is None else (inpainter or about.default_inpainter),
        max_coverage=settings.max_mask_coverage,
    )
    return _within_limit(work, settings.max_request_work, "send a smaller image or a cheaper inpainter")


async def admit_learning(settings: Settings, images: Sequence[IO[bytes]]) -> float:
    """Check every photo's header and their pixels together; return the learning's work.

    Raises the pipeline's typed errors for a bad header, ``ImageTooLargeError`` (413) over
    ``max_mark_pixels`` and ``WorkTooLargeError`` (413) over ``max_learn_work``.
    """
    infos = await anyio.to_thread.run_sync(lambda: [_probe(f, settings.max_pixels) for f in images])
    total = sum(info.pixels for info in infos)
    if total > settings.max_mark_pixels:
        raise ImageTooLargeError(
            f"the photos have {total:,} pixels together, more than {settings.max_mark_pixels:,}: "
            "send fewer or smaller ones"
        )
    work = total * LEARN_PASSES / MP
    return _within_limit(work, settings.max_learn_work, "send fewer or smaller photos")


def _within_limit(work: float, limit: float, hint: str) -> float:
    """``work`` when one request may need that much; ``WorkTooLargeError`` (413) otherwise."""
    if work > limit:
        raise WorkTooLargeError(
            f"this request needs about {work:,.0f} megapixel-passes of work, more than the per-request "
            f"limit of {limit:,.0f}: {hint}"
        )
    return work
