"""Every knob of the synthetic watermark generator, in one dataclass that YAML can fill.

Probabilities are per sample (or per mark where noted); ``(lo, hi)`` tuples are ranges sampled
uniformly unless the field says otherwise; ``*_weights`` dicts are relative weights of a
categorical choice. The defaults describe what real-world visible watermarks look like (stock
photo previews, photographer signatures, platform logos, tiled © stamps) and are deliberately
not tuned to any validation set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pipeline.errors import InvalidParameterError

SCRIPTS: tuple[str, ...] = (
    "latin",
    "cyrillic",
    "greek",
    "arabic",
    "devanagari",
    "chinese",
    "japanese",
    "korean",
)
BLEND_MODES: tuple[str, ...] = ("normal", "multiply", "screen", "overlay")
MARK_KINDS: tuple[str, ...] = (
    "text",
    "multiline",
    "logo",
    "logo_text",
    "badge",
    "stamp",
    "symbol",
    "signature",
    "datestamp",
    "platform",
)


def _w(**kw: float) -> dict[str, float]:
    return dict(kw)


@dataclass
class SynthConfig:
    """Parameters of :class:`training.synth.WatermarkSynth` (see module docstring for units)."""

    # --- what goes on a sample -------------------------------------------------------------
    p_no_mark: float = 0.3
    """Samples left clean (empty mask), so the model learns not to fire on unmarked photos."""
    n_marks_weights: dict[str, float] = field(default_factory=lambda: _w(**{"1": 0.68, "2": 0.24, "3": 0.08}))
    p_tiled: float = 0.22
    """Chance that the first mark is tiled (grid or diagonal) over the whole photo."""
    kind_weights: dict[str, float] = field(
        default_factory=lambda: _w(
            text=0.32,
            multiline=0.11,
            logo=0.19,
            logo_text=0.11,
            badge=0.09,
            stamp=0.06,
            symbol=0.06,
            signature=0.06,
            datestamp=0.05,
            platform=0.12,
        )
    )
    script_weights: dict[str, float] = field(
        default_factory=lambda: _w(
            latin=0.58,
            cyrillic=0.07,
            greek=0.04,
            arabic=0.06,
            devanagari=0.05,
            chinese=0.08,
            japanese=0.07,
            korean=0.05,
        )
    )
    p_uppercase: float = 0.35
    p_letter_spacing: float = 0.12
    p_faux_italic: float = 0.08

    # --- appearance -----------------------------------------------------------------------------
    colour_weights: dict[str, float] = field(
        default_factory=lambda: _w(white=0.42, black=0.16, grey=0.14, colour=0.2, gradient=0.08)
    )
    p_logo_original_colours: float = 0.35
    """Clip-art logos kept in their own colours (else recoloured as a silhouette or grey)."""
    p_hollow: float = 0.08
    """Outline-only marks (stroke without fill)."""
    p_stroke: float = 0.2
    p_shadow: float = 0.2
    p_glow: float = 0.07
    p_emboss: float = 0.08
    stroke_px: tuple[float, float] = (1.0, 4.0)
    shadow_offset_px: tuple[float, float] = (1.0, 5.0)
    shadow_blur_px: tuple[float, float] = (0.0, 4.0)

    # --- opacity, blending, geometry -----------------------------------------------------------------
    opacity_beta: tuple[float, float] = (2.2, 2.6)
    """Beta(a, b) mapped onto ``opacity_range``: most marks fall in the typical 0.2–0.7."""
    opacity_range: tuple[float, float] = (0.08, 1.0)
    p_opaque: float = 0.1
    blend_weights: dict[str, float] = field(
        default_factory=lambda: _w(normal=0.76, multiply=0.07, screen=0.08, overlay=0.09)
    )
    position_weights: dict[str, float] = field(
        default_factory=lambda: _w(corner=0.34, centre=0.24, random=0.27, edge=0.15)
    )
    rotation_weights: dict[str, float] = field(
        default_factory=lambda: _w(none=0.55, diagonal=0.25, small=0.14, any=0.06)
    )
    diagonal_deg: tuple[float, float] = (25.0, 50.0)
    small_rotation_deg: float = 12.0
    width_frac: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "corner": (0.08, 0.45),
            "centre": (0.25, 0.95),
            "random": (0.08, 0.7),
            "edge": (0.15, 0.8),
            "tile": (0.12, 0.45),
        }
    )
    """Mark width as a fraction of the image width, per placement (log-uniform)."""
    tile_gap: tuple[float, float] = (0.15, 1.4)
    """Spacing between tiles, as a fraction of the tile's size."""
    tile_opacity_scale: tuple[float, float] = (0.45, 1.0)

    # --- backgrounds -----------------------------------------------------------------------------
    p_procedural_background: float = 0.18
    """Backgrounds drawn procedurally (gradient, fractal noise, dead leaves, stripes) instead of photos."""
    background_kind_weights: dict[str, float] = field(
        default_factory=lambda: _w(photo=1.0, texture=0.5, illustration=0.3)
    )
    """Relative weight of each cached background by kind (Plasma/Lomiri renders are ``illustration``)."""
    crop_scale: tuple[float, float] = (0.25, 1.0)
    """Photo crop side as a fraction of the photo's short side (floored at the output size / 2)."""
    p_flip: float = 0.5
    jitter_brightness: float = 0.25
    jitter_contrast: float = 0.25
    jitter_saturation: float = 0.35
    jitter_gamma: float = 0.25
    p_scene_text: float = 0.2
    """Opaque text printed *in the scene* (part of the clean photo, not a watermark): a hard negative."""

    # --- degradations after compositing ------------------------------------------------------------
    p_rescale: float = 0.35
    rescale_factor: tuple[float, float] = (0.55, 1.8)
    """Marks composited at ``f`` times the output size, then everything resized to the output size."""
    p_jpeg: float = 0.6
    jpeg_quality: tuple[int, int] = (35, 95)
    p_noise: float = 0.2
    noise_sigma: tuple[float, float] = (1.0, 5.0)
    p_blur: float = 0.08
    blur_sigma: tuple[float, float] = (0.3, 0.9)

    min_visibility: float = 0.02
    """A mark must change its solid pixels by this much on average (0.02 ≈ 5 grey levels), else it is
    re-coloured (inverted) or left out: invisible "marks" are label noise. 0 disables the check."""

    # --- ground truth ---------------------------------------------------------------------------------
    mask_alpha_threshold: float = 0.02
    """No mask below 2 % opacity: such a mark changes a pixel by at most ~5 levels."""
    mask_solid_alpha: float = 0.1
    """At or above this opacity a pixel is part of the mark even where its colour matches the photo."""
    mask_min_change: float = 3 / 255
    """Between the two opacities, a pixel counts only if the mark moves it by at least this much."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject impossible settings early (a YAML typo should fail at startup, not mid-epoch)."""
        for f in fields(self):
            name = f.name
            value = getattr(self, name)
            if name.startswith("p_") and not 0.0 <= float(value) <= 1.0:
                raise InvalidParameterError(f"synth.{name} must be a probability in [0, 1], got {value}")
            if name.endswith("_weights"):
                if not isinstance(value, dict) or not value:
                    raise InvalidParameterError(f"synth.{name} must be a non-empty mapping")
                if any(float(v) < 0 for v in value.values()) or sum(float(v) for v in value.values()) <= 0:
                    raise InvalidParameterError(
                        f"synth.{name} needs non-negative weights with a positive sum"
                    )
        unknown = {
            "kind_weights": set(self.kind_weights) - set(MARK_KINDS),
            "script_weights": set(self.script_weights) - set(SCRIPTS),
            "blend_weights": set(self.blend_weights) - set(BLEND_MODES),
        }
        for name, bad in unknown.items():
            if bad:
                raise InvalidParameterError(f"synth.{name} has unknown keys {sorted(bad)}")
        lo, hi = self.opacity_range
        if not 0.0 < lo <= hi <= 1.0:
            raise InvalidParameterError(f"synth.opacity_range must satisfy 0 < lo <= hi <= 1, got {lo, hi}")
        if not 0.0 <= self.mask_alpha_threshold < 1.0:
            raise InvalidParameterError("synth.mask_alpha_threshold must be in [0, 1)")
        q_lo, q_hi = self.jpeg_quality
        if not 1 <= q_lo <= q_hi <= 100:
            raise InvalidParameterError(f"synth.jpeg_quality must be within [1, 100], got {q_lo, q_hi}")
        if min(self.rescale_factor) <= 0:
            raise InvalidParameterError("synth.rescale_factor must be positive")

    @classmethod
    def from_any(cls, value: SynthConfig | dict[str, Any] | None) -> SynthConfig:
        """Accept a config, a (YAML-loaded) mapping of overrides, or ``None`` for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            bad = set(value) - known
            if bad:
                raise InvalidParameterError(f"unknown synth option(s): {sorted(bad)}")
            fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
            return cls(**fixed)
        raise InvalidParameterError(
            f"synth config must be a SynthConfig or a mapping, got {type(value).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (for hparams logging and dataset metadata)."""
        return asdict(self)
