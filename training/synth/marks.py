"""Watermark kinds: text lines, multi-line credits, logos, logo+text lock-ups, badges, stamps, symbols.

Each builder returns a premultiplied RGBA sprite (see :mod:`training.synth.render`) drawn at
roughly ``target_w`` pixels wide, plus a small metadata dict (kind, script, text) for debugging
and per-category metrics.
"""

from __future__ import annotations

import colorsys
from typing import Any

import cv2
import numpy as np

from training.synth import render as R
from training.synth.config import SynthConfig
from training.synth.pool import AssetPool, FontFace, Logo
from training.synth.text import date_stamp, handle, style_text, watermark_lines

CJK = ("chinese", "japanese", "korean")
Meta = dict[str, Any]


class MarkFactory:
    """Builds watermark sprites from an :class:`AssetPool` according to a :class:`SynthConfig`."""

    def __init__(self, pool: AssetPool, cfg: SynthConfig) -> None:
        self.pool = pool
        self.cfg = cfg
        weights = {s: w for s, w in cfg.script_weights.items() if s in pool.fonts and w > 0}
        self.script_weights = weights or {"latin": 1.0}

    # --- entry point ---------------------------------------------------------------------------------------
    def make(
        self, rng: np.random.Generator, kind: str, target_w: float, canvas_h: int
    ) -> tuple[np.ndarray, Meta]:
        """A sprite of ``kind`` about ``target_w`` px wide for a canvas ``canvas_h`` px tall."""
        target_w = max(8.0, float(target_w))
        if kind in ("logo", "logo_text") and not self.pool.logos:
            kind = "text" if kind == "logo" else "multiline"
        builder = {
            "text": self._text,
            "multiline": self._multiline,
            "logo": self._logo_mark,
            "logo_text": self._logo_text,
            "badge": self._badge,
            "stamp": self._stamp,
            "symbol": self._symbol,
            "signature": self._signature,
            "datestamp": self._datestamp,
            "platform": self._platform,
        }.get(kind, self._text)
        sprite, meta = builder(rng, target_w, canvas_h)
        if sprite[..., 3].max() <= 0.05:  # e.g. a font without these glyphs drew nothing: fall back
            sprite, meta = self._text(rng, target_w, canvas_h, script="latin")
        return sprite, meta

    # --- text ----------------------------------------------------------------------------------------------------
    def pick_script(self, rng: np.random.Generator) -> str:
        return R.choice(rng, self.script_weights)

    def _face(self, rng: np.random.Generator, script: str) -> FontFace:
        faces = self.pool.fonts.get(script) or self.pool.fonts["latin"]
        return faces[int(rng.integers(len(faces)))]

    def lines(self, rng: np.random.Generator, script: str, n: int) -> str:
        lines = watermark_lines(rng, script, n)
        cfg = self.cfg
        return "\n".join(style_text(rng, ln, script, cfg.p_uppercase, cfg.p_letter_spacing) for ln in lines)

    def text_masks(
        self,
        rng: np.random.Generator,
        text: str,
        script: str,
        target_w: float,
        canvas_h: int,
        *,
        stroke: bool = True,
        align: str = "center",
        max_h_frac: float = 0.6,
    ) -> tuple[np.ndarray, np.ndarray, int, FontFace]:
        """Render ``text`` so that it is about ``target_w`` wide (≤ ``max_h_frac`` of the canvas tall)."""
        face = self._face(rng, script)
        lines = text.split("\n")
        longest = max(len(ln) for ln in lines) or 1
        per_char = 1.0 if script in CJK else (0.68 if text.isupper() else 0.56)
        size = target_w / (longest * per_char)
        size = float(np.clip(size, 7, canvas_h * max_h_frac / len(lines)))
        spacing_frac = rng.uniform(0.1, 0.5)
        for _ in range(2):
            font = self.pool.font(face, round(size))
            stroke_px = round(rng.uniform(*self.cfg.stroke_px) * max(1.0, size / 28)) if stroke else 0
            pad = int(4 + size * 0.3 + stroke_px)
            fill, outer = R.text_mask(
                font, text, pad=pad, align=align, spacing=round(size * spacing_frac), stroke=stroke_px
            )
            width = fill.shape[1] - 2 * pad
            ratio = target_w / max(width, 1)
            if 0.75 <= ratio <= 1.33:
                break
            size = float(np.clip(size * ratio, 7, canvas_h * max_h_frac / len(lines)))
        return fill, outer, round(size), face

    def _finish_text(
        self, rng: np.random.Generator, fill: np.ndarray, outer: np.ndarray, size: int, face: FontFace
    ) -> np.ndarray:
        sprite = R.style_mark(rng, self.cfg, fill, outer=outer, size_px=size)
        if not face.italic and rng.random() < self.cfg.p_faux_italic:
            sprite = R.faux_italic(sprite, rng.uniform(0.12, 0.25))
        return sprite

    def _text(
        self, rng: np.random.Generator, target_w: float, canvas_h: int, script: str | None = None
    ) -> tuple[np.ndarray, Meta]:
        script = script or self.pick_script(rng)
        text = self.lines(rng, script, 1)
        fill, outer, size, face = self.text_masks(rng, text, script, target_w, canvas_h, max_h_frac=0.35)
        return self._finish_text(rng, fill, outer, size, face), {
            "kind": "text",
            "script": script,
            "text": text,
        }

    def _multiline(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        script = self.pick_script(rng)
        text = self.lines(rng, script, int(rng.integers(2, 4)))
        align = str(rng.choice(["center", "left", "right", "center"]))
        fill, outer, size, face = self.text_masks(rng, text, script, target_w, canvas_h, align=align)
        sprite = self._finish_text(rng, fill, outer, size, face)
        return sprite, {"kind": "multiline", "script": script, "text": text}

    def _symbol(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        sym = str(rng.choice(["©", "©", "©", "®", "™", "℗"]))
        if rng.random() < 0.35:
            sym = f"{sym} {rng.integers(1998, 2027)}" if sym == "©" else sym
        fill, outer, size, face = self.text_masks(rng, sym, "latin", target_w, canvas_h, max_h_frac=0.7)
        return self._finish_text(rng, fill, outer, size, face), {
            "kind": "symbol",
            "script": "latin",
            "text": sym,
        }

    def _datestamp(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        """A camera's date imprint: glowing orange (red, yellow) seven-segment digits, nearly opaque."""
        text = date_stamp(rng)
        probe = R.seven_segment(text, 40)
        height = float(np.clip(40 * target_w / probe.shape[1], 7, canvas_h * 0.12))
        fill = R.seven_segment(text, round(height), slant=rng.uniform(0.0, 0.15))
        fill = R.blur(fill, rng.uniform(0.0, 0.8))
        pad = int(3 + height * 0.4)
        fill = R.pad_mask(fill, pad)
        hue = rng.choice(
            [rng.uniform(0.03, 0.11), rng.uniform(0.0, 0.03), rng.uniform(0.11, 0.16)], p=[0.7, 0.15, 0.15]
        )
        colour = np.array(
            colorsys.hsv_to_rgb(float(hue), rng.uniform(0.7, 1.0), rng.uniform(0.9, 1.0)), np.float32
        )
        sprite = R.layer(fill, colour)
        if rng.random() < 0.7:  # the bloom of a bright imprint on film
            glow = R.blur(R.dilate(fill, height * 0.04), height * rng.uniform(0.08, 0.2))
            sprite = R.over(sprite, R.layer(glow, colour, rng.uniform(0.25, 0.6)))
        return sprite, {"kind": "datestamp", "script": "latin", "text": text}

    def _platform(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        """A sharing platform's mark: a coloured app-icon tile + a brand line (often CJK) + an account line."""
        cjk = [s for s in CJK if s in self.pool.fonts]
        script = str(rng.choice(cjk)) if cjk and rng.random() < 0.7 else "latin"
        lines = [self.lines(rng, script, 1), handle(rng)]
        if rng.random() < 0.3:
            lines = lines[1:] if rng.random() < 0.5 else lines[:1]
        text_w = target_w * rng.uniform(0.55, 0.8)
        fills = [
            self.text_masks(rng, ln, script if k == 0 else "latin", text_w * (1.0 if k == 0 else 0.8), canvas_h,
                            stroke=False, align="left", max_h_frac=0.12)[0]
            for k, ln in enumerate(lines)
        ]  # fmt: skip
        tw = max(f.shape[1] for f in fills)
        block = np.zeros((sum(f.shape[0] for f in fills), tw), np.float32)
        y = 0
        for f in fills:
            block[y : y + f.shape[0], : f.shape[1]] = f
            y += f.shape[0]
        th = block.shape[0]
        side = max(8, round(th * rng.uniform(0.6, 0.95)))
        icon_colour = R.colour_field(rng, "gradient" if rng.random() < 0.4 else "colour", side, side)
        tile = R.shape_mask("rounded", side, side, radius=rng.uniform(0.18, 0.35))
        glyph = np.zeros((side, side), np.float32)
        logo = self._pick_logo(rng) if self.pool.logos else None
        if logo is not None:
            lw, lh = self._logo_size(logo, side * 0.62, side * 0.62 / 0.7)
            alpha, _ = logo.resized(lw, lh)
            y0, x0 = (side - lh) // 2, (side - lw) // 2
            glyph[y0 : y0 + lh, x0 : x0 + lw] = alpha
        else:
            glyph = R.shape_mask("ellipse", side, side, line=side * 0.1)
        icon = R.over(R.layer(glyph * tile, R.random_colour(rng, "white")), R.layer(tile, icon_colour))
        gap = round(side * rng.uniform(0.15, 0.35))
        H, W = max(th, side), side + gap + tw
        sprite = np.zeros((H, W, 4), np.float32)
        yi = (H - side) // 2
        sprite[yi : yi + side, :side] = icon
        style = str(rng.choice(["white", "white", "white", "colour", "black"]))
        text_layer = R.layer(block, R.random_colour(rng, style))
        yt = (H - th) // 2
        sprite[yt : yt + th, side + gap :] = R.over(text_layer, sprite[yt : yt + th, side + gap :])
        pad = int(3 + th * 0.2)
        sprite = cv2.copyMakeBorder(sprite, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
        if rng.random() < 0.6:  # the soft dark shadow that keeps white text readable on light photos
            soft = R.blur(R.dilate(sprite[..., 3], th * 0.03), th * rng.uniform(0.04, 0.12))
            sprite = R.over(sprite, R.layer(soft, R.random_colour(rng, "black"), rng.uniform(0.25, 0.6)))
        return sprite, {"kind": "platform", "script": script, "text": "\n".join(lines)}

    # --- logos ------------------------------------------------------------------------------------------------------
    def _pick_logo(self, rng: np.random.Generator) -> Logo | None:
        for _ in range(4):
            logo = self.pool.logo(int(rng.integers(len(self.pool.logos))))
            if logo is not None:
                return logo
        return None

    def _logo_layers(
        self, rng: np.random.Generator, logo: Logo, w: int, h: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Resized coverage and, when the logo keeps its own look, its colour field (else ``None``)."""
        alpha, rgb = logo.resized(w, h)
        if logo.mono or rng.random() >= self.cfg.p_logo_original_colours:
            if not logo.mono and rng.random() < 0.35:
                # Grey-scale rendition keeps inner detail (a common "white logo" treatment).
                lum = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
                base = R.random_colour(rng, str(rng.choice(["white", "grey", "black"])))
                return alpha, np.clip(base * (0.55 + 0.45 * lum[..., None]), 0, 1).astype(np.float32)
            return alpha, None
        return alpha, rgb

    def _logo_size(
        self, logo: Logo, target_w: float, canvas_h: int, max_h_frac: float = 0.7
    ) -> tuple[int, int]:
        lh, lw = logo.shape
        scale = target_w / lw
        scale = min(scale, canvas_h * max_h_frac / lh)
        return max(2, round(lw * scale)), max(2, round(lh * scale))

    def _logo_mark(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        logo = self._pick_logo(rng)
        if logo is None:
            return self._text(rng, target_w, canvas_h)
        w, h = self._logo_size(logo, target_w, canvas_h)
        alpha, rgb = self._logo_layers(rng, logo, w, h)
        pad = int(4 + 0.12 * max(w, h) ** 0.9)
        fill = R.pad_mask(alpha, pad)
        colour = None if rgb is None else cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        sprite = R.style_mark(rng, self.cfg, fill, colour=colour, size_px=min(h, 60) * 0.6)
        return sprite, {"kind": "logo", "script": None, "text": ""}

    def _logo_text(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        logo = self._pick_logo(rng)
        if logo is None:
            return self._multiline(rng, target_w, canvas_h)
        script = self.pick_script(rng) if rng.random() < 0.3 else "latin"
        text = self.lines(rng, script, 1 if rng.random() < 0.75 else 2)
        side = rng.random() < 0.65
        text_w = target_w * (0.7 if side else 1.0)
        fill_t, _outer_t, size, _face = self.text_masks(
            rng, text, script, text_w, canvas_h, stroke=False, max_h_frac=0.25
        )
        th, tw = fill_t.shape
        lh, lw = logo.shape
        if side:
            h = max(4, round(th * rng.uniform(0.55, 0.9)))
            w = max(2, round(lw * h / lh))
        else:
            w = max(4, round(min(tw * rng.uniform(0.25, 0.5), canvas_h * 0.4 * lw / lh)))
            h = max(2, round(lh * w / lw))
        alpha, rgb = self._logo_layers(rng, logo, w, h)
        gap = round(size * rng.uniform(0.2, 0.6))
        if side:
            H, W = max(th, h), w + gap + tw
            y_l, x_l, y_t, x_t = (H - h) // 2, 0, (H - th) // 2, w + gap
        else:
            H, W = h + gap + th, max(tw, w)
            y_l, x_l, y_t, x_t = 0, (W - w) // 2, h + gap, (W - tw) // 2
        fill = np.zeros((H, W), np.float32)
        fill[y_t : y_t + th, x_t : x_t + tw] = fill_t
        fill[y_l : y_l + h, x_l : x_l + w] = np.maximum(fill[y_l : y_l + h, x_l : x_l + w], alpha)
        colour: np.ndarray | None = None
        if rgb is not None:
            text_colour = R.random_colour(
                rng, R.choice(rng, self.cfg.colour_weights) if rng.random() < 0.5 else "grey"
            )
            colour = np.broadcast_to(text_colour, (H, W, 3)).copy()
            colour[y_l : y_l + h, x_l : x_l + w] = rgb
        pad = int(4 + size * 0.3)
        fill = R.pad_mask(fill, pad)
        if colour is not None:
            colour = cv2.copyMakeBorder(colour, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        sprite = R.style_mark(rng, self.cfg, fill, colour=colour, size_px=size)
        return sprite, {"kind": "logo_text", "script": script, "text": text}

    # --- badges and stamps ---------------------------------------------------------------------------------------
    def _badge(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        """Text in a (rounded) box or frame: "PREVIEW" plates, translucent credit banners."""
        script = self.pick_script(rng) if rng.random() < 0.3 else "latin"
        text = self.lines(rng, script, 1 if rng.random() < 0.8 else 2)
        fill_t, _, size, _ = self.text_masks(
            rng, text, script, target_w * 0.8, canvas_h, stroke=False, max_h_frac=0.3
        )
        th, tw = fill_t.shape
        inner_pad = int(size * 0.3)  # text_mask already padded ~0.3·size
        bw, bh = tw + 2 * inner_pad, th + 2 * inner_pad
        shape = str(rng.choice(["rounded", "rect", "rounded", "ellipse"]))
        if shape == "ellipse":
            bw, bh = round(bw * 1.25), round(bh * 1.5)
        radius = rng.uniform(0.1, 0.5)
        text_full = np.zeros((bh, bw), np.float32)
        y0, x0 = (bh - th) // 2, (bw - tw) // 2
        text_full[y0 : y0 + th, x0 : x0 + tw] = fill_t
        style = R.choice(rng, self.cfg.colour_weights)
        c_main = R.random_colour(rng, "colour" if style == "gradient" else style)
        variant = rng.random()
        if variant < 0.45:  # filled plate, text in a contrasting colour
            box = R.shape_mask(shape, bw, bh, radius=radius)
            plate = R.layer(box, c_main, rng.uniform(0.35, 1.0))
            sprite = R.over(R.layer(text_full, R.contrast_colour(rng, c_main)), plate)
        elif variant < 0.7:  # plate with the text knocked out
            box = R.shape_mask(shape, bw, bh, radius=radius)
            sprite = R.layer(np.clip(box - text_full, 0, 1), c_main)
        else:  # outlined frame around the text, same colour
            line = max(1.0, size * rng.uniform(0.05, 0.14))
            frame = R.shape_mask(shape, bw, bh, line=line, radius=radius)
            sprite = R.layer(np.maximum(frame, text_full), c_main)
        pad = int(3 + size * 0.15)
        sprite = cv2.copyMakeBorder(sprite, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
        if rng.random() < self.cfg.p_shadow:
            soft = R.blur(R.shift(sprite[..., 3], size * 0.06, size * 0.08), size * 0.06)
            sprite = R.over(sprite, R.layer(soft, R.random_colour(rng, "black"), rng.uniform(0.3, 0.7)))
        return sprite, {"kind": "badge", "script": script, "text": text}

    def _stamp(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        """A ring (or double ring) with a short word, ©, or a logo inside: rubber-stamp style marks."""
        d = round(float(min(target_w, canvas_h * 0.8)))
        d = max(d, 16)
        line = max(1.0, d * rng.uniform(0.02, 0.06))
        mask = R.shape_mask("ellipse", d, d, line=line)
        if rng.random() < 0.4:
            inset = round(line * rng.uniform(2.0, 4.0))
            if d - 2 * inset > 8:
                inner = R.shape_mask("ellipse", d - 2 * inset, d - 2 * inset, line=max(1.0, line * 0.6))
                mask[inset : d - inset, inset : d - inset] = np.maximum(
                    mask[inset : d - inset, inset : d - inset], inner
                )
        content_w = d * rng.uniform(0.45, 0.62)
        r = rng.random()
        meta: Meta = {"kind": "stamp", "script": "latin", "text": ""}
        if r < 0.3 and self.pool.logos:
            logo = self._pick_logo(rng)
            inner_mask = None
            if logo is not None:
                w, h = self._logo_size(logo, content_w, round(content_w / 0.7))
                inner_mask = logo.resized(w, h)[0]
        else:
            text = "©" if r < 0.55 else self.lines(rng, "latin", 1 if rng.random() < 0.6 else 2).upper()
            meta["text"] = text
            fill, _, _, _ = self.text_masks(
                rng, text, "latin", content_w, round(content_w * 1.2), stroke=False
            )
            ys, xs = np.nonzero(fill > 0.05)
            inner_mask = fill[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] if len(ys) else None
        if inner_mask is not None:
            ih, iw = inner_mask.shape
            if ih > d * 0.7 or iw > d * 0.7:
                s = d * 0.68 / max(ih, iw)
                inner_mask = cv2.resize(
                    inner_mask, (max(1, round(iw * s)), max(1, round(ih * s))), interpolation=cv2.INTER_AREA
                )
                ih, iw = inner_mask.shape
            y0, x0 = (d - ih) // 2, (d - iw) // 2
            mask[y0 : y0 + ih, x0 : x0 + iw] = np.maximum(mask[y0 : y0 + ih, x0 : x0 + iw], inner_mask)
        pad = int(4 + d * 0.06)
        sprite = R.style_mark(rng, self.cfg, R.pad_mask(mask, pad), size_px=d * 0.2)
        return sprite, meta

    # --- signatures ----------------------------------------------------------------------------------------------
    def _signature(self, rng: np.random.Generator, target_w: float, canvas_h: int) -> tuple[np.ndarray, Meta]:
        """A handwritten-looking signature: cursive loops (a modulated trochoid) with pen pressure and a flourish.

        Photographers sign in script fonts or by hand; no handwriting fonts ship offline, so the
        strokes are drawn procedurally.
        """
        w = max(24, round(target_w))
        x_height = float(np.clip(w / rng.uniform(5.0, 10.0), 4, canvas_h * 0.25))
        s = R.SUPERSAMPLE
        lines: list[np.ndarray] = []
        x = 0.0
        for _ in range(int(rng.integers(1, 3))):  # one or two "words"
            n = int(rng.integers(4, 10))
            t = np.linspace(0, 2 * np.pi * n, n * 24)
            pitch = x_height * rng.uniform(0.45, 0.8)
            amp = 1 + 0.25 * np.sin(t / rng.uniform(2, 5) + rng.uniform(0, 6))
            tall = np.zeros_like(t)
            for k in rng.choice(n, size=max(1, n // 3), replace=False):
                tall += rng.uniform(0.8, 1.8) * np.exp(-(((t - 2 * np.pi * (k + 0.5)) / 1.6) ** 2))
            loop = rng.uniform(0.5, 1.1)
            px = x + pitch * t / (2 * np.pi) - loop * pitch * 0.5 * np.sin(t)
            py = -x_height * 0.5 * (np.cos(t) * amp + tall * (1 - np.cos(t)) * 0.5 * rng.choice([1, -1]))
            lines.append(np.stack([px, py], axis=1))
            x = float(px.max() + pitch * rng.uniform(0.8, 1.6))
        if rng.random() < 0.6:  # underline / flourish
            t = np.linspace(0, 1, 60)
            fx = t * x * rng.uniform(0.7, 1.0)
            fy = x_height * (
                rng.uniform(0.7, 1.2) + rng.uniform(-0.4, 0.4) * np.sin(np.pi * t * rng.uniform(1, 2.5))
            )
            lines.append(np.stack([fx, fy], axis=1))
        slant = rng.uniform(0.1, 0.45)
        for ln in lines:
            ln[:, 0] -= ln[:, 1] * slant
        pts = np.concatenate(lines)
        lo = pts.min(0)
        span = pts.max(0) - lo
        scale = (w - 1) / max(float(span[0]), 1.0)
        pad = int(4 + x_height * 0.5)
        H = round(float(span[1]) * scale) + 2 * pad
        W = w + 2 * pad
        canvas = np.zeros((H * s, W * s), np.uint8)
        base_th = max(1.0, x_height * rng.uniform(0.06, 0.14))
        for ln in lines:
            q = ((ln - lo) * scale + pad) * s
            for a in range(0, len(q) - 1, 6):  # pen pressure varies along the stroke
                th = max(1, round(base_th * s * rng.uniform(0.6, 1.3)))
                seg = np.round(q[a : a + 7]).astype(np.int32).reshape(-1, 1, 2)
                cv2.polylines(canvas, [seg], False, 255, th, cv2.LINE_AA)
        mask = cv2.resize(canvas, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        sprite = R.style_mark(rng, self.cfg, mask, size_px=x_height * 1.4)
        return sprite, {"kind": "signature", "script": None, "text": ""}
