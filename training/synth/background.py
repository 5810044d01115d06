"""Clean backgrounds: random crops of packaged photos, and procedural images.

Few free photos exist offline, so each is reused at many crops, scales, flips and colour
jitters; procedural images (gradients, fractal noise, dead leaves, high-contrast patterns) add the
flat skies, smooth studio backdrops and busy textures that watermarks are hardest to see against.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from training.synth.config import SynthConfig
from training.synth.pool import AssetPool


def photo_crop(
    rng: np.random.Generator, photo: np.ndarray, size: tuple[int, int], cfg: SynthConfig
) -> np.ndarray:
    """A random crop of ``photo`` resized to ``size`` (h, w), flipped and colour-jittered."""
    out_h, out_w = size
    ph, pw = photo.shape[:2]
    aspect = out_w / out_h
    short = min(ph, pw / aspect)
    lo = max(cfg.crop_scale[0], min(out_h, out_w) / 2 / max(short, 1))
    frac = rng.uniform(min(lo, cfg.crop_scale[1]), cfg.crop_scale[1])
    ch = max(2, min(ph, round(short * frac)))
    cw = max(2, min(pw, round(ch * aspect)))
    y = int(rng.integers(0, ph - ch + 1))
    x = int(rng.integers(0, pw - cw + 1))
    crop = photo[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if ch > out_h else cv2.INTER_CUBIC
    img = cv2.resize(crop, (out_w, out_h), interpolation=interp)
    if rng.random() < cfg.p_flip:
        img = img[:, ::-1]
    return colour_jitter(rng, np.ascontiguousarray(img), cfg)


def colour_jitter(rng: np.random.Generator, img: np.ndarray, cfg: SynthConfig) -> np.ndarray:
    """Brightness/contrast/gamma through one 256-entry LUT, then saturation (cheap on uint8)."""
    b = rng.uniform(-cfg.jitter_brightness, cfg.jitter_brightness) * 0.5
    c = 1.0 + rng.uniform(-cfg.jitter_contrast, cfg.jitter_contrast)
    g = np.exp(rng.uniform(-cfg.jitter_gamma, cfg.jitter_gamma))
    x = np.arange(256, dtype=np.float32) / 255.0
    y = np.clip((x - 0.5) * c + 0.5 + b, 0, 1) ** g
    lut = np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)
    img = cv2.LUT(img, lut)
    s = 1.0 + rng.uniform(-cfg.jitter_saturation, cfg.jitter_saturation)
    if abs(s - 1.0) > 0.05:
        grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        img = cv2.addWeighted(img, s, grey, 1.0 - s, 0.0)  # saturates to [0, 255]
    return img


def _rand_rgb(rng: np.random.Generator, sat: tuple[float, float] = (0.0, 0.9)) -> np.ndarray:
    h, s, v = rng.random(), rng.uniform(*sat), rng.uniform(0.05, 1.0)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32)


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Linear or radial two/three-stop gradient (skies, studio backdrops): float32 hxwx3.

    Drawn on a 1/8 grid and upsampled bilinearly: smooth ramps survive that exactly, at 1/64 the cost.
    """
    gh, gw = max(2, h // 8 + 1), max(2, w // 8 + 1)
    yy = np.linspace(0, h, gh, dtype=np.float32)[:, None]
    xx = np.linspace(0, w, gw, dtype=np.float32)[None, :]
    if rng.random() < 0.7:
        theta = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(theta) + yy * np.sin(theta)
    else:
        cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
        t = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    stops = [_rand_rgb(rng) for _ in range(int(rng.integers(2, 4)))]
    pos = np.linspace(0, 1, len(stops))
    small = np.stack([np.interp(t, pos, [s[c] for s in stops]) for c in range(3)], axis=-1).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _noise_field(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Fractal (multi-octave) noise in [0, 1], float32 hxw; built at half size then upsampled."""
    hh, hw = max(2, h // 2), max(2, w // 2)
    acc = np.zeros((hh, hw), np.float32)
    amp, total = 1.0, 0.0
    persistence = rng.uniform(0.4, 0.75)
    cells = int(rng.integers(2, 6))
    while cells < max(hh, hw):
        small = rng.random((cells, max(2, round(cells * w / h))), dtype=np.float32)
        acc += amp * cv2.resize(small, (hw, hh), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
        cells *= 2
    acc = cv2.resize(acc, (w, h), interpolation=cv2.INTER_LINEAR)
    lo, hi = float(acc.min()), float(acc.max())
    return (acc - lo) / max(hi - lo, 1e-6)


def fractal_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Fractal noise through a random two-colour ramp (clouds, stone, foliage): float32 hxwx3."""
    t = _noise_field(rng, h, w)
    c0, c1 = _rand_rgb(rng), _rand_rgb(rng)
    return c0 + t[..., None] * (c1 - c0)


def dead_leaves(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Overlapping opaque discs with power-law radii: scale-invariant like natural image statistics."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (_rand_rgb(rng) * 255).astype(np.uint8)
    r_min, r_max = max(2.0, min(h, w) * 0.01), min(h, w) * 0.35
    n = int(rng.integers(120, 320))
    # Inverse-CDF sampling of p(r) ∝ r^-3 between r_min and r_max.
    u = rng.random(n)
    radii = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5
    centres = rng.random((n, 2)) * (w, h)
    palette = rng.random((int(rng.integers(4, 12)), 3)) * 255
    for (cx, cy), r in zip(centres, np.sort(radii)[::-1], strict=True):
        colour = palette[int(rng.integers(len(palette)))] + rng.normal(0, 12, 3)
        cv2.circle(
            img, (int(cx), int(cy)), int(r), tuple(float(v) for v in np.clip(colour, 0, 255)), -1, cv2.LINE_AA
        )
    return img.astype(np.float32) / 255.0


def pattern(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """High-contrast stripes or checks, warped: fabric, fences, tiles — hard negatives for thin strokes."""
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    period = rng.uniform(4, 40)
    theta = rng.uniform(0, np.pi)
    u = xx * np.float32(np.cos(theta)) + yy * np.float32(np.sin(theta))
    u += _noise_field(rng, h, w) * np.float32(rng.uniform(0, 3 * period))
    t = np.sin(u * np.float32(2 * np.pi / period))
    if rng.random() < 0.4:
        v = yy * np.float32(np.cos(theta)) - xx * np.float32(np.sin(theta))
        t *= np.sin(v * np.float32(2 * np.pi / period))
    t = (t > 0).astype(np.float32) if rng.random() < 0.5 else (t + 1) * 0.5
    t = cv2.GaussianBlur(t, (0, 0), rng.uniform(0.3, 1.2))
    c0, c1 = _rand_rgb(rng), _rand_rgb(rng)
    return c0 + t[..., None] * (c1 - c0)


def procedural(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """One procedural background (uint8 hxwx3), sometimes two blended, always with a little grain."""
    h, w = size
    makers = (gradient, fractal_noise, dead_leaves, pattern)
    weights = np.array([0.3, 0.25, 0.3, 0.15])
    pick = makers[int(rng.choice(len(makers), p=weights))]
    img = pick(rng, h, w)
    if rng.random() < 0.3:
        other = makers[int(rng.choice(len(makers), p=weights))](rng, h, w)
        k = rng.uniform(0.2, 0.6)
        img = (1 - k) * img + k * other
    grain = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.5, 5.0))
    return np.clip(img * 255.0 + 0.5 + grain, 0, 255).astype(np.uint8)


def random_background(
    rng: np.random.Generator, pool: AssetPool, size: tuple[int, int], cfg: SynthConfig
) -> tuple[np.ndarray, str]:
    """A clean background of ``size`` (h, w) and where it came from (``photo:<i>`` or ``procedural``)."""
    if pool.backgrounds and rng.random() >= cfg.p_procedural_background:
        w = np.array([cfg.background_kind_weights.get(k, 1.0) for k in pool.background_kinds], np.float64)
        i = int(rng.choice(len(w), p=w / w.sum())) if w.sum() > 0 else int(rng.integers(len(w)))
        return photo_crop(rng, pool.background(i), size, cfg), f"photo:{i}"
    return procedural(rng, size), "procedural"
