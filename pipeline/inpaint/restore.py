"""Restoration from any mask, exact or rough: invert the blend where a fit holds, inpaint the rest.

A mask that repeats on a lattice (a tiled stamp) is first handed to ``pipeline.inpaint.repeat``: its
copies lie over different photo and pin the mark's opacity and colour per pixel, which no fit of one
region can. What that leaves (other marks, copies it does not explain) goes on as any mask does.

Per mask region (see ``pipeline.inpaint.fit``) the mark's opacity α0 and colour W are estimated
from the image alone (no model: a fit needs no segmenter). Then, inside the mask:

- the mark's solid shape and the 2-px rim it fades out in are inverted, ``I = (J − α·W) / (1 − α)``,
  when the fit explains the pixels and the inversion with α0 stays in gamut; α is α0 inside the
  shape and read per pixel at its edge and on the rim (``opacity_map``);
- near-opaque marks (α0 above the ceiling: their whole region), inverted pixels that leave the
  gamut, and whole regions whose fit fails go to the fallback inpainter, which sees the recovered
  pixels as context;
- a fit that holds on the outline but whose inversion leaves the gamut inside is most often a
  mark of one opacity in several colours (a logo in its own colours, a glyph on a tile): a colour
  per pixel from a few clusters (``pipeline.inpaint.colours``) is inverted instead, and judged
  against a fill as a failed fit's pixels are; so it is where one colour stays in gamut but the
  colours leave the recovered photo smoother across their borders (a white glyph on a green tile);
- a region that groups marks near each other (a plate beside a credit line) is fitted mark by
  mark: the mask components a fit leaves mostly unexplained are fitted again on their own, over
  the photo it recovered; and a region whose fit is a dark layer (the soft shadow under a lighter
  mark) is fitted again over the photo recovered under it;
- a region that no fit explains as a whole (a badge over flat photo beside a credit line) has its
  larger mask components fitted one by one; what they invert is judged against a fill as the
  failed fit's pixels are;
- pixels the mark does not reach (a brush stroke or dilation wider than the mark) stay exactly
  as they were, and so does clean photo that a one-colour mark's shape encloses (the gap between
  two strokes under a rough mask: ``fit.without_enclosed_photo``);
- a hole whose mark is fainter than the fill's own error is not filled: filling it would make the
  photo worse than the mark does (``worth_filling``); it stays as it was, or, on a caller's mask
  where the segmenter's decomposition heads see a mark, is moved part of the way towards the fill
  (the blend of two readings of the photo errs less than either: ``FillDecision``). With the heads,
  a fill also needs their reading of the mark to be worth it, unless the hole departs from its fill
  by twice the margin or a fit found its mark opaque (``HEADS_VETO``);
- a hole that a rough mask made wider than its mark may be cut to its inner part: the clean rim
  stays as it was and is the fill's context; and a hole that joins a near-opaque part (a tile, by
  a fit's reading or the decomposer's) to fainter marks may have that part filled on its own;
- with a ``decomposer`` (``pipeline.decompose``), what is still left as it came is read once more,
  per pixel, by that network, and inverted where the photo holds its reading;
- with a ``corrector`` (``pipeline.correct``), the whole output inside the mask is mended by that
  network, changes below its dead zone dropped.

The fill is diffusion when one is configured, else OpenCV: Telea on thin parts, frequency-selective
reconstruction (texture continued) on wide ones, within a pixel budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.cancel import checkpoint
from pipeline.correct import Corrector, correct
from pipeline.decompose import Decomposer, invert_left, read_opaque
from pipeline.errors import InvalidParameterError
from pipeline.inpaint.base import Inpainter, InpaintRequest, build_inpainter, register_inpainter
from pipeline.inpaint.colours import colour_field, mix_borders, smoother
from pipeline.inpaint.fit import (
    NO_MARK,
    FitOptions,
    MarkFit,
    background,
    fit_marks,
    invert,
    opacity_map,
    out_of_gamut,
    rim,
    ring,
    without_enclosed_photo,
)
from pipeline.inpaint.regions import plan_regions
from pipeline.inpaint.repeat import remove_repeated


class Plan(NamedTuple):
    """What ``RestoreInpainter.plan`` found: the recovered image (inverted where fits hold and stay in
    gamut: the photo as it comes back where nothing is filled), the hole left for the inpainter, the
    part of it that fits found opaque, and one line per region."""

    recovered: np.ndarray
    hole: np.ndarray
    opaque: np.ndarray
    notes: list[str]


@register_inpainter("restore")
class RestoreInpainter:
    """Fit-based blend inversion per region with an inpainting fallback (the ``auto`` restoration)."""

    name = "restore"
    # The segmenter's opacity and colour, when there is one, are a second opinion before a fill
    # replaces photo (``HEADS_VETO``); the fits themselves read the image alone.
    uses_decomposition = True

    def __init__(
        self,
        fallback: Inpainter | str | None = None,
        *,
        alpha_ceiling: float = 0.75,
        context_px: int = 12,
        options: FitOptions | None = None,
        fill_margin: float = 4.0,
        repeats: bool = True,
        decomposer: Decomposer | None = None,
        corrector: Corrector | None = None,
    ) -> None:
        if not 0.0 < alpha_ceiling <= 1.0 or context_px < 2 or fill_margin < 2.0:
            raise InvalidParameterError("need 0 < alpha_ceiling <= 1, context_px >= 2 and fill_margin >= 2")
        # Default: OpenCV with the texture fill on a hole's wide parts (opaque cores, failed fits).
        if fallback is None:
            fallback = build_inpainter("opencv", method="fsr")
        self.fallback = build_inpainter(fallback) if isinstance(fallback, str) else fallback
        self.alpha_ceiling = alpha_ceiling
        self.context_px = context_px
        self.options = options or FitOptions()
        self.probe_radius = 3  # the Telea radius that measures what a fill costs (``fill_error``)
        self._probe_fill = build_inpainter("opencv", method="telea", radius=self.probe_radius)
        self.fill_margin = fill_margin
        self.repeats = repeats  # estimate a tiled mark from its copies first (``pipeline.inpaint.repeat``)
        self.decomposer = decomposer  # a last reading of what comes back as it came (``pipeline.decompose``)
        self.corrector = corrector  # a learned last pass over the whole output (``pipeline.correct``)

    def plan(self, request: InpaintRequest) -> Plan:
        """Fit and invert each region's marks; what is left to fill (notes: for logs and evaluation)."""
        image, mask = request.image, request.mask
        notes: list[str] = []
        repeated = (
            remove_repeated(image, mask, alpha_ceiling=self.alpha_ceiling, options=self.options)
            if self.repeats
            else None
        )
        if repeated is not None:  # a tiled stamp, learned from its own copies: the rest is fitted
            image, mask = repeated.image, mask & ~repeated.done
            notes.append(repeated.note)
        checkpoint()  # the repeat estimate is a stage of its own (a sparse solve of seconds)
        out = image.copy()
        hole = np.zeros_like(mask)
        opaque = np.zeros_like(mask)
        for region in plan_regions(mask, margin=0.0, min_margin=self.context_px):
            checkpoint()  # each region's fit is a stage of its own on a large, many-marked photo
            x0, y0, x1, y1 = region.crop
            work = _Work(
                image[y0:y1, x0:x1],
                mask[y0:y1, x0:x1],
                out[y0:y1, x0:x1],  # views: written in place
                hole[y0:y1, x0:x1],
                opaque[y0:y1, x0:x1],
                np.zeros(region.own.shape, bool),
                f"{region.bbox}",
                notes,
            )
            failed = self._fit_layers(work, region.own)
            if failed is None:
                continue
            # A region whose first fit fails can still hold marks that fit one by one: a badge whose
            # outline lies on flat photo beside a credit line that a fit explains. Its mask
            # components are fitted in turn (largest first), each over the photo recovered so far;
            # where one fails too, its part of the failed fit's pixels goes to the fill decision as
            # it would have. What they invert is judged against a fill like a failed fit's pixels.
            lost = _to_fill(failed, region.own)
            parts = _components(region.own, SPLIT_MIN_PX)
            if len(parts) < 2:
                work.hole |= lost
                notes.append(f"{work.name}: {failed.reason}")
                continue
            notes.append(f"{work.name}: {failed.reason}; its components one by one")
            for part in parts:
                if self._fit_layers(work, part, lost=lost) is not None:
                    work.hole |= lost & part
        return Plan(out, hole & mask, opaque & hole & mask, notes)

    def _fit_layers(self, work: _Work, part: np.ndarray, lost: np.ndarray | None = None) -> MarkFit | None:
        """Fit and invert ``part`` of a region mark after mark; the first fit when it fails (nothing
        written then), else None. ``lost``: the pixels a failed fit of the whole region left to the
        fill decision, when ``part`` is one of its components (see ``plan``); ``part`` is then fitted
        on its own, over the photo recovered so far, and what it inverts stays in the hole, for the
        fill decision to judge against a fill.

        One mark after another: a region can group marks that are near each other (a badge beside a
        credit line), each of its own colour and opacity. Once a fit holds, the mask components it
        leaves (mostly) unexplained are fitted again, over the photo it recovered; and after a dark
        layer (a shadow under a lighter mark) the same part is fitted again."""
        alone = lost is not None
        current = np.where(work.solved[..., None], work.out, work.crop) if alone else work.crop
        part_mask = part if alone else work.mask
        for k in range(MAX_MARKS):
            unknown = part_mask | (work.mask & ~work.solved) if alone else part_mask
            b = background(current, unknown, self.options.background_radius)
            fits = fit_marks(current, part_mask, options=self.options, fill=b)
            note = f"{work.name}: " if k == 0 else f"{work.name} (mark {k + 1}): "
            if not fits:
                if k == 0:
                    work.notes.append(note + NO_MARK)
                    if lost is not None:
                        work.hole |= lost & part
                break
            if not fits[0].ok:  # a mark we cannot explain: inpaint what departs from its surroundings
                if k == 0:
                    if alone:  # the caller notes the whole region's failure
                        work.notes.append(note + fits[0].reason)
                    return fits[0]
                work.hole |= _to_fill(fits[0], part)
                work.notes.append(note + fits[0].reason)
                break
            recovered, fit_hole, judged, what = self._apply(current, part_mask, b, fits, part)
            work.notes.append(note + what)
            if fit_hole is None:
                work.hole |= part
                break
            rest = _unexplained(current, b, part, fits, self.options)
            done = part & ~rest
            if any(f.ok and f.alpha0 >= self.alpha_ceiling for f in fits):
                work.opaque |= done
            # Inverted pixels that left the gamut keep the input: if the fill is not worth it
            # there, they stay as they came.
            kept = done & ~fit_hole
            work.out[kept] = recovered[kept]
            work.solved |= kept
            work.hole |= fit_hole & done
            work.hole |= kept if alone else kept & judged
            if rest.any():  # the rest as it came, over the photo recovered around it
                current = np.where(rest[..., None], current, recovered)
                part_mask, part = work.mask & ~done, rest
                if k == MAX_MARKS - 1:  # no fit left to try: the fill decision judges the rest
                    work.hole |= rest
            elif self._peel(fits):  # what is above the shadow, over the photo recovered under it
                current = np.where(kept[..., None], recovered, current)
            else:
                break
        return None

    def _peel(self, fits: list[MarkFit]) -> bool:
        """Whether to fit a region again over the photo its fits recovered: after a translucent dark
        layer, which is most often the soft shadow that keeps a lighter mark readable. Fitted first
        (its outline is the region's), it explains the shadow, not the mark above it: on the platform
        set a fitted shadow left an opaque tile and its text as they came (20.4 dB; peeled, 40.4).
        After a light layer the rest is the fit's own residue: fitting it again filled well-recovered
        marks from that residue (−10 dB on one photo of the fourth set)."""
        return any(self._shadow(f) for f in fits)

    def _shadow(self, fit: MarkFit) -> bool:
        """Whether ``fit`` holds a translucent dark layer: most often the soft shadow under a lighter
        mark, which has an opacity of its own."""
        return (
            fit.ok
            and fit.color is not None
            and fit.alpha0 < self.alpha_ceiling
            and _luma(fit.color) < DARK_LUMA
        )

    def _apply(
        self, crop: np.ndarray, crop_mask: np.ndarray, b: np.ndarray, fits: list[MarkFit], own: np.ndarray
    ) -> _Applied:
        """Invert each fitted layer of one region.

        ``b``: the background under the mask (``fit.background``); each pixel's own opacity is read
        against it as far as it can be trusted there (``opacity_map``)."""
        out = crop.copy()
        hole = np.zeros_like(own)
        judged = np.zeros_like(own)
        notes = []
        j = crop.astype(np.float32) / 255.0
        noise = None  # how far ``b`` can be trusted per pixel, for the fits that invert
        if any(fit.ok and fit.alpha0 < self.alpha_ceiling for fit in fits):
            blocked = _blocked(crop_mask, self.probe_radius)
            noise = _structure_map(crop, blocked, crop_mask.astype(np.uint8), (0, 0))
        for fit in fits:
            if not fit.ok:  # a later layer nobody could explain: inpaint just its pixels
                hole |= (fit.edge if fit.edge is not None else own) & own
                notes.append(fit.reason)
                continue
            assert fit.solid is not None and fit.color is not None
            solid, fading = fit.solid & own, rim(fit) & own
            if fit.alpha0 >= self.alpha_ceiling:
                # Nothing to invert: the whole region goes to the fill decision (which cuts a rough
                # mask's clean rim). The fit's solid shape is only the mark's W-coloured part; an
                # opaque logo in several colours kept the rest (third held-out set, 5 opaque photos:
                # 37.63 dB against opencv's 40.29 before, 40.95 now).
                hole |= own
                notes.append(f"opaque α0 {fit.alpha0:.2f}")
                continue
            # The fit is judged by inverting with its constant: a pixel whose own opacity would keep
            # it in gamut is no evidence that the fit holds (on a white backdrop the per-pixel map
            # kept a wrong fit in gamut that the fill would have mended: 58 → 42 dB).
            tol = self.options.gamut_tolerance
            color: np.ndarray = fit.color
            most = self.options.max_out_of_gamut
            single = invert(crop, fit.alpha0, color)
            outside = out_of_gamut(single, tol) & solid
            # The outline's colour may be one of the mark's several. Where the others leave the
            # gamut, a colour per pixel from a few clusters, when they explain the shape; where they
            # stay in it (a white glyph on a green tile, inverted with the green, turns purple), the
            # colours when they leave the photo smoother across their borders than one colour does
            # (``smoother``; platform set +0.24 dB with exact masks, strong platform set +0.31). A
            # guess more than a fit, so what it inverts is judged against a fill (kept unless a fill
            # pays).
            beyond = outside.sum() > most * max(int(solid.sum()), 1)
            # The mark over a shadow, read as a second colour at the shadow's opacity, stays half there
            # (restoration set, −8.5 dB on two photos); peeled (``_peel``), it is fitted on its own.
            shadow = self._shadow(fit)
            field = colour_field(j, b, fit.alpha0, solid, tol, most) if beyond or not shadow else None
            if beyond and field is None:
                return _Applied(out, None, judged, "inversion out of gamut")
            several = None if field is None else invert(crop, fit.alpha0, field)
            if several is not None and (beyond or (not shadow and smoother(single, several, field, solid))):
                color, outside = field, out_of_gamut(several, tol) & solid
                judged |= solid | fading
                notes.append(f"{len(np.unique(field[solid], axis=0))} colours")
            if color is fit.color and not shadow:
                # Clean photo the shape encloses (the gap between two strokes under a rough mask)
                # stays as it came. Not under a shadow, whose shape holds the mark above it, nor
                # among a mark's several colours, which no one colour's inversion continues.
                fit = without_enclosed_photo(j, fit, crop_mask, self.options)
                assert fit.solid is not None
                solid, fading = fit.solid & own, rim(fit) & own
                outside &= solid
            # The shape and the rim it fades out in, each pixel with its own opacity; what leaves the
            # gamut is filled.
            opacity = opacity_map(j, b, fit, noise, color)
            recovered = invert(crop, opacity, color)
            if color is not fit.color:  # the mark's edges between its colours: a mix of the two
                recovered = mix_borders(j, opacity, color, solid, recovered)
            outside |= out_of_gamut(recovered, tol) & (solid | fading)
            pixels = np.clip(recovered * 255.0 + 0.5, 0, 255).astype(np.uint8)
            out[solid | fading] = pixels[solid | fading]
            hole |= outside
            notes.append(f"α0 {fit.alpha0:.2f} W {np.round(fit.color, 2).tolist()} R² {fit.explained:.2f}")
        return _Applied(out, hole, judged, "; ".join(notes))

    def inpaint(self, request: InpaintRequest) -> np.ndarray:
        out = self._restore(request)
        heads = None if request.alpha is None or request.color is None else (request.alpha, request.color)
        if self.decomposer is not None:
            checkpoint()
            left = request.mask & (out == request.image).all(-1)
            if left.any():
                invert_left(
                    self.decomposer,
                    request.image,
                    out,
                    request.mask,
                    left,
                    alpha_ceiling=self.alpha_ceiling,
                    gamut_tolerance=self.options.gamut_tolerance,
                    min_change=self.options.min_change,
                    heads=heads,
                )
        if self.corrector is not None:
            checkpoint()
            correct(self.corrector, request.image, out, request.mask, heads=heads)
        return out

    def _restore(self, request: InpaintRequest) -> np.ndarray:
        """The fits' inversions and the fill where it pays (module docstring)."""
        recovered, hole, opaque, _ = self.plan(request)
        if not hole.any():
            return recovered
        checkpoint()
        if self.decomposer is not None:  # a strong mark where the network reads one (``read_opaque``)
            opaque = opaque | read_opaque(self.decomposer, request.image, request.mask, hole)
        # The decision compares like with like: the probes that measure a fill's error use Telea, so
        # the input's departure from a fill is read against a Telea fill too. A texture-making fill
        # (FSR, diffusion) departs from any input by its invented texture as well, which would pass
        # for mark and tip the decision towards filling.
        reference = self._probe_fill.inpaint(InpaintRequest(image=recovered, mask=hole))
        chosen, clean, partial = worth_filling(
            recovered,
            request.mask,
            hole,
            reference,
            radius=self.probe_radius,
            margin=self.fill_margin,
            opaque=opaque,
            mark_error=_heads_mark_error(request, reference, hole),
            blend=request.prob is None,
        )
        out = recovered  # the plan's own array: unfilled pixels come back as it recovered them
        part = partial > 0  # holes not worth a fill, moved part of the way towards one
        if part.any():
            weight = partial[part][:, None]
            out[part] = np.clip(
                out[part] + weight * (reference[part] - out[part].astype(np.float32)) + 0.5, 0, 255
            )
        if not chosen.any():
            return out
        checkpoint()  # between the decision and the fill, the fallback's own cost still ahead
        # Only a cut hole's clean rim is context for the fill; the rest of the hole stays unknown to
        # it even where it is not filled (a neighbouring glyph left as it was is still mark).
        filled = self.fallback.inpaint(InpaintRequest(image=out, mask=hole & ~clean, options=request.options))
        out[chosen] = filled[chosen]
        return out


def _heads_mark_error(request: InpaintRequest, reference: np.ndarray, hole: np.ndarray) -> np.ndarray | None:
    """The segmenter's reading of the mark's squared error on ``hole``, ``α²·|W − B|²`` per pixel (0..1
    units, ``B`` the fill ``reference``; 0 elsewhere), when its decomposition heads came with the
    request; else None."""
    if request.alpha is None or request.color is None:
        return None
    out = np.zeros(hole.shape, np.float32)
    alpha = np.clip(request.alpha[hole].astype(np.float32), 0.0, 1.0)
    diff = request.color[hole].astype(np.float32) - reference[hole].astype(np.float32) / 255.0
    out[hole] = alpha**2 * (diff**2).sum(-1)
    return out


class _Applied(NamedTuple):
    """What ``RestoreInpainter._apply`` made of one region's fits: the crop with the fitted layers
    inverted, the hole they leave (None: inpaint the region whole), the inverted pixels the fill
    decision is to judge against a fill (an inversion with a colour per pixel), and a note."""

    recovered: np.ndarray
    hole: np.ndarray | None
    judged: np.ndarray
    note: str


@dataclass
class _Work:
    """One region's crop as ``RestoreInpainter.plan`` works on it: the image and mask crops, views of
    the plan's output, hole and opaque maps (written in place), the pixels inverted so far, the
    region's name in notes and the notes."""

    crop: np.ndarray
    mask: np.ndarray
    out: np.ndarray
    hole: np.ndarray
    opaque: np.ndarray
    solved: np.ndarray
    name: str
    notes: list[str]


def _components(part: np.ndarray, min_area: int) -> list[np.ndarray]:
    """``part``'s connected components of at least ``min_area`` pixels, largest first, and the
    smaller ones together (text's dots and accents) as one part more."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(part.astype(np.uint8), connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= min_area
    big[0] = False  # the background
    parts = [labels == k for k in np.argsort(-stats[:, cv2.CC_STAT_AREA], kind="stable") if big[k]]
    small = part & ~big[labels]
    return parts + ([small] if small.any() else [])


def _to_fill(fit: MarkFit, part: np.ndarray) -> np.ndarray:
    """The pixels of ``part`` a failed fit leaves to the fill decision: its ``edge`` (what departs
    from the surroundings, with a rim) when it has one, else all of ``part``."""
    return part if fit.edge is None else fit.edge & part


SPLIT_MIN_PX = 2000
"""The least area (px) of a mask component fitted on its own when its region's fit fails (``plan``):
a fit over a short outline holds by chance on photo texture (clean photos under the tiled masks of
the synthetic sets: letter-sized components of 250 to 1 800 px held fits at α0 0.05 to 0.65); the
marks it gains on (a badge or a text block beside another mark) are larger. The smaller components
are fitted together as one more part."""

MAX_MARKS = 3
"""Marks (or layers of one) fitted one after another in one region (``RestoreInpainter.plan``)."""
DARK_LUMA = 0.3
"""Luma (0..1) below which a fitted layer's colour counts as a shadow's (``RestoreInpainter._peel``)."""


def _luma(color: np.ndarray) -> float:
    """Rec. 601 luma of an RGB colour in 0..1."""
    return float(np.dot(color, (0.299, 0.587, 0.114)))


def _unexplained(
    image: np.ndarray, b: np.ndarray, part: np.ndarray, fits: list[MarkFit], opt: FitOptions
) -> np.ndarray:
    """The connected components of ``part`` whose marked pixels (those that depart from ``b``, the
    fill of their surroundings) are mostly (half or more) outside every fitted mark's shape and rim:
    another mark's, which the fit only grazed. Measured on marked pixels, not on all: a rough
    mask's component is mostly clean photo around the one mark it holds."""
    covered = np.zeros_like(part)
    for fit in fits:
        if fit.ok and fit.solid is not None:
            covered |= fit.solid | rim(fit)
    marked = part & (np.linalg.norm(image.astype(np.float32) / 255.0 - b, axis=-1) > opt.min_change)
    _, labels = cv2.connectedComponents(part.astype(np.uint8), connectivity=8)
    n = int(labels.max()) + 1
    size = np.bincount(labels[marked], minlength=n)
    inside = np.bincount(labels[marked & covered], minlength=n)
    return part & (size[labels] >= opt.min_pixels) & (inside[labels] < 0.5 * size[labels])


def _blocked(mask: np.ndarray, radius: int) -> np.ndarray:
    """The mask and the band around it a Telea fill of ``radius`` reads: no clean photo to measure
    a fill's error on."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * radius + 3, 2 * radius + 3), np.uint8)) > 0


PROBE_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1))


def fill_error(
    image: np.ndarray,
    blocked: np.ndarray,
    shape: np.ndarray,
    origin: tuple[int, int],
    radius: int = 3,
    *,
    maps: list[np.ndarray] | None = None,
) -> float | None:
    """The squared RGB error (0..1 units, per pixel) that filling a hole of ``shape`` at ``origin``
    from its surroundings is expected to make.

    Measured, not assumed: copies of the shape are moved next to the hole, onto photo that is
    not ``blocked`` (no mark there), filled (Telea) and compared with what is really there; the
    median over the copies. Texture decides it: a thin stroke over sky costs almost nothing, a
    wide blob over foliage a lot. A copy that lands on smoother photo than the hole's own
    surroundings reads too low, so its error is scaled up by how much busier the photo right
    around the hole is than right around the copy (``_ring_variance``; never down, see
    ``RING_PX``), and a copy on far busier photo is not read while others are (``BUSIER_COPY``).
    A hole too big for any copy to fit beside it is read from the
    photo's structure function around it (``_structure_map``), which also bounds the copies'
    estimate from below (``STRUCTURE_FLOOR``). None when there is no clean photo around it at all.
    ``maps``: when given, each copy's per-pixel squared error over ``shape`` is appended (where in
    the hole a fill errs: deep inside more than at the rim).
    """
    h, w = shape.shape
    y, x = origin
    margin = 2 * radius + 2
    gap = 2 * margin  # a copy's context clears the hole's own (blocked) surroundings
    probes = []  # per copy: its error, its per-pixel error, whether its photo is calm enough to read
    own_ring = _ring_variance(image, shape, origin)
    for sy, sx in PROBE_DIRECTIONS:
        ty, tx = y + sy * (h + gap), x + sx * (w + gap)
        y0, x0, y1, x1 = ty - margin, tx - margin, ty + h + margin, tx + w + margin
        if y0 < 0 or x0 < 0 or y1 > image.shape[0] or x1 > image.shape[1] or blocked[y0:y1, x0:x1].any():
            continue
        crop = image[y0:y1, x0:x1]
        hole = np.zeros(crop.shape[:2], np.uint8)
        hole[margin : margin + h, margin : margin + w] = shape
        diff = (cv2.inpaint(crop, hole, float(radius), cv2.INPAINT_TELEA).astype(np.float32) - crop) / 255.0
        other = _ring_variance(image, shape, (ty, tx))
        square = _busier(own_ring, other) * (diff**2).sum(-1)
        calm = _busier(other, own_ring) < BUSIER_COPY
        probes.append(
            (float(square[hole > 0].mean()), square[margin : margin + h, margin : margin + w], calm)
        )
    if any(p[2] for p in probes):  # copies on far busier photo than the hole's are not read
        probes = [p for p in probes if p[2]]
    if maps is not None:
        maps.extend(p[1] for p in probes)
    probed = float(np.median([p[0] for p in probes])) if probes else None
    structure_map = _structure_map(image, blocked, shape, origin, own_ring)
    structure = None if structure_map is None else float(structure_map[shape > 0].mean())
    if probed is None and structure_map is not None and maps is not None:
        maps.append(structure_map)  # deep pixels err more than the rim (``D(t)`` grows with t)
    if probed is None or structure is None:
        return structure if probed is None else probed
    return max(probed, STRUCTURE_FLOOR * structure)


BUSIER_COPY = 10.0
"""How many times busier (colour variance) than the hole's own surroundings the photo around a copy
may be for ``fill_error`` to read the copy. A copy is never scaled down (``RING_PX``), so one that
lands on a busy photo beside a calm hole reads that photo's fill error: an opaque logo on a grey
wall, three of its five copies on the photo beside the wall (their surroundings 3 000 times busier),
was read 0.12 per pixel and left as it came (32.3 dB; filled, 64.4). Reading only the half of the
copies most like the hole instead: platform set +0.57 / −0.51 dB (exact / grown masks), a photo
−3.3 dB where a fill went ahead on two copies' word; at 10×, +0.55 / +0.02 and strong platform
+0.19 / +0.00, no photo more made worse on the six sets."""


RING_PX = 3
"""Width of the ring around a hole, or a copy of it, whose colour variance tells how busy the photo
right there is (``fill_error``). Scaling each copy's error by the ratio both ways (3 of the five
sets, 1458 holes: spread of log(true / estimated) 0.65 → 0.52) let fills replace faint text along a
bright rod the copies did not cross (−11.7 dB on a platform photo); up only, photos made worse
by more than 0.5 dB on the five sets, exact and rough masks: 20 → 10, mean −0.08 dB."""


def _ring_variance(image: np.ndarray, shape: np.ndarray, origin: tuple[int, int]) -> float | None:
    """Summed per-channel variance (0..1 units) of the photo within ``RING_PX`` around ``shape``
    placed at ``origin``; None with too few pixels (at the image's edge)."""
    y, x = origin
    h, w = shape.shape
    y0, x0 = max(y - RING_PX, 0), max(x - RING_PX, 0)
    y1, x1 = min(y + h + RING_PX, image.shape[0]), min(x + w + RING_PX, image.shape[1])
    placed = np.zeros((y1 - y0, x1 - x0), np.uint8)
    placed[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = shape
    around = ring(placed > 0, RING_PX)
    if around.sum() < 8:
        return None
    return float((image[y0:y1, x0:x1][around].astype(np.float32) / 255.0).var(0).sum())


def _busier(own: float | None, other: float | None) -> float:
    """How many times the photo around a hole (variance ``own``) is busier than the photo a fill's
    error was measured on (``other``): the factor that error is scaled up by, never below 1 (see
    ``RING_PX``); 1 when either is unknown."""
    if own is None or other is None:
        return 1.0
    return max(own / max(other, 1e-4), 1.0)


STRUCTURE_FLOOR = 0.5
"""The share of the structure-function estimate (``_structure_map``) below which a probed fill
error is not believed. Probes can all land on photo smoother than the hole's own surroundings (the
sky beside a tree under the mask); the structure function is measured right around the hole. Half
of it, because a fill does better than ``D(t)`` where the photo is a smooth gradient (its full
weight left 1 in 80 masked clean photos under 40 dB, against 4 at half and 7 without, but cost
0.3 dB on the restoration set's marks; at half those moved by +0.02 / +0.03 dB, exact / rough)."""


def _structure_map(
    image: np.ndarray,
    blocked: np.ndarray,
    shape: np.ndarray,
    origin: tuple[int, int],
    ring_variance: float | None = None,
) -> np.ndarray | None:
    """A fill's expected squared error per pixel of ``shape`` (a hole too big to probe beside it),
    from the photo's structure function ``D(t) = E|I(x + t) − I(x)|²`` measured on clean photo
    around the hole.

    A fill continues the hole's boundary inwards, so a pixel ``t`` px deep is predicted from photo
    about ``t`` px away: its error is about ``D(t)``, which grows with ``t`` towards twice the
    photo's variance (the variance alone, what a fill by the mean would cost, underestimates it
    deep inside). None when there is no clean photo around the hole.

    ``ring_variance``: the photo's variance right around the hole (``_ring_variance``), when the map
    is a fill's error. Clean photo starts a band away from the mask, and where the ring is busier
    than that photo (a rod crossing the hole, the sky beyond it) the map is scaled up by the ratio,
    as a copy's error is (platform set, exact masks: a hole along a rod filled at 0.42 per pixel for
    0.04 estimated, 34.1 → 26.4 dB; now left as it came).
    """
    h, w = shape.shape
    y, x = origin
    depth = cv2.distanceTransform(np.pad(shape, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    depths = depth[shape > 0]
    reach = max(8, int(2 * depths.max()))
    y0, x0 = max(y - reach, 0), max(x - reach, 0)
    y1, x1 = min(y + h + reach, image.shape[0]), min(x + w + reach, image.shape[1])
    crop = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    clean = ~blocked[y0:y1, x0:x1]
    if clean.sum() < 16:
        return None
    lags = [1]
    while lags[-1] < depths.max():
        lags.append(lags[-1] * 2)
    measured = []
    for t in lags:
        sq, n = 0.0, 0
        for a, b, ok in (
            (crop[t:], crop[:-t], clean[t:] & clean[:-t]),
            (crop[:, t:], crop[:, :-t], clean[:, t:] & clean[:, :-t]),
        ):
            if ok.any():
                sq += float(((a - b) ** 2).sum(-1)[ok].sum())
                n += int(ok.sum())
        if n < 16:
            break
        measured.append((t, sq / n))
    if not measured:
        return None
    ts, ds = zip(*measured, strict=True)
    busier = _busier(ring_variance, float(crop[clean].var(0).sum()))
    return np.where(shape > 0, busier * np.interp(depth, ts, ds), 0.0)


OPAQUE_MARGIN = 2.0
"""``worth_filling``'s margin for a hole a fit found opaque: the break-even. The default margin guards
against a fill whose error was underestimated replacing a faint mark; an opaque mark is not faint
(its pixels are the mark's colour, not the photo's), so the fill only has to be expected to err less
than the mark does (an opaque logo over busy photo, fill error estimated within 20 %: left as it
came at the default margin, 25.9 dB against Telea's 32.4)."""

CUTS_PX = (2, 4, 6, 8)
"""Depths (px inside the mask) at which ``worth_filling`` may cut a hole: a brush stroke or a generous
dilation reaches a few pixels past the mark, and a clean rim filled with the mark costs a fill's
error for nothing. Steps of 2 px: 1-px layers were too noisy to judge (a first version on the
restoration set, rough masks: 37.95 dB against 38.38)."""


def worth_filling(
    image: np.ndarray,
    mask: np.ndarray,
    hole: np.ndarray,
    filled: np.ndarray,
    *,
    radius: int = 3,
    group_px: int = 2,
    margin: float = 4.0,
    cuts: tuple[int, ...] = CUTS_PX,
    opaque: np.ndarray | None = None,
    mark_error: np.ndarray | None = None,
    blend: bool = True,
) -> FillDecision:
    """The hole pixels whose fill is expected to do less harm than the mark on them does, the hole
    pixels a cut found clean (context for the fill), and how far towards the ``filled`` reference
    each of the other hole pixels is best moved (``FillDecision``).

    Per group of hole pixels (strokes closer than ``2·group_px`` are one group): leaving it as
    ``image`` has it (what comes back unfilled: the input, or the photo recovered under a shadow)
    costs the mark's error there ``e_mark²``, filling it the fill's ``e_fill²`` (``fill_error``).
    ``image`` departs from the ``filled`` reference by ``d² ≈ e_mark² + e_fill²`` (the two are
    independent), so filling pays when ``d² > 2·e_fill²``. The estimate of ``e_fill²`` is measured
    beside the hole, not on it, and errs low more often than high (on 664 holes of the restoration
    set, true/estimated: median 1.26, pixel-weighted upper quartile 2.1), and a fill that misjudges
    costs more than a mark left as it was; so the estimate is taken ``margin / 2`` times (default 2,
    that quartile) and the default margin is 4: a group is filled when ``d² > 4·e_fill²``. A faint
    mark over texture is left as it is: the photo then comes back no worse than it came. Where the
    fill's error cannot be measured (no clean photo around the hole at all), the group is filled.

    A rough mask (a brush stroke, a dilation) puts clean photo around the mark into the hole: it
    dilutes the departure and deepens the fill. So the group may also be cut to its part more than
    ``r`` px inside the mask (``cuts``), judged the same way, the one with the largest expected gain
    filled. A cut is allowed only while every layer it leaves out departs from the reference no
    more than ``margin − 1`` times the fill's expected error there (per pixel, from the copies or
    the structure function: a layer that holds mark is not left, and a fill would continue it
    inwards), and only when the cut part departs by the margin from a fill of its own rim.

    ``opaque``: hole pixels whose fit found the mark opaque, or that the decomposer reads as a strong
    mark (``pipeline.decompose.read_opaque``); a group that is mostly such pixels is judged at the
    break-even (``OPAQUE_MARGIN``), not the margin, and a group that only holds some has that part
    judged so on its own (``_opaque_core``) when nothing else in it is worth a fill.

    ``mark_error``: the segmenter's own reading of the mark's squared error per pixel (from its
    decomposition heads), when there is one. The departure cannot tell a mark from the fill's own
    error where the fill errs far more than estimated (a wide hole over an object the surroundings
    do not show: a shadowed text block on the platform set, true fill error 3 to 10 times the
    estimate); the heads, which read the mark and not the fill, then see a faint mark. So a group or
    cut is filled only when they agree (``HEADS_VETO``), when it departs by twice the margin, or
    when a fit found it opaque (its own evidence of a strong mark: the four sets' 26 all-opaque
    photos lost 0.35 dB to the heads' veto, 0.09 with this exemption). And where their reading alone
    is well above the fill's expected error (``HEADS_SURE``), the group is judged at the break-even
    as an opaque one is.

    A group that is not worth a fill may still be worth part of one: the input and the fill are two
    readings of the photo, with errors ``e_mark²`` and ``e_fill²``, and their blend with weight
    ``e_mark² / (e_mark² + e_fill²) = e_mark² / d²`` on the fill errs less than either. ``e_mark²``
    is read twice, as the departure less the pessimistic fill error and as the heads' reading, and
    the smaller is used (``partial``); without the heads, or with ``blend`` False (the mask is the
    segmenter's own, see ``FillDecision``), nothing is blended.
    """
    kernel = np.ones((2 * group_px + 1, 2 * group_px + 1), np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        cv2.dilate(hole.astype(np.uint8), kernel), connectivity=8
    )
    blocked = _blocked(mask, radius)
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    fill = np.zeros_like(hole)
    clean = np.zeros_like(hole)
    partial = np.zeros(hole.shape, np.float32)
    for k in range(1, n):
        x, y, w, h = (int(v) for v in stats[k, :4])
        box = (slice(y, y + h), slice(x, x + w))
        group = (labels[box] == k) & hole[box]
        if not group.any():
            continue
        departure = (((image[box].astype(np.float32) - filled[box]) / 255.0) ** 2).sum(-1)
        maps: list[np.ndarray] = []
        error = fill_error(image, blocked, group.astype(np.uint8), (y, x), radius, maps=maps)
        if error is None:
            fill[box] |= group
            continue
        # A mark known to be strong: one a fit found opaque, or one the heads read as strong even
        # alone (``HEADS_SURE``). Then the estimate's calibration is not needed, nor the heads' veto.
        sure = (opaque is not None and float(opaque[box][group].mean()) >= 0.5) or (
            mark_error is not None and float(mark_error[box][group].mean()) > HEADS_SURE * error
        )
        scale = (OPAQUE_MARGIN if sure else margin) / 2.0
        heads = None if sure else mark_error
        # Where in the group the fill errs, scaled to the estimate (which carries the floor).
        expected = np.median(np.stack(maps), 0) if maps else np.ones(group.shape, np.float32)
        expected = expected * (error / max(float(expected[group].mean()), 1e-12))
        excess = departure - scale * expected  # the mark's error, read pessimistically
        best, best_gain = None, 0.0  # a fill must be expected to gain
        gain = float(excess[group].sum()) - scale * float(group.sum()) * error
        if gain > best_gain and _heads_agree(heads, departure, box, group, error, margin):
            best, best_gain = group, gain
        kept_part = group
        # The blend (below) reads the mark's error against the least fill error measured for the
        # group or its cuts: the inner part a rough mask's clean rim surrounds fills best. Against
        # the group's own error the six sets' twelve rows lost 0.04 dB and two photos more were made
        # worse; against the largest, 0.06 dB.
        least = error
        for r in cuts:
            part = group & (depth[box] > r)
            if part.sum() < 4:
                break
            layer = kept_part & ~part
            if float(departure[layer].sum()) > (margin - 1.0) * float(expected[layer].sum()):
                break  # the layer holds mark
            kept_part = part
            if float(excess[part].sum()) <= best_gain:
                continue  # cannot win even with a perfect fill: spare its probes
            measured = fill_error(image, blocked, part.astype(np.uint8), (y, x), radius)
            least = least if measured is None else min(least, measured)
            # Unmeasurable: filled, as a whole group would be.
            cut_error = 0.0 if measured is None else measured
            gain = float(excess[part].sum()) - scale * float(part.sum()) * cut_error
            if (
                gain > best_gain
                and _own_departure(image, part, (y, x), radius) > margin * cut_error
                and _heads_agree(heads, departure, box, part, cut_error, margin)
            ):
                best, best_gain = part, gain
        core = None if best is not None else _opaque_core(opaque, box, group, sure)
        if core is not None:
            measured = fill_error(image, blocked, core.astype(np.uint8), (y, x), radius)
            core_error = 0.0 if measured is None else measured
            # Judged as a group of its own that is mostly opaque: at the break-even against the fill
            # error measured for it (against the group's expected error map instead, the six sets'
            # twelve rows read 0.01 dB less; no photo more made worse either way).
            gain = float(departure[core].sum()) - OPAQUE_MARGIN * float(core.sum()) * core_error
            if gain > best_gain and _own_departure(image, core, (y, x), radius) > OPAQUE_MARGIN * core_error:
                fill[box] |= core  # the rest of the group is still mark: no context for the fill
                continue
        if best is not None:
            fill[box] |= best
            clean[box] |= group & ~best
        elif blend and heads is not None:
            spread = max(float(departure[group].mean()), 1e-12)  # d² = e_mark² + e_fill²
            mark = min(spread - scale * least, float(heads[box][group].mean()))
            if mark > 0:
                partial[box][group] = mark / spread
    return FillDecision(fill, clean, partial)


class FillDecision(NamedTuple):
    """``worth_filling``'s answer: the hole pixels to fill, the hole pixels a cut found clean (the
    fill's context), and per other hole pixel the weight (0..1) of its blend towards the fill.

    The blend needs the segmenter's heads: on the departure alone (the pessimistic fill error taken
    off it, or three times the estimate) it added 3 photos made worse on the five sets; with the
    smaller of that and the heads' own reading (not scaled up by their bias: where they read right,
    twice their reading blended a pale mark over a fill that erred 10 times its estimate) the ten
    rows (exact and rough masks) gain +0.13 dB on average and no photo more is made worse. Only on a
    caller's mask: on the segmenter's own the heads are no second opinion, they read a mark wherever
    it predicted one (clean photo beside a platform mark blended 45 % of the way to its fill, a
    faint logo read 5 times too strong: 3 more photos of two sets made worse)."""

    fill: np.ndarray
    clean: np.ndarray
    partial: np.ndarray


HEADS_VETO = 4.0
"""How far the segmenter's reading of a mark's error (``α²·|W − B|²`` from its heads) is trusted
to veto a fill: the heads under-read opacity (their reading is a median 2.8 times below the true
error on the restoration and platform sets), so a fill goes ahead unless even four times their
reading stays below the fill's own expected error."""


HEADS_SURE = 2.0
"""How far above a fill's expected error the segmenter's own reading of a mark's error (not scaled up
by its bias) must be for the fill to be judged at the break-even (``OPAQUE_MARGIN``), as for a mark a
fit found opaque. The heads read a median 2.8 times low, so at twice the fill's error the mark is
very likely stronger than the margin asks for; at the default margin such holes were left as they
came: an opaque grey logo over gravel departing 3.9× its fill's expected error (its true fill error
8 times below the mark's), a translucent green plate over a tiled floor at 3.5× (2 times below).
Half of that, 1×, gained more but made three photos of the five sets worse (heads that over-read a
faint mark 4.6×); at 2× none."""


OPAQUE_CORE_PX = 64
"""The fewest near-opaque pixels a group must hold for its opaque part to be judged on its own
(``worth_filling``); a few pixels' reading is no part to fill."""


OPAQUE_CORE_SHARE = 0.05
"""The least share of its group a near-opaque part must make up to be judged on its own. A mark's
opaque part is a good share of it (a tile, its glyphs: 11–39 % of their groups on the synthetic sets);
a few opaque readings inside a wide, faint mask are more likely the photo's own objects seen through
it (coloured dots under a faint guilloche, 0.7 % of a rough mask: filled, 35.8 → 31.0 dB)."""


def _opaque_core(
    opaque: np.ndarray | None, box: tuple[slice, slice], group: np.ndarray, sure: bool
) -> np.ndarray | None:
    """The near-opaque part of a group that is not mostly opaque, grown by 2 px (its anti-aliased
    edge) within the group; None where there is none to judge apart. A rough mask joins a badge's
    opaque tile to the translucent text beside it and the clean photo around both: judged as one, the
    tile's departure is diluted below the margin and the whole group came back as it was (a blue
    icon tile over sky and roof, strong platform set: its pixels 0.83 of squared error, the fill's
    0.33)."""
    if opaque is None or sure:
        return None
    core = opaque[box] & group
    if core.sum() < max(OPAQUE_CORE_PX, OPAQUE_CORE_SHARE * group.sum()):
        return None
    core = cv2.dilate(core.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & group
    return core if core.sum() < group.sum() else None


def _heads_agree(
    mark_error: np.ndarray | None,
    departure: np.ndarray,
    box: tuple[slice, slice],
    part: np.ndarray,
    error: float,
    margin: float,
) -> bool:
    """Whether the segmenter's heads (if given) see enough mark in ``part`` for a fill to pay; a
    departure of twice the margin needs no second opinion."""
    if mark_error is None or float(departure[part].mean()) > 2.0 * margin * error:
        return True
    return HEADS_VETO * float(mark_error[box][part].mean()) > error


def _own_departure(image: np.ndarray, part: np.ndarray, origin: tuple[int, int], radius: int) -> float:
    """Mean squared departure (0..1 units) of ``part`` (at ``origin``) from a Telea fill of it alone."""
    y, x = origin
    h, w = part.shape
    pad = 2 * radius + 2
    y0, x0 = max(y - pad, 0), max(x - pad, 0)
    y1, x1 = min(y + h + pad, image.shape[0]), min(x + w + pad, image.shape[1])
    hole = np.zeros((y1 - y0, x1 - x0), np.uint8)
    hole[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = part
    fill = cv2.inpaint(image[y0:y1, x0:x1], hole, float(radius), cv2.INPAINT_TELEA)
    inside = (slice(y - y0, y - y0 + h), slice(x - x0, x - x0 + w))
    diff = (image[y : y + h, x : x + w][part].astype(np.float32) - fill[inside][part]) / 255.0
    return float((diff**2).sum(-1).mean())
